"""Talk presets: ready setups a speaker opens with one click, each a page with the runs it shows, trained ahead
of time (``python -m aecore prepare-talk``) or on first use. A preset's runs are found in the store by their
recipe, so a run trained for the talk is reused by every session and after a restart."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .compare import COMPARE_PRESETS, CompareJob, Contender
from .data import DataSource, classifiable, dataset_info
from .recipe import Recipe
from .registry import model_spec
from .scores import classifier_for
from .store import RunStore
from .training import TrainSettings


@dataclass(frozen=True)
class TalkPreset:
    """``runs`` trained with ``settings`` (each contender may change some) on ``dataset`` (None: the image dataset
    in use), shown on ``page`` with the share-link values ``view`` ("{runs}" becomes the runs' ids, "{run}" the
    first's). ``look_for`` says what the audience should see."""

    key: str
    title: str
    look_for: str
    page: str
    runs: tuple[Contender, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    view: dict[str, str] = field(default_factory=dict)
    modality: str = "image"
    scored: bool = False  # its page scores samples with the dataset's digit classifier: trained with the runs

    def dataset_for(self, image_dataset: str) -> str:
        return self.dataset or image_dataset

    def contenders(self, dataset: str | None = None) -> list[Contender]:
        """The runs, each with its settings in full: the family's training defaults, then the preset's, then its
        own; on ``dataset``, epochs enough for the steps its family needs (``min_steps``: a GAN given 10 epochs of
        the embedded 4,000 digits took 630 steps and drew blobs, bench/README)."""
        out = []
        for c in self.runs:
            spec = model_spec(c.model)
            settings = {**spec.train_defaults, **self.settings, **c.settings}
            if dataset and spec.min_steps:
                settings["epochs"] = spec.epochs_for(settings.get("epochs", TrainSettings.epochs), _train_size(dataset),
                                                     settings.get("batch_size", TrainSettings.batch_size))
            out.append(dataclasses.replace(c, settings=settings))
        return out

    def recipes(self, image_dataset: str) -> list[Recipe]:
        dataset = self.dataset_for(image_dataset)
        return [Recipe.make(c.model, dataset, c.config, c.settings) for c in self.contenders(dataset)]

    def find_runs(self, store: RunStore, dataset: str, since: float = 0.0) -> list[str | None]:
        """The newest finished run of each recipe in ``store`` created at ``since`` or later, or of it trained for
        more epochs (None where there is none)."""
        records = [e.record for e in store.list() if e.record is not None and e.record.status == "finished"
                   and e.record.created >= since]
        return [next((r.id for r in records if recipe.served_by(r)), None) for recipe in self.recipes(dataset)]

    def link(self, run_ids: list[str]) -> dict[str, str]:
        """The share-link values that open this preset's view of ``run_ids``."""
        fill = {"{runs}": ",".join(run_ids), "{run}": run_ids[0] if run_ids else ""}
        return {k: fill.get(v, v) for k, v in {"run": "{run}", **self.view}.items()}

    def trainer(self, dataset: DataSource, store: RunStore, since: float = 0.0) -> CompareJob:
        """A job that trains the preset's runs the store lacks (those created before ``since`` count as lacking)."""
        found = self.find_runs(store, dataset.name, since)
        todo = [c for c, rid in zip(self.contenders(dataset.name), found) if rid is None]
        return CompareJob(todo, dataset, TrainSettings(**{**self.settings}), store=store)


_SPARSE = COMPARE_PRESETS["sparse coding, five ways"]
TALK_PRESETS: dict[str, TalkPreset] = {p.key: p for p in (
    TalkPreset("seed-recipe", "The seed recipe",
               "A 784-100-30 GELU autoencoder (sigmoid output, BCE, Adam, batch 32). Look for: reconstructions that "
               "keep each digit's identity from 30 numbers, and which digits it gets wrong (worst first).",
               "pages/reconstructions.py", (Contender("seed recipe", "stacked"),), {"epochs": 10},
               view={"order": "worst first"}),
    TalkPreset("sparse-coding", "Sparse coding, five ways",
               "One layer of 196 units trained five ways on the same data and seed. Look for: the plain and the "
               "L2 autoencoder's filters are specific to no digit; KL-sparse's become specific to digits (whole-"
               "digit templates on the 4,000 embedded digits, strokes with full MNIST and many epochs); neural "
               "sparse coding's atoms in use become clean strokes and digit parts, the unused ones stay noise; "
               "k-sparse's units pick out pen strokes.",
               "pages/compare.py", tuple(_SPARSE), {"epochs": 10},
               view={"preset": "sparse coding, five ways", "epochs": "10", "runs": "{runs}"}),
    TalkPreset("denoising", "The denoising demo",
               "A plain autoencoder and a denoising one (trained on digits with half their pixels masked) clean "
               "the same corrupted digits. Look for: the denoising one's PSNR above the noisy input's and the "
               "plain one's.",
               # Vincent's masking, not the family's dropout: the plain one fails on masked digits and not on
               # dropout's, whose kept pixels are scaled (full MNIST, 3 epochs: 18.0 against 13.9 dB, and 18.1
               # against 16.5 on dropout; 10 epochs on the embedded digits: 16.8 against 16.0 on dropout)
               "pages/denoising.py", (Contender("denoising", "denoising", {"noise": "masking", "noise_level": 0.5}),
                                      Contender("plain", "stacked")),
               {"epochs": 10}, view={"runs": "{runs}", "noise": "masking", "level": "0.5"}),
    TalkPreset("manifold", "A 2-D latent manifold",
               "A VAE with a 2-D code: every point of the plane decodes to a digit. Look for: the whole manifold as "
               "a grid, one digit morphing into the next, and two levers that move along it.",
               "pages/generate.py", (Contender("2-D VAE", "vae", {"latent_size": 2, "hidden": (512, 256)}),),
               {"epochs": 30}, view={"view": "Levers"}),
    TalkPreset("samples", "Samples side by side",
               "New digits from an autoencoder (codes drawn from a Gaussian fitted to its codes), a VAE (its prior) "
               "and a GAN (its noise), scored by a digit classifier. Look for: which family's samples look like "
               "digits of every class.",
               "pages/generate.py", (Contender("autoencoder", "stacked"), Contender("VAE", "vae"),
                                     Contender("GAN", "gan")), {"epochs": 10},
               view={"view": "Side by side", "runs": "{runs}"}, scored=True),
    TalkPreset("homotopy", "A sentence homotopy",
               "A sentence VAE on sentences from a small grammar. Look for: the path between two sentences' codes "
               "decodes to grammatical sentences all the way, changing a few words at a time (Bowman et al. 2016).",
               "pages/sentences.py", (Contender("sentence VAE", "sentence-vae", {
                   "latent_size": 64, "free_bits": 0.5, "word_dropout": 0.3}),),
               {"epochs": 15, "batch_size": 64, "lr": 3e-3}, dataset="grammar", view={"view": "Homotopy"},
               modality="text"),
)}


def _train_size(dataset: str) -> int | None:
    try:
        return dataset_info(dataset).train_size
    except KeyError:  # a file's path, or a dataset since deleted
        return None


def prepare_talk(image_dataset: DataSource, load: Callable[[str], DataSource], store: RunStore,
                 report: Callable[[str], None] = print, force: bool = False,
                 keys: list[str] | None = None) -> list[dict]:
    """Train the missing runs (all of them with ``force``) of every preset, or of those in ``keys``, on
    ``image_dataset`` (text presets on their own, through ``load``); one row per preset: key, seconds, how many runs
    were trained and are ready."""
    rows = []
    # with force, runs older than this call are trained again, once each: the seed recipe is also the denoising
    # demo's plain run and the samples' autoencoder, and was trained three times
    since = time.time() if force else 0.0
    for preset in (TALK_PRESETS[k] for k in (keys or TALK_PRESETS)):
        dataset = image_dataset if preset.modality == "image" else load(preset.dataset_for(image_dataset.name))
        start = time.perf_counter()
        job = preset.trainer(dataset, store, since)
        runs = "run" if len(preset.runs) == 1 else "runs"
        report(f"{preset.title}: training {len(job.jobs)} of {len(preset.runs)} {runs} on {dataset.name}…")
        job.start()
        job.join()
        if preset.scored and classifiable(dataset):  # the page draws its scores at once, not after a progress bar
            classifier_for(dataset, store.root)
        failed = [j.run_id for j in job.jobs if j.record is None or j.record.status != "finished"]
        rows.append({"preset": preset.key, "seconds": round(time.perf_counter() - start, 1),
                     "trained": len(job.jobs), "ready": len(preset.runs) - len(failed), "failed": failed})
        report(f"  {rows[-1]['seconds']:.1f} s, {rows[-1]['ready']} of {len(preset.runs)} ready"
               + (f"; FAILED: {failed}" if failed else ""))
    return rows
