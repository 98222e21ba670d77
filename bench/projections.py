"""Projections of 10,000 codes to 2-D: what the Latent space page runs (aecore.latent.project) against the peers,
scikit-learn's t-SNE and umap-learn's defaults (the latter in a fresh process, numba compilation included, as a newly
started server meets it). Prints one JSON line per measurement.

    AECORE_DATA_DIR=../shared/data python bench/projections.py [--epochs 2] [--points 10000]

The codes are the test set's, from the seed recipe trained for ``--epochs`` on full MNIST.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aecore import TrainSettings, build_model, load_dataset, train  # noqa: E402
from aecore.latent import encode_all, knn_accuracy, project, trustworthiness  # noqa: E402

FRESH_UMAP = """
import sys, time, json, numpy as np
t = time.perf_counter()
import umap
out = umap.UMAP().fit_transform(np.load(sys.argv[1]))
np.save(sys.argv[2], out)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def score(name: str, seconds: float, codes: np.ndarray, xy: np.ndarray, labels: np.ndarray) -> dict:
    sub = slice(0, 3000)  # trustworthiness is quadratic in the points
    return {"projection": name, "seconds": round(seconds, 2), "knn10_accuracy": round(knn_accuracy(xy, labels), 4),
            "trustworthiness_3k": round(trustworthiness(codes[sub], xy[sub]), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--points", type=int, default=10000)
    args = ap.parse_args()
    if not os.environ.get("AECORE_DATA_DIR"):
        raise SystemExit("set AECORE_DATA_DIR to a folder with the MNIST IDX files (../shared/data here)")
    ds = load_dataset("mnist")
    model = build_model("stacked", {}, seed=0)
    train(model, ds.x_train, TrainSettings(epochs=args.epochs))
    codes, labels = encode_all(model, ds.x_test)[:args.points], ds.y_test[:args.points]

    for method in ("pca", "tsne"):
        start = time.perf_counter()
        xy = project(codes, method)
        print(json.dumps({"impl": "aecore.latent.project", **score(method, time.perf_counter() - start, codes, xy,
                                                                     labels)}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "codes.npy", Path(tmp) / "xy.npy"
        np.save(src, codes)
        res = subprocess.run([sys.executable, "-c", FRESH_UMAP, str(src), str(dst)], capture_output=True, text=True)
        if res.returncode == 0:
            seconds = json.loads(res.stdout.strip().splitlines()[-1])["seconds"]
            print(json.dumps({"impl": "umap-learn defaults, fresh process",
                              **score("umap", seconds, codes, np.load(dst), labels)}), flush=True)
    start = time.perf_counter()
    xy = project(codes, "umap")
    print(json.dumps({"impl": "aecore.latent.project (umap-learn, warm process)",
                      **score("umap", time.perf_counter() - start, codes, xy, labels)}), flush=True)


if __name__ == "__main__":
    main()
