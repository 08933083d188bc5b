#!/usr/bin/env python3
"""Translate a weir-bench-dag/1 file (dag.json from the shared bench harness)
into an equivalent Weir pipeline on stdout.

Each step becomes a `step` whose command is the DAG's, whose declared
outputs are the DAG's outputs, and whose inputs are its dependencies'
outputs, so Weir orders and caches it exactly as ninja and make do.
"""
import json
import sys


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def main():
    dag = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "dag.json"))
    steps = {s["id"]: s for s in dag["steps"]}
    out = ["default pipeline bench {"]
    for s in dag["steps"]:
        outs = ", ".join(f"o{i}: file({q(p)})" for i, p in enumerate(s["outputs"]))
        ins = []
        for d in s["deps"]:
            for i, _ in enumerate(steps[d]["outputs"]):
                ins.append(f"{d}.o{i}")
        lines = [f"  let {s['id']} = step {q(s['id'])} {{", f"    run: {q(s['cmd'])}"]
        if outs:
            lines.append(f"    outputs: {{ {outs} }}")
        if ins:
            lines.append(f"    inputs: [{', '.join(ins)}]")
        elif s["deps"]:
            lines.append(f"    after: [{', '.join(s['deps'])}]")
        lines.append("  }")
        out.extend(lines)
    out.append("}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
