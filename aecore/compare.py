"""Several configurations trained on the same data with the same seed, one after another, as one action (the
Compare page; seed 003's "sparse coding, five ways")."""
from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from .data import Dataset
from .jobs import BackgroundTask, TrainingJob
from .registry import steps
from .store import RunStore
from .training import TrainSettings


@dataclass(frozen=True)
class Contender:
    """One column of a comparison: a label, a registered model name, its config overrides and the training
    settings it changes from the comparison's (a GAN's learning rate)."""

    label: str
    model: str
    config: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


_ONE_LAYER = {"hidden": (), "code_size": 196}  # one layer of 196 units: the filters are the first-layer weights
COMPARE_PRESETS: dict[str, list[Contender]] = {
    "sparse coding, five ways": [
        Contender("plain AE", "stacked", {**_ONE_LAYER, "code_activation": "sigmoid"}),
        Contender("AE + L2", "l2", {**_ONE_LAYER, "code_activation": "sigmoid", "l2_weight": 1e-5}),
        Contender("KL-sparse", "sparse-kl", {**_ONE_LAYER, "rho": 0.05, "beta": 0.01, "l2_weight": 1e-5}),
        Contender("neural sparse coding", "neural-sparse-coding", {"code_size": 196}),
        Contender("k-sparse", "k-sparse", {"code_size": 196, "k": 20}),
    ],
    "regularizers": [
        Contender("plain", "stacked", {**_ONE_LAYER, "code_activation": "sigmoid"}),
        Contender("denoising", "denoising", {**_ONE_LAYER, "code_activation": "sigmoid", "noise": "masking",
                                             "noise_level": 0.3}),
        Contender("contractive", "contractive", {"code_size": 196, "contraction": 1e-3}),
    ],
}


class CompareJob:
    """Train each contender in turn on ``dataset`` with the same settings (so the same seed); every run is saved to
    the store like any other. Bad configs raise ``ConfigError`` here, before anything trains."""

    def __init__(self, contenders: list[Contender], dataset: Dataset, settings: TrainSettings,
                 store: RunStore | None = None):
        self.contenders = list(contenders)
        self.jobs = [TrainingJob(c.model, c.config, dataset, dataclasses.replace(settings, **c.settings), store=store)
                     for c in self.contenders]
        # each job's share of the bar, its steps: a talk preset's GAN (9,000 steps) beside an autoencoder (1,250)
        # held the bar at two thirds for five minutes when each job counted alike
        n = len(getattr(dataset, "x_train", ())) or 1
        self.weights = [steps(j.settings.epochs, n, j.settings.batch_size) for j in self.jobs]
        self._stop = threading.Event()
        self._task = BackgroundTask(self._run, name="compare")

    def start(self) -> "CompareJob":
        self._task.start()
        return self

    def _run(self, progress) -> None:
        for i, job in enumerate(self.jobs):
            if self._stop.is_set():
                break
            job.start()
            job.join()
            progress((i + 1) / len(self.jobs))

    def stop(self) -> None:
        """Stop the run in progress (its weights are kept) and skip the ones not started."""
        self._stop.set()
        for job in self.jobs:
            job.stop()

    def join(self, timeout: float | None = None) -> bool:
        return self._task.join(timeout)

    @property
    def done(self) -> bool:
        return self._task.done

    @property
    def fraction(self) -> float:
        parts = [j.progress() for j in self.jobs]
        done = sum(w * p.fraction for w, p in zip(self.weights, parts) if p.status != "pending")
        return done / max(sum(self.weights), 1)

    def seconds_left(self) -> float | None:
        """An estimate of the seconds until every run is trained: the running run's own ETA, and the steps of those
        not started at the seconds a step has taken so far (runs of other families step at other speeds, so the
        figure firms up as it goes); None before any step is timed or once done."""
        if self.done:
            return None
        parts = [j.progress() for j in self.jobs]
        started = [p for p in parts if p.status != "pending" and p.step > 0]
        spent, stepped = sum(p.elapsed for p in started), sum(p.step for p in started)
        if stepped == 0 or spent <= 0:
            return None
        running = sum(p.eta for p in started if not p.done and math.isfinite(p.eta))
        waiting = sum(w for w, p in zip(self.weights, parts) if p.status == "pending")
        return running + waiting * spent / stepped
