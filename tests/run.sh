#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Installs nothing beyond the Rust toolchain today; it stays idempotent as
# later suites add Debian or PyPI tools here.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Keep build products outside the clone so fresh clones reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir-target}"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The runtime tests SIGKILL `weir` mid-run on purpose, which orphans its step
# processes. Where we may, run the tests in their own PID namespace so those
# orphans are reaped there and never reach the machine's init.
if [ "$(id -u)" = 0 ] && unshare -fp --mount-proc true 2>/dev/null; then
  exec unshare -fp --mount-proc cargo test --workspace --locked
fi
cargo test --workspace --locked
