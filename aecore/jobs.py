"""A training run as a background job: build the model (seeded), train it in a worker thread, evaluate it on the
test set and save it to the run store. The worker never touches the UI; callers poll :meth:`TrainingJob.progress`."""
from __future__ import annotations

import copy
import dataclasses
import threading
import time
import traceback
from typing import Any

import numpy as np
import torch

from .config import ConfigError, config_to_dict
from .data import Dataset
from .metrics import evaluate
from .registry import create_model, make_config, model_spec
from .store import RunRecord, RunStore, new_run_id
from .training import Progress, TrainSettings, pick_device, train

_INIT_LOCK = threading.Lock()  # torch's global RNG seeds weight init; two jobs must not interleave there


def _join(thread: threading.Thread, timeout: float | None) -> bool:
    """Wait up to ``timeout`` for ``thread``; True once it has ended, False if it never started or still runs."""
    if thread.ident is None:
        return False
    thread.join(timeout)
    return not thread.is_alive()


def build_model(name: str, config: dict[str, Any], seed: int) -> torch.nn.Module:
    """``create_model(name, **config)`` with weights initialised from ``seed`` (bitwise repeatable on CPU)."""
    with _INIT_LOCK:
        torch.manual_seed(seed)
        return create_model(name, **config)


def probe_indices(labels: np.ndarray, n: int = 10) -> np.ndarray:
    """Indices of a fixed probe batch: the first sample of each class in turn, then the next ones."""
    order = np.argsort(labels, kind="stable")
    firsts = [order[labels[order] == c] for c in np.unique(labels)]
    picked = [idx[k] for k in range(max(len(f) for f in firsts)) for idx in firsts if k < len(idx)]
    return np.array(picked[:n])


class TrainingJob:
    """Train ``model_name`` on ``dataset`` in a worker thread; the run is saved when it ends, however it ends.

    A bad config raises ``ConfigError`` here, before any thread starts.
    """

    def __init__(self, model_name: str, config: dict[str, Any], dataset: Dataset, settings: TrainSettings,
                 store: RunStore | None = None, device: str | None = None, n_probe: int = 10):
        config = {**config, "input_shape": dataset.image_shape}
        self.config = make_config(model_name, **config)  # validates
        if settings.greedy and not model_spec(model_name).builder.supports_greedy():
            raise ConfigError(f"{model_name} does not support greedy layer-wise pretraining")
        self.model_name, self.dataset, self.settings = model_name, dataset, settings
        self.store = store
        self.device = pick_device(device)
        self.run_id = new_run_id(model_name)
        self.probe_idx = probe_indices(dataset.y_test, n_probe)
        self.record: RunRecord | None = None
        self.model: torch.nn.Module | None = None
        self._progress = Progress(status="pending", epochs=settings.epochs)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{self.run_id}", daemon=True)

    # --- control ---------------------------------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker to stop after the current step; the weights trained so far are kept and saved."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True once it has ended (False for a job that was never started)."""
        return _join(self._thread, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self._progress.status == "pending"

    def progress(self) -> Progress:
        """A consistent copy of the latest published progress."""
        with self._lock:
            return copy.copy(self._progress)

    def wait_for_progress(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the first loss values (or the end); True if they came."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            p = self.progress()
            if p.history or p.done:
                return True
            time.sleep(0.01)
        return False

    @property
    def probe_inputs(self) -> np.ndarray:
        return self.dataset.x_test[self.probe_idx]

    # --- worker ------------------------------------------------------------------------------------------------------
    def _publish(self, p: Progress) -> None:
        snap = copy.copy(p)
        snap.history = list(p.history)
        snap.epoch_rows = list(p.epoch_rows)
        snap.losses = dict(p.losses)
        snap.snapshots = dict(p.snapshots)
        with self._lock:
            self._progress = snap

    def _run(self) -> None:
        start = time.perf_counter()
        final = Progress(status="failed")
        try:
            model = build_model(self.model_name, dataclasses.asdict(self.config), self.settings.seed)
            self.model = model
            self._publish(Progress(status="running", phase="starting", epochs=self.settings.epochs))
            final = train(model, self.dataset.x_train, self.settings, x_val=self.dataset.x_test,
                          probe=self.probe_inputs, device=self.device, callback=self._publish,
                          stop_event=self._stop)
            metrics = evaluate(model, self.dataset.x_test, device=self.device)
        except Exception as e:  # the run's failure is reported on the page, never raised into the UI
            final = copy.copy(self._progress)
            final.status, final.message = "failed", f"{type(e).__name__}: {e}"
            final.probe = None
            traceback.print_exc()
            metrics = {}
        if self.model is not None and (final.status != "failed" or final.step > 0):
            self.record = RunRecord(
                id=self.run_id, model=self.model_name, config=config_to_dict(self.config), dataset=self.dataset.name,
                seed=self.settings.seed, settings=dataclasses.asdict(self.settings), status=final.status,
                message=final.message, seconds=time.perf_counter() - start, history=final.history,
                epochs=final.epoch_rows, metrics=metrics)
            if self.store is not None:
                try:
                    self.store.save(self.record, self.model.cpu(), final.snapshots)
                except OSError as e:
                    final.message += f" (could not save the run: {e})"
                    self.record = None
        self._publish(final)


class BackgroundTask:
    """Run ``fn(progress)`` in a worker thread, where ``progress(fraction, partial=None)`` reports how far it got
    (and optionally a partial result) and returns False once :meth:`cancel` was called. Poll :attr:`fraction`,
    :attr:`partial`, :attr:`done`, :attr:`result` and :attr:`error` (the exception's message, never raised)."""

    def __init__(self, fn, name: str = "task"):
        self.fraction, self.partial, self.result, self.error = 0.0, None, None, ""
        self._fn = fn
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "BackgroundTask":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._fn(self._report)
        except Exception as e:  # reported on the page, never raised into the UI
            self.error = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        self._fn = None  # a finished task kept as a cached result should not keep what it worked on alive
        self.fraction = 1.0

    def _report(self, fraction: float, partial: Any = None) -> bool:
        self.fraction = fraction
        if partial is not None:
            self.partial = partial
        return not self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the worker to stop at its next progress report; what it returns then is still kept."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True once it has ended (False for a task that was never started)."""
        return _join(self._thread, timeout)

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()
