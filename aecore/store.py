"""The run store: every run is a folder with ``model.safetensors`` (weights), ``run.json`` (schema version, model
name, config, dataset, seed, settings, history, metrics), optional ``snapshots.safetensors`` and named artifacts in
``artifacts/`` (JSON, or tensors as safetensors). A run travels as a zip (:meth:`RunStore.export`) and comes back
through :meth:`RunStore.import_`, which checks everything before it writes. Nothing is unpickled, and a damaged run
is reported, not fatal."""
from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import re
import secrets
import shutil
import struct
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .config import ConfigError, as_saved
from .data import remove_stale_temporaries
from .registry import create_model, make_config, model_spec
from .seeding import seeded_init

RUNS_DIR_ENV = "AECORE_RUNS_DIR"
WEIGHTS, META, SNAPSHOTS, ARTIFACTS = "model.safetensors", "run.json", "snapshots.safetensors", "artifacts"
CHECKPOINTS = "checkpoints"  # the artifact of per-epoch weights that :meth:`RunStore.rollback` reads
SCHEMA_VERSION = 4  # 1: no schema key, no units, metric labels or artifacts; 2: no stat labels; 3: no name
MAX_NAME_CHARS = 80  # a run's display name
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # run ids and artifact names
MAX_IMPORT_BYTES = 1 << 30  # what an imported zip may unpack to
MAX_IMPORT_FILES = 64
MAX_META_BYTES = 64 << 20  # a run.json larger than this is not read


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
    units: dict[str, str] = field(default_factory=dict)  # loss term -> unit
    metric_labels: dict[str, str] = field(default_factory=dict)  # metric -> label, the headline first
    stat_labels: dict[str, str] = field(default_factory=dict)  # logged values that are not loss terms -> label
    artifacts: list[str] = field(default_factory=list)
    name: str = ""  # a display name the user gave it ("" shows what it is: model, key setting, dataset)
    schema: int = SCHEMA_VERSION

    @property
    def headline(self) -> tuple[str, float] | None:
        """(label, value) of the run's first metric, as its family ranks them."""
        labels = self.metric_labels or ({"bce": "test BCE"} if "bce" in self.metrics else {})
        for key, label in labels.items():
            if isinstance(self.metrics.get(key), (int, float)):
                return label, float(self.metrics[key])
        return None

    @property
    def title(self) -> str:
        """What the run is, readable at a glance: its name, else model, the settings it changed, dataset."""
        if self.name:
            return self.name
        changed = _changed_config(self.model, self.config)
        key = " " + ", ".join(f"{k}={short_value(v)}" for k, v in list(changed.items())[:2]) if changed else ""
        return f"{self.model}{key} · {self.dataset}"

    @property
    def headline_text(self) -> str:
        """The headline metric as every list shows it (the library's table had 0.09025 where the sidebar had
        0.0903); "" when the run has none."""
        return f"{self.headline[0]} {headline_number(self.headline[1])}" if self.headline else ""

    @property
    def label(self) -> str:
        score = f" · {text}" if (text := self.headline_text) else ""
        when = time.strftime("%d %b %H:%M", time.localtime(self.created))
        status = "" if self.status == "finished" else f" · {self.status}"
        return f"{self.title}{score}{status} · {when}"


def headline_number(value: float) -> str:
    """A headline metric's value as every list shows it: 4 decimals for a loss per pixel (0.0903), 2 for a number
    in the tens or hundreds (an ELBO of 101.61 nats, a Fréchet distance of 404.68, not 404.6793)."""
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


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

    def save(self, record: RunRecord, model: torch.nn.Module, snapshots: dict[int, Any] | None = None,
             artifacts: dict[str, Any] | None = None) -> Path:
        """Write weights, metadata, per-epoch filter snapshots and named ``artifacts`` (JSON-able values, or dicts
        of arrays) atomically: a temporary folder renamed into place."""
        for name in artifacts or {}:
            _check_name(name, "artifact")
        record.artifacts = sorted(artifacts or {})
        record.schema = SCHEMA_VERSION
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        files = {WEIGHTS: save(tensors, metadata={"model": record.model})}
        if snapshots:
            files[SNAPSHOTS] = save({f"epoch_{e}": torch.as_tensor(w).contiguous() for e, w in snapshots.items()})
        for name, value in (artifacts or {}).items():
            if isinstance(value, dict) and value and all(hasattr(v, "shape") for v in value.values()):
                files[f"{ARTIFACTS}/{name}.safetensors"] = save(
                    {k: torch.as_tensor(v).contiguous() for k, v in value.items()})
            else:
                files[f"{ARTIFACTS}/{name}.json"] = json.dumps(value).encode()
        files[META] = json.dumps(record.__dict__, indent=1, allow_nan=True).encode()
        return self._write(record.id, files)

    def _write(self, run_id: str, files: dict[str, bytes]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / run_id
        tmp = self.root / f".{run_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            for rel, data in files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(data)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
        except BaseException:  # a full disk, an interrupt: no half-written folder is left behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def _read_record(self, run_dir: Path, summary: bool = False) -> RunRecord:
        """The run's record; with ``summary``, without its history and epoch rows (what lists and labels read),
        kept from the last parse while its file is unchanged."""
        try:
            st = (run_dir / META).stat()
            if st.st_size > MAX_META_BYTES:
                raise RunStoreError(f"run {run_dir.name}: {META} is over {MAX_META_BYTES >> 20} MB")
            key = (st.st_ino, st.st_size, st.st_mtime_ns)  # a rewrite (a new file, renamed in) changes it
            cached = _SUMMARIES.get(str(run_dir))
            if summary and cached is not None and cached[0] == key:
                return copy.copy(cached[1])  # a copy: callers may set fields
            record = _parse_record(run_dir.name, (run_dir / META).read_bytes())
        except FileNotFoundError as e:
            raise RunStoreError(f"run {run_dir.name}: {META} is missing") from e
        except OSError as e:  # a folder where the file should be, unreadable
            raise RunStoreError(f"run {run_dir.name}: {META} cannot be read ({e.strerror or e})") from e
        record.id = run_dir.name  # a run is named by its folder, whatever its run.json says
        short = dataclasses.replace(record, history=[], epochs=[])
        # kept once its file is 2 s old: the clock behind a change time ticks coarsely, so a file written in place
        # twice within a tick, at the same size, could keep its key
        if time.time_ns() - st.st_mtime_ns > 2_000_000_000:
            _SUMMARIES[str(run_dir)] = key, short
        return copy.copy(short) if summary else record

    def list(self) -> list[RunListing]:
        """Every run, newest first; damaged ones carry an error instead of a record."""
        if not self.root.is_dir():
            return []
        remove_stale_temporaries(self.root, ".*.tmp")  # what a save killed mid-write (kill -9) left
        out = []
        for d in self.root.iterdir():
            if not d.is_dir() or d.name.startswith("."):
                continue
            try:
                out.append(RunListing(d.name, self._read_record(d, summary=True)))
            except RunStoreError as e:
                _SUMMARIES.pop(str(d), None)
                out.append(RunListing(d.name, None, str(e)))
        for gone in [k for k in list(_SUMMARIES) if Path(k).parent == self.root and not Path(k).is_dir()]:
            _SUMMARIES.pop(gone, None)  # deleted runs
        return sorted(out, key=lambda r: (r.record.created if r.record else 0.0, r.id), reverse=True)

    def _run_dir(self, run_id: str) -> Path:
        """The folder of run ``run_id``, which must be a plain name inside the store (never a path that leaves it)."""
        _check_name(run_id, "run id")
        d = self.root / run_id
        if not d.is_dir():
            raise RunStoreError(f"no run {run_id!r} in {self.root}")
        return d

    def record(self, run_id: str) -> RunRecord:
        return self._read_record(self._run_dir(run_id))

    def summary(self, run_id: str) -> RunRecord:
        """The run's record without its history and epoch rows, as :meth:`list` gives it: for what a page reads of
        every run at every rerun (its model, config, label)."""
        return self._read_record(self._run_dir(run_id), summary=True)

    def load(self, run_id: str, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunRecord]:
        """Rebuild the model from its config and load its weights; any problem raises :class:`RunStoreError`."""
        record = self.record(run_id)
        try:
            with seeded_init(0):  # the weights are overwritten; the lock keeps other threads' seeded builds intact
                model = create_model(record.model, **record.config)
        except (KeyError, ConfigError) as e:
            raise RunStoreError(f"run {run_id}: cannot rebuild model {record.model!r} ({e})") from e
        try:
            state = load_file(str(self._run_dir(run_id) / WEIGHTS), device=str(device))
            model.load_state_dict(state)
        except (FileNotFoundError, SafetensorError, RuntimeError, OSError) as e:
            raise RunStoreError(f"run {run_id}: weights are missing or damaged ({e})") from e
        return model.to(device).eval(), record

    def snapshots(self, run_id: str) -> dict[int, np.ndarray]:
        """Epoch -> first-layer filters saved during training ({} if the run has none or they are damaged)."""
        try:
            state = load_file(str(self._run_dir(run_id) / SNAPSHOTS))
        except (FileNotFoundError, SafetensorError, OSError, RunStoreError):
            return {}
        epochs = {int(k[len("epoch_"):]): v.float().numpy() for k, v in state.items()
                  if k.startswith("epoch_") and k[len("epoch_"):].isdigit()}  # other keys are damage: skipped
        return dict(sorted(epochs.items()))

    def artifact(self, run_id: str, name: str) -> Any:
        """A named artifact of a run: the JSON value, or a dict of numpy arrays."""
        _check_name(name, "artifact")
        folder = self._run_dir(run_id) / ARTIFACTS
        try:
            if (folder / f"{name}.json").is_file():
                return json.loads((folder / f"{name}.json").read_text())
            return {k: v.numpy() for k, v in load_file(str(folder / f"{name}.safetensors")).items()}
        except (OSError, ValueError, SafetensorError) as e:
            raise RunStoreError(f"run {run_id}: artifact {name!r} is missing or damaged ({e})") from e

    def export(self, run_id: str) -> bytes:
        """The run's folder as a zip."""
        d = self._run_dir(run_id)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in d.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(d).as_posix())
        return buf.getvalue()

    def import_(self, data: bytes) -> str:
        """Add a run from a zip made by :meth:`export` and return its id (a new one if the id is taken). Every
        file's name and size, the record, the model name and config (through the registry) and every weight's
        shape are checked before anything is written; a problem raises :class:`RunStoreError` saying what."""
        files = _read_zip(data)
        if META not in files or WEIGHTS not in files:
            raise RunStoreError(f"not a run: the zip must hold {META} and {WEIGHTS}")
        record = _parse_record("imported run", files[META])
        _check_name(record.id, "run id")
        try:
            config = make_config(record.model, **record.config)
        except (KeyError, ConfigError, TypeError) as e:
            raise RunStoreError(f"imported run: cannot rebuild model {record.model!r} ({e})") from e
        _check_weights(files[WEIGHTS], record.model, config)
        for name in (n for n in files if n.startswith(f"{ARTIFACTS}/")):
            if name.endswith(".json"):
                _json(files[name], name)
            else:
                _safetensors_header(files[name], name)
        if SNAPSHOTS in files:
            _safetensors_header(files[SNAPSHOTS], SNAPSHOTS)
        if (self.root / record.id).exists():
            record.id = f"{record.id}-{secrets.token_hex(2)}"
        files[META] = json.dumps(record.__dict__, indent=1, allow_nan=True).encode()
        self._write(record.id, files)
        return record.id

    def checkpoint_epochs(self, run_id: str) -> list[int]:
        """The epochs whose weights the run's ``checkpoints`` artifact holds (keys ``epoch_<E>.<state key>``,
        for some of the state's keys: a GAN keeps its generator's); [] when it has none."""
        if CHECKPOINTS not in self.record(run_id).artifacts:
            return []
        return sorted({int(k.split(".", 1)[0].removeprefix("epoch_")) for k in self.artifact(run_id, CHECKPOINTS)})

    def rollback(self, run_id: str, epoch: int) -> str:
        """Save, as a new run, run ``run_id`` with the weights its checkpoints hold for ``epoch`` put back (the
        others as they ended); returns the new run's id. Its history stops at that epoch."""
        model, record = self.load(run_id)
        prefix = f"epoch_{epoch}."
        kept = {k[len(prefix):]: torch.as_tensor(v) for k, v in self.artifact(run_id, CHECKPOINTS).items()
                if k.startswith(prefix)}
        if not kept:
            raise RunStoreError(f"run {run_id} kept no weights for epoch {epoch}; it kept {self.checkpoint_epochs(run_id)}")
        try:
            model.load_state_dict(kept, strict=False)
        except RuntimeError as e:
            raise RunStoreError(f"run {run_id}: the checkpoint of epoch {epoch} does not fit its model ({e})") from e
        new = dataclasses.replace(record, id=new_run_id(record.model), created=time.time(), metrics={},
                                  status="finished", message=f"rolled back from {run_id} to its weights after "
                                                             f"epoch {epoch}",
                                  history=[h for h in record.history if h.get("epoch", 0) <= epoch],
                                  epochs=[r for r in record.epochs if r.get("epoch", 0) <= epoch])
        snaps = {e: w for e, w in self.snapshots(run_id).items() if e <= epoch}
        self.save(new, model, snaps, {})
        return new.id

    def rename(self, run_id: str, name: str) -> RunRecord:
        """Give run ``run_id`` a display name ("" clears it); its id, and links to it, stay as they are. The
        record is rewritten atomically (a temporary file, then rename)."""
        name = " ".join(str(name).split())
        if len(name) > MAX_NAME_CHARS:
            raise RunStoreError(f"a run's name is at most {MAX_NAME_CHARS} characters")
        if any(not c.isprintable() for c in name):
            raise RunStoreError("a run's name cannot hold control characters")
        with _REWRITING:  # a read, a change and a write: two at once would lose one change
            record = self.record(run_id)
            record.name = name
            return self._rewrite(record, "renamed")

    def add_metrics(self, run_id: str, metrics: dict[str, float],
                    metric_labels: dict[str, str] | None = None) -> RunRecord:
        """Add ``metrics`` to run ``run_id``'s record, and take its family's ``metric_labels`` (the headline first)
        where given: scores measured after it was saved (a GAN's samples, scored by the Generate page where the run
        was saved without them), so the lists show them."""
        with _REWRITING:
            record = self.record(run_id)
            record.metrics = {**record.metrics, **metrics}
            if metric_labels is not None:
                record.metric_labels = dict(metric_labels)
            return self._rewrite(record, "updated")

    def _rewrite(self, record: RunRecord, what: str) -> RunRecord:
        """Write ``record`` over its run's record atomically (a temporary file, then rename)."""
        path = self._run_dir(record.id) / META
        remove_stale_temporaries(path.parent, f".{META}.*.tmp")
        tmp = path.with_name(f".{META}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_text(json.dumps(record.__dict__, indent=1, allow_nan=True))
            tmp.replace(path)
        except OSError as e:
            raise RunStoreError(f"run {record.id} could not be {what} ({e})") from e
        finally:
            tmp.unlink(missing_ok=True)
        return record

    def size(self, run_id: str) -> int:
        """Bytes the run's folder takes on disk."""
        return sum(p.stat().st_size for p in self._run_dir(run_id).rglob("*") if p.is_file())

    def delete(self, run_id: str) -> None:
        shutil.rmtree(self._run_dir(run_id))


def _changed_config(model: str, config: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``config`` that differ from model ``model``'s defaults (dataset-fixed ones aside)."""
    from .config import param_specs
    from .registry import model_spec
    try:
        specs = param_specs(model_spec(model).config_cls)
    except KeyError:
        return {}
    out = {}
    for spec in specs:
        if not spec.ui or spec.name not in config:
            continue
        value, default = config[spec.name], spec.default
        if (list(value) if isinstance(value, (list, tuple)) else value) != \
                (list(default) if isinstance(default, tuple) else default):
            out[spec.name] = value
    return out


def short_value(value: Any) -> str:
    """A setting's value as a run's title shows it: 100-30 for a layer list, 0.001 for a float."""
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        shown = name[:60] + "…" if isinstance(name, str) and len(name) > 60 else name
        raise RunStoreError(f"bad {what} {shown!r}: up to 128 letters, digits, '.', '_' and '-'")


def _json(data: bytes, source: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunStoreError(f"{source} is damaged ({e})") from e
    except RecursionError as e:  # nested deeper than the parser goes
        raise RunStoreError(f"{source} is damaged (nested too deeply)") from e


_REWRITING = threading.Lock()  # a server's sessions renaming a run and scoring it at the same moment

# run folder -> (the run.json's inode, size and change time, its record less history and epoch rows): every
# page's sidebar lists the runs at every rerun, and parsing each run.json again took 6.6 % of a Generate seed change
# with 11 runs. Summaries only: a 730 KB run.json (a long VAE run) holds 2.1 MB once parsed.
_SUMMARIES: dict[str, tuple[tuple, RunRecord]] = {}

_NUMBER = (int, float)
_FIELD_TYPES = {"id": str, "model": str, "config": dict, "dataset": str, "seed": int, "settings": dict,
                "status": str, "message": str, "created": _NUMBER, "seconds": _NUMBER, "history": list,
                "epochs": list, "metrics": dict, "units": dict, "metric_labels": dict, "stat_labels": dict,
                "artifacts": list, "name": str}


def _check_fields(meta: dict, source: str) -> None:
    """Every field of the right JSON type, and metrics numbers (or lists or dicts of numbers), so that no page
    that lists or labels runs meets a value it cannot format."""
    for key, kind in _FIELD_TYPES.items():
        value = meta.get(key)
        if key in meta and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
            raise RunStoreError(f"run {source}: {META} is damaged ({key} is {type(value).__name__})")
    for key, value in meta.get("metrics", {}).items():
        parts = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        if not all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in parts):
            raise RunStoreError(f"run {source}: {META} is damaged (metric {key!r} is not a number)")


def _parse_record(source: str, data: bytes) -> RunRecord:
    meta = _json(data, f"run {source}: {META}")
    if not isinstance(meta, dict):
        raise RunStoreError(f"run {source}: {META} is damaged (not an object)")
    schema = meta.get("schema", 1)
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise RunStoreError(f"run {source}: {META} has schema {schema!r}; this version reads up to {SCHEMA_VERSION}")
    meta["schema"] = SCHEMA_VERSION  # version 1 lacks only fields that have defaults
    _check_fields(meta, source)
    try:
        record = RunRecord(**meta)
    except TypeError as e:
        raise RunStoreError(f"run {source}: {META} is damaged ({e})") from e
    try:
        record.config = as_saved(model_spec(record.model).config_cls, record.config)
    except KeyError:
        pass  # an unknown model: said where the run is loaded
    return record


def _allowed(name: str) -> bool:
    if name in (META, WEIGHTS, SNAPSHOTS):
        return True
    folder, _, file = name.partition("/")
    stem, dot, ext = file.rpartition(".")
    return folder == ARTIFACTS and bool(dot) and ext in ("json", "safetensors") and bool(_NAME.fullmatch(stem))


def _read_zip(data: bytes) -> dict[str, bytes]:
    """The files of a run's zip, each name checked (no folders outside the run, nothing but a run's files) and the
    sizes bounded before anything is decompressed, and again while it is."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise RunStoreError(f"not a zip file ({e})") from e
    if len(infos) > MAX_IMPORT_FILES:
        raise RunStoreError(f"the zip holds {len(infos)} files; a run has at most {MAX_IMPORT_FILES}")
    bad = [i.filename for i in infos if not _allowed(i.filename)]
    if bad:
        raise RunStoreError(f"the zip holds files a run does not have: {', '.join(map(repr, bad[:5]))}")
    if sum(i.file_size for i in infos) > MAX_IMPORT_BYTES:
        raise RunStoreError(f"the zip unpacks to more than {MAX_IMPORT_BYTES >> 20} MB")
    files = {}
    for info in infos:
        try:
            with zf.open(info) as f:
                content = f.read(info.file_size + 1)  # a lying header cannot make us read more
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as e:
            raise RunStoreError(f"{info.filename} in the zip is damaged ({e})") from e
        if len(content) != info.file_size:
            raise RunStoreError(f"{info.filename} in the zip is not the size its header says")
        files[info.filename] = content
    return files


def _safetensors_header(data: bytes, source: str) -> dict[str, Any]:
    """The tensor entries of a safetensors file's header, checked against the file's length; no tensor is read.
    A safetensors file is an 8-byte little-endian header length, a JSON header, then the raw data."""
    if len(data) < 8:
        raise RunStoreError(f"{source} is damaged (too short)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise RunStoreError(f"{source} is damaged (header longer than the file)")
    header = _json(data[8:8 + n], source)
    if not isinstance(header, dict):
        raise RunStoreError(f"{source} is damaged (bad header)")
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    end = max((int(v["data_offsets"][1]) for v in entries.values() if isinstance(v, dict)
               and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2), default=0)
    if 8 + n + end != len(data):
        raise RunStoreError(f"{source} is damaged (its tensors do not fill the file)")
    return entries


def _check_weights(data: bytes, model_name: str, config: Any) -> None:
    """Every tensor the model has, with its shape, and no other."""
    header = _safetensors_header(data, WEIGHTS)
    fields = dataclasses.asdict(config)
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {k: tuple(v.shape) for k, v in create_model(model_name, **fields).state_dict().items()}
    except Exception:  # a family whose constructor needs real values (a seed drawn at init)
        with seeded_init(0):
            expected = {k: tuple(v.shape) for k, v in create_model(model_name, **fields).state_dict().items()}
    found = {k: tuple(v.get("shape", ())) if isinstance(v, dict) else None for k, v in header.items()}
    if found != expected:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
        raise RunStoreError(f"{WEIGHTS} does not fit a {model_name} with this config (missing {missing[:3]}, "
                            f"unexpected {extra[:3]}, wrong shape {wrong[:3]})")
