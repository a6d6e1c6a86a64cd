#!/usr/bin/env python3
"""Paired A/B of two Recurrent builds (or one build under two environments) on one benchmark row.

The machine's speed swings by tens of percent from minute to minute, so two builds measured a few
minutes apart cannot be compared. This runs `recurrent bench --json` for A and B alternately (A
first in even rounds, B first in odd ones), each run short (3 timed steps), and reports per side
the fastest and the median step over rounds, and the median and range of the per-round ratios A/B
of the fastest steps and of the median steps (> 1: B is faster; the median steps show how a change
copes with a busy second core). A side is a package directory holding
`.build/release/recurrent`, optionally followed by `|NAME=VALUE` to set one environment variable.

For builds that have `recurrent bench --serve` (from the eighteenth round on),
`scripts/bench_paired.py --versus A_DIR --binary B_DIR/.build/release/recurrent --rows C:cell:mode`
pairs them more tightly: both stay running and take turns timing chunks of steps a fraction of a
second long. This script works with any build.

`--path cells` times the cells on the tape (`recurrent bench --path cells`) instead of the fused layers.

usage: python3 scripts/bench_ab.py BASE_DIR NEW_DIR C1 lstm infer [--rounds 8] [--path cells]
       python3 scripts/bench_ab.py . ".|RECURRENT_HEAP=system" C1bi lstm train
"""
import argparse, json, statistics, subprocess

from bench_paired import build_spec


def run(spec, config, cell, mode, path):
    binary, env = build_spec(spec)
    out = subprocess.run([binary, "bench", "--configs", config, "--cells", cell, "--modes", mode, "--threads", "2",
                          "--repeats", "3", "--min-time", "0.3", "--deadline", "5", "--json"] + (["--path", path] if path != "fused" else []), capture_output=True, text=True, env=env, check=True).stdout
    row = [json.loads(line) for line in out.splitlines() if line.startswith("{")][0]
    return row["min_ms"], row["median_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("config")
    ap.add_argument("cell")
    ap.add_argument("mode")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--path", choices=["fused", "cells"], default="fused")
    args = ap.parse_args()
    a_ms, b_ms = [], []
    for i in range(args.rounds):
        if i % 2 == 0:
            a_ms.append(run(args.a, args.config, args.cell, args.mode, args.path))
            b_ms.append(run(args.b, args.config, args.cell, args.mode, args.path))
        else:
            b_ms.append(run(args.b, args.config, args.cell, args.mode, args.path))
            a_ms.append(run(args.a, args.config, args.cell, args.mode, args.path))
    ratios = [x[0] / y[0] for x, y in zip(a_ms, b_ms)]
    median_ratios = [x[1] / y[1] for x, y in zip(a_ms, b_ms)]
    a_fast, b_fast = [x[0] for x in a_ms], [y[0] for y in b_ms]
    print(f"{args.config} {args.cell} {args.mode}: A fastest {min(a_fast):.3f} ms (median {statistics.median(a_fast):.3f}) | "
          f"B fastest {min(b_fast):.3f} ms (median {statistics.median(b_fast):.3f}) | A/B per round: fastest steps "
          f"{statistics.median(ratios):.3f} (range {min(ratios):.2f}-{max(ratios):.2f}), median steps "
          f"{statistics.median(median_ratios):.3f} (range {min(median_ratios):.2f}-{max(median_ratios):.2f}) "
          f"({args.rounds} rounds)")


if __name__ == "__main__":
    main()
