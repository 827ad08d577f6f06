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

# Debian packages the daemon's tests use for real: logrotate (rotation by
# rename and by copytruncate), systemd-analyze (the unit's verify and
# security rating) and openssl (the SMTP tests' self-signed certificate).
# Installed only when missing.
need_apt=()
command -v logrotate >/dev/null 2>&1 || need_apt+=(logrotate)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
if ((${#need_apt[@]})); then
  sudo_=""
  [[ $(id -u) -eq 0 ]] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# The working-time calendar is checked against an independent oracle, the
# PyPI package chinesecalendar (1.11.0 covers 2026); tests/it/calendar.rs
# fails without it. pip does nothing when the pinned version is present.
if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 not found; the calendar tests need it (apt-get install python3 python3-pip)" >&2
  exit 1
fi
# A Debian system python refuses pip installs (PEP 668); a test machine may
# take the package anyway.
pip_install() { python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"; }
# aiosmtpd is the real SMTP server the mail tests start and stop themselves.
pip_install 'chinesecalendar==1.11.0' 'aiosmtpd==1.4.6' 2>/dev/null \
  || pip_install --break-system-packages 'chinesecalendar==1.11.0' 'aiosmtpd==1.4.6'

cargo test --locked --all-features "$@"
# The shipped rules must be valid and their examples must hold, as users run them.
cargo run --locked --quiet -- rules validate rules
cargo run --locked --quiet -- rules test rules
