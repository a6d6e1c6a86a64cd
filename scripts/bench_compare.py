#!/usr/bin/env python3
"""Recurrent vs PyTorch on the peer benchmark configurations, measured interleaved.

For each round, configuration and cell, runs the PyTorch peer script
(`<shared>/peers/bench_torch.py`) and `recurrent bench --json` with the same configuration, cell
and thread count back to back (PyTorch first in odd rounds, ours first in even ones), so both
sides see similar machine conditions. After all rounds, prints one line per (config, cell, mode,
threads): the median over rounds of each side's median step time, the ratio torch/ours (> 1: we
are faster), the same ratio from each side's fastest step ("min ratio": the machine's speed
swings by tens of percent from minute to minute, and the fastest step is the least disturbed
estimate), the median and range over rounds of the ratio within each round ("paired": the two
sides of a round ran back to back), our GFLOP/s and its share of the machine's fp32 peak (measured by `recurrent bench` next
to each row with the same threads: `peak_gflops`; the nominal 256 GFLOP/s of this machine's 2 cores
misses its turbo clock), and flags for rows
either side measured while other processes used the machine (`status: contended`). Contended
rounds are left out of a row that has clean ones.

usage: python3 scripts/bench_compare.py [shared-dir] [--configs C1,C3] [--cells rnn,lstm,gru]
           [--threads 1,2] [--rounds 3] [--binary .build/release/recurrent] [--jsonl out.jsonl]
The shared directory (default ../shared) is only read, never copied.
"""
import argparse, json, os, statistics, subprocess, sys


def run_json_lines(cmd):
    """Runs `cmd`, echoes its stderr, and returns the JSON objects it printed (one per line)."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    rows = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shared", nargs="?", default="../shared", help="shared directory holding peers/ (default ../shared)")
    ap.add_argument("--configs", default="C1,C1bi,C2,C3,C4")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--threads", default="2", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions of every measurement")
    ap.add_argument("--binary", default=".build/release/recurrent")
    ap.add_argument("--deadline", type=float, default=60, help="per-measurement deadline passed to both sides")
    ap.add_argument("--jsonl", help="also append every raw row to this file")
    args = ap.parse_args()

    torch_script = os.path.join(args.shared, "peers", "bench_torch.py")
    if not os.path.exists(torch_script):
        raise SystemExit(f"no {torch_script}: pass the shared directory as the first argument")
    if not os.path.exists(args.binary):
        raise SystemExit(f"no {args.binary}: build it with `swift build -c release`")

    results = {}  # (config, cell, mode, threads) -> {"ours": [rows], "torch": [rows]}
    configs = [c for c in args.configs.split(",") if c]
    threads = [t for t in args.threads.split(",") if t]
    for rnd in range(args.rounds):
        for t in threads:
            for config in configs:
              for cell in [c for c in args.cells.split(",") if c]:
                torch_cmd = [sys.executable, torch_script, "--configs", config, "--cells", cell,
                             "--threads", t, "--deadline", str(args.deadline)]
                ours_cmd = [args.binary, "bench", "--configs", config, "--cells", cell,
                            "--threads", t, "--deadline", str(args.deadline), "--json"]
                sides = [("torch", torch_cmd), ("ours", ours_cmd)]
                for side, cmd in (sides if rnd % 2 == 0 else sides[::-1]):
                    print(f"# round {rnd + 1}/{args.rounds} threads {t} {config} {cell} {side}", file=sys.stderr,
                          flush=True)
                    for row in run_json_lines(cmd):
                        row["round"] = rnd + 1
                        key = (row["config"], row["cell"], row["mode"], int(row["threads"]))
                        results.setdefault(key, {"ours": [], "torch": []})[side].append(row)
                        if args.jsonl:
                            with open(args.jsonl, "a") as f:
                                f.write(json.dumps(dict(row, side=side)) + "\n")

    header = (f"{'config':6} {'cell':5} {'mode':5} {'thr':>3} {'ours ms':>9} {'torch ms':>9} {'torch/ours':>10} "
              f"{'min ratio':>9} {'paired (range)':>16} {'our GFLOP/s':>11} {'peak':>6} {'of peak':>7}  flags")
    print(header, flush=True)
    print("-" * len(header))
    order = {c: i for i, c in enumerate(configs)}
    for key in sorted(results, key=lambda k: (k[3], order.get(k[0], 99), k[1], k[2])):
        config, cell, mode, t = key
        ours, torch = results[key]["ours"], results[key]["torch"]
        flags = []
        # Rounds measured while other processes used the machine are dropped when the same row
        # has clean rounds; a row with no clean round keeps them all and is flagged.
        def usable(rows, side):
            clean = [r for r in rows if r.get("status") != "contended"]
            if rows and not clean:
                flags.append(f"{side} contended")
            return clean or rows
        ours, torch = usable(ours, "ours"), usable(torch, "torch")
        ours_ms = statistics.median(r["median_ms"] for r in ours) if ours else None
        torch_ms = statistics.median(r["median_ms"] for r in torch) if torch else None
        gflops = statistics.median(r["gflops"] for r in ours) if ours else None
        if not torch:
            flags.append("no torch row")

        def fmt(v, spec):
            return format(v, spec) if v is not None else "-"
        ratio = torch_ms / ours_ms if ours_ms and torch_ms else None
        ours_min = min(r["min_ms"] for r in ours) if ours else None
        torch_min = min(r["min_ms"] for r in torch) if torch else None
        min_ratio = torch_min / ours_min if ours_min and torch_min else None
        peaks = [r["peak_gflops"] for r in ours if r.get("peak_gflops")]
        peak = statistics.median(peaks) if peaks else None
        share = gflops / peak if gflops is not None and peak else None
        # Per round, the two sides ran back to back: the ratio of their medians in the same round
        # cancels most of the machine's slower swings.
        by_round = {}
        for side, rows in (("ours", ours), ("torch", torch)):
            for r in rows:
                by_round.setdefault(r["round"], {})[side] = r["median_ms"]
        paired = [v["torch"] / v["ours"] for v in by_round.values() if "torch" in v and "ours" in v]
        paired_text = (f"{statistics.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f})" if paired else "-")
        print(f"{config:6} {cell:5} {mode:5} {t:>3} {fmt(ours_ms, '9.2f')} {fmt(torch_ms, '9.2f')} "
              f"{fmt(ratio, '10.2f')} {fmt(min_ratio, '9.2f')} {paired_text:>16} {fmt(gflops, '11.1f')} {fmt(peak, '6.0f')} "
              f"{fmt(share * 100 if share is not None else None, '6.1f'):>6}%  {', '.join(flags)}")


if __name__ == "__main__":
    main()
