"""One training loop for every model family.

:func:`train` is a plain function with explicit arguments (pytorch/examples style): it draws batches from the
dataset protocol's :class:`~aecore.data.Batches`, gives each step a :class:`~aecore.models.base.StepContext`, and
publishes a :class:`Progress` snapshot (with a copy of the weights for views) through a callback.
:class:`aecore.jobs.TrainingJob` runs it in a worker thread that never touches the UI.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .config import ConfigError, param
from .data import Batches, ImageBatches
from .losses import reconstruction_loss
from .models.base import StepContext
from .native import keep_freed_pages
from .optim import adam


LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "auto", "bfloat16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (AVX-512 BF16 or AMX CPUs, CUDA from Ampere):
    there a batch-128 784x400 product pair takes half the float32 time (0.79 against 1.50 ms on this project's
    2-core Zen 4 VM); elsewhere bfloat16 is emulated, and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def autocast_for(precision: str, device: torch.device):
    """A context factory for one training step: mixed precision (matrix products and convolutions in bfloat16,
    weights, optimiser state and losses in float32) for ``bfloat16``, or ``auto`` where :func:`native_bf16`;
    else a no-op. Entered per step with the cast cache off: one autocast around many steps would keep using the
    bfloat16 copies of the weights it cast at the first step (the VAE then did not learn at all)."""
    if precision == "bfloat16" or (precision == "auto" and native_bf16(device)):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The share of the base learning rate in force at ``step`` of ``steps`` (counted from 0)."""
    if schedule == "cosine" and steps > 0:
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return 1.0


def _set_lr(optimizers: list, bases: list, factor: float) -> None:
    """Scale each optimiser's learning rate(s) to ``factor`` times its ``bases`` (LeanAdam's ``lr``, or a torch
    optimiser's param groups)."""
    for opt, base in zip(optimizers, bases):
        if hasattr(opt, "param_groups"):
            for group, lr in zip(opt.param_groups, base):
                group["lr"] = lr * factor
        else:
            opt.lr = base * factor


def _base_lrs(optimizers: list) -> list:
    return [[g["lr"] for g in opt.param_groups] if hasattr(opt, "param_groups") else opt.lr for opt in optimizers]


@dataclass(frozen=True)
class TrainSettings:
    """Training hyperparameters shared by every family (the model's own live in its config)."""

    epochs: int = param(30, min=1, max=500, step=1, help="passes over the training set")
    batch_size: int = param(32, min=1, max=4096, step=1, log=True, help="samples per gradient step")
    lr: float = param(1e-3, min=1e-5, max=1.0, log=True,
                      help="learning rate (of Adam, unless the model's settings pick another optimiser)")
    lr_schedule: str = param("constant", choices=LR_SCHEDULES,
                             help="constant, or cosine: the learning rate falls along half a cosine from its value "
                                  "to 0 over each phase's steps (Loshchilov & Hutter 2017, without restarts)")
    precision: str = param("float32", choices=PRECISIONS,
                           help="float32; bfloat16: mixed precision, matrix products in bfloat16 with float32 "
                                "weights and losses (about 1.4x faster for the VAE on CPUs with AVX-512 BF16 or "
                                "AMX, slower on others); auto: bfloat16 where the device computes it natively")
    seed: int = param(0, min=0, max=2**31 - 1, step=1, help="seeds weight init and batch order")
    greedy: bool = param(False, help="greedy layer-wise pretraining: train one shallow autoencoder per layer on "
                                     "the previous layer's codes, stack them, then fine-tune")
    greedy_epochs: int = param(2, min=1, max=100, step=1, when={"greedy": True},
                               help="epochs per layer in greedy pretraining")
    finetune: bool = param(True, when={"greedy": True},
                           help="after greedy pretraining, fine-tune the whole stack for `epochs` epochs")
    output_bias_from_data: bool = param(True, help="start the output layer's bias at each pixel's mean over the "
                                                   "training images (its logit for a sigmoid output) instead of 0, "
                                                   "so training does not spend its first epochs learning the "
                                                   "background")


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given (an unknown or absent device raises ``ConfigError``), else CUDA, else MPS, else CPU."""
    mps = getattr(torch.backends, "mps", None)
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as e:
            raise ConfigError(f"unknown device {name!r}: use cpu, cuda or mps") from e
        if (device.type == "cuda" and not torch.cuda.is_available()) or \
                (device.type == "mps" and not (mps is not None and mps.is_available())):
            raise ConfigError(f"device {name!r} is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


OUTPUT_BIAS_CLIP = 1e-3  # a pixel that is always 0 starts at logit(0.001) = -6.9


@torch.no_grad()
def start_output_bias(model: nn.Module, x: torch.Tensor) -> bool:
    """Set ``model.output_bias()`` to the mean of the training images ``x`` (N, D): per pixel for a (D,) bias,
    over all pixels for a (1,) one; through the logit (means clipped to [1e-3, 1 - 1e-3]) when the model outputs
    logits. Returns whether the model has such a bias."""
    bias = getattr(model, "output_bias", lambda: None)()
    if bias is None:
        return False
    mean = x.mean(0)
    if bias.numel() == 1:
        mean = mean.mean().reshape(1)
    elif bias.numel() != mean.numel():
        raise ValueError(f"output bias has {bias.numel()} values for {mean.numel()} pixels")
    if getattr(model, "output_kind", "logits") == "logits":
        mean = torch.logit(mean.clamp(OUTPUT_BIAS_CLIP, 1 - OUTPUT_BIAS_CLIP))
    bias.copy_(mean.view_as(bias))
    return True


@dataclass
class Progress:
    """What a running job publishes. ``history`` holds running means of each loss term at regular steps;
    ``epochs`` holds one row per finished epoch with ``train_<term>`` and ``val_<term>``; ``units`` each term's unit.
    ``weights`` is a copy of the model's state at step ``weights_step``, never written to after it is published:
    views of a running job build their model from it and never touch the one that trains."""

    status: str = "pending"  # pending | running | finished | stopped | diverged | failed
    phase: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_rows: list[dict[str, float]] = field(default_factory=list)
    samples_per_s: float = 0.0
    elapsed: float = 0.0
    eta: float = float("nan")
    probe: Any = None  # the model's preview of the fixed probe batch: (P, D) reconstructions, samples, sentences
    units: dict[str, str] = field(default_factory=dict)
    stat_labels: dict[str, str] = field(default_factory=dict)  # logged values that are not loss terms
    weights: dict[str, torch.Tensor] | None = None
    weights_step: int = -1
    message: str = ""
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)  # epoch -> first-layer filters (float16)

    @property
    def done(self) -> bool:
        return self.status in ("finished", "stopped", "diverged", "failed")

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


class Diverged(RuntimeError):
    pass


MAX_SNAPSHOTS, SNAPSHOT_UNITS = 16, 256


def thin(snapshots: dict[int, Any], most: int = MAX_SNAPSHOTS) -> None:
    """Beyond ``most`` entries drop every other one (the first and the latest stay), so long runs stay small."""
    if len(snapshots) > most:
        for k in sorted(snapshots)[1:-1:2]:
            del snapshots[k]


def _snapshot(model: nn.Module, epoch: int, snapshots: dict[int, np.ndarray]) -> None:
    """Keep the model's :meth:`epoch_snapshot` (at most ``SNAPSHOT_UNITS`` rows: first-layer filters, or samples)
    after ``epoch`` for the pages' epoch scrubbers."""
    snap = getattr(model, "epoch_snapshot", lambda: None)()
    if snap is None:
        return
    snapshots[epoch] = snap[:SNAPSHOT_UNITS]
    thin(snapshots)


class _GreedyStage(nn.Module):
    """A shallow autoencoder made of one encoder layer and its mirror decoder layer (modules shared with the
    stacked model, so training it trains the model)."""

    def __init__(self, enc: nn.Module, dec: nn.Module, output_kind: str):
        super().__init__()
        self.enc, self.dec, self.output_kind = enc, dec, output_kind

    def training_step(self, x: torch.Tensor, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        (opt,) = optimizers
        loss = reconstruction_loss(self.dec(self.enc(x)), x, self.output_kind)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"reconstruction": loss.detach()}


@torch.no_grad()
def _encode_in_chunks(module: nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    return torch.cat([module(x[i:i + chunk]) for i in range(0, len(x), chunk)])


@torch.no_grad()
def _val_losses(model: nn.Module, data: Batches, chunk: int = 2048) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    for batch, n in data.chunks(chunk):
        for k, v in model(batch).losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
    model.train()
    return {k: v / len(data) for k, v in sums.items()}


def _weights_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class _Loop:
    """State shared by the phases of one training run: counters, timing, history, divergence guard."""

    def __init__(self, model, settings, device, probe, val, callback, stop_event, total_steps, log_every):
        self.model, self.settings, self.device = model, settings, device
        self.probe, self.val = probe, val
        self.callback, self.stop_event = callback, stop_event
        self.progress = Progress(status="running", total_steps=total_steps)
        self.log_every = log_every
        self.start = time.perf_counter()
        self.last_publish = 0.0
        self.stats = set(getattr(model, "stat_labels", {}))  # reported values that are not loss terms
        self.pending_state, self.pending_step = _weights_copy(model), 0
        self.first_loss: float | None = None
        self.peak_loss = -math.inf
        self.start_loss = self._probe_loss()  # before any step: the first logged loss can already be a spike
        # the weights at the lowest loss so far (the start's at first): what divergence and collapse restore
        self.best_loss, self.best_state, self.best_step = self.start_loss, self.pending_state, 0

    @torch.no_grad()
    def _probe_loss(self) -> float:
        """The model's loss on the probe batch (its terms, not its stats); inf where it cannot say."""
        if self.probe is None:
            return math.inf
        was_training = self.model.training
        self.model.eval()
        try:
            loss = float(sum(v for k, v in self.model(self.probe).losses.items() if k not in self.stats))
        except Exception:  # a family whose forward does not take the probe: no start loss, nothing else changes
            loss = math.inf
        self.model.train(was_training)
        return loss if math.isfinite(loss) else math.inf

    def publish(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_publish < 0.25:
            return
        self.last_publish = now
        p = self.progress
        p.elapsed = now - self.start
        if self.probe is not None:  # in this thread, between steps: the only place the live model leaves train mode
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                p.probe = self.model.preview(self.probe)
            self.model.train(was_training)
        p.weights, p.weights_step = self.pending_state, self.pending_step
        if self.callback is not None:
            self.callback(p)

    def check(self, loss: float) -> None:
        """Guard against NaN or an exploding loss; keep the weights of the lowest loss so far."""
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        limit = max(1e6, 1e3 * abs(self.first_loss or 0.0))
        if not math.isfinite(loss) or loss > limit:
            self.restore_best()
            raise Diverged(f"the loss became {loss:.4g} at step {self.progress.step}; training stopped and the "
                           f"weights of step {self.best_step} (loss {self.best_loss:.4g}, the lowest logged) were "
                           f"kept. Try a lower learning rate.")
        self.peak_loss = max(self.peak_loss, loss)
        self.pending_state, self.pending_step = _weights_copy(self.model), self.progress.step
        if loss < self.best_loss and not self.spiked:  # after a spike, a low loss can be the collapsed mean image
            self.best_loss, self.best_state, self.best_step = loss, self.pending_state, self.pending_step

    @property
    def spiked(self) -> bool:
        """Whether a logged loss has risen past 10x the start's."""
        return math.isfinite(self.start_loss) and self.peak_loss > 10 * max(self.start_loss, 1e-12)

    def restore_best(self) -> None:
        self.model.load_state_dict(self.best_state)
        self.pending_state, self.pending_step = self.best_state, self.best_step

    def check_collapse(self, model: nn.Module) -> None:
        """Stop a run whose reconstructions no longer depend on the input after its loss spiked far above its start
        (a learning rate of 1 makes every reconstruction the mean digit): keep the best weights, as divergence does.
        Both signs are needed: a sparse or recurrent autoencoder can reconstruct nearly the same image for every
        input in its first epochs while its loss falls steadily."""
        why = model.collapse(self.probe) if self.spiked else ""
        if why:
            self.restore_best()
            raise Diverged(f"the run collapsed at step {self.progress.step}: {why}, after its loss rose to "
                           f"{self.peak_loss:.4g} from {self.start_loss:.4g}. Training stopped and the weights of "
                           f"step {self.best_step} (loss {self.best_loss:.4g}, the lowest logged) were kept. Try a "
                           f"lower learning rate.")

    def run_epochs(self, module: nn.Module, data: Batches, epochs: int, phase: str, optimizers: list,
                   val_module: nn.Module | None) -> None:
        s, p = self.settings, self.progress
        gen = torch.Generator().manual_seed(s.seed + len(p.epoch_rows))
        n, bs = len(data), s.batch_size
        steps_per_epoch = math.ceil(n / bs)
        p.phase, p.epochs = phase, epochs
        schedule, phase_steps = s.lr_schedule, epochs * steps_per_epoch
        bases = _base_lrs(optimizers) if schedule != "constant" else None
        amp = autocast_for(s.precision, self.device)
        module.train()
        for epoch in range(epochs):
            p.epoch = epoch + 1
            order = torch.randperm(n, generator=gen).to(self.device)
            sums: dict[str, float] = {}
            window: list[dict[str, torch.Tensor]] = []  # loss terms since the last log point, still on device
            epoch_start = time.perf_counter()
            for i in range(steps_per_epoch):
                if self.stop_event is not None and self.stop_event.is_set():
                    raise KeyboardInterrupt
                # a batch's rows gathered as it is needed: copying the whole shuffled set each epoch took
                # 4x longer (0.17 s of a 1.4 s epoch of the seed recipe on one thread)
                batch = data.take(order[i * bs:(i + 1) * bs])
                ctx = StepContext(p.step, len(p.epoch_rows), p.total_steps, steps_per_epoch)
                if bases is not None:
                    _set_lr(optimizers, bases, lr_factor(schedule, epoch * steps_per_epoch + i, phase_steps))
                with amp():
                    window.append(module.training_step(batch, optimizers, ctx))
                p.step += 1
                if len(window) == self.log_every or i == steps_per_epoch - 1:
                    # one sync per log point, not per step
                    means = {k: float(torch.stack([w[k] for w in window]).mean()) for k in window[0]}
                    for k, v in means.items():
                        sums[k] = sums.get(k, 0.0) + v * len(window)
                    self.check(sum(v for k, v in means.items() if k not in self.stats))
                    p.losses = means
                    p.history.append({"step": p.step, "epoch": epoch + (i + 1) / steps_per_epoch,
                                      "phase": phase, **means})
                    window = []
                    elapsed = time.perf_counter() - self.start
                    p.samples_per_s = min((i + 1) * bs, n) / max(time.perf_counter() - epoch_start, 1e-9)
                    p.eta = elapsed / p.step * (p.total_steps - p.step)
                    self.publish()
            row = {"epoch": len(p.epoch_rows) + 1, "phase": phase,
                   **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()}}
            if self.val is not None and val_module is not None:
                with torch.no_grad(), amp():  # in the steps' precision: the VAE's 10,000 test images took
                    # 0.12 s in float32 and 0.085 s in bfloat16, of a 1.6-2.0 s epoch
                    row.update({f"val_{k}": v for k, v in _val_losses(val_module, self.val).items()})
            p.epoch_rows.append(row)
            if val_module is not None:
                self.check_collapse(val_module)
                val_module.end_epoch(row["epoch"])
                _snapshot(val_module, row["epoch"], p.snapshots)
            self.publish(force=True)


def _step_limit(default_gb: float = 4.0) -> int:
    """``AECORE_MAX_STEP_GB`` (a positive number) or 4 GB: what one step's forward pass may produce (step_bytes)."""
    try:
        gb = float(os.environ.get("AECORE_MAX_STEP_GB", "") or default_gb)
    except ValueError:
        gb = default_gb
    return int((gb if math.isfinite(gb) and gb > 0 else default_gb) * 2**30)


MAX_STEP_BYTES = _step_limit()


class _OutputBytes(torch.overrides.TorchFunctionMode):
    """Sums the sizes of the new tensors that torch's functions return (a dispatch mode would import torch._dynamo)."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t._base is None:  # a view holds no memory of its own
                self.total += t.numel() * t.element_size()
        return out


def step_bytes(model: nn.Module, x: torch.Tensor, batch_size: int) -> int:
    """About what a forward pass over ``batch_size`` rows like ``x``'s (at least 4) produces: measured on 2 and 4
    rows (eval mode, no tape, the random generators left as they were) and extrapolated. The weight cap bounds the
    weights, not this: a conv model of channels (256, 256) held 3.0 GB in one step at batch 1024 (estimated 3.5 GB)
    and a 784-2048-2048 contractive one 1.2 GB at batch 32 (0.8 GB), each within the sliders' ranges."""
    at_two, per_row = _forward_bytes(model, x)
    return int(at_two + per_row * (batch_size - 2))


def _forward_bytes(model: nn.Module, x: torch.Tensor) -> tuple[int, float]:
    """(bytes at 2 rows, bytes per further row) of a forward pass."""
    sizes, was_training = [], model.training
    model.eval()
    try:
        for rows in (x[:2], x[:4]):
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), torch.no_grad(), \
                    _OutputBytes() as counted:
                model(rows)
            sizes.append(counted.total)
    finally:
        model.train(was_training)
    return sizes[0], max(sizes[1] - sizes[0], 0) / 2


def _check_step_memory(model: nn.Module, data: ImageBatches, batch_size: int) -> None:
    batch = min(batch_size, len(data))
    at_two, per_row = _forward_bytes(model, data.x[:4])
    need = at_two + per_row * (batch - 2)
    if need <= MAX_STEP_BYTES:
        return
    most = int((MAX_STEP_BYTES - at_two) / per_row) + 2 if per_row else 0
    advice = f"use a batch size of at most {most}" if most >= 2 else "use a smaller model"
    raise ConfigError(f"one training step of this model at batch size {batch} needs about {need / 2**30:.1f} GB, "
                      f"more than the {MAX_STEP_BYTES / 2**30:g} GB a job may take (AECORE_MAX_STEP_GB); {advice}")


def _as_batches(data: Any, device: torch.device) -> Batches | None:
    """Arrays of flat images become :class:`ImageBatches`; a dataset split (``Batches``) is moved to ``device``."""
    if data is None:
        return None
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return ImageBatches(data, device)
    return data


def train(model: nn.Module, x_train: Any, settings: TrainSettings, *, x_val: Any = None, probe: Any = None,
          device: torch.device | str | None = None, callback: Callable[[Progress], None] | None = None,
          stop_event: threading.Event | None = None) -> Progress:
    """Train ``model`` in place on ``x_train`` (flat images (N, D), or a dataset split from
    ``DataSource.batches``) and return the final :class:`Progress`.

    Starts the output bias at the data's mean if ``settings.output_bias_from_data`` (:func:`start_output_bias`);
    runs greedy layer-wise pretraining first if ``settings.greedy``; fits in closed form for families that have one.
    ``probe`` is the batch the model previews for the live view. Stopping (``stop_event``) keeps the weights trained
    so far; a NaN or exploding loss restores the last good weights and ends with status ``"diverged"``.
    ``callback`` receives the progress at most every 0.25 s.
    """
    keep_freed_pages()
    device = pick_device(device if isinstance(device, str) else (str(device) if device else None))
    model.to(device)
    data, val = _as_batches(x_train, device), _as_batches(x_val, device)
    if isinstance(probe, (np.ndarray, torch.Tensor)):
        probe = torch.as_tensor(probe, dtype=torch.float32)
    probe = probe.to(device) if hasattr(probe, "to") else probe
    images = isinstance(data, ImageBatches)
    closed_form = getattr(model, "closed_form", False)
    if settings.output_bias_from_data and not closed_form and images:
        start_output_bias(model, data.x)
    if images and not closed_form and len(data) >= 4:  # before anything is trained: refused, nothing to save
        _check_step_memory(model, data, settings.batch_size)
    stages = model.greedy_stages() if settings.greedy else []
    if settings.greedy and not stages:
        raise ValueError(f"{model.registry_name or type(model).__name__} does not support greedy pretraining")
    steps_per_epoch = math.ceil(len(data) / settings.batch_size)
    main_epochs = 0 if closed_form or (stages and not settings.finetune) else settings.epochs
    total = steps_per_epoch * (main_epochs + len(stages) * settings.greedy_epochs)
    log_every = max(1, min(50, steps_per_epoch // 20))
    loop = _Loop(model, settings, device, probe, val, callback, stop_event, max(total, 1), log_every)
    p = loop.progress
    p.units = model.loss_units()
    p.stat_labels = dict(getattr(model, "stat_labels", {}))
    _snapshot(model, 0, p.snapshots)
    try:
        if closed_form:
            p.phase = "closed form"
            model.fit_closed_form(data.x)
            p.step = p.total_steps
            row = {"epoch": 1, "phase": "closed form",
                   **{f"train_{k}": v for k, v in _val_losses(model, data).items()}}
            if val is not None:
                row.update({f"val_{k}": v for k, v in _val_losses(model, val).items()})
            p.epoch_rows.append(row)
            _snapshot(model, 1, p.snapshots)
        else:
            h = data
            for i, (enc, dec) in enumerate(stages):
                kind = model.output_kind if i == 0 else "mse"
                stage = _GreedyStage(enc, dec, kind).to(device)
                opts = [adam(stage.parameters(), settings.lr, device)]
                loop.run_epochs(stage, h, settings.greedy_epochs, f"greedy layer {i + 1}/{len(stages)}", opts, None)
                h = ImageBatches(_encode_in_chunks(enc, h.x), device)
            if main_epochs:
                opts = model.configure_optimizers(settings, device)
                loop.run_epochs(model, data, main_epochs, "fine-tuning" if stages else "training", opts, model)
        p.status = "finished"
    except KeyboardInterrupt:
        p.status, p.message = "stopped", f"stopped at step {p.step}; the weights trained so far were kept"
    except Diverged as e:
        p.status, p.message = "diverged", str(e)
    p.eta = 0.0
    model.eval()
    loop.pending_state, loop.pending_step = _weights_copy(model), p.step  # the final weights, for the views
    loop.publish(force=True)
    return p
