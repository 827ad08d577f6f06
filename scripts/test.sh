#!/usr/bin/env bash
# Runs every test of complyd on a fresh machine: installs what the tests
# need, then the whole suite. This is the README's test command, and CI
# (.ci/run) calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi

# The test suite needs nothing outside Cargo today; services the daemon's
# tests will need (an SMTP server, logrotate) are installed here.

cargo test --locked --all-features "$@"
# The shipped rules must be valid and their examples must hold, as users run them.
cargo run --locked --quiet -- rules validate rules
cargo run --locked --quiet -- rules test rules
