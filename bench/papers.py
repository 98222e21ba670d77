"""The papers' own numbers, reproduced from their presets on full MNIST (issue 18): Hinton & Salakhutdinov's deep
autoencoder, Makhzani & Frey's k-sparse features, Rifai et al.'s contractive autoencoder. Each recipe trains its run
through the job system, then runs its stage (test reconstruction error, or the paper's classifier), and prints its
figure beside the paper's, with the seconds of each part. One JSON line per recipe, then a Markdown table.

    AECORE_DATA_DIR=../shared/data python bench/papers.py [hinton k-sparse contractive] [--full]
        [--run NAME=RUN_ID ...] [--runs-dir DIR]

``--full`` trains for the paper's own length where it is longer than the 20-minute budget version; ``--run`` takes
a saved run of the recipe's network (its training seconds are the record's) instead of training one.
The same recipe from the command line: ``python -m aecore paper NAME [--full]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aecore import RunStore, load_dataset  # noqa: E402
from aecore.papers import PAPERS, paper_recipe, reproduce  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(PAPERS), help=f"recipes (default: {' '.join(PAPERS)})")
    parser.add_argument("--full", action="store_true", help="the paper's training length")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN_ID",
                        help="stage only, on a saved run of recipe NAME")
    parser.add_argument("--runs-dir", help="run store (default: the user's)")
    args = parser.parse_args()
    saved = dict(pair.split("=", 1) for pair in args.run)
    store, dataset = RunStore(args.runs_dir), load_dataset("mnist")
    rows, shown = [], {}

    def progress(part: str, fraction: float) -> None:
        """One stderr line per 5% of each part, with the time."""
        tenth = int(fraction * 20)
        if shown.get(part, -1) < tenth:
            shown[part] = tenth
            print(f"{time.strftime('%H:%M:%S')} {part} {fraction:.0%}", file=sys.stderr, flush=True)

    for name in args.names:
        shown.clear()
        recipe = paper_recipe(name)
        start = time.perf_counter()
        out = reproduce(recipe, dataset, store, full=args.full, run_id=saved.get(name), progress=progress)
        out["wall_seconds"] = round(time.perf_counter() - start, 1)
        out["version"] = "saved run" if name in saved else ("full" if args.full else "budget")
        print(json.dumps(out), flush=True)
        rows.append((recipe, out))
    print("\n| recipe | figure | paper | train s | stage s | settings |\n| --- | --- | --- | --- | --- | --- |")
    for recipe, out in rows:
        s = out["settings"]
        print(f"| {recipe.key} ({recipe.metric}) | {recipe.figure_text(out['figure'])} | {recipe.figure_text()} | "
              f"{out['train_seconds']:.0f} | {out['stage_seconds']:.0f} | {s['epochs']} epochs, batch "
              f"{s['batch_size']}, lr {s['lr']} {s['lr_schedule']} |")


if __name__ == "__main__":
    main()
