#!/bin/sh
# Installs Erlang and Elixir from the distribution's packages, for the `beam` peer of
# `regent-bench compare` (Elixir's own Registry). Safe to run again: it does nothing when
# `elixir` already runs. Debian/Ubuntu (apt-get) and Fedora (dnf); elsewhere it says what
# to install.
set -eu

say() { printf 'install-beam: %s\n' "$*"; }

if command -v elixir >/dev/null 2>&1 && elixir --version >/dev/null 2>&1; then
    say "elixir is already installed ($(command -v elixir)); nothing to do"
    elixir --version
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
    say "not root: using sudo"
else
    say "not root and no sudo: run this script as root" >&2
    exit 1
fi

if command -v apt-get >/dev/null 2>&1; then
    say "installing elixir and erlang-dev with apt-get"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        elixir erlang-dev
elif command -v dnf >/dev/null 2>&1; then
    say "installing elixir and erlang with dnf"
    $SUDO dnf install -y elixir erlang
else
    say "no apt-get or dnf here: install Erlang/OTP and Elixir with your package manager" >&2
    exit 1
fi

if ! elixir --version; then
    say "the packages installed but elixir does not run" >&2
    exit 1
fi
say "installed $(command -v elixir); 'regent-bench compare' now runs the beam peer"
