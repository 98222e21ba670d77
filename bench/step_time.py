"""Milliseconds per batch-32 step of the seed recipe: the tape-free step against the same step through autograd,
interleaved so that both see the same machine load. Prints one JSON line.

    python bench/step_time.py [--rounds 5] [--steps 1500]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aecore import build_model  # noqa: E402
from aecore.models.base import Autoencoder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=1500)
    args = ap.parse_args()
    model = build_model("stacked", {}, seed=0)
    opt = model.configure_optimizers(1e-3, torch.device("cpu"))
    x = torch.rand(args.steps * 32, 784)

    def ms_per_step(step) -> float:
        start = time.perf_counter()
        for i in range(args.steps):
            step(x[i * 32:(i + 1) * 32], opt)
        return (time.perf_counter() - start) / args.steps * 1e3

    tape_free = model.training_step
    autograd = lambda xb, o: Autoencoder.training_step(model, xb, o)  # noqa: E731
    ms_per_step(tape_free), ms_per_step(autograd)  # warm up
    pairs = [(ms_per_step(tape_free), ms_per_step(autograd)) for _ in range(args.rounds)]
    ratios = sorted(b / a for a, b in pairs)
    print(json.dumps({"torch_threads": torch.get_num_threads(),
                      "tape_free_ms": [round(a, 3) for a, _ in pairs], "autograd_ms": [round(b, 3) for _, b in pairs],
                      "median_speedup": round(ratios[len(ratios) // 2], 3)}))


if __name__ == "__main__":
    main()
