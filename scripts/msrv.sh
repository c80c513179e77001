#!/usr/bin/env bash
# Checks the oldest toolchains the README names:
#
# 1. The `regent` crate, with and without its features, on the workspace's declared
#    `rust-version` (1.84), with dependencies resolved as a user on that toolchain gets them:
#    an MSRV-aware resolution (`CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback`, which
#    picks the newest version of each dependency that supports that rustc). The committed
#    Cargo.lock is newer than that (tokio 1.54 needs 1.85), so this runs on a copy of the
#    workspace with a lockfile of its own.
# 2. The whole workspace, every target and feature, with the committed Cargo.lock, on
#    `LOCKED` below (1.88: proptest 1.12 and hdrhistogram 7.6 need it): what the README's
#    two commands build. (The loom run also builds loom's `generator` 0.8.12, which asks for
#    1.95.)
#
# Installs a missing toolchain with rustup (minimal profile); if that fails (no network),
# says so and skips that check rather than failing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
LOCKED=1.88.0

# Whether `$1` is installed, installing it if it can.
have() {
    rustup run "$1" rustc --version >/dev/null 2>&1 ||
        rustup toolchain install "$1" --profile minimal ||
        { echo "msrv: SKIPPED rust $1: not installed, and rustup could not install it"; return 1; }
}

msrv=$(sed -n 's/^rust-version = "\([0-9.]*\)"/\1/p' Cargo.toml | head -n 1)
if [[ -z "$msrv" ]]; then
    echo "msrv: no rust-version in Cargo.toml" >&2
    exit 1
fi
# "1.84" admits 1.84.0, the oldest release of it.
toolchain=$msrv
[[ "$msrv" =~ ^[0-9]+\.[0-9]+$ ]] && toolchain="$msrv.0"

if have "$toolchain"; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    tar --exclude=./target --exclude=./.git --exclude=./results -cf - . | tar -xf - -C "$work"
    (
        cd "$work"
        rm -f Cargo.lock
        CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
            cargo "+$toolchain" generate-lockfile --quiet
        cargo "+$toolchain" check -p regent --all-features --target-dir "$root/target/msrv"
        cargo "+$toolchain" check -p regent --target-dir "$root/target/msrv"
    )
    echo "msrv: the regent crate builds on rust $toolchain, with and without its features"
fi

if have "$LOCKED"; then
    cargo "+$LOCKED" check --locked --workspace --all-targets --all-features \
        --target-dir "$root/target/msrv"
    echo "msrv: the workspace builds on rust $LOCKED with the committed Cargo.lock"
fi
