"""The seed recipe on full MNIST: 784-100-30 GELU, sigmoid/BCE, Adam lr 1e-3, batch 32, 10 epochs, the first 5,000
training images held out for validation. Prints one JSON line per measurement.

    AECORE_DATA_DIR=../shared/data python bench/seed_recipe.py [--peer-keras] [--seeds N] [--default-recipe]
                                                               [--zero-output-bias] [--peer-bias-from-data]
                                                               [--threads N]

--peer-keras runs the same recipe in tf.keras (bench/README.md says how to make its virtualenv) in the same run and
prints the ratio; --seeds N trains N seeds of each, alternating ours and the peer (ours first on even seeds, the
peer first on odd ones) so that both see the same machine load, and prints the ratio of the median times and the
mean validation BCEs; --default-recipe reports how long the app's default training takes to reach the tf.keras
recipe's mean 10-epoch validation BCE (or 0.0914 without --peer-keras). Ours starts its output bias at the logit of
each pixel's mean over the training images, as the app does; --zero-output-bias starts it at 0, as Keras's Dense
layer does; --peer-bias-from-data gives tf.keras our start. --threads N trains ours on N torch threads (torch's
default is one per core; the app's Train page uses one fewer than the machine has); tf.keras keeps its default.
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
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aecore import TrainSettings, build_model, evaluate, load_dataset, train  # noqa: E402
from aecore.registry import DEFAULT_MODEL, model_spec  # noqa: E402

KERAS_PYTHON = Path(__file__).resolve().parent / ".venv-keras" / "bin" / "python"


def split():
    ds = load_dataset("mnist")
    return ds.x_train[5000:], ds.x_train[:5000], ds.x_test


def run_ours(x_train, x_val, x_test, settings: TrainSettings, target: float | None = None) -> dict:
    model = build_model("stacked", {}, seed=settings.seed)
    reached = {}
    start = time.perf_counter()

    def watch(p):
        if target is not None and "t" not in reached and p.epoch_rows:
            val = p.epoch_rows[-1].get("val_reconstruction")
            if val is not None and val <= target:
                reached.update(t=time.perf_counter() - start, epoch=p.epoch_rows[-1]["epoch"])

    train(model, x_train, settings, x_val=x_val, callback=watch)
    seconds = time.perf_counter() - start
    out = {"impl": f"aecore (torch {torch.__version__}, {torch.get_num_threads()} threads)",
           "output_bias": "data mean" if settings.output_bias_from_data else "zero", "seconds": round(seconds, 2),
           "samples_per_s": round(settings.epochs * len(x_train) / seconds),
           "val_bce": round(evaluate(model, x_val)["bce"], 5), "test_bce": round(evaluate(model, x_test)["bce"], 5)}
    if target is not None:
        out.update(target_val_bce=target, seconds_to_target=round(reached["t"], 2) if reached else None,
                   epoch_reached=reached.get("epoch"))
    return out


def run_keras(data: Path, python: Path, seed: int = 0, bias_from_data: bool = False) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([str(python), str(Path(__file__).parent / "keras_recipe.py"), str(data), str(seed),
                          "bias" if bias_from_data else "zero"], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"tf.keras peer failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-keras", action="store_true", help="also run the recipe in tf.keras")
    ap.add_argument("--keras-python", type=Path, default=KERAS_PYTHON)
    ap.add_argument("--default-recipe", action="store_true", help="time the app's default to the peer's quality")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--zero-output-bias", action="store_true", help="start our output bias at 0, as Keras does")
    ap.add_argument("--peer-bias-from-data", action="store_true",
                    help="start tf.keras's output bias at the data's mean too (its default is 0)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 of each implementation, alternating")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for ours (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not os.environ.get("AECORE_DATA_DIR"):
        raise SystemExit("set AECORE_DATA_DIR to a folder with the MNIST IDX files (../shared/data here)")
    x_train, x_val, x_test = split()
    ours_runs, peer_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mnist.npz"
        if args.peer_keras:  # written once and synced: its 200 MB of writeback slowed the first timed run 1.5x
            with open(data, "wb") as f:
                np.savez(f, x_train=x_train, x_val=x_val, x_test=x_test)
                f.flush()
                os.fsync(f.fileno())
        for seed in range(args.seeds):
            recipe = TrainSettings(epochs=args.epochs, batch_size=32, lr=1e-3, seed=seed,
                                   output_bias_from_data=not args.zero_output_bias)
            turns = ["ours", "peer"] if seed % 2 == 0 else ["peer", "ours"]  # ABBA: a drifting machine favours no one
            for turn in turns if args.peer_keras else ["ours"]:
                if turn == "ours":
                    ours_runs.append({"seed": seed, **run_ours(x_train, x_val, x_test, recipe)})
                    print(json.dumps(ours_runs[-1]), flush=True)
                else:
                    peer_runs.append(run_keras(data, args.keras_python, seed, args.peer_bias_from_data))
                    print(json.dumps(peer_runs[-1]), flush=True)
    target = 0.0914
    if args.peer_keras:
        median = lambda runs, k: float(np.median([r[k] for r in runs]))  # noqa: E731
        mean = lambda runs, k: round(float(np.mean([r[k] for r in runs])), 5)  # noqa: E731
        print(json.dumps({"seeds": args.seeds,
                          "speedup_vs_keras": round(median(peer_runs, "seconds") / median(ours_runs, "seconds"), 2),
                          "speedup_per_seed": [round(p["seconds"] / o["seconds"], 2)
                                               for o, p in zip(ours_runs, peer_runs)],
                          "val_bce_ours": mean(ours_runs, "val_bce"), "val_bce_keras": mean(peer_runs, "val_bce"),
                          "test_bce_ours": mean(ours_runs, "test_bce"), "test_bce_keras": mean(peer_runs, "test_bce")}),
              flush=True)
        target = mean(peer_runs, "val_bce")
    if args.default_recipe:
        default = TrainSettings(epochs=30)  # the Train page's defaults, given epochs enough to get there
        assert model_spec(DEFAULT_MODEL).name == "stacked"
        print(json.dumps({"default_recipe": {k: getattr(default, k) for k in ("batch_size", "lr")},
                          **run_ours(x_train, x_val, x_test, default, target=target)}), flush=True)


if __name__ == "__main__":
    main()
