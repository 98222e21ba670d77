"""A training run as a background job: build the model (seeded), train it in a worker thread, evaluate it as its
family says and save it to the run store. The worker never touches the UI; callers poll :meth:`TrainingJob.progress`
and analyse :meth:`TrainingJob.view_model`, a copy built from the weights the job publishes."""
from __future__ import annotations

import atexit
import copy
import dataclasses
import math
import os
import threading
import time
import traceback
import weakref
from typing import Any

import torch

from .config import ConfigError, config_to_dict, param_specs
from .data import DataSource, classifiable, classifier_noun
from .native import _openmp, release_openmp_threads  # noqa: F401 (tests reach them here)
from .registry import create_model, make_config, model_spec
from .seeding import seeded_init
from .store import RunRecord, RunStore, new_run_id
from .training import Progress, TrainSettings, pick_device, train



class JobSlots:
    """At most ``limit`` training jobs of this process train at once (a class, a talk's audience sharing one
    server); the others wait in arrival order, their place in the queue published in their progress, and a job
    stopped while it waits ends without training."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self._changed = threading.Condition()
        self._running = 0
        self._waiting: list[Any] = []

    def position(self, job: Any) -> int:
        """1 for the next job to start, 0 for one that is not waiting."""
        with self._changed:
            return self._waiting.index(job) + 1 if job in self._waiting else 0

    def acquire(self, job: Any, stop: threading.Event, report) -> bool:
        """Wait for a slot; ``report(position)`` whenever the place in the queue changes. False if ``stop`` was set
        first (the job leaves the queue)."""
        with self._changed:
            self._waiting.append(job)
            shown = None
            while self._running >= self.limit or self._waiting[0] is not job:
                if stop.is_set():
                    self._waiting.remove(job)
                    self._changed.notify_all()
                    return False
                if (where := self._waiting.index(job) + 1) != shown:
                    shown = where
                    report(where)
                self._changed.wait(0.2)
            self._waiting.pop(0)
            self._running += 1
            self._changed.notify_all()
            return True

    def release(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()


# half the cores (at least 1): on 2 cores one job trains at a time, at full speed, instead of two at half
SLOTS = JobSlots(int(os.environ.get("AECORE_MAX_JOBS", "0") or 0) or (os.cpu_count() or 2) // 2)


def _join(thread: threading.Thread, ended: threading.Event, timeout: float | None) -> bool:
    """Wait up to ``timeout`` for ``thread``, whose last act is to set ``ended``; True once it has, False if it never
    started or still runs. It waits on the event, not on ``Thread.join``: a Ctrl-C that interrupts ``join`` can
    leave CPython 3.11 believing the thread has ended while it still runs (gh-90882), and the process then exits
    under it and aborts."""
    if thread.ident is None:
        return False
    return ended.wait(timeout)


_LIVE: "weakref.WeakSet[TrainingJob | BackgroundTask]" = weakref.WeakSet()  # started, not yet ended
_EXITING = threading.Event()
EXIT_WAIT_S = 60.0


class _Exiting(BaseException):
    """Raised in a background task's progress report once the process exits: it unwinds the task's work, whatever
    it catches (a BaseException, as KeyboardInterrupt is)."""


@atexit.register
def _stop_live_work() -> None:
    """At the process's exit (a server stopped, a script that returns while a job trains), stop every job still
    training and wait for it to save its run as stopped, and end background tasks at their next progress report.
    Left to run, a worker was killed under the exiting interpreter inside torch, which aborted the process (SIGABRT,
    "terminate called without an active exception") and lost the job's run: 9 of 10 servers stopped by a bench while
    a job trained, 2 of 2 by hand, 3 of 3 scripts, 1 of 1 server stopped while the Generate page's classifier
    trained."""
    _EXITING.set()
    live = list(_LIVE)
    for work in live:
        if isinstance(work, TrainingJob):
            work.stop()
        else:
            work.cancel()
    deadline = time.monotonic() + EXIT_WAIT_S
    for work in live:
        work.join(max(0.0, deadline - time.monotonic()))


def build_model(name: str, config: dict[str, Any], seed: int) -> torch.nn.Module:
    """``create_model(name, **config)`` with weights initialised from ``seed`` (bitwise repeatable on CPU)."""
    with seeded_init(seed):
        return create_model(name, **config)


def model_config(model_name: str, config: dict[str, Any], dataset: DataSource) -> Any:
    """The validated config of ``model_name`` for ``dataset``: ``config`` plus what the dataset fixes (image shape,
    vocabulary size); a model of another modality, or a bad value, raises ``ConfigError``."""
    spec = model_spec(model_name)
    if spec.capabilities.modality != dataset.modality:
        raise ConfigError(f"{model_name} works on {spec.capabilities.modality}; {dataset.name} is {dataset.modality}")
    fields = {s.name for s in param_specs(spec.config_cls)}
    return make_config(model_name, **{**config, **{k: v for k, v in dataset.model_inputs().items() if k in fields}})


class TrainingJob:
    """Train ``model_name`` on ``dataset`` in a worker thread; the run is saved when it ends, however it ends.

    A bad config, or a model that does not take the dataset's modality, raises ``ConfigError`` here, before any
    thread starts. ``model`` is the live model and belongs to the worker; views use :meth:`view_model`.
    """

    def __init__(self, model_name: str, config: dict[str, Any], dataset: DataSource, settings: TrainSettings,
                 store: RunStore | None = None, device: str | None = None, n_probe: int = 10):
        self.config = model_config(model_name, config, dataset)
        if settings.greedy and not model_spec(model_name).builder.supports_greedy():
            raise ConfigError(f"{model_name} does not support greedy layer-wise pretraining")
        self.model_name, self.dataset, self.settings = model_name, dataset, settings
        self.store = store
        self.device = pick_device(device)
        self.run_id = new_run_id(model_name)
        self.probe_inputs = dataset.probe(n_probe)  # the fixed batch the live view previews
        self.record: RunRecord | None = None
        self.refused = False  # the settings were refused once the model was built (ConfigError)
        self.model: torch.nn.Module | None = None
        self._progress = Progress(status="pending", epochs=settings.epochs)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._view: tuple[int, torch.nn.Module] | None = None
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{self.run_id}", daemon=True)

    # --- control ---------------------------------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        release_openmp_threads()
        _LIVE.add(self)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker to stop after the current step; the weights trained so far are kept and saved."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True once it has ended (False for a job that was never started)."""
        return _join(self._thread, self._ended, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self._progress.status == "pending"

    def progress(self) -> Progress:
        """A consistent copy of the latest published progress."""
        with self._lock:
            return copy.copy(self._progress)

    def wait_for_progress(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the first loss values (or the end); True if they came."""
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._progress.history) or self._progress.done, timeout)

    def view_model(self) -> torch.nn.Module | None:
        """A model in eval mode holding the weights the job published last (the final ones once it has ended), on
        the CPU; rebuilt only when newer weights were published. ``None`` before the first publication. Analysis
        on it never touches the model that trains: ``eval()`` on that one would switch off a denoising
        autoencoder's corruption, or batch norm's updates, until the epoch ends."""
        p = self.progress()
        if p.weights is None:
            return None
        if self._view is None or self._view[0] != p.weights_step:
            model = build_model(self.model_name, dataclasses.asdict(self.config), 0)  # init overwritten below
            model.load_state_dict({k: v.cpu() for k, v in p.weights.items()})
            self._view = (p.weights_step, model.eval())
        return self._view[1]

    # --- worker ------------------------------------------------------------------------------------------------------
    def _publish(self, p: Progress) -> None:
        snap = copy.copy(p)
        snap.history = list(p.history)
        snap.epoch_rows = list(p.epoch_rows)
        snap.losses = dict(p.losses)
        snap.snapshots = dict(p.snapshots)
        with self._changed:
            self._progress = snap
            self._changed.notify_all()

    def _publish_live(self, p: Progress) -> None:
        """What training publishes; its last word (finished, stopped) waits until the run is evaluated and saved,
        so that a job is done only once its run is in the store, or has failed with the reason."""
        if p.done:
            p = copy.copy(p)
            p.status, p.phase = "running", "evaluating and saving"
        self._publish(p)

    def _run(self) -> None:
        def queued(position: int) -> None:
            ahead = position - 1
            self._publish(Progress(status="pending", phase=f"queued: {ahead} {'job' if ahead == 1 else 'jobs'} ahead "
                                   f"of this one" if ahead else "queued: next to start", epochs=self.settings.epochs))
        if not SLOTS.acquire(self, self._stop, queued):
            self._publish(Progress(status="stopped", phase="cancelled", epochs=self.settings.epochs,
                                   message="cancelled while it waited for its turn; nothing was trained or saved"))
            _LIVE.discard(self)
            self._ended.set()
            return
        try:
            self._train_and_save()
        finally:
            SLOTS.release()
            _LIVE.discard(self)
            self._ended.set()

    def _train_and_save(self) -> None:
        start = time.perf_counter()
        final = Progress(status="failed")
        try:
            model = build_model(self.model_name, dataclasses.asdict(self.config), self.settings.seed)
            self.model = model
            self._publish(Progress(status="running", phase="starting", epochs=self.settings.epochs))
            final = train(model, self.dataset.batches("train", self.device), self.settings,
                          x_val=self.dataset.batches("test", self.device), probe=self.probe_inputs,
                          device=self.device, callback=self._publish_live, stop_event=self._stop)
            metrics = model.evaluate(self.dataset, device=self.device)
            if "classifier_frechet" in model.metric_labels and self.store is not None and final.step > 0:
                scores, note = self._listed_scores(model)
                metrics.update(scores)
                final.message = f"{final.message} {note}".strip()
        except Exception as e:  # the run's failure is reported on the page, never raised into the UI
            final = copy.copy(self._progress)
            refused = isinstance(e, ConfigError)  # settings refused before training (a step too big): no traceback
            final.status, final.message = "failed", str(e) if refused else f"{type(e).__name__}: {e}"
            final.probe = None
            self.refused = refused
            if not refused:
                traceback.print_exc()
            metrics = {}
        if self.model is not None and (final.status != "failed" or final.step > 0):
            self.record = RunRecord(
                id=self.run_id, model=self.model_name, config=config_to_dict(self.config), dataset=self.dataset.name,
                seed=self.settings.seed, settings=dataclasses.asdict(self.settings), status=final.status,
                message=final.message, seconds=time.perf_counter() - start, history=final.history,
                epochs=final.epoch_rows, metrics=metrics, units=final.units, stat_labels=final.stat_labels,
                metric_labels=dict(type(self.model).metric_labels))
            if self.store is not None:
                try:
                    self.store.save(self.record, self.model.cpu(), final.snapshots,
                                    {**self.dataset.artifacts(), **self.model.artifacts()})
                except Exception as e:  # a full disk (OSError), a safetensors error, a runs folder that is a file
                    final.status = "failed"
                    final.message = (final.message + " " if final.message else "") + \
                        f"The run could not be saved: {type(e).__name__}: {e}"
                    self.record = None
        self._publish(final)

    def _listed_scores(self, model) -> tuple[dict[str, float], str]:
        """The sample scores a family without a likelihood is listed by, and a note for the run's message where
        there are none: the run is saved either way. Stop skips the classifier's training (about 20 s, once per
        dataset), which waited for it; a classifier already cached still scores, in about a second."""
        from .scores import listed_scores
        if not classifiable(self.dataset):
            return {}, f"Its samples were not scored: {self.dataset.name} has one class, so a classifier cannot."
        p = copy.copy(self._progress)
        noun = classifier_noun(self.dataset)
        p.phase = f"scoring samples with the {noun}"
        self._publish(p)

        def training(fraction: float) -> None:
            if self._stop.is_set():
                raise _ScoringStopped
            p.phase = f"training the {noun} that scores the samples (once per dataset): {fraction:.0%}"
            self._publish(p)
        try:
            return listed_scores(model, self.dataset, self.store.root, progress=training), ""
        except _ScoringStopped:
            return {}, (f"Its samples were not scored: Stop came while the {noun} trained. The Generate page "
                        "scores them.")
        except Exception as e:
            traceback.print_exc()
            return {}, f"Its samples could not be scored ({type(e).__name__}: {e})."


class _ScoringStopped(Exception):
    """Stop, pressed while the digit classifier trained for a run's scores."""


class BackgroundTask:
    """Run ``fn(progress)`` in a worker thread, where ``progress(fraction, partial=None)`` reports how far it got
    (and optionally a partial result) and returns False once :meth:`cancel` was called. Poll :attr:`fraction`,
    :attr:`partial`, :attr:`done`, :attr:`result` and :attr:`error` (the exception's message, never raised)."""

    def __init__(self, fn, name: str = "task"):
        self.fraction, self.partial, self.result, self.error = 0.0, None, None, ""
        self._fn = fn
        self._cancel = threading.Event()
        self._shown = threading.Event()  # set once there is a partial result or the task has ended
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = math.nan

    def start(self) -> "BackgroundTask":
        _LIVE.add(self)
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def seconds_left(self) -> float | None:
        """The seconds left at the pace so far (None until 2 % is done and a second has passed, or once ended)."""
        elapsed, f = time.perf_counter() - self._started, self.fraction
        if self.done or not elapsed >= 1.0 or f < 0.02:
            return None
        return elapsed * (1.0 - f) / f

    def _run(self) -> None:
        try:
            self.result = self._fn(self._report)
        except _Exiting:
            self.error = "stopped: the process is exiting"
        except Exception as e:  # reported on the page, never raised into the UI
            self.error = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        _LIVE.discard(self)
        self._fn = None  # a finished task kept as a cached result should not keep what it worked on alive
        self.fraction = 1.0
        self._shown.set()
        self._ended.set()

    def _report(self, fraction: float, partial: Any = None) -> bool:
        if _EXITING.is_set():
            raise _Exiting
        self.fraction = fraction
        if partial is not None:
            self.partial = partial
            self._shown.set()
        return not self._cancel.is_set()

    def wait_for_partial(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a partial result or the end; True if one came."""
        return self._shown.wait(timeout)

    def cancel(self) -> None:
        """Ask the worker to stop at its next progress report; what it returns then is still kept."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True once it has ended (False for a task that was never started)."""
        return _join(self._thread, self._ended, timeout)

    @property
    def done(self) -> bool:
        return self._ended.is_set()
