"""The Python + PyTorch side of the benchmark suite (benches/suite.rs).

usage: suite_peer.py MODE [--threads N] [--data DIR] [--scoring FILE]

MODE is one of
  train       one training run of the reference model on DIR/old.parquet
              (150 epochs, batch 32, SGD lr 0.01 momentum 0.9, torch.randperm
              reshuffle every epoch): optimizer steps per second
  tournament  the reference experiment's whole tournament for one seed: a base
              model on old, then every strategy driftd compares (none,
              continue_new/all, refit_new/all, ensemble_new/all, graft), one
              after another, each scored on new_test: wall seconds
  score       sigmoid(net(x)) for every row of FILE, in one inference_mode
              batch, as a two-column probability array: rows per second

Prints one JSON object: {"value": ..., "peak_rss_kb": ...}; the peak is the
process's VmHWM, read the same way as the driftd side reads its own.
The model, initialisation and training loop are reference_experiment.py's.
"""
import argparse
import copy
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_experiment import build, fit, load, proba  # noqa: E402


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def graft(base, x, y, seed):
    """driftd's graft: the base model's hidden layers frozen, a new 10-wide
    He-normal hidden layer and a Glorot-uniform output trained on top."""
    g = torch.Generator().manual_seed(seed)
    frozen = copy.deepcopy(base)[:4]
    for p in frozen.parameters():
        p.requires_grad_(False)
    hidden, out = torch.nn.Linear(10, 10), torch.nn.Linear(10, 1)
    with torch.no_grad():
        torch.nn.init.kaiming_normal_(hidden.weight, nonlinearity="relu", generator=g)
        torch.nn.init.xavier_uniform_(out.weight, generator=g)
        hidden.bias.zero_()
        out.bias.zero_()
    net = torch.nn.Sequential(*frozen, hidden, torch.nn.ReLU(), out)
    head = torch.nn.Sequential(hidden, torch.nn.ReLU(), out)
    return fit(net, x, y, 0.01, 150, seed, params=head.parameters())


def train(args):
    x, y = load(os.path.join(args.data, "old.parquet"))
    fit(build(0), x, y, 0.01, 1, 0)  # warm-up, untimed (as on the driftd side)
    epochs = 150
    steps = epochs * ((len(y) + 31) // 32)
    t = time.perf_counter()
    fit(build(1), x, y, 0.01, epochs, 1)
    return steps / (time.perf_counter() - t)


def tournament(args):
    t = time.perf_counter()
    d = args.data
    (xo, yo), (xn, yn), (xt, yt) = (load(os.path.join(d, f)) for f in
                                    ("old.parquet", "new_train.parquet", "new_test.parquet"))
    xa, ya = torch.cat([xo, xn]), torch.cat([yo, yn])
    seed = 1
    accs = {}
    acc = lambda p: float(((p > 0.5).float() == yt).float().mean())  # noqa: E731
    base = fit(build(seed), xo, yo, 0.01, 150, seed)
    accs["none"] = acc(proba(base, xt))
    accs["continue_new"] = acc(proba(fit(copy.deepcopy(base), xn, yn, 0.001, 100, seed), xt))
    accs["continue_all"] = acc(proba(fit(copy.deepcopy(base), xa, ya, 0.001, 100, seed), xt))
    accs["refit_new"] = acc(proba(fit(build(seed + 100), xn, yn, 0.01, 150, seed), xt))
    accs["refit_all"] = acc(proba(fit(build(seed + 100), xa, ya, 0.01, 150, seed), xt))
    fresh = fit(build(seed + 100), xn, yn, 0.01, 150, seed)
    accs["ensemble_new"] = acc((proba(base, xt) + proba(fresh, xt)) / 2)
    fresh = fit(build(seed + 100), xa, ya, 0.01, 150, seed)
    accs["ensemble_all"] = acc((proba(base, xt) + proba(fresh, xt)) / 2)
    accs["graft"] = acc(proba(graft(base, xn, yn, seed), xt))
    return time.perf_counter() - t


def score(args):
    x, _ = load(args.scoring)
    net = build(3)
    with torch.inference_mode():
        net(x[:1000])  # warm-up, untimed
        t = time.perf_counter()
        p = torch.sigmoid(net(x)[:, 0])
        out = torch.stack([1 - p, p], 1).numpy()
        elapsed = time.perf_counter() - t
    assert out.shape == (len(x), 2)
    return len(x) / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "tournament", "score"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="tests/data/reference")
    ap.add_argument("--scoring")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    value = {"train": train, "tournament": tournament, "score": score}[args.mode](args)
    print(json.dumps({"value": value, "peak_rss_kb": peak_rss_kb()}))


if __name__ == "__main__":
    main()
