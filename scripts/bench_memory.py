#!/usr/bin/env python3
"""Peak memory of one RNN/LSTM/GRU training step: Recurrent vs PyTorch (issue 4).

Both sides are measured the same way, each configuration in a fresh process: build the layer and
its input, reset the kernel's high-water mark (`echo 5 > /proc/self/clear_refs`), run training
steps (forward + backward of out.sum(), as in bench_torch.py), and report VmHWM minus the resident
size just before the steps, in MiB. Ours comes from `recurrent bench --json` (`peak_rss_mb`), which
measures exactly this. Linux only.

usage: python3 scripts/bench_memory.py [shared-dir] [--configs C1,C1bi,C2,C4] [--cells rnn,lstm,gru]
The shared directory (default ../shared) is only read (bench_torch.py's configurations).
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(field)


def torch_child(shared, config, cell, steps, threads):
    sys.path.insert(0, os.path.join(shared, "peers"))
    import torch
    import bench_torch as peer
    torch.set_num_threads(threads)
    cfg = peer.CONFIGS[config]
    torch.manual_seed(0)
    m = peer.make(cell, **cfg).float()
    m.train()
    x = torch.randn(cfg["T"], cfg["B"], cfg["D"])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status_kb("VmRSS:")
    for _ in range(steps):
        for p in m.parameters():
            p.grad = None
        out, _ = m(x)
        out.sum().backward()
    print(json.dumps({"peak_mb": (status_kb("VmHWM:") - base) / 1024}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shared", nargs="?", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--configs", default="C1,C1bi,C2,C4")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "recurrent"))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return torch_child(a.shared, a.child[0], a.child[1], a.steps, a.threads)
    print(f"{'config':6} {'cell':5} {'torch MiB':>10} {'ours MiB':>10} {'ours/torch':>10}")
    for config in a.configs.split(","):
        for cell in a.cells.split(","):
            t = subprocess.run([sys.executable, __file__, a.shared, "--child", config, cell,
                                "--steps", str(a.steps), "--threads", str(a.threads)],
                               capture_output=True, text=True, check=True)
            torch_mb = json.loads(t.stdout.strip().splitlines()[-1])["peak_mb"]
            o = subprocess.run([a.binary, "bench", "--configs", config, "--cells", cell, "--modes", "train",
                                "--threads", str(a.threads), "--repeats", str(a.steps), "--min-time", "0",
                                "--deadline", "5", "--json"], capture_output=True, text=True, check=True)
            row = [json.loads(l) for l in o.stdout.splitlines() if l.startswith("{")][-1]
            ours_mb = row.get("peak_rss_mb")
            ratio = f"{ours_mb / torch_mb:10.2f}" if ours_mb is not None and torch_mb > 0 else f"{'-':>10}"
            ours_text = f"{ours_mb:10.1f}" if ours_mb is not None else f"{'-':>10}"
            print(f"{config:6} {cell:5} {torch_mb:10.1f} {ours_text} {ratio}", flush=True)


if __name__ == "__main__":
    main()
