#!/usr/bin/env bash
# Compares `weir run` with ninja and make on the shared bench harness's DAGs.
#
#   tests/bench/compare.sh SHAPE N          # e.g. wide 1000, layered 10000
#
# BENCH_DIR points at the harness (default: ../shared/bench next to the
# project). Needs ninja-build, make and hyperfine (Debian packages) and a
# release build of weir (built here).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=${BENCH_DIR:-$root/../shared/bench}
cargo build --release -q -p weir --manifest-path "$root/Cargo.toml"
weir="${CARGO_TARGET_DIR:-$root/target}/release/weir"
# The cache lives in the DAG folder's .weir/, which the harness deletes before
# every cold run: cold means an empty cache, as it does for ninja.
export WEIR_PREPARE="python3 '$root/tests/bench/dag2weir.py' dag.json > pipeline.weir"
export WEIR_CMD="XDG_CACHE_HOME=.weir/cache '$weir' run -j2 --log-format json > /dev/null"
exec bash "$bench/compare.sh" "$@"
