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
cargo test --workspace --locked
