"""Writes the ingestion corpus for tests/ingest_corpus.rs with pyarrow.

Usage: ingest_corpus.py OUT_DIR HUGE_ROWS

Good files cover what producers write (codecs, several row groups,
dictionary-encoded and nullable columns, columns in another order, extra
columns, a string label, one huge row group); bad files cover what goes
wrong. Prints JSON: {"good": {name: rows}, "bad": {name: reason substring}}.
"""
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out, huge_rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
good, bad = {}, {}


def table(n, label=None, order=None, **overrides):
    cols = {f"f{i}": rng.normal(size=n) for i in range(4)}
    cols["label"] = rng.integers(0, 2, size=n) if label is None else label
    cols.update(overrides)
    names = order or list(cols)
    return pa.table({k: cols[k] for k in names})


def write(name, t, **kw):
    pq.write_table(t, os.path.join(out, name), **kw)


def write_good(name, t, **kw):
    write(name, t, **kw)
    good[name] = t.num_rows


write_good("g1-snappy.parquet", table(1000), compression="snappy", row_group_size=300)
write_good(
    "g2-zstd-reordered.parquet",
    table(700, order=["label", "f3", "f1", "f0", "f2"]).append_column(
        "note", pa.array(["x"] * 700)
    ),
    compression="zstd",
    row_group_size=128,
)
write_good(
    "g3-gzip-ints.parquet",
    table(
        500,
        f0=pa.array(rng.integers(-5, 5, size=500), pa.int32()),
        f1=pa.array(rng.integers(0, 2, size=500).astype(bool)),
        label=pa.array(rng.integers(0, 2, size=500), pa.int32()),
    ),
    compression="gzip",
)
# Dictionary-encoded numeric feature, a nullable float32 column without
# nulls, a string label, no compression.
n = 400
write_good(
    "g4-plain-dict-strlabel.parquet",
    table(
        n,
        f2=pa.array(rng.choice([0.5, 1.5, 2.5], size=n)).dictionary_encode(),
        f3=pa.array(rng.normal(size=n).astype(np.float32), pa.float32()),
        label=pa.array(rng.choice(["no", "yes"], size=n)),
    ),
    compression="none",
    use_dictionary=True,
)
# Parquet-level dictionary encoding of every column, with a few row groups.
write_good(
    "g5-dictpages.parquet",
    table(300, f1=np.round(rng.normal(size=300))),
    use_dictionary=True,
    row_group_size=100,
)
# Narrow integers (pandas' downcasts), a decimal (Spark, DuckDB) and an
# int8 label.
write_good(
    "g9-narrow-ints-decimal.parquet",
    table(
        60,
        f0=pa.array(rng.integers(-100, 100, size=60), pa.int8()),
        f1=pa.array(rng.integers(0, 60000, size=60), pa.uint16()),
        f2=pa.array(rng.integers(0, 255, size=60), pa.uint8()),
        f3=pa.array([f"{x:.2f}" for x in rng.normal(size=60)]).cast(pa.decimal128(10, 2)),
        label=pa.array(rng.integers(0, 2, size=60), pa.int8()),
    ),
)
# One huge row group: read in slices of data.batch_rows.
write_good("g6-huge-rowgroup.parquet", table(huge_rows), row_group_size=huge_rows)

# --- bad files -----------------------------------------------------------
path = lambda name: os.path.join(out, name)
full = open(path("g1-snappy.parquet"), "rb").read()
open(path("z01-truncated.parquet"), "wb").write(full[: len(full) // 2])
bad["z01-truncated.parquet"] = "does not end with the magic PAR1 (truncated"
# The footer's thrift bytes overwritten; the trailer (length + PAR1) intact.
footer_len = int.from_bytes(full[-8:-4], "little")
start = len(full) - 8 - footer_len
corrupt = full[:start] + bytes([0xFF]) * footer_len + full[-8:]
open(path("z02-corrupt-footer.parquet"), "wb").write(corrupt)
bad["z02-corrupt-footer.parquet"] = "not a valid Parquet file"
open(path("z03-empty.parquet"), "wb").close()
bad["z03-empty.parquet"] = "0 bytes is too short"
write("z04-zero-rows.parquet", table(0))
bad["z04-zero-rows.parquet"] = "no rows"
t = table(50)
write("z05-missing-feature.parquet", t.drop(["f2"]))
bad["z05-missing-feature.parquet"] = '"f2" is missing'
write("z06-wrong-type.parquet", table(50, f1=pa.array(["a"] * 50)))
bad["z06-wrong-type.parquet"] = '"f1" has type str, expected a number or boolean (the recorded schema has f64)'
f0 = rng.normal(size=50)
f0[17] = np.nan
write("z07-nan.parquet", table(50, f0=f0))
bad["z07-nan.parquet"] = '"f0" has 1 null, NaN or infinite values (first at row 17)'
label = rng.integers(0, 2, size=50)
label[3] = 7
write("z08-label-outside.parquet", table(50, label=label))
bad["z08-label-outside.parquet"] = "label 7 at row 3 is outside the classes 0..2 (1 such rows)"
write("z09-string-label-unknown.parquet", table(20, label=pa.array(["yes"] * 19 + ["maybe"])))
bad["z09-string-label-unknown.parquet"] = 'label "maybe" at row 19 is outside the classes ["no", "yes"]'
open(path("z10-wrong-magic.parquet"), "w").write("f0,f1,f2,f3,label\n" * 20)
bad["z10-wrong-magic.parquet"] = "does not start with the magic PAR1"
f3 = pa.array([1.0] * 30 + [None] * 2 + [1.0] * 18, pa.float64())
write("z11-null-feature.parquet", table(50, f3=f3))
bad["z11-null-feature.parquet"] = '"f3" has 2 null, NaN or infinite values (first at row 30)'
inf = rng.normal(size=50)
inf[49] = np.inf
write("z12-infinite.parquet", table(50, f1=inf), row_group_size=10)
bad["z12-infinite.parquet"] = '"f1" has 1 null, NaN or infinite values (first at row 49)'
write(
    "z13-time-feature.parquet",
    table(20, f2=pa.array(list(range(20)), pa.time32("s"))),
)
bad["z13-time-feature.parquet"] = '"f2" has type Time32(Second) (not loadable by this build)'

# Not data by the producer convention or the file pattern: never read.
write("g1-snappy.parquet.tmp", table(10))
write(".hidden.parquet", table(10))
open(path("_SUCCESS"), "w").close()
open(path("_committed_123"), "w").write("{}")
write("part-9.parquet._COPYING_", table(10))
write("notes.csv", table(10))

print(json.dumps({"good": good, "bad": bad}))
