"""Writes small Parquet seeds for the `parquet` fuzz target with pyarrow:
the encodings and layouts producers use (codecs, dictionary pages, several
row groups, nulls, a timestamp, a string label), 3 features f0..f2 and an
integer label, a few rows each so the fuzzer's mutations stay cheap.

Usage: make_parquet_seeds.py OUT_DIR   (the venv's python: see the README)
"""
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(3)


def table(n=6, **extra):
    cols = {f"f{i}": rng.normal(size=n).astype(np.float32) for i in range(3)}
    cols["label"] = rng.integers(0, 2, size=n)
    cols.update(extra)
    return pa.table(cols)


pq.write_table(table(), f"{out}/py-snappy.parquet", compression="snappy")
pq.write_table(table(), f"{out}/py-zstd.parquet", compression="zstd")
pq.write_table(table(), f"{out}/py-gzip-v1.parquet", compression="gzip", data_page_version="1.0")
pq.write_table(table(8), f"{out}/py-rowgroups.parquet", row_group_size=3, compression="none")
pq.write_table(table(), f"{out}/py-dictionary.parquet", use_dictionary=True, compression="none")
pq.write_table(
    table(label=pa.array(["no", "yes", "no", "yes", "yes", "no"]).dictionary_encode()),
    f"{out}/py-string-label.parquet",
    compression="none",
)
pq.write_table(
    table(f1=pa.array([1.0, None, 2.0, 3.0, None, 4.0], pa.float64())),
    f"{out}/py-nulls-f64.parquet",
    compression="none",
)
pq.write_table(
    table(ts=pa.array(np.arange(6) * 1_000_000, pa.timestamp("us"))),
    f"{out}/py-timestamp.parquet",
    compression="none",
)
pq.write_table(
    table(label=pa.array([0, 1, 0, 1, 1, 0], pa.int32())),
    f"{out}/py-int32-label-v2.parquet",
    data_page_version="2.0",
    compression="none",
)
