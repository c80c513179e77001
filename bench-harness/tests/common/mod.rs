//! Shared by the end-to-end tests. Each test file is its own process with one test: the
//! counting allocator is process-wide, and a test running beside another would blur its
//! memory figures.

// Each test binary compiles this module and uses only some of its helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use regent_bench::alloc::Counting;
use serde_json::Value;

#[global_allocator]
static ALLOC: Counting = Counting;

/// A fresh folder under the system temp dir for one test's output.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("regent-bench-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).expect("result file")).expect("valid JSON")
}

/// `field` of every object in the JSON array `items`, as strings.
pub fn strings<'a>(items: &'a Value, field: &str) -> Vec<&'a str> {
    let items = items.as_array().expect("an array");
    items
        .iter()
        .map(|item| item[field].as_str().expect("a string"))
        .collect()
}

/// A stand-in for `elixir` in `dir`: a shell script that prints `lines` on stdout, then
/// becomes a `sleep` of `sleep_secs` (same process, so a kill of it ends the output).
#[cfg(unix)]
pub fn fake_elixir(dir: &Path, lines: &[&str], sleep_secs: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;

    fs::create_dir_all(dir).expect("scratch dir");
    let path = dir.join("elixir");
    let mut script = String::from("#!/bin/sh\n");
    for line in lines {
        script.push_str(&format!("printf '%s\\n' '{line}'\n"));
    }
    script.push_str(&format!("exec sleep {sleep_secs}\n"));
    fs::write(&path, script).expect("write the script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
