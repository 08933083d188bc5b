#!/usr/bin/env python3
"""Times ninja and `weir run` on the same DAG in alternation, cold and
no-op, and prints the median of each and their ratio.

    tests/bench/interleaved.py WEIR SHAPE N [ROUNDS]

The shared harness (../shared/bench/compare.sh) runs all of one tool's
repetitions before the next tool's, so on a machine whose speed drifts the
tools are timed under different conditions. Here each round times ninja and
weir back to back, so drift hits both alike. DAGs come from the harness's
gen.py; the Weir side from dag2weir.py. Needs python3 and ninja-build.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
bench = os.environ.get("BENCH_DIR", os.path.join(os.path.dirname(root), "shared", "bench"))


def timed(cmd, cwd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def clean(d):
    for name in ("out", ".weir"):
        shutil.rmtree(os.path.join(d, name), ignore_errors=True)
    for name in (".ninja_log", ".ninja_deps"):
        try:
            os.remove(os.path.join(d, name))
        except FileNotFoundError:
            pass
    os.mkdir(os.path.join(d, "out"))


def main():
    weir, shape, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    d = tempfile.mkdtemp(prefix=f"weir-bench-{shape}-{n}-")
    subprocess.run([sys.executable, os.path.join(bench, "gen.py"), "--shape", shape, "--n", str(n),
                    "--out", d, "--tools", "ninja"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(d, "pipeline.weir"), "w") as f:
        subprocess.run([sys.executable, os.path.join(here, "dag2weir.py"), os.path.join(d, "dag.json")],
                       stdout=f, check=True)
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(d, ".weir", "cache"))
    ninja = ["ninja", "-j2", "-f", "build.ninja"]
    run = [weir, "run", "-j2", "--log-format", "json"]
    res = {k: [] for k in ("ninja cold", "weir cold", "ninja no-op", "weir no-op")}
    for r in range(rounds + 1):  # the first round warms the page cache
        # Alternate which tool goes first, so neither always runs second.
        for tool in (("ninja", "weir") if r % 2 else ("weir", "ninja")):
            clean(d)
            if tool == "ninja":
                cold, noop = timed(ninja, d), timed(ninja, d)
            else:
                cold, noop = timed(run, d, env), timed(run, d, env)
            if r:
                res[f"{tool} cold"].append(cold)
                res[f"{tool} no-op"].append(noop)
    med = {k: statistics.median(v) for k, v in res.items()}
    # Each round's own ratio: the machine's drift between rounds cancels.
    ratios = sorted(w / k for w, k in zip(res["weir cold"], res["ninja cold"]))
    print(f"{shape} {n}: cold ninja {med['ninja cold']:.3f} s, weir {med['weir cold']:.3f} s, "
          f"ratio {med['weir cold'] / med['ninja cold']:.2f} (per round: median "
          f"{statistics.median(ratios):.2f}, {ratios[0]:.2f}-{ratios[-1]:.2f}); "
          f"no-op ninja {med['ninja no-op']:.3f} s, weir {med['weir no-op']:.3f} s ({rounds} rounds)")
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
