"""Projections of up to 70,000 codes to 2-D: what the Latent space page runs (aecore.latent.project) against the
peers in the same run: scikit-learn's t-SNE, and umap-learn's defaults in a fresh process (numba compilation
included, as a newly started server meets it). Prints one JSON line per measurement, then one with the ratios.

    AECORE_DATA_DIR=../shared/data python bench/projections.py [--epochs 2] [--points 70000] [--skip-peers]
                                                               [--subsets N]

The codes are the seed recipe's (trained for ``--epochs`` on full MNIST) of the first ``--points`` of the test images
followed by the training images, as the page orders them: 70,000 is all of MNIST. The UMAP lines run in
fresh processes: umap-learn's defaults; ours cold; and ours after ``aecore.latent.warm_up()``, which the app runs in
a background thread when a server starts. ``--subsets N`` also runs both t-SNEs on N random 5,000-point subsets of the
codes and prints the mean gap in 10-NN accuracy with its standard error: one comparison moves by about 0.0015 with
the points it is given, so a single run cannot say which t-SNE keeps neighbours better.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from aecore import TrainSettings, build_model, load_dataset, train  # noqa: E402
from aecore.latent import encode_all, knn_accuracy, project, trustworthiness  # noqa: E402

FRESH = """
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[4])
codes = np.load(sys.argv[2])
out = {}
if sys.argv[1] == "umap-learn":
    t = time.perf_counter()
    import umap
    xy = umap.UMAP().fit_transform(codes)
else:
    from aecore import latent
    if sys.argv[1] == "aecore-warm":
        t = time.perf_counter()
        latent.warm_up()
        out["warm_up_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    xy = latent.project(codes, "umap")
out["seconds"] = time.perf_counter() - t
np.save(sys.argv[3], xy)
print(json.dumps(out))
"""


def score(name: str, seconds: float, codes: np.ndarray, xy: np.ndarray, labels: np.ndarray, **extra) -> dict:
    sub = slice(0, 3000)  # trustworthiness is quadratic in the points
    return {"projection": name, "seconds": round(seconds, 2), **extra,
            "knn10_accuracy": round(knn_accuracy(xy, labels), 4),
            "trustworthiness_3k": round(trustworthiness(codes[sub], xy[sub]), 4)}


def fresh_umap(kind: str, codes: np.ndarray, labels: np.ndarray) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "codes.npy", Path(tmp) / "xy.npy"
        np.save(src, codes)
        res = subprocess.run([sys.executable, "-c", FRESH, kind, str(src), str(dst), str(ROOT)], capture_output=True,
                             text=True)
        if res.returncode != 0:
            print(res.stderr[-2000:], file=sys.stderr)
            return None
        out = json.loads(res.stdout.strip().splitlines()[-1])
        extra = {k: round(v, 2) for k, v in out.items() if k != "seconds"}
        return {"impl": f"{kind}, fresh process", **score("umap", out["seconds"], codes, np.load(dst), labels, **extra)}


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--points", type=int, default=70000)
    ap.add_argument("--skip-peers", action="store_true", help="only aecore's own projections")
    ap.add_argument("--subsets", type=int, default=0, help="t-SNE 10-NN gap over N random 5,000-point subsets")
    args = ap.parse_args()
    if not os.environ.get("AECORE_DATA_DIR"):
        raise SystemExit("set AECORE_DATA_DIR to a folder with the MNIST IDX files (../shared/data here)")
    ds = load_dataset("mnist")
    model = build_model("stacked", {}, seed=0)
    train(model, ds.x_train, TrainSettings(epochs=args.epochs))
    codes = encode_all(model, np.concatenate([ds.x_test, ds.x_train]))[:args.points]
    labels = np.concatenate([ds.y_test, ds.y_train])[:args.points]
    emit({"points": len(codes), "code_size": codes.shape[1]})

    start = time.perf_counter()
    xy = project(codes, "pca")
    emit({"impl": "aecore", **score("pca", time.perf_counter() - start, codes, xy, labels)})
    pictures: list[tuple[float, float]] = []  # (seconds, fraction) of each layout shown; the first is the PCA start
    start = time.perf_counter()
    xy = project(codes, "tsne", progress=lambda f, layout: pictures.append((time.perf_counter() - start, f))
                 if layout is not None else None)
    ours = emit({"impl": "aecore", **score("tsne", time.perf_counter() - start, codes, xy, labels,
                                           first_picture_seconds=round(pictures[0][0], 2),
                                           first_iterated_picture_seconds=round(pictures[1][0], 2),
                                           iterations=round(pictures[-1][1] * 1000))})
    rows = {"umap-aecore-warm": fresh_umap("aecore-warm", codes, labels)}
    rows["umap-aecore-cold"] = fresh_umap("aecore-cold", codes, labels)
    for row in rows.values():
        if row:
            emit(row)
    if args.skip_peers:
        return
    from sklearn.manifold import TSNE
    start = time.perf_counter()
    xy = TSNE(n_components=2, init="pca", random_state=0).fit_transform(codes)
    peer = emit({"impl": "scikit-learn TSNE", **score("tsne", time.perf_counter() - start, codes, xy, labels)})
    umap_peer = fresh_umap("umap-learn", codes, labels)
    if umap_peer:
        emit(umap_peer)
    summary = {"tsne_speedup_vs_sklearn": round(peer["seconds"] / ours["seconds"], 2),
               "tsne_knn10_ours_minus_sklearn": round(ours["knn10_accuracy"] - peer["knn10_accuracy"], 4)}
    if umap_peer and rows["umap-aecore-warm"]:
        summary["umap_speedup_vs_fresh_umap_learn"] = round(umap_peer["seconds"]
                                                            / rows["umap-aecore-warm"]["seconds"], 2)
    emit(summary)
    if args.subsets:
        emit(subset_gaps(codes, labels, args.subsets, TSNE))


def subset_gaps(codes: np.ndarray, labels: np.ndarray, n: int, peer_cls, size: int = 5000) -> dict:
    """10-NN accuracy of our t-SNE minus scikit-learn's on ``n`` random subsets (seeds 0..n-1) of the codes."""
    gaps = []
    for seed in range(n):
        rows = np.random.default_rng(seed).choice(len(codes), min(size, len(codes)), replace=False)
        ours = knn_accuracy(project(codes[rows], "tsne"), labels[rows])
        peer = knn_accuracy(peer_cls(n_components=2, init="pca", random_state=0).fit_transform(codes[rows]),
                            labels[rows])
        gaps.append(ours - peer)
        emit({"subset": seed, "points": len(rows), "tsne_knn10_ours": round(ours, 4), "sklearn": round(peer, 4)})
    gaps = np.array(gaps)
    return {"subsets": n, "tsne_knn10_gap_mean": round(float(gaps.mean()), 5),
            "gap_sd": round(float(gaps.std(ddof=1)), 5) if n > 1 else None,
            "gap_standard_error": round(float(gaps.std(ddof=1) / np.sqrt(n)), 5) if n > 1 else None,
            "ours_ahead": int((gaps > 0).sum()), "level": int((gaps == 0).sum()), "ours_behind": int((gaps < 0).sum())}


if __name__ == "__main__":
    main()
