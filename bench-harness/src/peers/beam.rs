//! The `beam` peer: Elixir's own `Registry` on the BEAM, which cannot run in this process.
//! `elixir` runs `bench-harness/beam/registry_bench.exs`, which drives the same workloads
//! and prints JSON objects on stdout, one per line: a header, each workload's figure once
//! its checks passed, and last the whole result. Without `elixir` on the PATH, or when the
//! script fails, the peer is skipped with a reason; that is never an error of the run. A run
//! stopped by the timeout keeps the figures of the workloads it finished, and says which
//! workload it was stopped in.

use std::fmt;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// The peer's name in tables and JSON.
pub const NAME: &str = "beam";

/// The script `elixir` runs.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/beam/registry_bench.exs");

/// BEAM process limit passed to `elixir`: the script spawns one owner per few keys.
const PROCESS_LIMIT: usize = 4_000_000;

/// What the script printed.
#[derive(Debug, Clone, Deserialize)]
pub struct BeamRun {
    /// `System.version()`.
    pub elixir: String,
    /// The OTP release.
    pub otp: String,
    pub keys: usize,
    pub threads: usize,
    /// Keys registered by each owner process (the BEAM cannot hold one process per key at
    /// 10M keys in this machine's memory).
    #[serde(default)]
    pub keys_per_process: usize,
    pub workloads: Vec<BeamFigure>,
    /// Why the run ended before its last workload (the timeout, naming the workload it
    /// was stopped in); `workloads` then holds the ones it finished. `None` for a whole run.
    #[serde(default)]
    pub stopped: Option<String>,
}

/// One workload's figure, under the same name as `compare`'s.
#[derive(Debug, Clone, Deserialize)]
pub struct BeamFigure {
    pub name: String,
    #[serde(default)]
    pub mops: Option<f64>,
    #[serde(default)]
    pub bytes_per_entry: Option<f64>,
}

impl BeamRun {
    /// The figure of workload `name`, if the script measured it.
    #[must_use]
    pub fn figure(&self, name: &str) -> Option<&BeamFigure> {
        self.workloads.iter().find(|w| w.name == name)
    }
}

/// Why the beam peer has no figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped(pub String);

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NAME}: skipped ({})", self.0)
    }
}

/// Runs the script with `elixir` (a path, or a name looked up on the PATH) on `keys` keys
/// and `threads` schedulers, and parses what it prints. Elixir's own output goes to stderr.
///
/// # Errors
///
/// A [`Skipped`] with the reason when `elixir` is missing, fails, runs past `timeout`
/// (it is killed then), or prints no result.
pub fn run(
    elixir: &Path,
    keys: usize,
    threads: usize,
    timeout: Duration,
) -> Result<BeamRun, Skipped> {
    let mut child = Command::new(elixir)
        .arg("--erl")
        .arg(format!("+P {PROCESS_LIMIT}"))
        .arg(SCRIPT)
        .args([
            "--keys",
            &keys.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            Skipped(if e.kind() == ErrorKind::NotFound {
                "elixir not found; run scripts/install-beam.sh".to_owned()
            } else {
                format!("could not start {}: {e}", elixir.display())
            })
        })?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Read on the side, so that a chatty script cannot block on a full pipe while we wait.
    let (sender, output) = mpsc::channel();
    thread::spawn(move || {
        let mut out = String::new();
        let _ = sender.send(stdout.read_to_string(&mut out).map(|_| out));
    });
    let read = |wait: Duration| match output.recv_timeout(wait) {
        Ok(out) => out.map_err(|e| Skipped(format!("could not read elixir's output: {e}"))),
        Err(_) => Err(Skipped("elixir's output did not end".to_owned())),
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                // Ends only the child we started; its pipe then closes and the reader ends
                // (unless something it started holds the pipe: then nothing is kept).
                let _ = child.kill();
                let _ = child.wait();
                let reason = format!(
                    "elixir ran past the {}s timeout and was stopped",
                    timeout.as_secs()
                );
                return read(Duration::from_secs(5))
                    .ok()
                    .and_then(|out| parse_stopped(&out, &reason))
                    .ok_or(Skipped(reason));
            }
            Err(e) => return Err(Skipped(format!("could not wait for elixir: {e}"))),
        }
    };
    let out = read(Duration::from_secs(60))?;
    if !status.success() {
        return Err(Skipped(format!(
            "elixir exited with {status}; its messages are above"
        )));
    }
    parse(&out)
}

/// The result object: the last line of `out` that starts with `{`.
///
/// # Errors
///
/// If there is no such line or it is not the result object.
pub fn parse(out: &str) -> Result<BeamRun, Skipped> {
    let line = out
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| Skipped("the script printed no JSON result".to_owned()))?;
    serde_json::from_str(line).map_err(|e| Skipped(format!("unreadable JSON from the script: {e}")))
}

/// What a run stopped part-way (`reason`) had reported: its header (the result with no
/// workload yet) and the figures of the workloads it finished, with `stopped` naming the
/// workload it was in. `None` if it had not finished one, or printed something unreadable
/// (then nothing of it is trusted).
#[must_use]
pub fn parse_stopped(out: &str, reason: &str) -> Option<BeamRun> {
    let mut started: Option<BeamRun> = None;
    let mut running: Option<String> = None;
    let mut workloads = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let Value::Object(mut object) = serde_json::from_str(line).ok()? else {
            return None;
        };
        if let Some(header) = object.remove("started") {
            started = Some(serde_json::from_value(header).ok()?);
        } else if let Some(Value::String(name)) = object.remove("running") {
            running = Some(name);
        } else if let Some(figure) = object.remove("finished") {
            let figure: BeamFigure = serde_json::from_value(figure).ok()?;
            if running.as_deref() == Some(figure.name.as_str()) {
                running = None;
            }
            workloads.push(figure);
        }
    }
    let mut run = started?;
    if workloads.is_empty() {
        return None;
    }
    run.workloads = workloads;
    run.stopped = Some(match running {
        Some(name) => format!("{reason} during its {name} workload"),
        None => reason.to_owned(),
    });
    Some(run)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{parse, parse_stopped, run, Skipped};

    #[test]
    fn parses_the_last_json_line() {
        let out = "warning: something\n{\"elixir\":\"1.14.0\",\"otp\":\"25\",\"keys\":10,\
                   \"threads\":1,\"keys_per_process\":10,\"workloads\":[{\"name\":\"register\",\
                   \"mops\":1.5},{\"name\":\"memory\",\"bytes_per_entry\":180.25}]}\n";
        let run = parse(out).expect("valid");
        assert_eq!(run.figure("register").and_then(|f| f.mops), Some(1.5));
        assert_eq!(
            run.figure("memory").and_then(|f| f.bytes_per_entry),
            Some(180.25)
        );
        assert!(run.figure("lookup_hit").is_none());
        assert!(run.stopped.is_none());
        assert!(parse("no json here").is_err());
    }

    #[test]
    fn a_stopped_run_keeps_the_workloads_it_finished() {
        let out = "{\"started\":{\"elixir\":\"1.14.0\",\"keys\":10,\"keys_per_process\":10,\
                   \"otp\":\"25\",\"threads\":2,\"workloads\":[]}}\n\
                   {\"running\":\"register\"}\n\
                   {\"finished\":{\"mops\":0.5,\"name\":\"register\",\"ops\":10}}\n\
                   {\"finished\":{\"bytes_per_entry\":212.5,\"name\":\"memory\"}}\n\
                   {\"running\":\"lookup_hit\"}\n";
        let run = parse_stopped(out, "stopped").expect("one workload finished");
        assert_eq!((run.elixir.as_str(), run.otp.as_str()), ("1.14.0", "25"));
        assert_eq!((run.keys, run.threads, run.keys_per_process), (10, 2, 10));
        assert_eq!(run.figure("register").and_then(|f| f.mops), Some(0.5));
        assert_eq!(
            run.figure("memory").and_then(|f| f.bytes_per_entry),
            Some(212.5)
        );
        assert!(run.figure("lookup_hit").is_none(), "not finished");
        assert_eq!(
            run.stopped.as_deref(),
            Some("stopped during its lookup_hit workload")
        );
        // Stopped between workloads: no workload is named.
        let between = out.rsplit_once("{\"running\":\"lookup_hit\"}").unwrap().0;
        assert_eq!(
            parse_stopped(between, "stopped")
                .unwrap()
                .stopped
                .as_deref(),
            Some("stopped")
        );
        // Nothing finished, no header, or a garbled line: nothing is kept.
        let header_only = out.split_once("{\"running\"").unwrap().0;
        assert!(parse_stopped(header_only, "stopped").is_none());
        let no_header = out.split_once('\n').unwrap().1;
        assert!(parse_stopped(no_header, "stopped").is_none());
        let garbled = format!("{out}{{\"finished\":{{\"name\":3}}}}\n");
        assert!(parse_stopped(&garbled, "stopped").is_none());
    }

    #[test]
    fn a_missing_elixir_is_skipped_with_the_install_hint() {
        let missing = Path::new("/nonexistent/regent-bench/elixir");
        let skipped = run(missing, 10, 1, Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            skipped,
            Skipped("elixir not found; run scripts/install-beam.sh".to_owned())
        );
        assert_eq!(
            skipped.to_string(),
            "beam: skipped (elixir not found; run scripts/install-beam.sh)"
        );
    }
}
