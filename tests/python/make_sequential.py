"""Builds a torch.nn.Sequential MLP with a fixed seed, saves its state_dict
with safetensors.torch.save_file (the file `driftd import` adopts), and
writes its class probabilities on a Parquet file's rows.

usage: make_sequential.py OUT.safetensors PROBS.json DATA.parquet SPEC.json

SPEC: {"features": [...], "hidden": [20, 10], "activation": "relu",
       "classes": 2, "seed": 7, "scaler": false}
With "scaler": true the file also holds input.mean / input.std (driftd's own
layout) and the network sees (x - mean) / std.
"""
import json
import sys

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import save_file


def main():
    out_path, probs_path, data_path, spec_path = sys.argv[1:5]
    spec = json.load(open(spec_path))
    torch.manual_seed(spec["seed"])
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}[spec["activation"]]
    widths = [len(spec["features"]), *spec["hidden"], 1 if spec["classes"] == 2 else spec["classes"]]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(act())
    net = torch.nn.Sequential(*layers)
    # Non-zero biases everywhere, so a bias lost in the import shows.
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))

    table = pq.read_table(data_path)
    x = torch.from_numpy(
        np.stack([table.column(f).to_numpy().astype(np.float32) for f in spec["features"]], axis=1)
    )
    state = dict(net.state_dict())
    if spec["scaler"]:
        mean = x.mean(dim=0)
        std = x.std(dim=0) + 0.5
        state["input.mean"] = mean
        state["input.std"] = std
        x = (x - mean) / std
    save_file({k: v.contiguous() for k, v in state.items()}, out_path)

    with torch.no_grad():
        logits = net(x)
        if spec["classes"] == 2:
            p1 = torch.sigmoid(logits[:, 0])
            probs = torch.stack([1 - p1, p1], dim=1)
        else:
            probs = torch.softmax(logits, dim=1)
    json.dump(probs.reshape(-1).tolist(), open(probs_path, "w"))
    print(json.dumps({"rows": int(x.shape[0]), "tensors": sorted(state)}))


if __name__ == "__main__":
    main()
