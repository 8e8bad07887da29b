"""The tutorial's reference experiment in PyTorch: the peer `driftd compare`
is checked against (same data, model, initialisation and hyperparameters).

usage: reference_experiment.py OLD NEW TEST [--repeats N] [--standardize]

Model 20 -> 20 -> 10 -> 1: hidden layers He-normal, output Glorot-uniform,
biases zero (the tutorial's Keras model); SGD lr 0.01 momentum 0.9, BCE,
150 epochs, batch 32, reshuffled every epoch; fine-tuning at 0.001 for 100
epochs. Prints one JSON object per strategy: mean/std accuracy over seeds.
"""
import argparse
import copy
import json
import time

import numpy as np
import pyarrow.parquet as pq
import torch


def load(path):
    t = pq.read_table(path)
    x = np.stack([t.column(f"f{i}").to_numpy() for i in range(20)], 1).astype(np.float32)
    y = t.column("label").to_numpy().astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def build(seed):
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 20), torch.nn.ReLU(),
        torch.nn.Linear(20, 10), torch.nn.ReLU(),
        torch.nn.Linear(10, 1))
    with torch.no_grad():
        for i, layer in enumerate([net[0], net[2], net[4]]):
            if i < 2:
                torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=g)
            else:
                torch.nn.init.xavier_uniform_(layer.weight, generator=g)
            layer.bias.zero_()
    return net


def fit(net, x, y, lr, epochs, seed, params=None):
    """SGD with momentum, batch 32, reshuffled every epoch; `params` (default:
    all of `net`'s) are the ones trained."""
    params = net.parameters() if params is None else params
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed + 1000)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = len(y)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, 32):
            idx = perm[s:s + 32]
            opt.zero_grad()
            loss = loss_fn(net(x[idx])[:, 0], y[idx])
            loss.backward()
            opt.step()
    return net


def proba(net, x):
    with torch.no_grad():
        return torch.sigmoid(net(x)[:, 0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("test")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    (xo, yo), (xn, yn), (xt, yt) = load(args.old), load(args.new), load(args.test)
    xa, ya = torch.cat([xo, xn]), torch.cat([yo, yn])
    acc = lambda p: float(((p > 0.5).float() == yt).float().mean())
    results = {}
    times = {}
    for r in range(args.repeats):
        seed = 1 + r
        t0 = time.perf_counter()
        base = fit(build(seed), xo, yo, 0.01, 150, seed)
        cands = {"none": lambda: proba(base, xt)}
        cands["continue_new"] = lambda: proba(fit(copy.deepcopy(base), xn, yn, 0.001, 100, seed), xt)
        cands["continue_all"] = lambda: proba(fit(copy.deepcopy(base), xa, ya, 0.001, 100, seed), xt)
        cands["refit_new"] = lambda: proba(fit(build(seed + 100), xn, yn, 0.01, 150, seed), xt)
        cands["refit_all"] = lambda: proba(fit(build(seed + 100), xa, ya, 0.01, 150, seed), xt)
        cands["ensemble_new"] = lambda: (proba(base, xt) + proba(fit(build(seed + 100), xn, yn, 0.01, 150, seed), xt)) / 2
        cands["ensemble_all"] = lambda: (proba(base, xt) + proba(fit(build(seed + 100), xa, ya, 0.01, 150, seed), xt)) / 2
        for name, f in cands.items():
            t = time.perf_counter()
            results.setdefault(name, []).append(acc(f()))
            times.setdefault(name, []).append(time.perf_counter() - t)
    for name, accs in results.items():
        print(json.dumps({
            "strategy": name,
            "accuracy_mean": float(np.mean(accs)),
            "accuracy_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "seconds_mean": float(np.mean(times[name])),
            "repeats": len(accs),
        }))


if __name__ == "__main__":
    main()
