#!/usr/bin/env python3
"""Recurrent vs PyTorch on one benchmark row at a time, in chunks of steps taken by turns.

`bench_compare.py` runs each side's whole measurement (seconds) back to back, and this machine's
speed swings by tens of percent from minute to minute, so a row near its target can land on
either side of it from one run to the next. Here both sides are set up once, side by side, as
two long-lived processes: ours is `recurrent bench --serve`, PyTorch's is this script with
`--torch-worker`, which builds the model, input and step exactly as the peer script
`<shared>/peers/bench_torch.py` does (its `CONFIGS` and `make`, imported from there). Then the
sides take turns timing a chunk of steps (`--chunk` seconds, at least one step; PyTorch first in
even pairs, ours first in odd ones) with a short pause between chunks, so the waiting side's
threads are asleep before the other side's chunk starts. Each pair of adjacent chunks gives a
ratio of the two chunks' median steps, torch/ours (> 1: Recurrent is faster).

Per row it prints: each side's median and fastest step over all its chunks; the median of the
pair ratios with the range of the middle 80% of them (10th to 90th percentile); the ratio of the
fastest steps; the share of pairs with a ratio above the issue's target; and the largest share of
the machine other processes used during a chunk (`foreign`, as `_monitor.py` measures it).

`--versus SPEC` pairs two builds of ours instead (an A/B of a change): the reference side is
`SPEC/.build/release/recurrent bench --serve`, SPEC a package directory optionally followed by
`|NAME=VALUE` to set one environment variable for it; ratio = reference/ours. Both builds need
`--serve` (`scripts/bench_ab.py` compares any two builds, run by run). `--path cells` (with
`--versus` only) times the cells on the tape on both sides.

usage: python3 scripts/bench_paired.py [shared-dir] --rows C3:lstm:infer,C4:lstm:infer [--pairs 30]
           [--chunk 0.3] [--threads 2] [--binary .build/release/recurrent] [--jsonl out.jsonl]
       python3 scripts/bench_paired.py --versus /tmp/base --rows C1:lstm:train [--path cells]
The shared directory (default ../shared) is only read, never copied.
"""
import argparse, json, os, statistics, subprocess, sys, time

from bench_compare import TARGETS


def torch_worker(shared, config, cell, mode, threads):
    """Serves PyTorch's side of one row on stdin/stdout, as `recurrent bench --serve` does ours."""
    peers = os.path.join(shared, "peers")
    sys.path.insert(0, peers)
    import torch
    from bench_torch import CONFIGS, make  # noqa: E402 (the peer script's definitions)
    from _monitor import Monitor  # noqa: E402

    torch.set_num_threads(threads)
    cfg = CONFIGS[config]
    torch.manual_seed(0)
    m = make(cell, **cfg).float()
    x = torch.randn(cfg["T"], cfg["B"], cfg["D"])
    with torch.backends.mkldnn.flags(enabled=(cell != "lstm_native")):
        if mode == "train":
            m.train()
            params = list(m.parameters())

            def pre():
                for p in params:
                    p.grad = None

            def step():
                out, _ = m(x)
                out.sum().backward()
        else:
            m.eval()

            def pre():
                pass

            def step():
                with torch.inference_mode():
                    m(x)
        for _ in range(3):
            pre()
            step()
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if len(words) != 2 or words[0] != "chunk":
                sys.exit(f"bench_paired.py --torch-worker: expected 'chunk SECONDS', got {line!r}")
            seconds, times = float(words[1]), []
            with Monitor() as monitor:
                start = time.perf_counter()
                while not times or time.perf_counter() - start < seconds:
                    pre()
                    t0 = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - t0)
            print(json.dumps({"times": times, "foreign": monitor.foreign}), flush=True)


class Side:
    """One side's worker process: started, read until 'ready', asked for chunks."""

    def __init__(self, name, cmd, env=None):
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env=env)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise SystemExit(f"{name} worker did not start ({' '.join(cmd)}): got {line!r}")
        self.medians, self.times, self.foreign = [], [], []

    def chunk(self, seconds):
        self.proc.stdin.write(f"chunk {seconds}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} worker stopped")
        reply = json.loads(line)
        self.times += reply["times"]
        self.medians.append(statistics.median(reply["times"]))
        self.foreign.append(reply["foreign"] if reply["foreign"] is not None else 0.0)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def serve_cmd(binary, config, cell, mode, threads, path):
    return [binary, "bench", "--configs", config, "--cells", cell, "--modes", mode, "--threads", str(threads),
            "--path", path, "--serve"]


def build_spec(spec):
    """`DIR` or `DIR|NAME=VALUE`: the build's binary and the environment to run it in."""
    directory, _, extra = spec.partition("|")
    env = dict(os.environ)
    if extra:
        name, value = extra.split("=", 1)
        env[name] = value
    return os.path.join(directory, ".build", "release", "recurrent"), env


def measure_row(args, config, cell, mode, ours_env=None):
    """Pairs chunks of one row; `ours_env` is the environment of our side (default: this one's)."""
    ours_cmd = serve_cmd(args.binary, config, cell, mode, args.threads, args.path)
    if args.versus:
        binary, env = build_spec(args.versus)
        reference = Side("reference", serve_cmd(binary, config, cell, mode, args.threads, args.path), env)
    else:
        reference = Side("torch", [sys.executable, os.path.abspath(__file__), args.shared, "--torch-worker",
                                   f"{config}:{cell}:{mode}", "--threads", str(args.threads)])
    ours = Side("ours", ours_cmd, ours_env)
    try:
        for i in range(args.pairs):
            for side in ((reference, ours) if i % 2 == 0 else (ours, reference)):
                time.sleep(args.pause)
                side.chunk(args.chunk)
            print(f"# {config} {cell} {mode}: pair {i + 1}/{args.pairs}", file=sys.stderr, flush=True)
    finally:
        reference.close()
        ours.close()
    ratios = [t / o for t, o in zip(reference.medians, ours.medians)]
    target = None if args.versus else TARGETS.get(mode, {}).get(config)
    return {
        "config": config, "cell": cell, "mode": mode, "threads": args.threads, "pairs": args.pairs,
        "reference": args.versus or "torch", "chunk_s": args.chunk,
        "ours_median_ms": statistics.median(ours.times) * 1e3, "ours_min_ms": min(ours.times) * 1e3,
        "reference_median_ms": statistics.median(reference.times) * 1e3,
        "reference_min_ms": min(reference.times) * 1e3, "ratio_median": statistics.median(ratios),
        "ratio_p10": percentile(ratios, 0.1), "ratio_p90": percentile(ratios, 0.9),
        "min_ratio": min(reference.times) / min(ours.times), "target": target,
        "pairs_over_target": None if target is None else sum(r >= target for r in ratios) / len(ratios),
        "max_foreign": max(reference.foreign + ours.foreign),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shared", nargs="?", default="../shared")
    ap.add_argument("--rows", help="comma-separated CONFIG:CELL:MODE, e.g. C3:lstm:infer,C1:lstm:train")
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--chunk", type=float, default=0.3, help="seconds of steps per chunk (at least one step)")
    ap.add_argument("--pause", type=float, default=0.05, help="seconds between chunks")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--binary", default=".build/release/recurrent")
    ap.add_argument("--jsonl")
    ap.add_argument("--versus", metavar="DIR[|NAME=VALUE]", help="pair against another build of ours, not PyTorch")
    ap.add_argument("--path", choices=["fused", "cells"], default="fused", help="with --versus: which path both run")
    ap.add_argument("--torch-worker", metavar="CONFIG:CELL:MODE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        config, cell, mode = args.torch_worker.split(":")
        return torch_worker(args.shared, config, cell, mode, args.threads)
    if not args.rows:
        ap.error("--rows is required")
    if args.path != "fused" and not args.versus:
        ap.error("--path cells pairs two builds of ours (--versus); PyTorch's cells are timed by bench_compare.py")
    if not args.versus and not os.path.exists(os.path.join(args.shared, "peers", "bench_torch.py")):
        raise SystemExit(f"no {args.shared}/peers/bench_torch.py: pass the shared directory as the first argument")
    if not os.path.exists(args.binary):
        raise SystemExit(f"no {args.binary}: build it with `swift build -c release`")
    rows = []
    for spec in args.rows.split(","):
        parts = spec.split(":")
        if len(parts) != 3 or parts[2] not in ("train", "infer"):
            ap.error(f"--rows: expected CONFIG:CELL:MODE (MODE train or infer), got {spec!r}")
        row = measure_row(args, *parts)
        rows.append(row)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")
    reference = f"{args.versus} ({args.path})" if args.versus else "torch"
    print(f"chunks of {args.chunk} s by turns, {args.pairs} pairs per row, {args.threads} threads; "
          f"ratio = reference/ours (> 1: ours is faster), reference: {reference}")
    print(f"{'config':6} {'cell':4} {'mode':5} {'ours ms':>9} {'(min)':>8} {'ref ms':>9} {'(min)':>8} "
          f"{'ratio':>6} {'p10-p90':>11} {'min ratio':>9} {'target':>6} {'pairs >= target':>15} {'foreign':>7}")
    for r in rows:
        over = "-" if r["target"] is None else f"{100 * r['pairs_over_target']:.0f}%"
        print(f"{r['config']:6} {r['cell']:4} {r['mode']:5} {r['ours_median_ms']:9.2f} {r['ours_min_ms']:8.2f} "
              f"{r['reference_median_ms']:9.2f} {r['reference_min_ms']:8.2f} {r['ratio_median']:6.2f} "
              f"{r['ratio_p10']:5.2f}-{r['ratio_p90']:<5.2f} {r['min_ratio']:9.2f} "
              f"{r['target'] if r['target'] is not None else '-':>6} {over:>15} {r['max_foreign']:7.2f}")


if __name__ == "__main__":
    main()
