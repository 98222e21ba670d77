"""The sentence VAE's two measured goals (issue 15), through aecore's job system, each run timed.

- ``grammar``: train ``sentence-vae`` on the built-in grammar corpus, then over 50 held-out pairs of test sentences
  decode a 7-step homotopy each: the share of steps that parse under the grammar, and the share of endpoints that
  reconstruct exactly (greedy decoding of the posterior mean).
- ``ptb-small``: train ``sentence-vae`` and ``sentence-lm`` the same way (same epochs, batch, learning rate, seed) and
  print their test ``nll``, ``ppl``, ``kl`` and ``active_units``.

    AECORE_DATA_DIR=../shared/data python bench/sentence_vae.py [grammar] [ptb-small] [--epochs N] [--batch-size B]
        [--lr LR] [--preset NAME] [--set k=v ...]

Prints one JSON line per run and per score.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aecore import RunStore, TrainSettings, TrainingJob, load_dataset, model_spec  # noqa: E402
from aecore.text import homotopy, parses  # noqa: E402


def train(model: str, data, epochs: int, sets: dict, batch: int, lr: float):
    job = TrainingJob(model, sets, data, TrainSettings(epochs=epochs, batch_size=batch, lr=lr, seed=0),
                      store=RunStore("/tmp/aecore-bench-runs"))
    job.start().join()
    rec = job.record
    metrics = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in rec.metrics.items() if k != "kl_per_dim"}
    print(json.dumps({"dataset": data.name, "model": model, "run": rec.id, "epochs": epochs, "batch_size": batch,
                      "config": sets, "seconds": round(rec.seconds, 1), **metrics}), flush=True)
    return job.view_model(), rec


def grammar_scores(model, data, pairs: int = 50, steps: int = 7) -> dict:
    rng = np.random.default_rng(1)
    test = [data.decode(row) for row in data.test_tokens]
    picks = rng.choice(len(test), size=(pairs, 2), replace=False)
    parsed, exact, examples = 0, 0, []
    for a, b in picks:
        path = homotopy(model, data.vocab, test[a], test[b], steps)
        parsed += sum(parses(p["sentence"]) for p in path)
        exact += (path[0]["sentence"] == test[a]) + (path[-1]["sentence"] == test[b])
        if len(examples) < 3:
            examples.append([p["sentence"] for p in path])
    return {"pairs": pairs, "steps": steps, "homotopy_steps_parsing": round(parsed / (pairs * steps), 3),
            "endpoints_exact": round(exact / (2 * pairs), 3), "examples": examples}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpora", nargs="*", default=["grammar", "ptb-small"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--preset", help="a sentence-vae preset (see `python -m aecore list`)")
    ap.add_argument("--set", action="append", default=[], help="a sentence-vae hyperparameter, key=value")
    args = ap.parse_args()
    sets = dict(model_spec("sentence-vae").presets[args.preset]) if args.preset else {}
    sets.update(s.split("=", 1) for s in args.set)
    for corpus in args.corpora:
        data = load_dataset(corpus)
        model, _ = train("sentence-vae", data, args.epochs, sets, args.batch_size, args.lr)
        if corpus == "grammar":
            print(json.dumps({"dataset": corpus, **grammar_scores(model, data)}), flush=True)
        else:
            lm_sets = {k: v for k, v in sets.items() if k in ("cell", "embedding_size", "hidden_size")}
            train("sentence-lm", data, args.epochs, lm_sets, args.batch_size, args.lr)


if __name__ == "__main__":
    main()
