//! What both subcommands write: the machine a figure came from, timestamped JSON under
//! `results/`, markdown tables, progress bars.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::peers::HASHER;

/// The workspace root, where `results/` and `reports/` live.
#[must_use]
pub fn workspace_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness lives in the workspace")
}

/// Where a figure came from and how to get it again; flattened into each result file's
/// `run` object.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// Short hash of the checked-out commit, `-dirty` when tracked files outside `results/`
    /// and `reports/` differ from it.
    pub commit: String,
    /// The compiler that built this binary.
    pub rustc: String,
    /// CPU model.
    pub cpu: String,
    /// Cores this process may run on.
    pub cores: usize,
    /// The global allocator every peer ran on.
    pub allocator: &'static str,
    /// The hasher every peer used.
    pub hasher: &'static str,
    /// The command that reproduces the run.
    pub command: String,
}

impl Provenance {
    /// Describes this machine and checkout, for a run of the subcommand `args`.
    #[must_use]
    pub fn detect(args: &str) -> Self {
        Self {
            commit: commit().unwrap_or_else(|| "unknown".to_owned()),
            rustc: env!("REGENT_BENCH_RUSTC").to_owned(),
            cpu: cpu().unwrap_or_else(|| "unknown".to_owned()),
            cores: thread::available_parallelism().map_or(1, usize::from),
            allocator: "mimalloc, counting requested bytes",
            hasher: HASHER,
            command: format!("cargo run --release -p regent-bench -- {args}"),
        }
    }

    /// A markdown list saying where a figure came from and how to get it again.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "- machine: {} ({} cores)\n- rustc: {}\n- commit: {}\n- allocator: {}\n\
             - hasher: {} (every peer)\n- command: `{}`\n",
            self.cpu,
            self.cores,
            self.rustc,
            self.commit,
            self.allocator,
            self.hasher,
            self.command
        )
    }
}

fn git(args: &[&str]) -> Option<Output> {
    Command::new("git")
        .arg("-C")
        .arg(workspace_dir())
        .args(args)
        .output()
        .ok()
}

fn commit() -> Option<String> {
    let head = git(&["rev-parse", "--short", "HEAD"]).filter(|o| o.status.success())?;
    let mut commit = String::from_utf8(head.stdout).ok()?.trim().to_owned();
    // Exit code 1 means tracked files differ from HEAD. The harness's own output does not
    // count: a run that follows another (an `engine` run, then a `compare`) finds the first
    // one's report rewritten.
    let source = git(&["diff", "--quiet", "HEAD", "--", ":!results", ":!reports"]);
    if source.is_some_and(|o| o.status.code() == Some(1)) {
        commit.push_str("-dirty");
    }
    Some(commit)
}

fn cpu() -> Option<String> {
    cpu_of(&fs::read_to_string("/proc/cpuinfo").ok()?)
}

/// The CPU named in `cpuinfo`'s first entry. A VM may report only a brand ("AMD EPYC"), so
/// the family and model numbers follow it: they tell two generations apart.
fn cpu_of(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        let line = cpuinfo
            .lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))?;
        Some(line.split_once(':')?.1.trim())
    };
    let name = field("model name")?;
    Some(match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        _ => name.to_owned(),
    })
}

/// `YYYYMMDDTHHMMSSZ` for `time`, in UTC.
#[must_use]
pub fn utc_stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970 (no negative years needed).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (h, m, s) = (day_secs / 3_600, day_secs / 60 % 60, day_secs % 60);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}

/// Writes `value` as pretty JSON to `dir/<kind>-<stamp>.json`, creating `dir`.
///
/// # Errors
///
/// If the folder or the file cannot be written.
pub fn write_json(
    dir: &Path,
    kind: &str,
    stamp: &str,
    value: &impl Serialize,
) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("{kind}-{stamp}.json"));
    let mut json = serde_json::to_string_pretty(value)?;
    json.push('\n');
    fs::write(&path, json)?;
    Ok(path)
}

/// A markdown table, padded so that it also reads well in a terminal. The first column is
/// left-aligned, the others (figures) right-aligned.
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header row.
    #[must_use]
    pub fn new<S: ToString>(header: &[S]) -> Self {
        Self {
            rows: vec![header.iter().map(ToString::to_string).collect()],
        }
    }

    /// Appends a row with one cell per header column.
    ///
    /// # Panics
    ///
    /// If the row is not as wide as the header.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.rows[0].len(),
            "row width differs from the header's"
        );
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.rows[0].len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, &w)| {
                if c == 0 {
                    "-".repeat(w)
                } else {
                    format!("{}:", "-".repeat(w - 1))
                }
            })
            .collect();
        let (header, body) = self.rows.split_at(1);
        for row in header.iter().chain([&rule]).chain(body) {
            write!(f, "|")?;
            for (c, (cell, &w)) in row.iter().zip(&widths).enumerate() {
                if c == 0 {
                    write!(f, " {cell:<w$} |")?;
                } else {
                    write!(f, " {cell:>w$} |")?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The folder for a report's charts, beside it and named after it (`reports/compare.md`
/// → `reports/compare/`), created, and that name, which the report's links start with.
///
/// # Errors
///
/// If the folder could not be created.
pub fn chart_dir(report: &Path, fallback: &str) -> io::Result<(PathBuf, String)> {
    let stem = report
        .file_stem()
        .map_or_else(|| fallback.to_owned(), |s| s.to_string_lossy().into_owned());
    let dir = report.parent().unwrap_or(Path::new(".")).join(&stem);
    fs::create_dir_all(&dir)?;
    Ok((dir, stem))
}

/// A progress bar for one phase on stderr; indicatif draws nothing when stderr is not a
/// terminal.
#[must_use]
pub fn progress(label: &str) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {human_pos}/{human_len} eta {eta}")
            .expect("valid progress template")
            .progress_chars("=> ");
    ProgressBar::new(0)
        .with_style(style)
        .with_prefix(label.to_owned())
}

/// A figure for a table, to about three significant digits.
#[must_use]
pub fn figure(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::{cpu_of, utc_stamp, Table};

    #[test]
    fn names_the_cpu_with_its_family_and_model() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\n\
                    model\t\t: 2\nmodel name\t: AMD EPYC\nstepping\t: 1\n\n\
                    processor\t: 1\ncpu family\t: 25\nmodel\t\t: 1\n";
        assert_eq!(
            cpu_of(info).as_deref(),
            Some("AMD EPYC (family 26, model 2)")
        );
        let bare = "model name\t: Some CPU\n";
        assert_eq!(cpu_of(bare).as_deref(), Some("Some CPU"));
        assert_eq!(cpu_of("processor\t: 0\n"), None);
    }

    #[test]
    fn stamps_utc() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "20240229T235959Z"
        );
        // 2000-03-01T12:34:56Z, after a century leap day.
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(951_914_096)),
            "20000301T123456Z"
        );
    }

    #[test]
    fn renders_aligned_markdown() {
        let mut table = Table::new(&["phase", "Mops/s"]);
        table.row(vec!["register".into(), "1.25".into()]);
        let expected = "\
| phase    | Mops/s |
| -------- | -----: |
| register |   1.25 |
";
        assert_eq!(table.to_string(), expected);
    }
}
