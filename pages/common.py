"""Shared UI pieces: session state, cached loads, the sidebar, and controls built from config metadata."""
from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aecore import (ConfigError, Dataset, DatasetError, RunRecord, RunStore, RunStoreError, TrainingJob,
                    param_specs)
from aecore.config import parse_sizes
from aecore.data import DEFAULT_DATASET, dataset_info, list_datasets

K_DATASET = "ae.dataset"
K_RUN = "ae.run"
K_PENDING_RUN = "ae.pending_run"
K_JOBS = "ae.jobs"


def lowest_priority(fn):
    """``fn`` run at the lowest CPU priority its thread can have (Linux lets a thread set its own), so that it only
    uses time no one else wants: measured, training runs 6.5x slower beside numba compiling at normal priority and
    not measurably slower beside it at nice 19."""
    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):  # not Linux: run at normal priority
            pass
        fn()
    return run


@st.cache_resource
def _warm_up() -> list[threading.Thread]:
    """Once per server, in the background: imports that would otherwise delay the first training step, then the
    numba compilation that t-SNE and UMAP need (tens of seconds for umap-learn's first call in a process)."""
    from aecore.latent import warm_up as warm_projections
    from aecore.training import warm_up
    threads = [threading.Thread(target=warm_up, name="aecore-warm-up", daemon=True)]
    if os.environ.get("AECORE_WARM_PROJECTIONS", "1") != "0":  # the tests turn it off: it only costs them time
        threads.append(threading.Thread(target=lowest_priority(warm_projections), name="aecore-warm-projections",
                                        daemon=True))
    for thread in threads:
        thread.start()
    return threads


@st.cache_resource
def torch_threads() -> int:
    """Once per server: torch computes on one core fewer than the machine has (at least one), leaving a core to the
    browser and to Streamlit; threads started later (training jobs, projections, script runs) inherit it. With both
    of 2 cores, every parallel op of a training step waited for the core the browser was drawing on: 8 epochs of the
    seed recipe on full MNIST took 24-30 s with the Train page watching, 17 s with one thread, 14.5 s with two and
    no page open. ``AECORE_TORCH_THREADS`` overrides it, say for a server whose users browse from elsewhere."""
    import torch
    try:
        n = int(os.environ.get("AECORE_TORCH_THREADS", "0"))
    except ValueError:
        n = 0
    n = n if n > 0 else max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(n)
    return n


def init_state() -> None:
    """Session state is set up once, with namespaced keys."""
    torch_threads()
    _warm_up()
    st.session_state.setdefault(K_DATASET, DEFAULT_DATASET)
    st.session_state.setdefault(K_JOBS, {})


def page_setup() -> None:
    """First lines of every page. Streamlit runs a page straight from its file, skipping the router in ``app.py``,
    in its legacy ``pages/``-folder mode (a fresh server opened at a page's URL; every AppTest run). Then run the
    router here, in this same script run so no widget event is lost, and end the direct run."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without the legacy mode
        PagesManager = None
    if PagesManager is not None and PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        app = Path(__file__).resolve().parents[1] / "app.py"
        exec(compile(app.read_text(), str(app), "exec"), {"__name__": "__main__", "__file__": str(app)})
        st.stop()
    init_state()


def jobs() -> dict[str, TrainingJob]:
    """This session's training jobs, running or ended, by run id."""
    return st.session_state[K_JOBS]


def keep_newest_finished(entries: dict, is_done, keep: int = 16) -> None:
    """Drop all but the ``keep`` newest finished entries of a task cache shared by sessions (dicts keep insertion
    order, so the first are the oldest); running ones always stay."""
    for old in [k for k, v in entries.items() if is_done(v)][:-keep]:
        del entries[old]


def run_store() -> RunStore:
    return RunStore(os.environ.get("AECORE_RUNS_DIR") or None)


@st.cache_resource(show_spinner="Loading dataset…")
def _dataset(name: str) -> Dataset:
    return __import__("aecore").load_dataset(name)


def current_dataset() -> Dataset:
    """The dataset picked in the sidebar; if it cannot be loaded, say why and stop the page."""
    name = st.session_state[K_DATASET]
    try:
        return _dataset(name)
    except DatasetError as e:
        st.error(f"**{dataset_info(name).title}** is not available: {e}")
        st.stop()


@st.cache_resource(max_entries=32, show_spinner="Loading run…")
def _saved_run(root: str, run_id: str, mtime: float):
    return RunStore(root).load(run_id)


@dataclass
class RunHandle:
    """A run the pages can show: saved (``record``) or still training in this session (``job``)."""

    id: str
    label: str
    model: object
    record: RunRecord | None
    job: TrainingJob | None = None

    @property
    def training(self) -> bool:
        return self.job is not None and not self.job.progress().done


def run_choices(dataset: str) -> dict[str, str]:
    choices = {}
    for run_id, job in jobs().items():
        if job.dataset.name == dataset and not job.progress().done:
            choices[run_id] = f"● {run_id} (training…)"
    for entry in run_store().list():
        if entry.record is not None and entry.record.dataset == dataset and entry.id not in choices:
            choices[entry.id] = entry.record.label
    return choices


def load_run(run_id: str) -> RunHandle | None:
    """A run by id, from this session's jobs or the store; an unreadable run is reported and gives ``None``."""
    job = jobs().get(run_id)
    if job is not None and not job.progress().done and job.model is not None:
        return RunHandle(run_id, f"{run_id} (training…)", job.model, None, job)
    store = run_store()
    try:
        mtime = (store.root / run_id / "model.safetensors").stat().st_mtime
        model, record = _saved_run(str(store.root), run_id, mtime)
    except (RunStoreError, OSError) as e:
        st.error(f"Run {run_id} cannot be loaded: {e}")
        return None
    return RunHandle(run_id, record.label, model, record, job)


def selected_run() -> RunHandle | None:
    run_id = st.session_state.get(K_RUN)
    return load_run(run_id) if run_id else None


def require_run() -> RunHandle:
    """The run picked in the sidebar; without one, say how to get one and stop the page."""
    handle = selected_run()
    if handle is None:
        st.info("No run selected. Train one on the **Train** page, or pick a saved run in the sidebar.")
        st.stop()
    return handle


def sidebar() -> None:
    if st.session_state.get(K_PENDING_RUN):  # a page asked to select a run (a new job, say)
        st.session_state[K_RUN] = st.session_state.pop(K_PENDING_RUN)
    with st.sidebar:
        st.selectbox("Dataset", list_datasets(), key=K_DATASET, format_func=lambda n: dataset_info(n).title,
                     help="Embedded datasets work offline; the others download on first use "
                          "(or are read from $AECORE_DATA_DIR).")
        choices = run_choices(st.session_state[K_DATASET])
        if not choices:
            st.session_state.pop(K_RUN, None)
            st.caption("No runs on this dataset yet: train one on the **Train** page.")
            return
        if st.session_state.get(K_RUN) not in choices:
            st.session_state[K_RUN] = next(iter(choices))
        st.selectbox("Run", list(choices), key=K_RUN, format_func=choices.get,
                     help="Saved runs on this dataset, and this session's runs still training.")
        damaged = [e for e in run_store().list() if e.record is None]
        if damaged:
            st.caption(f"{len(damaged)} damaged run(s) skipped: " + "; ".join(e.error for e in damaged[:3]))


# --- controls built from config metadata ---------------------------------------------------------------------------
def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _log_grid(lo: float, hi: float, default: float, integer: bool) -> list:
    if integer:
        grid = [2 ** k for k in range(int(math.log2(max(lo, 1))), int(math.log2(hi)) + 1)]
    else:
        grid = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi]
    return sorted(set(grid) | {default})


def config_controls(config_cls: type, key_prefix: str, disabled: bool = False) -> tuple[dict, list[str]]:
    """One control per UI field of ``config_cls``; returns (values, errors). Defaults come from session state
    (a preset writes there) or from the dataclass."""
    values, errors = {}, []
    for spec in param_specs(config_cls):
        if not spec.ui:
            continue
        key = f"{key_prefix}.{spec.name}"
        common = dict(key=key, help=spec.help or None, disabled=disabled)
        label = _label(spec.name)
        if spec.kind == "bool":
            st.session_state.setdefault(key, spec.default)
            values[spec.name] = st.toggle(label, **common)
        elif spec.kind == "choice":
            st.session_state.setdefault(key, spec.default)
            values[spec.name] = st.selectbox(label, list(spec.choices), **common)
        elif spec.kind == "sizes":
            st.session_state.setdefault(key, ",".join(map(str, spec.default)))
            text = st.text_input(label, **common)
            try:
                values[spec.name] = parse_sizes(text)
            except ConfigError as e:
                errors.append(str(e))
        elif spec.log:
            grid = _log_grid(spec.min, spec.max, spec.default, spec.kind == "int")
            st.session_state.setdefault(key, spec.default)
            if st.session_state[key] not in grid:
                st.session_state[key] = min(grid, key=lambda g: abs(math.log(g) - math.log(st.session_state[key])))
            values[spec.name] = st.select_slider(label, grid, format_func=lambda v: f"{v:g}", **common)
        elif spec.kind == "int" and spec.max is not None and spec.max - spec.min <= 1000:
            st.session_state.setdefault(key, spec.default)
            values[spec.name] = st.slider(label, int(spec.min), int(spec.max), step=int(spec.step or 1), **common)
        elif spec.kind == "int":
            st.session_state.setdefault(key, spec.default)
            values[spec.name] = st.number_input(label, int(spec.min or 0), int(spec.max) if spec.max else None,
                                                step=int(spec.step or 1), **common)
        else:
            st.session_state.setdefault(key, spec.default)
            values[spec.name] = st.slider(label, float(spec.min), float(spec.max), step=spec.step,
                                          format=spec.format, **common)
    return values, errors


def apply_preset(key_prefix: str, config_cls: type, preset: dict) -> None:
    """Write a preset into the controls' session state (defaults for the fields it does not name)."""
    for spec in param_specs(config_cls):
        if spec.ui:
            value = preset.get(spec.name, spec.default)
            st.session_state[f"{key_prefix}.{spec.name}"] = ",".join(map(str, value)) if spec.kind == "sizes" \
                else value


# --- formatting ----------------------------------------------------------------------------------------------------
def fmt_seconds(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def images(pixels: np.ndarray, shape: tuple[int, int], captions: list[str] | None = None, scale: int = 2) -> None:
    """A row of images in [0, 1], enlarged without blur."""
    from aecore.viz import image_tiles
    st.image(image_tiles(pixels, shape, scale=scale), caption=captions)


def cost_figure(history: list[dict], epoch_rows: list[dict], height: int = 320) -> go.Figure:
    """One line per loss term: running means while training (solid) and the test value per epoch (dotted)."""
    fig = go.Figure()
    terms = [k for k in (history[-1] if history else {}) if k not in ("step", "epoch", "phase")]
    palette = ["#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#f59f00", "#1098ad"]
    for i, term in enumerate(terms):
        color = palette[i % len(palette)]
        fig.add_scatter(x=[h["epoch"] for h in history], y=[h.get(term) for h in history], mode="lines",
                        name=f"{term} (train)", line=dict(color=color))
        val = [(r["epoch"], r[f"val_{term}"]) for r in epoch_rows if f"val_{term}" in r]
        if val:
            fig.add_scatter(x=[v[0] for v in val], y=[v[1] for v in val], mode="lines+markers",
                            name=f"{term} (test)", line=dict(color=color, dash="dot"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="epoch",
                      yaxis_title="loss", legend=dict(orientation="h", y=1.12), title=None)
    return fig


def filter_images(weights: np.ndarray, input_shape: tuple, per_tile: bool, n: int, order: np.ndarray,
                  ncols: int | None = None, scale: int | None = None) -> np.ndarray:
    """A uint8 mosaic of the first ``n`` filters in ``order``: dense weights are shown as images, conv kernels as
    they are (enlarged more)."""
    from aecore.viz import mosaic, normalize_filters
    w = weights[order[:n]]
    tile = tuple(w.shape[1:]) if w.ndim == 3 else tuple(input_shape)
    tiles = normalize_filters(w.reshape(len(w), -1), per_tile)
    scale = scale or max(1, 84 // max(tile))
    return mosaic(tiles, tile, ncols=ncols, scale=scale, pad_value=1.0)


def runs_for(dataset: str, prefer: tuple[str, ...] = ()) -> dict[str, str]:
    """Run choices on ``dataset``; runs of the ``prefer``red models first."""
    choices = run_choices(dataset)
    models = {e.id: e.record.model for e in run_store().list() if e.record is not None}
    ordered = sorted(choices, key=lambda r: next((i for i, m in enumerate(prefer) if models.get(r) == m),
                                                  len(prefer)))
    return {r: choices[r] for r in ordered}
