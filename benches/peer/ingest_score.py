"""The peer of benches/ingest_score.rs: the same ingest + score + accuracy
pipeline in polars-python + PyTorch, on the same files and weights.

    python ingest_score.py DIR MODEL.safetensors THREADS

Reads every *.parquet in DIR (sorted) with polars, checks that features and
labels are finite / non-null (driftd's bad-row check), scores with the
nn.Sequential loaded from driftd's checkpoint, counts correct predictions,
and prints one JSON line: rows, correct, seconds (the loop only; imports and
model load excluded), cpu_seconds (this process's CPU time over the same
loop, every thread), peak_rss_kb (VmHWM of this process).

Thread counts: POLARS_MAX_THREADS must be set by the caller (polars reads
it at import); torch.set_num_threads(THREADS) here.
"""

import json
import os
import sys
import time

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    data_dir, model_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    state = load_file(model_path)
    mean, std = state.pop("input.mean"), state.pop("input.std")
    inputs = mean.shape[0]
    layers = []
    i = 0
    while f"{i}.weight" in state:
        w = state[f"{i}.weight"]
        if layers:
            layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Linear(w.shape[1], w.shape[0]))
        i += 2
    net = torch.nn.Sequential(*layers)
    net.load_state_dict(state)
    net.eval()
    features = [f"f{j}" for j in range(inputs)]
    columns = features + ["label"]
    files = sorted(
        os.path.join(data_dir, n) for n in os.listdir(data_dir) if n.endswith(".parquet")
    )

    def run(paths):
        rows = correct = 0
        with torch.inference_mode():
            for path in paths:
                df = pl.read_parquet(path, columns=columns)
                x = df.select(features).to_numpy().astype(np.float32, copy=False)
                y = df["label"].to_numpy()
                if df["label"].null_count() or not np.isfinite(x).all():
                    raise SystemExit(f"{path}: bad rows")
                xt = (torch.from_numpy(x) - mean) / std
                p1 = torch.sigmoid(net(xt)).squeeze(1)
                predicted = (p1 > 0.5).numpy()
                correct += int((predicted == (y == 1)).sum())
                rows += len(df)
        return rows, correct

    run(files[:1])  # warm-up: first-call costs on both sides are excluded
    start, cpu_start = time.perf_counter(), time.process_time()
    rows, correct = run(files)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "rows": rows,
                "correct": correct,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_kb": vm_hwm_kb(),
            }
        )
    )


if __name__ == "__main__":
    main()
