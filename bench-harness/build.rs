//! Records the compiler that builds the harness, for the provenance of every figure.

use std::env;
use std::process::Command;

fn main() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=REGENT_BENCH_RUSTC={version}");
    // Cargo reruns build scripts when the compiler changes; nothing else matters here.
    println!("cargo:rerun-if-changed=build.rs");
}
