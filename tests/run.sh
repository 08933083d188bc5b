#!/usr/bin/env bash
# The whole test suite, as CI runs it: the editor checks, formatting, lints,
# then every test. Installs what the tests need beyond the Rust toolchain and
# Node.js (Debian's neovim for lsp/tests/neovim.rs) only when it is missing,
# so it stays idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: installed only when missing; the package lists are
# refreshed only when the first install fails (they may be stale or absent).
apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
  local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$@")
  if ! "${install[@]}" >/dev/null; then
    "${sudo[@]}" apt-get update -qq >/dev/null
    "${install[@]}" >/dev/null
  fi
}
if ! command -v nvim >/dev/null; then apt_install neovim; fi

# The VS Code extension: npm dependencies, grammar tests, the .vsix.
bash tests/editors.sh

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
