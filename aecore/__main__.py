"""Command line: ``python -m aecore list | train | eval | probe | sample | interpolate | prepare-talk``."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from . import data as data_mod
from .config import ConfigError, check_ranges, coerce
from .data import DatasetError, list_datasets, load_dataset
from .jobs import TrainingJob
from .analysis import denoising_scores
from .noise import LEVEL_HELP, NOISE_KINDS
from .registry import list_models, model_spec, steps
from .store import RunStore, RunStoreError
from .training import LR_SCHEDULES, PRECISIONS, TrainSettings, pick_device


MAX_SAMPLES = 10_000  # what `sample` draws and `eval` scores at most in one call (MNIST's test set)


def _cmd_list(args, store: RunStore) -> int:
    print("models:")
    for name in list_models():
        spec = model_spec(name)
        presets = f"  presets: {', '.join(spec.presets)}" if spec.presets else ""
        print(f"  {name:10s} {spec.summary}{presets}")
    from .papers import PAPERS
    print("paper recipes (python -m aecore paper NAME):")
    for recipe in PAPERS.values():
        print(f"  {recipe.key:12s} {recipe.model}, preset {recipe.preset!r}: {recipe.metric}, paper "
              f"{recipe.figure_text()}")
    print("datasets:")
    for name in list_datasets():
        info = data_mod.dataset_info(name)
        where = "embedded" if info.offline else ("available" if data_mod.is_available_offline(name)
                                                 else "downloads on first use")
        print(f"  {name:14s} {info.title} [{where}]")
    print(f"runs (in {store.root}):")
    runs = store.list()
    for r in runs:
        print(f"  {r.id}  {r.record.label}" if r.record else f"  {r.id}  DAMAGED: {r.error}")
    if not runs:
        print("  (none yet)")
    return 0


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set takes key=value, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


POLL_S = 0.5  # seconds between looks at a training job's progress


def _cmd_train(args, store: RunStore) -> int:
    from tqdm import tqdm
    spec = model_spec(args.model)
    config = dict(spec.presets[args.preset]) if args.preset else {}
    config.update(_parse_sets(args.set))
    settings = coerce(TrainSettings, {**spec.train_defaults, **{k: v for k, v in {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "lr_schedule": args.lr_schedule,
        "precision": args.precision, "seed": args.seed,
        "greedy": args.greedy, "greedy_epochs": args.greedy_epochs,
        "output_bias_from_data": args.output_bias_from_data}.items() if v is not None}})
    given = {"lr": ("--lr", args.lr), "lr_schedule": ("--lr-schedule", args.lr_schedule),
             "output_bias_from_data": ("--zero-output-bias", args.output_bias_from_data)}
    for key, why in spec.builder.settings_unused().items():  # taken, and ignored: said, as the Train page says it
        flag, value = given.get(key, ("", None))
        if value is not None:
            print(f"note: {flag} is ignored, {why}", file=sys.stderr)
    settings = TrainSettings(**settings)
    check_ranges(settings)  # the Train page's ranges, before anything loads or runs
    pick_device(args.device)
    known = _known_modality(args.dataset)
    if known not in (None, spec.capabilities.modality):
        raise ConfigError(f"{args.model} works on {spec.capabilities.modality}; {args.dataset} is {known}")
    dataset = load_dataset(args.dataset)
    size = len(getattr(dataset, "x_train", ()))
    enough = spec.epochs_for(settings.epochs, size, settings.batch_size)
    if enough > settings.epochs:  # as the Train page says it; what was asked is trained
        word, verb = ("epoch", "is") if settings.epochs == 1 else ("epochs", "are")
        print(f"note: {settings.epochs} {word} of {size:,} training images {verb} "
              f"{steps(settings.epochs, size, settings.batch_size):,} steps; a {args.model} shows what it "
              f"learns after about {spec.min_steps:,} (--epochs {enough})", file=sys.stderr)
    job = TrainingJob(args.model, config, dataset, settings, store=store, device=args.device)
    job.start()
    # a terminal gets a live bar; a log or a pipe one line an epoch (the bar, redrawn twice a second, wrote 600
    # copies of itself into a log over a 5-minute run)
    live, shown_epoch = sys.stderr.isatty(), None
    bar = tqdm(total=1, unit="step", file=sys.stderr, dynamic_ncols=True) if live else None
    try:
        while not job.join(timeout=POLL_S):
            p = job.progress()
            if not p.total_steps:
                continue
            losses = {k: f"{v:.4f}" for k, v in p.losses.items()}
            if bar is not None:
                bar.total = p.total_steps
                bar.n = p.step
                bar.set_description(f"{p.phase} epoch {p.epoch}/{p.epochs}")
                bar.set_postfix(losses, refresh=False)
                bar.refresh()
            elif p.epoch != shown_epoch:
                shown_epoch = p.epoch
                print(f"{p.phase} epoch {p.epoch}/{p.epochs}, step {p.step}/{p.total_steps}: "
                      + ", ".join(f"{k} {v}" for k, v in losses.items()), file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # stop after this step, keep the weights, save the run as stopped
        print("\nstopping: the run is saved as it is…", file=sys.stderr)
        job.stop()
        job.join()
    p = job.progress()
    if bar is not None:
        bar.n = p.step
        bar.close()
    if p.status not in ("finished", "stopped"):
        print(f"training {p.status}: {p.message}", file=sys.stderr)
    elif p.message:  # stopped at a step; a GAN's samples left unscored
        print(p.message, file=sys.stderr)
    if job.record is None:  # not saved: the message above says why
        return 2 if job.refused else 1  # refused settings are a bad argument
    print(json.dumps({"run": job.run_id, "status": p.status, "seconds": round(job.record.seconds, 2),
                      **{f"test_{k}": v for k, v in job.record.metrics.items()}}), file=sys.stderr)
    print(job.run_id)
    return 0 if p.status in ("finished", "stopped") else 1


def _known_modality(name: str) -> str | None:
    """A named dataset's modality, known without loading it (PTB for an image run was downloaded first); None for a
    file, or a name :func:`load_dataset` will refuse."""
    try:
        return data_mod.dataset_info(name).modality
    except KeyError:
        return None


def _run_and_dataset(args, store: RunStore, **needs: bool):
    """The saved run ``args.run`` and the dataset to score it on (its own unless ``--dataset``), which must suit
    it; ``needs`` are capabilities the command needs (``reconstructs=True``)."""
    record = store.record(args.run)
    name = args.dataset or record.dataset
    lacks = model_spec(record.model).capabilities.lacks(_known_modality(name), **needs)
    if lacks:
        raise ConfigError(f"run {args.run} ({record.model}) {' and '.join(lacks)}")
    dataset = load_dataset(name)
    lacks = model_spec(record.model).capabilities.lacks(dataset.modality, **needs)
    if lacks:
        raise ConfigError(f"run {args.run} ({record.model}) {' and '.join(lacks)}")
    model, record = store.load(args.run)
    if dataset.modality == "text":  # the run's own vocabulary, which travels with it
        dataset = dataset.with_vocab(store.artifact(args.run, "vocab"))
    if record.config.get("input_shape") and tuple(record.config["input_shape"]) != tuple(
            dataset.model_inputs().get("input_shape", ())):
        raise ConfigError(f"run {args.run} takes {model.config.input_dim}-pixel images; {dataset.name} has "
                          f"{dataset.input_dim}")
    return model, record, dataset


def _bar(desc: str):
    from tqdm import tqdm
    bar = tqdm(total=100, unit="%", desc=desc, file=sys.stderr, leave=False)
    return bar, lambda f: bar.update(max(0, round(100 * f) - bar.n))


def _check_eval_args(args) -> None:
    """The eval flags' ranges, before the run loads (an importance-weighted pass took 21 s before a bad --samples
    was refused)."""
    if args.iw_samples is not None and args.iw_samples < 1:
        raise ConfigError("--iw-samples must be at least 1")
    if args.samples is not None and not 2 <= args.samples <= MAX_SAMPLES:
        raise ConfigError(f"--samples must be between 2 and {MAX_SAMPLES:,}")
    if args.noise and (args.noise_level is None or not 0 <= args.noise_level <= 1):
        raise ConfigError("--noise needs --noise-level between 0 and 1")


def _cmd_eval(args, store: RunStore) -> int:
    _check_eval_args(args)
    model, record, dataset = _run_and_dataset(args, store, reconstructs=bool(args.noise))
    caps = model_spec(record.model).capabilities
    if args.noise and caps.modality != "image":
        raise ConfigError("--noise corrupts images; this run works on text")
    if caps.posterior:
        # sentences: off unless asked, each sample being a full pass of the decoder
        k = args.iw_samples if args.iw_samples is not None else (500 if caps.modality == "image" else 0)
        bar, report = _bar(f"test set{f', importance-weighted NLL with {k} samples each' if k else ''}")
        metrics = model.evaluate(dataset, iw_samples=k, progress=report)
        bar.close()
    else:
        metrics = model.evaluate(dataset)
    out = {"run": args.run, "model": record.model, "dataset": dataset.name,
           **{k if k in ("n", "iw_samples") else f"test_{k}": v for k, v in metrics.items()}}
    if caps.samples and caps.modality == "image" and data_mod.classifiable(dataset):
        out.update(_sample_scores(model, dataset, store, args.samples or min(len(dataset.x_test), MAX_SAMPLES),
                                  args.seed))
    if args.noise:
        scores = denoising_scores({"run": model}, dataset.x_test, args.noise, args.noise_level, seed=args.seed)
        out.update(noise=args.noise, noise_level=args.noise_level,
                   psnr_noisy_input=float(scores["psnr"]["noisy input"].mean()),
                   psnr_output=float(scores["psnr"]["run"].mean()))
    print(json.dumps(out))
    return 0


def _sample_scores(model, dataset, store: RunStore, n: int, seed: int) -> dict:
    """The classifier scores of ``n`` samples (the classifier is trained on first use, with a progress bar)."""
    from .scores import classifier_for, classify, draw_samples, sample_scores
    if n < 2:
        raise ConfigError("--samples must be at least 2")
    bar, report = _bar(f"{data_mod.classifier_noun(dataset)} for {dataset.name} (trained once, then cached)")
    clf, info = classifier_for(dataset, store.root, progress=report)
    bar.close()
    scores = sample_scores(clf, draw_samples(model, n, seed, dataset), classify(clf, dataset.x_test)[0])
    return {**scores, "samples": n, "classifier_test_accuracy": info["test_accuracy"]}


def _decoding(args) -> dict:
    if args.width < 1:
        raise ConfigError("--width must be at least 1")
    if not args.temperature > 0:
        raise ConfigError("--temperature must be above 0")
    return {"method": args.decode, "width": args.width, "temperature": args.temperature}


def _cmd_sample(args, store: RunStore) -> int:
    from .scores import draw_samples
    from .viz import mosaic
    if not 1 <= args.n <= MAX_SAMPLES:
        raise ConfigError(f"--n must be between 1 and {MAX_SAMPLES:,}")
    if model_spec(store.record(args.run).model).capabilities.modality == "text":
        return _sample_sentences(args, store)
    if not args.out:
        raise ConfigError("--out FILE.png or FILE.npy is needed for image samples")
    suffix = Path(args.out).suffix.lower()
    if suffix not in (".png", ".npy"):
        raise ConfigError(f"--out must end in .png (a grid) or .npy (an (N, H*W) array), got {args.out!r}")
    model, record, dataset = _run_and_dataset(args, store, samples=True)
    samples = draw_samples(model, args.n, args.seed, dataset)
    try:
        if suffix == ".npy":
            np.save(args.out, samples)
        else:
            from PIL import Image
            ncols = int(np.ceil(np.sqrt(args.n)))
            Image.fromarray(mosaic(samples, dataset.image_shape, ncols=ncols, scale=2)).save(args.out)
    except OSError as e:
        raise ConfigError(f"cannot write {args.out}: {e}") from e
    print(json.dumps({"run": args.run, "n": args.n, "seed": args.seed, "out": args.out, "shape": list(samples.shape)}))
    return 0


def _sample_sentences(args, store: RunStore) -> int:
    """Sentences from a text model's prior, one JSON line each."""
    import torch
    from .text import words_of
    decoding = _decoding(args)
    model, record = store.load(args.run)
    vocab = store.artifact(args.run, "vocab")
    rows = model.sample(args.n, torch.Generator().manual_seed(args.seed), **decoding)
    for ids in rows:
        print(json.dumps({"sentence": words_of(ids, vocab)}))
    return 0


def _cmd_interpolate(args, store: RunStore) -> int:
    """Bowman's homotopy between two sentences, one JSON line per step."""
    from .text import homotopy
    record = store.record(args.run)
    if model_spec(record.model).capabilities.lacks("text", encodes=True):
        raise ConfigError(f"run {args.run} ({record.model}) cannot interpolate between sentences: it needs a "
                          f"sentence model with an encoder (sentence-vae)")
    if args.steps < 2 or args.steps > 100:
        raise ConfigError("--steps must be between 2 and 100")
    decoding = _decoding(args)
    model, _ = store.load(args.run)
    for row in homotopy(model, store.artifact(args.run, "vocab"), args.first, args.second, args.steps,
                        seed=args.seed, mode=args.mode, **decoding):
        print(json.dumps(row))
    return 0


def _decoding_args(p) -> None:
    from .models.sentence_vae import DECODINGS
    p.add_argument("--decode", choices=DECODINGS, default="greedy", help="sentences: how words are chosen")
    p.add_argument("--width", type=int, default=5, help="beam width (--decode beam)")
    p.add_argument("--temperature", type=float, default=1.0, help="--decode sample: below 1 sharper, above flatter")


MAX_PROBE_SEEDS, MAX_PROBE_STEPS = 5, 100_000  # --seeds 0 gave no rows, --steps -5 a network of one step


def _cmd_probe(args, store: RunStore) -> int:
    from tqdm import tqdm
    from .probe import few_label_experiment
    if not 1 <= args.seeds <= MAX_PROBE_SEEDS:  # the Few labels page's range
        raise ConfigError(f"--seeds must be between 1 and {MAX_PROBE_SEEDS}")
    if not 1 <= args.steps <= MAX_PROBE_STEPS:
        raise ConfigError(f"--steps must be between 1 and {MAX_PROBE_STEPS:,}")
    record = store.record(args.run)
    if model_spec(record.model).capabilities.modality != "image":  # it gave an AttributeError's traceback
        raise ConfigError(f"probe classifies labelled images from a run's codes; run {args.run} ({record.model}) "
                          f"works on {model_spec(record.model).capabilities.modality}")
    model, record, dataset = _run_and_dataset(args, store, encodes=True)
    if not data_mod.classifiable(dataset):
        raise ConfigError(f"{dataset.name} has one class: few-label classification needs images of two or more")
    per_class = []
    for part in args.labels_per_class.split(","):
        part = part.strip()
        if part == "all":
            per_class.append(None)
        elif part.isdigit() and int(part) > 0:
            per_class.append(int(part))
        else:
            raise ConfigError(f"--labels-per-class takes positive whole numbers or 'all', got {part!r}")
    bar = tqdm(total=100, unit="%", file=sys.stderr)
    rows = few_label_experiment(model, dataset, per_class, seeds=args.seeds, steps=args.steps,
                                progress=lambda f: bar.update(round(100 * f) - bar.n))
    bar.close()
    print(json.dumps({"run": args.run, "dataset": dataset.name, "rows": rows}))
    return 0


def _cmd_prepare_talk(args, store: RunStore) -> int:
    """Train every talk preset's runs that the store lacks, printing how long each preset took."""
    from .talk import TALK_PRESETS, prepare_talk
    unknown = [k for k in args.only if k not in TALK_PRESETS]
    if unknown:
        raise ConfigError(f"unknown preset(s) {unknown}; valid: {list(TALK_PRESETS)}")
    modality = _known_modality(args.dataset)
    if modality in (None, "image"):
        dataset = load_dataset(args.dataset)
        modality = dataset.modality
    if modality != "image":
        raise ConfigError(f"--dataset is the image dataset of the image presets; {args.dataset} is {modality}")
    keys = args.only or list(TALK_PRESETS)
    rows = prepare_talk(dataset, load_dataset, store, report=lambda line: print(line, file=sys.stderr),
                        force=args.force, keys=keys)
    for row in rows:
        print(json.dumps(row))
    return 0 if not any(r["failed"] for r in rows) else 1


def _cmd_paper(args, store: RunStore) -> int:
    """Reproduce a paper's figure from its preset: train (or take ``--run``), run the classifier stage, print the
    figure beside the paper's as one JSON line."""
    from tqdm import tqdm
    from .papers import check_run, paper_recipe, reproduce
    recipe = paper_recipe(args.name)
    pick_device(args.device)
    name = args.dataset or recipe.dataset
    if args.run:  # a run that is not there, or not the recipe's, is said before the dataset loads
        record = store.record(args.run)
        name = args.dataset or record.dataset
        check_run(recipe, record, name)
    not_labelled = ConfigError(f"--dataset must be a labelled image dataset; {name} is not")
    if _known_modality(name) not in (None, "image"):
        raise not_labelled
    dataset = load_dataset(name)
    if getattr(dataset, "modality", "image") != "image" or not len(getattr(dataset, "y_train", ())):
        raise not_labelled
    bars: dict[str, tqdm] = {}

    def progress(part: str, fraction: float) -> None:
        bar = bars.get(part) or bars.setdefault(part, tqdm(total=100, unit="%", desc=part, file=sys.stderr))
        bar.update(max(0, round(100 * fraction) - bar.n))

    print(f"{recipe.key}: {recipe.metric}; paper {recipe.figure_text()} ({recipe.source})", file=sys.stderr)
    try:
        result = reproduce(recipe, dataset, store, full=args.full, run_id=args.run, device=args.device,
                           progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    if not result["comparable"]:
        print(f"note: the paper measured on {recipe.dataset}; this figure is on {dataset.name}, so the two do not "
              f"compare", file=sys.stderr)
    print(json.dumps({**result, "version": "full" if args.full else ("saved run" if args.run else "budget")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aecore", description="Train and inspect autoencoders.")
    parser.add_argument("--runs-dir", help="run store folder (default: $AECORE_RUNS_DIR or the user data folder)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="models, datasets and saved runs")
    t = sub.add_parser("train", help="train a model, save the run and print its id")
    t.add_argument("model", help="model name (see `list`)")
    t.add_argument("--dataset", default=data_mod.DEFAULT_DATASET,
                   help="a dataset name (see `list`), or for sentence models a UTF-8 text file, one sentence a line")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--lr-schedule", choices=LR_SCHEDULES, help="constant (default) or cosine decay to 0")
    t.add_argument("--precision", choices=PRECISIONS,
                   help="float32 (default for most models), bfloat16 mixed precision, or auto: bfloat16 where the "
                        "device has it natively")
    t.add_argument("--seed", type=int)
    t.add_argument("--preset", help="a named preset of the model (see `list`)")
    t.add_argument("--greedy", action="store_true", default=None, help="greedy layer-wise pretraining first")
    t.add_argument("--greedy-epochs", type=int)
    t.add_argument("--zero-output-bias", dest="output_bias_from_data", action="store_false", default=None,
                   help="start the output bias at 0 (as Keras does) instead of at the training images' mean")
    t.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a model hyperparameter")
    e = sub.add_parser("eval", help="print test metrics of a saved run as one JSON line")
    e.add_argument("run")
    e.add_argument("--dataset", help="evaluate on another dataset of the same image size")
    e.add_argument("--noise", choices=NOISE_KINDS, help="also corrupt the test set and report PSNR (dB) of the "
                                                       "model's output and of the noisy input against the clean images")
    e.add_argument("--noise-level", type=float, help=LEVEL_HELP)
    e.add_argument("--seed", type=int, default=0, help="seed of the test-set noise and of the samples scored")
    e.add_argument("--iw-samples", type=int,
                   help="models with a posterior: samples per input of the importance-weighted NLL (default: 500 "
                        "for images; off for sentences)")
    e.add_argument("--samples", type=int, help="models that sample: how many to score (default: the test set's size)")
    pr = sub.add_parser("probe", help="few-label classification from the run's encoder vs. from scratch and PCA (JSON)")
    pr.add_argument("run")
    pr.add_argument("--labels-per-class", default="1,5,10,50,100,all", help="comma-separated, 'all' for every label")
    pr.add_argument("--seeds", type=int, default=3, help="random labelled subsets per point")
    pr.add_argument("--steps", type=int, default=300,
                    help="optimiser steps for the networks trained on the labels (at least 5 passes over them)")
    pr.add_argument("--dataset", help="another dataset of the same image size")
    s = sub.add_parser("sample", help="N samples of a run that samples: images to a .png grid or an (N, H*W) .npy "
                                      "array; sentences printed, one JSON line each")
    s.add_argument("run")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="images: FILE.png or FILE.npy")
    s.add_argument("--dataset", help="the dataset a plain autoencoder fits its code density on (default: its own)")
    _decoding_args(s)
    s.set_defaults(decode="sample")
    i = sub.add_parser("interpolate", help="a sentence VAE's homotopy between two sentences, one JSON line per step")
    i.add_argument("run")
    i.add_argument("first")
    i.add_argument("second")
    i.add_argument("--steps", type=int, default=7)
    i.add_argument("--mode", choices=("linear", "slerp"), default="linear", help="the path between the two codes")
    i.add_argument("--seed", type=int, default=0, help="--decode sample: the seed of the draws")
    _decoding_args(i)
    pa = sub.add_parser("paper", help="reproduce a paper's figure from its preset (hinton, k-sparse, contractive): "
                                      "train, then the paper's classifier stage; prints it beside the paper's (JSON)")
    pa.add_argument("name", help="hinton, k-sparse or contractive")
    pa.add_argument("--dataset", help="a labelled image dataset (default: the run's with --run, else full MNIST, "
                                      "as the papers used)")
    pa.add_argument("--full", action="store_true", help="the paper's own training length instead of the 20-minute "
                                                      "budget version")
    pa.add_argument("--run", help="a saved run of the recipe's network: skip training, run the stage on it")
    pa.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    pt = sub.add_parser("prepare-talk", help="train every talk preset's runs ahead of time (the Home page's gallery); "
                                             "prints the seconds each took")
    pt.add_argument("--dataset", default=data_mod.DEFAULT_DATASET, help="the image dataset of the image presets")
    pt.add_argument("--only", type=lambda v: [k for k in v.split(",") if k], default=[],
                    help="comma-separated preset keys (default: all)")
    pt.add_argument("--force", action="store_true", help="train again runs that are already in the store")
    args = parser.parse_args(argv)
    store = RunStore(args.runs_dir)
    try:
        if args.command == "train" and args.preset and args.preset not in model_spec(args.model).presets:
            raise ConfigError(f"unknown preset {args.preset!r}; valid: {list(model_spec(args.model).presets)}")
        if getattr(args, "seed", None) is not None and args.command != "train":  # train checks its settings
            check_ranges(TrainSettings(seed=args.seed))  # the seeds the UI and `train` take
        commands = {"list": _cmd_list, "train": _cmd_train, "eval": _cmd_eval, "probe": _cmd_probe,
                    "sample": _cmd_sample, "interpolate": _cmd_interpolate, "prepare-talk": _cmd_prepare_talk,
                    "paper": _cmd_paper}
        return commands[args.command](args, store)
    except (ConfigError, DatasetError, RunStoreError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C
        print("interrupted", file=sys.stderr)
        return 130


def _interrupt(signum, frame) -> None:
    """The first Ctrl-C or SIGTERM interrupts the command; later ones are ignored while it saves and prints the run
    (`timeout` signals the command, then its group: the second signal ended it with "interrupted", or with status
    -15 after it had printed the run's id)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_cli() -> int:
    """``main`` as a process runs it: SIGTERM (``kill``, ``timeout``, a scheduler) stops as Ctrl-C does, saving a
    run in training as stopped, where it killed the process and lost the run; a reader that goes away
    (``list | head``) stops the output quietly, as shell tools do, instead of a BrokenPipeError traceback."""
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT is ignored (a background job)
        signal.signal(signal.SIGINT, _interrupt)
    try:
        code = main()
        sys.stdout.flush()  # here rather than at exit, where the error could not be caught
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 1


if __name__ == "__main__":
    sys.exit(run_cli())
