#!/usr/bin/env python3
"""PyTorch's open path: nn.RNNCell / nn.LSTMCell / nn.GRUCell stepped in a Python loop.

This is what a PyTorch user writes for a cell that `nn.RNN/LSTM/GRU` cannot express (peephole,
layer-norm, zoneout): the loop `for t in range(T): h = cell(x[t], h)`, each layer (and each
direction, reverse over the reversed sequence) in turn, the outputs stacked. It is the peer of
`recurrent bench --path cells` (our cells stepped on the tape by the generic runner) at the same
configurations and with the same definitions as `<shared>/peers/bench_torch.py`, whose timing
(`_monitor.measure`: warm-up, clean chunks, median and min) and JSON fields it reuses:

  train : forward + backward of `out.sum()` (parameter gradients set to None before each step,
          outside the timed region; no optimizer step);
  infer : forward under torch.inference_mode();
  FLOPs : forward = Σ over layers and directions of 2·T·B·G·H·(D_l + H); train = 3 × forward.

usage: python3 scripts/bench_cells_torch.py [--shared ../shared] --configs C1,C3 --cells rnn,lstm,gru
           [--threads 2] [--deadline 60]
The shared directory is only read (for `_monitor.py`).
"""
import argparse, json, os, sys

CONFIGS = {
    "C1":   dict(T=100, B=32, D=128, H=256, L=1, bidir=False, train=True),
    "C2":   dict(T=100, B=64, D=512, H=512, L=2, bidir=False, train=True),
    "C3":   dict(T=50,  B=1,  D=128, H=256, L=1, bidir=False, train=False),
    "C4":   dict(T=200, B=16, D=64,  H=1024, L=1, bidir=False, train=True),
    "C1bi": dict(T=100, B=32, D=128, H=256, L=1, bidir=True, train=True),
}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def forward_flops(cell, T, B, D, H, L, bidir, **_):
    dirs = 2 if bidir else 1
    return float(sum(dirs * 2 * T * B * GATES[cell] * H * ((D if l == 0 else H * dirs) + H) for l in range(L)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
    ap.add_argument("--configs", default="C1,C1bi,C2,C3,C4")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-iters", type=int, default=10)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--deadline", type=float, default=60)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.shared, "peers"))
    try:
        from _monitor import measure, clean_threshold
    except ImportError:
        raise SystemExit(f"no _monitor.py in {os.path.join(args.shared, 'peers')}: pass --shared")
    import torch
    import torch.nn as nn
    torch.set_num_threads(args.threads)
    make = {"rnn": lambda i, h: nn.RNNCell(i, h, nonlinearity="tanh"), "lstm": nn.LSTMCell, "gru": nn.GRUCell}

    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        T, B, D, H, L, bidir = (cfg[k] for k in ("T", "B", "D", "H", "L", "bidir"))
        dirs = 2 if bidir else 1
        for cell in args.cells.split(","):
            torch.manual_seed(0)
            cells = [[make[cell](D if l == 0 else H * dirs, H) for _ in range(dirs)] for l in range(L)]
            params = [p for layer in cells for c in layer for p in c.parameters()]
            x = torch.randn(T, B, D)

            def direction(c, inp, reverse):
                h = torch.zeros(B, H)
                state = (h, torch.zeros(B, H)) if cell == "lstm" else h
                outs = [None] * T
                for t in (reversed(range(T)) if reverse else range(T)):
                    state = c(inp[t], state)
                    outs[t] = state[0] if cell == "lstm" else state
                return torch.stack(outs)

            def forward():
                inp = x
                for layer in cells:
                    ys = [direction(c, inp, d == 1) for d, c in enumerate(layer)]
                    inp = ys[0] if dirs == 1 else torch.cat(ys, dim=2)
                return inp

            def pre():
                for p in params:
                    p.grad = None

            def train():
                forward().sum().backward()

            def infer():
                with torch.inference_mode():
                    forward()

            for mode in (["train", "infer"] if cfg["train"] else ["infer"]):
                r = measure(train if mode == "train" else infer, pre=pre if mode == "train" else None,
                            min_iters=args.min_iters, min_time=args.min_time, deadline_s=args.deadline,
                            clean=clean_threshold(args.threads))
                flops = forward_flops(cell, **cfg) * (3 if mode == "train" else 1)
                med, best = r["median"], r["min"]
                print(json.dumps(dict(lib="torch-cells", version=torch.__version__, threads=torch.get_num_threads(),
                                      config=name, cell=cell, mode=mode, T=T, B=B, D=D, H=H, L=L, bidir=bidir,
                                      median_ms=med * 1e3, min_ms=best * 1e3, iters=r["n"],
                                      tokens_per_s=T * B / med, gflops=flops / med / 1e9,
                                      gflops_best=flops / best / 1e9, foreign=round(r["foreign"], 3),
                                      status=r["status"])), flush=True)


if __name__ == "__main__":
    main()
