"""Loads a driftd checkpoint into the equivalent torch.nn.Sequential and
compares its probabilities with driftd's.

usage: check_checkpoint.py MODEL.safetensors META.json DATA.parquet DRIFTD_PROBS.json

The layout is docs/registry.md's: tensors "0.weight", "0.bias", "2.weight", ... of
Sequential(Linear, Act, ..., Linear) plus "input.mean" / "input.std".
"""
import json
import sys

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file


def main():
    model_path, meta_path, data_path, probs_path = sys.argv[1:5]
    meta = json.load(open(meta_path))
    arch = meta["architecture"]
    state = load_file(model_path)
    mean = state.pop("input.mean")
    std = state.pop("input.std")

    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}[arch["activation"]]
    widths = [arch["inputs"], *arch["hidden"], 1 if arch["classes"] == 2 else arch["classes"]]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(act())
    net = torch.nn.Sequential(*layers)
    net.load_state_dict(state, strict=True)

    table = pq.read_table(data_path)
    x = np.stack([table.column(f).to_numpy().astype(np.float32) for f in meta["features"]], axis=1)
    with torch.no_grad():
        logits = net((torch.from_numpy(x) - mean) / std)
        if arch["classes"] == 2:
            p1 = torch.sigmoid(logits[:, 0])
            probs = torch.stack([1 - p1, p1], dim=1)
        else:
            probs = torch.softmax(logits, dim=1)

    theirs = np.array(json.load(open(probs_path)), dtype=np.float64).reshape(probs.shape)
    diff = float(np.abs(probs.numpy().astype(np.float64) - theirs).max())
    print(json.dumps({"rows": int(x.shape[0]), "max_abs_diff": diff}))
    if diff >= 1e-5:
        sys.exit(f"max abs difference {diff} >= 1e-5")


if __name__ == "__main__":
    main()
