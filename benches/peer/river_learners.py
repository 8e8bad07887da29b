"""Online learners of the River library with driftd's label delay, for
`cargo bench --bench drift` (DRIFTD_RIVER_PYTHON: a Python with river and
polars).

    python river_learners.py DATA_DIR BOOTSTRAP_ROWS [LEARNERS]

Each learner learns the first files (BOOTSTRAP_ROWS rows, version 1's), then
predicts every row of a file before it learns that file's labels: the labels
of a file arrive together, as they do for driftd. Prints one line per
learner: name, prequential accuracy on the rows after the bootstrap.
LEARNERS (comma-separated, default logistic,hoeffding_adaptive,arf).
"""

import glob
import os
import sys

import polars as pl
from river import forest, linear_model, naive_bayes, neighbors, preprocessing, tree

LEARNERS = {
    "logistic": lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
    "hoeffding_adaptive": lambda: tree.HoeffdingAdaptiveTreeClassifier(seed=1),
    "arf": lambda: forest.ARFClassifier(seed=1),
    "gaussian_nb": lambda: naive_bayes.GaussianNB(),
    "knn": lambda: preprocessing.StandardScaler() | neighbors.KNNClassifier(),
}


def main() -> None:
    data, bootstrap = sys.argv[1], int(sys.argv[2])
    wanted = (sys.argv[3] if len(sys.argv) > 3 else "logistic,hoeffding_adaptive,arf").split(",")
    files = sorted(glob.glob(os.path.join(data, "*.parquet")))
    frames = [pl.read_parquet(f) for f in files]
    features = [c for c in frames[0].columns if c.startswith("f")]
    batches = [
        ([dict(zip(features, r)) for r in df.select(features).iter_rows()], df["label"].to_list())
        for df in frames
    ]
    for name in wanted:
        model = LEARNERS[name]()
        seen = scored = correct = 0
        for xs, ys in batches:
            if seen >= bootstrap:
                for x, y in zip(xs, ys):
                    correct += model.predict_one(x) == y
                scored += len(ys)
            for x, y in zip(xs, ys):
                model.learn_one(x, y)
            seen += len(ys)
        print(f"{name} {correct / max(scored, 1):.6f}", flush=True)


if __name__ == "__main__":
    main()
