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

Each row also shows the issue's target for its ratio (training: 1.5 on C1 and C1bi, 1.25 on C2 and
C4; inference: 1.0 on C1, C2 and C4, 2.0 on C3) and whether the ratio of medians meets it.
`--svg FILE` draws the same rows as a picture: the ratio of medians as a bar, the paired range as
a whisker, the min ratio as a dot and the target as a mark. `--from-jsonl FILE` makes the table
(and picture) from the raw rows a former run appended with `--jsonl`, without measuring.

`--path cells` compares the open path instead: our cells stepped on the tape by the generic runner
(`recurrent bench --path cells`) against PyTorch's cells stepped in a Python loop
(`scripts/bench_cells_torch.py`, what a PyTorch user writes for a custom cell). The issue sets no
targets for that path, so its rows have none.

usage: python3 scripts/bench_compare.py [shared-dir] [--configs C1,C3] [--cells rnn,lstm,gru] [--path cells]
           [--threads 1,2] [--rounds 3] [--binary .build/release/recurrent] [--jsonl out.jsonl]
           [--svg out.svg] [--from-jsonl earlier.jsonl]
The shared directory (default ../shared) is only read, never copied.
"""
import argparse, html, json, math, os, statistics, subprocess, sys

# The issue's targets for torch/ours (fp32, 2 threads), by mode and configuration.
TARGETS = {"train": {"C1": 1.5, "C1bi": 1.5, "C2": 1.25, "C4": 1.25},
           "infer": {"C1": 1.0, "C2": 1.0, "C4": 1.0, "C3": 2.0}}


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


def measure(args, configs, threads):
    """Runs every round; returns {(config, cell, mode, threads): {"ours": [rows], "torch": [rows]}}."""
    torch_script = os.path.join(args.shared, "peers", "bench_torch.py")
    if args.path == "cells":
        torch_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_cells_torch.py")
    if not os.path.exists(torch_script):
        raise SystemExit(f"no {torch_script}: pass the shared directory as the first argument")
    if not os.path.exists(args.binary):
        raise SystemExit(f"no {args.binary}: build it with `swift build -c release`")
    results = {}
    for rnd in range(args.rounds):
        for t in threads:
            for config in configs:
              for cell in [c for c in args.cells.split(",") if c]:
                torch_cmd = [sys.executable, torch_script, "--configs", config, "--cells", cell,
                             "--threads", t, "--deadline", str(args.deadline)]
                ours_cmd = [args.binary, "bench", "--configs", config, "--cells", cell,
                            "--threads", t, "--deadline", str(args.deadline), "--json"]
                if args.path == "cells":
                    torch_cmd += ["--shared", args.shared]
                    ours_cmd += ["--path", "cells"]
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
    return results


def load_jsonl(path):
    """The `results` of `measure` from the raw rows a run appended with `--jsonl`."""
    results = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = (row["config"], row["cell"], row["mode"], int(row["threads"]))
                side = row["side"]
            except (ValueError, KeyError) as e:
                raise SystemExit(f"{path}:{number}: expected a JSON row with config, cell, mode, threads and side ({e})")
            if side not in ("ours", "torch"):
                raise SystemExit(f"{path}:{number}: side must be ours or torch, got {side!r}")
            results.setdefault(key, {"ours": [], "torch": []})[side].append(row)
    return results


def summarize(results, configs, targets=TARGETS):
    """One dict per (config, cell, mode, threads), in table order."""
    rows = []
    order = {c: i for i, c in enumerate(configs)}
    for key in sorted(results, key=lambda k: (k[3], order.get(k[0], 99), k[1], k[2])):
        config, cell, mode, t = key
        if configs and config not in order:
            continue
        ours, torch = results[key]["ours"], results[key]["torch"]
        flags = []
        # Rounds measured while other processes used the machine are dropped when the same row
        # has clean ones; a row with no clean round keeps them all and is flagged.
        def usable(rows, side):
            clean = [r for r in rows if r.get("status") != "contended"]
            if rows and not clean:
                flags.append(f"{side} contended")
            return clean or rows
        ours, torch = usable(ours, "ours"), usable(torch, "torch")
        if not torch:
            flags.append("no torch row")
        row = {"config": config, "cell": cell, "mode": mode, "threads": t, "flags": flags,
               "ours_ms": statistics.median(r["median_ms"] for r in ours) if ours else None,
               "torch_ms": statistics.median(r["median_ms"] for r in torch) if torch else None,
               "gflops": statistics.median(r["gflops"] for r in ours) if ours else None}
        row["ratio"] = row["torch_ms"] / row["ours_ms"] if row["ours_ms"] and row["torch_ms"] else None
        ours_min = min(r["min_ms"] for r in ours) if ours else None
        torch_min = min(r["min_ms"] for r in torch) if torch else None
        row["min_ratio"] = torch_min / ours_min if ours_min and torch_min else None
        peaks = [r["peak_gflops"] for r in ours if r.get("peak_gflops")]
        row["peak"] = statistics.median(peaks) if peaks else None
        row["share"] = row["gflops"] / row["peak"] if row["gflops"] is not None and row["peak"] else None
        # Per round, the two sides ran back to back: the ratio of their medians in the same round
        # cancels most of the machine's slower swings.
        by_round = {}
        for side, side_rows in (("ours", ours), ("torch", torch)):
            for r in side_rows:
                by_round.setdefault(r["round"], {})[side] = r["median_ms"]
        row["paired"] = sorted(v["torch"] / v["ours"] for v in by_round.values() if "torch" in v and "ours" in v)
        # The issue's targets are for two threads.
        row["target"] = targets.get(mode, {}).get(config) if t == 2 else None
        row["met"] = row["ratio"] >= row["target"] if row["target"] is not None and row["ratio"] is not None else None
        rows.append(row)
    return rows


def print_table(rows):
    header = (f"{'config':6} {'cell':5} {'mode':5} {'thr':>3} {'ours ms':>9} {'torch ms':>9} {'torch/ours':>10} "
              f"{'min ratio':>9} {'paired (range)':>16} {'target':>6} {'our GFLOP/s':>11} {'peak':>6} {'of peak':>7}  flags")
    print(header, flush=True)
    print("-" * len(header))

    def fmt(v, spec):
        return format(v, spec) if v is not None else "-"
    for r in rows:
        p = r["paired"]
        paired_text = f"{statistics.median(p):.2f} ({p[0]:.2f}-{p[-1]:.2f})" if p else "-"
        flags = list(r["flags"])
        if r["met"] is False:
            flags.insert(0, "MISSED")
        share = r["share"] * 100 if r["share"] is not None else None
        print(f"{r['config']:6} {r['cell']:5} {r['mode']:5} {r['threads']:>3} {fmt(r['ours_ms'], '9.2f')} "
              f"{fmt(r['torch_ms'], '9.2f')} {fmt(r['ratio'], '10.2f')} {fmt(r['min_ratio'], '9.2f')} "
              f"{paired_text:>16} {fmt(r['target'], '6.2f')} {fmt(r['gflops'], '11.1f')} {fmt(r['peak'], '6.0f')} "
              f"{fmt(share, '6.1f'):>6}%  {', '.join(flags)}")
    targeted = [r for r in rows if r["met"] is not None]
    if targeted:
        missed = [r for r in targeted if not r["met"]]
        print(f"\n{len(targeted) - len(missed)} of {len(targeted)} rows with a target meet it by the ratio of medians"
              + (":" if missed else "."))
        for r in missed:
            print(f"  missed: {r['config']} {r['cell']} {r['mode']} {r['ratio']:.2f} (target {r['target']:.2f}, "
                  f"min ratio {r['min_ratio']:.2f})")
        sys.stdout.flush()


def write_svg(rows, path, title):
    """The rows as horizontal bars on a log axis of torch/ours (> 1: Recurrent is faster)."""
    rows = [r for r in rows if r["ratio"] is not None]
    if not rows:
        raise SystemExit("no row has both sides: nothing to draw")
    values = [v for r in rows for v in [r["ratio"], r["min_ratio"], *r["paired"]] if v]
    low = 2 ** math.floor(math.log2(min(values + [0.9]) * 0.95))
    high = 2 ** math.ceil(math.log2(max(values) * 1.05))
    left, right, top, pitch = 170, 40, 76, 22
    width = 900
    plot = width - left - right
    height = top + pitch * len(rows) + 60

    def x(v):
        return left + plot * (math.log2(v) - math.log2(low)) / (math.log2(high) - math.log2(low))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
           f'<text x="{left}" y="40" fill="#555">torch/ours on a log scale, bars from 1 (right of 1: Recurrent is '
           f'faster). Bar: ratio of medians, green where it meets</text>',
           f'<text x="{left}" y="55" fill="#555">the target (black mark), orange where it misses, grey without one; '
           f'whisker: paired range over rounds; dot: min ratio.</text>']
    ticks = [t for t in (0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4, 6, 8, 12, 16) if low <= t <= high]
    bottom = top + pitch * len(rows)
    for t in ticks:
        color = "#999" if t == 1 else "#e4e4e4"
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{bottom}" stroke="{color}"/>')
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#555">{t:g}</text>')
    for i, r in enumerate(rows):
        y = top + pitch * i
        label = f"{r['config']} {r['cell']} {r['mode']}" + (f" ({r['threads']} thr)" if r["threads"] != 2 else "")
        color = {True: "#4c9a5b", False: "#d9822b", None: "#9aa5b1"}[r["met"]]
        tip = (f"{label}: ours {r['ours_ms']:.2f} ms, torch {r['torch_ms']:.2f} ms, ratio {r['ratio']:.2f}"
               + (f", target {r['target']:.2f}" if r["target"] is not None else ""))
        out.append(f'<g><title>{html.escape(tip)}</title>')
        out.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{html.escape(label)}</text>')
        a, b = sorted((x(1), x(r["ratio"])))
        out.append(f'<rect x="{a:.1f}" y="{y + 4}" width="{b - a:.1f}" height="13" fill="{color}"/>')
        if r["paired"]:
            a, b = x(r["paired"][0]), x(r["paired"][-1])
            out.append(f'<line x1="{a:.1f}" y1="{y + 10.5}" x2="{b:.1f}" y2="{y + 10.5}" stroke="#333"/>')
            for e in (a, b):
                out.append(f'<line x1="{e:.1f}" y1="{y + 6}" x2="{e:.1f}" y2="{y + 15}" stroke="#333"/>')
        if r["min_ratio"]:
            out.append(f'<circle cx="{x(r["min_ratio"]):.1f}" cy="{y + 10.5}" r="3" fill="white" stroke="#333"/>')
        if r["target"] is not None:
            t = x(r["target"])
            out.append(f'<line x1="{t:.1f}" y1="{y + 1}" x2="{t:.1f}" y2="{y + 20}" stroke="black" stroke-width="3"/>')
        out.append(f'<text x="{width - right + 4}" y="{y + 14}" fill="#333">{r["ratio"]:.2f}</text></g>')
    out.append('</svg>')
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


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
    ap.add_argument("--svg", help="also draw the table's ratios and targets into this SVG file")
    ap.add_argument("--title", default="Recurrent vs PyTorch", help="title of the SVG picture")
    ap.add_argument("--from-jsonl", help="summarize the raw rows of an earlier --jsonl file instead of measuring")
    ap.add_argument("--path", choices=["fused", "cells"], default="fused",
                    help="fused layers against nn.RNN/LSTM/GRU (default), or cells on the tape against cells in a Python loop")
    args = ap.parse_args()

    configs = [c for c in args.configs.split(",") if c]
    threads = [t for t in args.threads.split(",") if t]
    if args.from_jsonl:
        results = load_jsonl(args.from_jsonl)
    else:
        results = measure(args, configs, threads)
    rows = summarize(results, configs, TARGETS if args.path == "fused" else {})
    print_table(rows)
    if args.svg:
        write_svg(rows, args.svg, args.title)
        print(f"wrote {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
