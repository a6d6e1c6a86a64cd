#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that Tests/RecurrentTests/PyTorchParityTests.swift compares
Recurrent against.

Run (from the repository root):

    pip install torch safetensors && python3 scripts/make_fixtures.py

The script is deterministic (fixed seeds per file, float32, CPU, one thread), so running it again
rewrites the same numbers. Output: Tests/RecurrentTests/Fixtures/*.safetensors (a few KB each).

Conventions shared by every file
--------------------------------
* All tensors are F32 (little-endian, row-major). Integer data (sequence lengths, class targets) is
  stored as F32 holding small whole numbers; read it back with Int(value).
* Scalars (losses, norms) are stored with shape [1].
* Keys without a dot are module parameters under their PyTorch state_dict names (`weight_ih`,
  `weight_ih_l0_reverse`, ...), so the set of dot-free keys can be handed to `loadStateDict` as is.
  Every other key has a dotted prefix:
    input.*     inputs of the forward pass
    output.*    what PyTorch's forward returned
    upstream.*  fixed upstream gradients g; the loss is  L = sum over outputs of sum(output * g)
    grad.*      dL/d(...) for a parameter (`grad.weight_ih`) or an input (`grad.x`)
* `__metadata__` (string -> string) carries the hyperparameters and shapes of the case.

Files
-----
cell_rnn_tanh, cell_rnn_relu, cell_lstm, cell_gru  (.safetensors)
    One step of nn.RNNCell(nonlinearity=tanh|relu) / nn.LSTMCell / nn.GRUCell, I=3, H=4, B=3.
    input.x [B,I], input.h [B,H], input.c [B,H] (LSTM); weight_ih [G*H,I], weight_hh [G*H,H],
    bias_ih [G*H], bias_hh [G*H]; output.h [B,H], output.c [B,H] (LSTM);
    upstream.h, upstream.c (LSTM); grad.x, grad.h, grad.c (LSTM), grad.<each parameter>.
    L = sum(output.h * upstream.h) + sum(output.c * upstream.c).

layer_lstm_2x_bidirectional, layer_gru_2x_bidirectional, layer_rnn_tanh_2x_bidirectional
    2-layer bidirectional nn.LSTM / nn.GRU / nn.RNN(tanh), batch_first=False, dropout=0,
    I=3, H=4, T=5, B=3, over a padded batch with lengths [5, 2, 4] (deliberately not sorted),
    run as pack_padded_sequence(x, lengths, enforce_sorted=False) -> module(packed, h0[, c0]) ->
    pad_packed_sequence(total_length=T).
    Parameters: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, the same with _reverse,
    then _l1 and _l1_reverse (weight_ih_l1 is [G*H, 2H]).
    input.x [T,B,I] (padded steps hold nonzero junk that must be ignored), input.lengths [B],
    input.h0 [L*D,B,H], input.c0 [L*D,B,H] (LSTM); output.y [T,B,2H] (zeros at padded steps),
    output.h_n [L*D,B,H], output.c_n (LSTM); upstream.y, upstream.h_n, upstream.c_n (LSTM);
    grad.x, grad.h0, grad.c0 (LSTM), grad.<each parameter>.
    L = sum(y * upstream.y) + sum(h_n * upstream.h_n) + sum(c_n * upstream.c_n).

layer_lstm_1x_full
    1-layer unidirectional nn.LSTM, dropout=0, I=3, H=4, T=5, B=3, full batch (no lengths, no
    packing) and no initial state (zeros). Same keys as above without input.lengths, input.h0,
    input.c0, grad.h0, grad.c0.

clip_grad_norm
    torch.nn.utils.clip_grad_norm_(params, max_norm) (L2 norm, PyTorch's 1e-6 in the scale) on
    three tensors with known gradients, two cases: prefix `clipped.` (max_norm below the norm)
    and `unclipped.` (max_norm above it).
    <case>.grad_before.p0 [2,3], .p1 [4], .p2 [1,2]; <case>.max_norm [1];
    <case>.total_norm [1] (returned, the norm before clipping); <case>.grad_after.p0, .p1, .p2.

optimizer_<name>  (sgd_plain, sgd_nesterov, sgd_momentum_dampening, adam, adam_weight_decay,
                   adamw, rmsprop_centered_momentum, rmsprop_plain, adagrad, adagrad_decay)
    Three steps of the optimizer (foreach=False, PyTorch's single-tensor code) on two parameters
    p0 [2,3] and p1 [4]: initial.p0, initial.p1; for k in 1...3: step<k>.grad.p0, step<k>.grad.p1
    (gradients given before step k) and step<k>.p0, step<k>.p1 (parameters after step k).
    Metadata: `optimizer` (PyTorch class name), `steps`, and every hyperparameter by its PyTorch
    keyword (lr, momentum, dampening, nesterov, weight_decay, betas as beta1/beta2, eps, alpha,
    centered, lr_decay, initial_accumulator_value), written with repr() of the Python value.

cross_entropy
    F.cross_entropy on input.logits [N=6, C=4] (one row has large logits, +-30) and
    input.targets [N] (F32 of class ids), two settings:
    with ignore_index = metadata["ignore_index"] (one target equals it):
        output.loss_mean [1], output.loss_sum [1], grad.logits_mean [N,C], grad.logits_sum [N,C]
    (grad.* is d loss / d logits with upstream 1), and without ignore_index:
        output.loss_mean_no_ignore [1], grad.logits_mean_no_ignore [N,C].
"""

import json
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "RecurrentTests", "Fixtures")

I, H, T, B = 3, 4, 5, 3
LENGTHS = [5, 2, 4]


def save(name, tensors, metadata):
    path = os.path.join(OUT, name + ".safetensors")
    clean = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}
    save_file(clean, path, metadata={k: str(v) for k, v in metadata.items()})
    canonicalize_header(path)
    return path


def canonicalize_header(path):
    """Sorts the `__metadata__` keys (safetensors writes them in hash order), so that running the
    script again rewrites byte-identical files. The header keeps its length and padding."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    with open(path, "wb") as f:
        f.write(raw[:8] + text + b" " * (n - len(text)) + raw[8 + n:])


def scalar(x):
    return torch.as_tensor(x, dtype=torch.float32).reshape(1)


# ---------------------------------------------------------------- cells

def make_cell(kind, seed):
    torch.manual_seed(seed)
    if kind == "rnn_tanh":
        cell = nn.RNNCell(I, H, nonlinearity="tanh")
    elif kind == "rnn_relu":
        cell = nn.RNNCell(I, H, nonlinearity="relu")
    elif kind == "lstm":
        cell = nn.LSTMCell(I, H)
    else:
        cell = nn.GRUCell(I, H)
    x = torch.randn(B, I, requires_grad=True)
    h = torch.randn(B, H, requires_grad=True)
    c = torch.randn(B, H, requires_grad=True) if kind == "lstm" else None
    if kind == "lstm":
        h1, c1 = cell(x, (h, c))
    else:
        h1, c1 = cell(x, h), None
    gh = torch.randn(B, H)
    gc = torch.randn(B, H) if kind == "lstm" else None
    loss = (h1 * gh).sum() + ((c1 * gc).sum() if c1 is not None else 0)
    loss.backward()

    t = {name: p for name, p in cell.named_parameters()}
    t.update({"input.x": x, "input.h": h, "output.h": h1, "upstream.h": gh,
              "grad.x": x.grad, "grad.h": h.grad})
    if kind == "lstm":
        t.update({"input.c": c, "output.c": c1, "upstream.c": gc, "grad.c": c.grad})
    for name, p in cell.named_parameters():
        t["grad." + name] = p.grad
    meta = {"module": type(cell).__name__, "kind": kind, "input_size": I, "hidden_size": H,
            "batch_size": B}
    return save("cell_" + kind, t, meta)


# ---------------------------------------------------------------- layers

def make_layer(name, kind, num_layers, bidirectional, packed, with_initial_state, seed):
    torch.manual_seed(seed)
    if kind == "lstm":
        module = nn.LSTM(I, H, num_layers=num_layers, bidirectional=bidirectional, dropout=0.0)
    elif kind == "gru":
        module = nn.GRU(I, H, num_layers=num_layers, bidirectional=bidirectional, dropout=0.0)
    else:
        module = nn.RNN(I, H, num_layers=num_layers, bidirectional=bidirectional,
                        nonlinearity="tanh", dropout=0.0)
    D = 2 if bidirectional else 1
    x = torch.randn(T, B, I, requires_grad=True)
    h0 = torch.randn(num_layers * D, B, H, requires_grad=True) if with_initial_state else None
    c0 = (torch.randn(num_layers * D, B, H, requires_grad=True)
          if with_initial_state and kind == "lstm" else None)
    state = (h0, c0) if kind == "lstm" and h0 is not None else h0

    if packed:
        lengths = torch.tensor(LENGTHS, dtype=torch.int64)
        seq = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, hn = module(seq, state)
        y, _ = pad_packed_sequence(out, total_length=T)
    else:
        y, hn = module(x, state)
    h_n, c_n = hn if kind == "lstm" else (hn, None)

    gy = torch.randn_like(y)
    gh = torch.randn_like(h_n)
    gc = torch.randn_like(c_n) if c_n is not None else None
    loss = (y * gy).sum() + (h_n * gh).sum() + ((c_n * gc).sum() if c_n is not None else 0)
    loss.backward()

    t = {n: p for n, p in module.named_parameters()}
    t.update({"input.x": x, "output.y": y, "output.h_n": h_n, "upstream.y": gy,
              "upstream.h_n": gh, "grad.x": x.grad})
    if packed:
        t["input.lengths"] = torch.tensor(LENGTHS, dtype=torch.float32)
    if h0 is not None:
        t.update({"input.h0": h0, "grad.h0": h0.grad})
    if c0 is not None:
        t.update({"input.c0": c0, "grad.c0": c0.grad})
    if c_n is not None:
        t.update({"output.c_n": c_n, "upstream.c_n": gc})
    for n, p in module.named_parameters():
        t["grad." + n] = p.grad
    meta = {"module": type(module).__name__, "kind": "rnn_tanh" if kind == "rnn" else kind,
            "input_size": I, "hidden_size": H, "num_layers": num_layers,
            "bidirectional": bidirectional, "sequence_length": T, "batch_size": B,
            "packed": packed, "initial_state": with_initial_state}
    return save(name, t, meta)


# ---------------------------------------------------------------- clip_grad_norm_

def make_clip(seed):
    torch.manual_seed(seed)
    shapes = [(2, 3), (4,), (1, 2)]
    t = {}
    meta = {"function": "torch.nn.utils.clip_grad_norm_", "norm_type": 2.0}
    for case, max_norm in (("clipped", 1.0), ("unclipped", 100.0)):
        params = [torch.randn(*s, requires_grad=True) for s in shapes]
        for i, p in enumerate(params):
            p.grad = torch.randn_like(p) * 2
            t[f"{case}.grad_before.p{i}"] = p.grad.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        t[f"{case}.max_norm"] = scalar(max_norm)
        t[f"{case}.total_norm"] = scalar(total)
        for i, p in enumerate(params):
            t[f"{case}.grad_after.p{i}"] = p.grad
    assert t["clipped.total_norm"].item() > 1.0 and t["unclipped.total_norm"].item() < 100.0
    return save("clip_grad_norm", t, meta)


# ---------------------------------------------------------------- optimizers

OPTIMIZERS = [
    ("sgd_plain", torch.optim.SGD, dict(lr=0.1)),
    ("sgd_nesterov", torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_momentum_dampening", torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1)),
    ("adam", torch.optim.Adam, dict(lr=0.01)),
    ("adam_weight_decay", torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6,
                                                 weight_decay=0.1)),
    ("adamw", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.01)),
    ("rmsprop_centered_momentum", torch.optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
    ("rmsprop_plain", torch.optim.RMSprop, dict(lr=0.01)),
    ("adagrad", torch.optim.Adagrad, dict(lr=0.1)),
    ("adagrad_decay", torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                                initial_accumulator_value=0.1)),
]

STEPS = 3


def make_optimizer(name, cls, kwargs, seed):
    torch.manual_seed(seed)
    params = [torch.randn(2, 3, requires_grad=True), torch.randn(4, requires_grad=True)]
    opt = cls(params, foreach=False, **kwargs)
    t = {"initial.p0": params[0].detach().clone(), "initial.p1": params[1].detach().clone()}
    for k in range(1, STEPS + 1):
        for i, p in enumerate(params):
            p.grad = torch.randn_like(p)
            t[f"step{k}.grad.p{i}"] = p.grad.clone()
        opt.step()
        for i, p in enumerate(params):
            t[f"step{k}.p{i}"] = p.detach().clone()
    group = opt.param_groups[0]
    meta = {"optimizer": cls.__name__, "steps": STEPS}
    for key in ("lr", "momentum", "dampening", "nesterov", "weight_decay", "eps", "alpha",
                "centered", "lr_decay", "initial_accumulator_value"):
        if key in group:
            meta[key] = repr(group[key])
    if "betas" in group:
        meta["beta1"], meta["beta2"] = repr(group["betas"][0]), repr(group["betas"][1])
    return save("optimizer_" + name, t, meta)


# ---------------------------------------------------------------- cross-entropy

def make_cross_entropy(seed):
    torch.manual_seed(seed)
    N, C = 6, 4
    ignore = 1
    logits = torch.randn(N, C) * 2
    logits[3] = torch.tensor([30.0, -30.0, 29.0, 0.0])  # large logits: needs log-sum-exp
    targets = torch.tensor([0, 2, ignore, 2, 3, 0], dtype=torch.int64)
    assert (targets == ignore).sum().item() == 1

    def run(reduction, ignore_index):
        z = logits.clone().requires_grad_(True)
        loss = F.cross_entropy(z, targets, ignore_index=ignore_index, reduction=reduction)
        loss.backward()
        return loss.detach(), z.grad

    loss_mean, grad_mean = run("mean", ignore)
    loss_sum, grad_sum = run("sum", ignore)
    loss_mean_all, grad_mean_all = run("mean", -100)
    t = {"input.logits": logits, "input.targets": targets.to(torch.float32),
         "output.loss_mean": scalar(loss_mean), "output.loss_sum": scalar(loss_sum),
         "grad.logits_mean": grad_mean, "grad.logits_sum": grad_sum,
         "output.loss_mean_no_ignore": scalar(loss_mean_all),
         "grad.logits_mean_no_ignore": grad_mean_all}
    meta = {"function": "torch.nn.functional.cross_entropy", "ignore_index": ignore,
            "classes": C, "rows": N}
    return save("cross_entropy", t, meta)


# ---------------------------------------------------------------- character language model
class CharLM(torch.nn.Module):
    """The checkpoint layout of `recurrent train`: Embedding -> RNN/LSTM/GRU (batch_first) -> Linear."""

    def __init__(self, cell, V, E, H, L, nonlinearity="tanh"):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, E)
        if cell == "lstm":
            self.rnn = torch.nn.LSTM(E, H, L, batch_first=True)
        elif cell == "gru":
            self.rnn = torch.nn.GRU(E, H, L, batch_first=True)
        else:
            self.rnn = torch.nn.RNN(E, H, L, nonlinearity=nonlinearity, batch_first=True)
        self.head = torch.nn.Linear(H, V)

    def forward(self, idx):
        out, _ = self.rnn(self.embedding(idx))
        return self.head(out)


def make_language_model(cell, seed, nonlinearity="tanh"):
    """A checkpoint directory written from PyTorch (config.json + model.safetensors) and the logits
    PyTorch computes for a [B, T] batch of indices: Recurrent must load it and give the same logits."""
    torch.manual_seed(seed)
    vocab = ["\n", " ", "a", "b", "c", "é", "!"]
    V, E, H, L, Bq, Tq = len(vocab), 5, 6, 2, 2, 7
    model = CharLM(cell, V, E, H, L, nonlinearity)
    name = f"charlm_{cell}" + (f"_{nonlinearity}" if cell == "rnn" else "")
    directory = os.path.join(OUT, name)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "model.safetensors")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, path)
    config = {"cell": cell, "embedding_size": E, "hidden_size": H, "num_layers": L, "vocab": vocab}
    if cell == "rnn":
        config["nonlinearity"] = nonlinearity
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
    idx = torch.randint(0, V, (Bq, Tq))
    with torch.no_grad():
        logits = model(idx)                                  # [B, T, V]
    expected = save(name + "_expected", {"input.indices": idx.to(torch.float32), "output.logits": logits},
                    {"layout": "indices [B, T] batch-first; logits [B, T, V]", "checkpoint": name})
    return [path, expected]


def main():
    os.makedirs(OUT, exist_ok=True)
    paths = []
    for seed, kind in enumerate(("rnn_tanh", "rnn_relu", "lstm", "gru")):
        paths.append(make_cell(kind, 100 + seed))
    paths.append(make_layer("layer_lstm_2x_bidirectional", "lstm", 2, True, True, True, 200))
    paths.append(make_layer("layer_gru_2x_bidirectional", "gru", 2, True, True, True, 201))
    paths.append(make_layer("layer_rnn_tanh_2x_bidirectional", "rnn", 2, True, True, True, 202))
    paths.append(make_layer("layer_lstm_1x_full", "lstm", 1, False, False, False, 203))
    paths.append(make_clip(300))
    for seed, (name, cls, kwargs) in enumerate(OPTIMIZERS):
        paths.append(make_optimizer(name, cls, kwargs, 400 + seed))
    paths.append(make_cross_entropy(500))
    paths += make_language_model("lstm", 600)
    paths += make_language_model("gru", 601)
    paths += make_language_model("rnn", 602, "relu")
    total = sum(os.path.getsize(p) for p in paths)
    for p in paths:
        print(f"{os.path.getsize(p):7d}  {os.path.relpath(p, ROOT)}")
    print(f"{total:7d}  bytes in {len(paths)} files (torch {torch.__version__})")


if __name__ == "__main__":
    main()
