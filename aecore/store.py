"""The run store: every run is a folder with ``model.safetensors`` (weights) and ``run.json`` (model name, config,
dataset, seed, settings, history, metrics). Nothing is unpickled, and a damaged run is reported, not fatal."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ConfigError
from .registry import create_model

RUNS_DIR_ENV = "AECORE_RUNS_DIR"
WEIGHTS, META, SNAPSHOTS = "model.safetensors", "run.json", "snapshots.safetensors"


class RunStoreError(RuntimeError):
    """A run that cannot be read (missing, damaged or incompatible); the message names it."""


@dataclass
class RunRecord:
    """Everything about a run but its weights."""

    id: str
    model: str
    config: dict[str, Any]
    dataset: str
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    status: str = "finished"
    message: str = ""
    created: float = field(default_factory=time.time)
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        m = self.metrics.get("bce")
        score = f", test BCE {m:.4f}" if m is not None else ""
        return f"{self.id} ({self.model} on {self.dataset}{score})"


@dataclass
class RunListing:
    """One entry of :meth:`RunStore.list`: a record, or the error that kept it from loading."""

    id: str
    record: RunRecord | None
    error: str = ""


def default_runs_dir() -> Path:
    """``AECORE_RUNS_DIR`` if set, else ``runs/`` in the user's data folder."""
    import platformdirs
    return Path(os.environ.get(RUNS_DIR_ENV) or Path(platformdirs.user_data_dir("aecore")) / "runs")


def new_run_id(model: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{secrets.token_hex(2)}"


class RunStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_runs_dir()

    def save(self, record: RunRecord, model: torch.nn.Module, snapshots: dict[int, Any] | None = None) -> Path:
        """Write weights, metadata and per-epoch filter snapshots atomically (a temporary folder renamed into
        place)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / record.id
        tmp = self.root / f".{record.id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"model": record.model})
        if snapshots:
            save_file({f"epoch_{e}": torch.as_tensor(w).contiguous() for e, w in snapshots.items()},
                      str(tmp / SNAPSHOTS))
        (tmp / META).write_text(json.dumps(record.__dict__, indent=1, allow_nan=True))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return final

    def _read_record(self, run_dir: Path) -> RunRecord:
        try:
            data = json.loads((run_dir / META).read_text())
            return RunRecord(**data)
        except FileNotFoundError as e:
            raise RunStoreError(f"run {run_dir.name}: {META} is missing") from e
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
            raise RunStoreError(f"run {run_dir.name}: {META} is damaged ({e})") from e

    def list(self) -> list[RunListing]:
        """Every run, newest first; damaged ones carry an error instead of a record."""
        if not self.root.is_dir():
            return []
        out = []
        for d in self.root.iterdir():
            if not d.is_dir() or d.name.startswith("."):
                continue
            try:
                out.append(RunListing(d.name, self._read_record(d)))
            except RunStoreError as e:
                out.append(RunListing(d.name, None, str(e)))
        return sorted(out, key=lambda r: (r.record.created if r.record else 0.0, r.id), reverse=True)

    def record(self, run_id: str) -> RunRecord:
        d = self.root / run_id
        if not d.is_dir():
            raise RunStoreError(f"no run {run_id!r} in {self.root}")
        return self._read_record(d)

    def load(self, run_id: str, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunRecord]:
        """Rebuild the model from its config and load its weights; any problem raises :class:`RunStoreError`."""
        record = self.record(run_id)
        try:
            model = create_model(record.model, **record.config)
        except (KeyError, ConfigError) as e:
            raise RunStoreError(f"run {run_id}: cannot rebuild model {record.model!r} ({e})") from e
        try:
            state = load_file(str(self.root / run_id / WEIGHTS), device=str(device))
            model.load_state_dict(state)
        except (FileNotFoundError, SafetensorError, RuntimeError, OSError) as e:
            raise RunStoreError(f"run {run_id}: weights are missing or damaged ({e})") from e
        return model.to(device).eval(), record

    def snapshots(self, run_id: str) -> dict[int, np.ndarray]:
        """Epoch -> first-layer filters saved during training ({} if the run has none or they are damaged)."""
        path = self.root / run_id / SNAPSHOTS
        try:
            state = load_file(str(path))
        except (FileNotFoundError, SafetensorError, OSError):
            return {}
        epochs = {int(k.split("_")[1]): v.float().numpy() for k, v in state.items()}
        return dict(sorted(epochs.items()))

    def delete(self, run_id: str) -> None:
        d = self.root / run_id
        if not d.is_dir():
            raise RunStoreError(f"no run {run_id!r} in {self.root}")
        shutil.rmtree(d)
