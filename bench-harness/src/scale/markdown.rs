//! `reports/scale.md`, regenerated from the newest `scale-*.json`, with its SVG charts
//! beside it.

use std::fs;
use std::path::{Path, PathBuf};

use super::figures::ScaleResult;
use super::plot::{self, Axis, Line, COLORS};
use crate::count::Count;
use crate::report::{self, figure};
use crate::Error;

/// The newest `scale-<UTC>.json` in `dir` (the names sort by time).
///
/// # Errors
///
/// If `dir` cannot be read or holds no scale result.
pub fn newest(dir: &Path) -> Result<PathBuf, Error> {
    let mut newest = None;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("scale-") && name.ends_with(".json") {
            newest = newest.max(Some(name.into_owned()));
        }
    }
    newest
        .map(|n| dir.join(n))
        .ok_or_else(|| format!("no scale-*.json in {}", dir.display()).into())
}

/// Renders the newest result in `results` into the markdown file `report` and its charts
/// (`<report stem>-*.svg` beside it). Returns the result file it used.
///
/// # Errors
///
/// If the result cannot be read or parsed, or a file cannot be written.
pub fn regenerate(results: &Path, report: &Path) -> Result<PathBuf, Error> {
    let json = newest(results)?;
    let larger = largest(results).filter(|(path, _)| *path != json);
    let newest_processes = read(&json)?.run.processes;
    let larger = larger.filter(|(_, r)| r.run.processes > newest_processes);
    write(&json, larger.as_ref(), report)?;
    Ok(json)
}

/// The result with the most processes in `dir` (the newest of equals), skipping files that
/// do not parse (results of older versions of the schema).
fn largest(dir: &Path) -> Option<(PathBuf, ScaleResult)> {
    let mut best: Option<(PathBuf, ScaleResult)> = None;
    for entry in fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if !name.is_some_and(|n| n.starts_with("scale-") && n.ends_with(".json")) {
            continue;
        }
        let Ok(result) = read(&path) else { continue };
        let key = |p: &Path, r: &ScaleResult| (r.run.processes, p.to_path_buf());
        if best
            .as_ref()
            .is_none_or(|(bp, br)| key(&path, &result) > key(bp, br))
        {
            best = Some((path, result));
        }
    }
    best
}

fn read(json: &Path) -> Result<ScaleResult, Error> {
    serde_json::from_str(&fs::read_to_string(json)?)
        .map_err(|e| format!("{}: {e}", json.display()).into())
}

/// Renders the result `json` into the markdown file `report` and its charts
/// (`<report stem>-*.svg` beside it).
///
/// # Errors
///
/// If the result cannot be read or parsed, or a file cannot be written.
pub fn render(json: &Path, report: &Path) -> Result<(), Error> {
    write(json, None, report)
}

/// Writes the report of `json`, with a section on `larger`, a run with more processes.
fn write(json: &Path, larger: Option<&(PathBuf, ScaleResult)>, report: &Path) -> Result<(), Error> {
    let result = read(json)?;
    let dir = report.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let stem = report
        .file_stem()
        .map_or_else(|| "scale".into(), |s| s.to_string_lossy().into_owned());
    let charts = [
        format!("{stem}-throughput.svg"),
        format!("{stem}-memory.svg"),
        format!("{stem}-growth.svg"),
    ];
    throughput(&dir.join(&charts[0]), &result)?;
    memory(&dir.join(&charts[1]), &result)?;
    growth(&dir.join(&charts[2]), &result)?;
    let mut text = markdown(&result, json, &charts);
    if let Some((path, larger)) = larger {
        text.push_str(&larger_section(path, larger));
    }
    fs::write(report, text)?;
    Ok(())
}

/// The figures of the largest run in the results folder, when it is not the newest.
fn larger_section(json: &Path, result: &ScaleResult) -> String {
    let json = json.strip_prefix(report::workspace_dir()).unwrap_or(json);
    let failures = result.failures();
    let verdict = if failures.is_empty() {
        "Every check passed.".to_owned()
    } else {
        format!("**Checks failed:** {}.", failures.join("; "))
    };
    format!(
        "\n## The largest run: {processes} processes\n\n\
         The largest run in the results folder (`{json}`), kept here after smaller runs. \
         {headline}.\n\n{origin}\n{verdict}\n\n{tables}",
        processes = Count(result.run.processes),
        json = json.display(),
        headline = result.headline(),
        origin = result.run.origin.describe(),
        tables = result.tables(),
    )
}

fn markdown(result: &ScaleResult, json: &Path, charts: &[String; 3]) -> String {
    let json = json.strip_prefix(report::workspace_dir()).unwrap_or(json);
    let json = json.display();
    let r = &result.run;
    let m = &result.memory;
    let failures = result.failures();
    let verdict = if failures.is_empty() {
        "Every check passed: no entry, monitor or byte left behind (beyond the explained \
         constant), no stale lookup, no message delivered to a dead process."
            .to_owned()
    } else {
        format!("**Checks failed:** {}.", failures.join("; "))
    };
    let growth_p999 = result
        .growth
        .iter()
        .map(|g| g.latency.p999_ns)
        .max()
        .unwrap_or(0);
    format!(
        "# regent at runtime scale\n\n\
         Generated by `regent-bench scale` from `{json}`; rerun the command below to refresh \
         it.\n\n{headline}.\n\n{origin}\n{verdict}\n\n\
         ## The run\n\n\
         {threads} scheduler threads, each pinned to a core, own {processes} simulated \
         processes (a 16-byte record each: the current pid and a mailbox counter). Each \
         process registers a unique name (its session id) in a `Unique` registry and joins \
         {topics} of {topic_keys} topics in a `Duplicate` registry, topic popularity drawn \
         from a Zipf distribution (s = {zipf}), so a few topics are huge and most are small. \
         Both registries start empty and grow. Three phases:\n\n\
         1. **spawn**: every process registers its name and joins its topics (`ops` counts \
         registrations, each timed on its own for one process in 16);\n\
         2. **steady** ({seconds} s): sends by name (`Unique::send`: a lookup and a delivery \
         to the mailbox) to random processes, broadcasts to random topics \
         (`Duplicate::dispatch`, {broadcasts} of operations), and churn ({churn} of \
         operations): a process crashes, its scheduler reports it down in both registries \
         and restarts it under a new pid that registers the same name and rejoins its \
         topics at once;\n\
         3. **teardown**: every process exits and is reported down in both registries \
         (`ops` counts `process_down` calls); then both registries drop.\n\n\
         Every send checks the pid it reached against the process's current incarnation, \
         read before the lookup; every broadcast checks each entry against a clock of \
         exits read before the dispatch: a pid already reported down is a stale lookup, a \
         message in its mailbox a dead delivery. Latency percentiles include two clock \
         reads (about 30 ns).\n\n\
         ## Figures\n\n{tables}\n\
         ![throughput per phase]({c0})\n\n\
         ## Memory\n\n\
         Live bytes are what the counting allocator (mimalloc underneath) sees requested. \
         Bytes per process are taken when every process has spawned, after reclaiming the \
         garbage of growth: {alloc} bytes by the allocator, {stats} by the registries' own \
         `Stats` (unique registry {unique}, duplicate registry {duplicate}). The split into \
         entries and monitors is `Stats`' own: `monitor_bytes` is the monitor index's \
         share (its tables, and the key lists of pids with several memberships).{migrating}\n\n\
         After teardown the registries and the process table are dropped and epoch \
         reclamation is driven until nothing is retired; live bytes then differ from the \
         baseline by {leaked} bytes. What may remain ({explained} bytes) is one node of \
         crossbeam-epoch's global garbage queue (a `Node<SealedBag>`: 64 deferred \
         functions of 32 bytes plus the epoch and link), which the queue keeps in flight \
         for good: freeing a node defers its destruction into the next bag. It does not \
         grow with the processes.\n\n\
         ![live memory over the run]({c1})\n\n\
         ## Latency while the tables grow\n\n\
         Registration latency over the spawn phase, by processes spawned so far (one point \
         per {step} processes). The tables grow from empty by cooperative incremental \
         migration, with no stop-the-world resize; a stall would show as a step in the \
         tail. The bar is a p99.9 under 20 µs while growing to 10M: this run's p99.9 over \
         the whole spawn phase was {spawn_p999} ns, and the highest of any point \
         {p999} ns. On a shared machine the maximum mostly shows the scheduler threads \
         being preempted.\n\n\
         ![registration latency during growth]({c2})\n",
        headline = result.headline(),
        origin = r.origin.describe(),
        threads = r.threads,
        processes = Count(r.processes),
        topics = r.topics,
        topic_keys = Count(r.topic_keys),
        zipf = r.zipf_exponent,
        seconds = r.seconds,
        broadcasts = percent(r.broadcasts),
        churn = percent(r.churn),
        tables = result.tables(),
        c0 = charts[0],
        c1 = charts[1],
        c2 = charts[2],
        alloc = figure(m.bytes_per_process),
        stats = figure(m.registry_bytes_per_process),
        unique = figure(m.unique_bytes_per_process),
        duplicate = figure(m.duplicate_bytes_per_process),
        leaked = m.leaked_bytes,
        explained = m.explained_leak_bytes,
        migrating = if m.migrations_in_flight == 0 {
            format!(
                " Growth is cooperative: a migration advances only as writers of its table \
                 help it, so spawning can end with one in flight (and joining an existing \
                 topic writes nothing to the topic table). {} throwaway registrations, \
                 reported down at once, finished them before the figures were taken, so \
                 that no table counts twice.",
                m.migration_writes
            )
        } else {
            format!(
                " {} table(s) were still migrating when the figures were taken: their new \
                 arrays count in the bytes above and the split is not reliable.",
                m.migrations_in_flight
            )
        },
        p999 = growth_p999,
        step = Count(r.processes / result.growth.len().max(1)),
        spawn_p999 = result.phases.first().map_or(0, |p| p.latency.p999_ns),
    )
}

fn percent(share: f64) -> String {
    format!("{}%", figure(share * 100.0))
}

fn throughput(path: &Path, result: &ScaleResult) -> Result<(), Error> {
    let bars: Vec<(String, f64)> = result
        .phases
        .iter()
        .map(|p| (p.name.to_string(), p.mops))
        .collect();
    plot::bars(
        path,
        &format!(
            "Throughput per phase, {} processes",
            Count(result.run.processes)
        ),
        "million operations / s",
        &bars,
    )
}

fn memory(path: &Path, result: &ScaleResult) -> Result<(), Error> {
    // One line per stage, each starting where the previous ended.
    let mut lines: Vec<Line> = Vec::new();
    let mut last: Option<(f64, f64)> = None;
    for s in &result.memory.timeline {
        let point = (s.seconds, s.live_bytes as f64 / f64::from(1 << 30));
        if lines.last().is_none_or(|l| l.name != s.stage.name()) {
            let stage = s.stage as usize;
            lines.push(Line {
                name: s.stage.name().to_owned(),
                color: COLORS[stage % COLORS.len()],
                points: last.into_iter().collect(),
            });
        }
        lines.last_mut().expect("pushed above").points.push(point);
        last = Some(point);
    }
    let axis = |desc, label| Axis {
        desc,
        log: false,
        label,
    };
    plot::lines(
        path,
        "Live memory over the run",
        (
            axis("seconds", plot::figure),
            axis("live GiB", plot::figure),
        ),
        &lines,
    )
}

fn growth(path: &Path, result: &ScaleResult) -> Result<(), Error> {
    let millions = |n: usize| n as f64 / 1e6;
    let percentiles = |l: &crate::runner::Latency| [l.p50_ns, l.p99_ns, l.p999_ns, l.max_ns];
    let lines: Vec<Line> = ["p50", "p99", "p99.9", "max"]
        .iter()
        .enumerate()
        .map(|(i, name)| Line {
            name: (*name).to_owned(),
            color: COLORS[i % COLORS.len()],
            points: result
                .growth
                .iter()
                .map(|g| {
                    (
                        millions(g.processes),
                        percentiles(&g.latency)[i].max(1) as f64,
                    )
                })
                .collect(),
        })
        .collect();
    plot::lines(
        path,
        "Registration latency while the tables grow",
        (
            Axis {
                desc: "million processes spawned",
                log: false,
                label: plot::figure,
            },
            Axis {
                desc: "latency (log scale)",
                log: true,
                label: plot::nanos,
            },
        ),
        &lines,
    )
}
