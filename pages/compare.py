"""Compare page: several configurations trained on the same data with the same seed as one action, their filters,
reconstructions and cost curves in aligned columns."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import streamlit as st
import torch

from aecore import ConfigError, TrainSettings
from aecore.compare import COMPARE_PRESETS, CompareJob, Contender
from aecore.store import headline_number
from aecore.viz import mosaic
from pages import ui
from pages.ui import figures, runs, share, state

ui.page_setup()
st.title("Compare")
st.caption("Train several autoencoders on the same data with the same seed, then read their filters, "
           "reconstructions and cost curves side by side. Every run is also saved, so the other pages can open it.")
dataset = state.current_dataset(modality="image")
job: CompareJob | None = st.session_state.get(state.COMPARE_JOB)
running = job is not None and not job.done

c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
preset = share.widget("preset", c1.selectbox, "Preset", list(COMPARE_PRESETS), key="ae.compare.preset",
                      disabled=running)
epochs = share.widget("epochs", c2.number_input, "Epochs", min_value=1, max_value=200, value=5,
                      key="ae.compare.epochs", disabled=running)
lr = share.widget("lr", c3.select_slider, "Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-3,
                  key="ae.compare.lr", format_func=lambda v: f"{v:g}", disabled=running)
seed = share.widget("seed", c4.number_input, "Seed", min_value=0, max_value=2**31 - 1, value=0,
                    key="ae.compare.seed", disabled=running)
contenders = COMPARE_PRESETS[preset]
if not ui.presenting():  # on a projector the columns' own headings say what each is
    st.dataframe(pd.DataFrame([{"column": c.label, "model": c.model,
                                "settings": ", ".join(f"{k}={v}" for k, v in c.config.items())} for c in contenders]),
                 hide_index=True)
b1, b2, _ = st.columns([1, 1, 4])
if b1.button("Train all", type="primary", disabled=running, key="ae.compare.start", width="stretch"):
    try:
        job = CompareJob(contenders, dataset, TrainSettings(epochs=int(epochs), lr=lr, seed=int(seed)),
                         store=state.run_store()).start()
    except ConfigError as e:  # a preset that does not fit this dataset (image size, say)
        st.error(f"This preset cannot run on {dataset.name}: {e}")
    else:
        st.session_state[state.COMPARE_JOB] = job
        st.rerun()
if b2.button("Stop", disabled=not running, key="ae.compare.stop", width="stretch"):
    job.stop()

N_RECON = 8


class _SavedRun:
    """A saved run in the shape of a finished :class:`aecore.TrainingJob`, for the columns."""

    def __init__(self, handle):
        self.handle, self.record, self.run_id = handle, handle.record, handle.id

    def progress(self):
        r = self.record
        return SimpleNamespace(status=r.status, done=True, fraction=1.0, epoch=len(r.epochs),
                               epochs=r.settings.get("epochs", len(r.epochs)), history=r.history, epoch_rows=r.epochs,
                               units=r.units, stat_labels=r.stat_labels, message=r.message, probe=None)

    def view_model(self):
        return self.handle.model


class SavedComparison:
    """Saved runs shown as a finished comparison (from a share link or a talk preset)."""

    done, fraction, saved = True, 1.0, True

    def __init__(self, handles, contenders):
        self.jobs = [_SavedRun(h) for h in handles]
        by_model = {c.model: c for c in contenders}
        self.contenders = [by_model.get(h.record.model, Contender(h.record.title, h.record.model)) for h in handles]

    @classmethod
    def from_link(cls, raw: str | None, contenders) -> "SavedComparison | None":
        if not raw:
            return None
        ids = [i for i in raw.split(",") if i][:8]
        known = runs.run_choices(dataset.name)
        missing = [i for i in ids if i not in known]
        if missing:
            share.notice("runs", raw, f"not on this server or not on {dataset.name}: {', '.join(missing[:3])}")
        handles = [h for h in (runs.load_run(i) for i in ids if i in known) if h is not None and h.record]
        return cls(handles, contenders) if handles else None


def _same(config: dict, wanted: dict) -> bool:
    """Whether a saved run's ``config`` has each of a contender's settings (tuples are lists once saved)."""
    norm = lambda v: list(v) if isinstance(v, (tuple, list)) else v  # noqa: E731
    return all(norm(config.get(k)) == norm(v) for k, v in wanted.items())


def saved_runs_of(contenders) -> list[str]:
    """The newest saved run on this dataset of each contender's model and settings, or [] unless every contender
    has one: a comparison trained before (another day, a tab since closed) shown again without training it."""
    records = [e.record for e in state.run_store().list()
               if e.record is not None and e.record.dataset == dataset.name and e.record.status != "failed"]
    picked: list[str] = []
    for c in contenders:  # newest first: the list is
        match = next((r.id for r in records if r.model == c.model and _same(r.config, c.config)
                      and r.id not in picked), None)
        if match is None:
            return []
        picked.append(match)
    return picked


SECTIONS = ("head", "progress", "filters", "filters_raw", "recon", "curve", "metric")


def column(cells: dict, contender, run, shape, inputs) -> None:
    """One contender's part of each row: ``cells`` maps each of SECTIONS to its cell."""
    p = run.progress()
    cells["head"].markdown(f"**{contender.label}**  \n`{contender.model}`")
    if p.status == "pending":
        cells["progress"].caption("skipped" if job.done else p.phase if p.phase.startswith("queued") else
                                  "waiting its turn: the columns train one after another, left to right")
        return
    if not (p.done and ui.presenting()):
        cells["progress"].progress(p.fraction, text=f"{p.status} · " + (f"epoch {p.epoch}/{p.epochs}" if p.epochs
                                                                        else "fitted in closed form"))
    model = run.view_model()  # a copy of the published weights: the worker trains the live model
    if model is None:
        return
    weights = model.first_layer_weights()
    if weights is not None:
        w = weights.detach().float().cpu().numpy()
        n = min(len(w), 100)
        order = np.arange(len(w))
        scale = 2 if w.ndim == 2 else 6
        cells["filters"].image(figures.png_url(figures.filter_images(w, shape, True, n, order, scale=scale)),
                               caption="filters, each normalised")
        cells["filters_raw"].image(figures.png_url(figures.filter_images(w, shape, False, n, order, scale=scale)),
                                   caption="filters, one scale")
    else:
        cells["filters"].caption("no first-layer filters")
    if not p.done:  # weights change under the worker: read reconstructions from the published probe
        recon = p.probe[:N_RECON] if p.probe is not None else None
    else:
        recon = model.reconstruct(torch.as_tensor(inputs)).numpy()
    if recon is not None:
        cells["recon"].image(figures.png_url(mosaic(recon, shape, ncols=4, scale=figures.scale_for(shape, 56))),
                             caption="reconstructions")
    if p.history:
        # no legend: in five columns at 1280 px it wrapped into five or six rows over the top panel's title; the
        # row's caption says what the lines are, and each panel's title its term
        cells["curve"].plotly_chart(figures.cost_figure(p.history, p.epoch_rows, p.units, height=260,
                                                        stats=p.stat_labels, legend=False),
                                    key=f"ae.compare.curve.{run.run_id}")
    if run.record is not None and run.record.headline:
        label, value = run.record.headline
        cells["metric"].metric(label, headline_number(value))
    if p.message:
        cells["metric"].caption(p.message)


def results() -> None:
    shape = dataset.image_shape
    inputs = dataset.probe(N_RECON)
    if not (job.done and ui.presenting()):
        text = "done" if job.done else f"training… {runs.fmt_left(job.seconds_left())}".strip()
        st.progress(job.fraction, text=text)
    if not ui.presenting():  # a projector keeps the filters in sight; each column's reconstructions remain
        st.image(figures.png_url(mosaic(inputs, shape, ncols=N_RECON, scale=figures.scale_for(shape, 84))),
                 caption="the same test inputs for every column")
    # a row of columns per section, so that each section starts level across the contenders (one column each
    # drifted down where a heading wrapped: "neural-sparse-coding" at 1280 px)
    rows = {}
    for section in SECTIONS:
        if section == "curve" and any(r.progress().history for r in job.jobs):
            st.caption("Cost curves: solid, the training loss (running mean over steps); dotted, the test loss after "
                       "each epoch; one panel per loss term.")
        rows[section] = st.columns(len(job.jobs))
    for i, (contender, run) in enumerate(zip(job.contenders, job.jobs)):
        column({section: cols[i] for section, cols in rows.items()}, contender, run, shape, inputs)
    if job.done and not any(r.progress().status == "pending" for r in job.jobs):  # a link shows the same columns
        share.publish("runs", [r.run_id for r in job.jobs])
    if job.done and not st.session_state.get(state.COMPARE_SEEN_DONE) is job:
        st.session_state[state.COMPARE_SEEN_DONE] = job
        st.rerun()  # one full rerun so the sidebar lists the new runs


# a link (or a talk preset) can name saved runs to show as the columns
# (``saved``, not isinstance: the page's classes are new at every run, the session's objects are not)
if job is None or getattr(job, "saved", False):
    saved = SavedComparison.from_link(share.take("runs"), contenders)
    if saved is not None:
        st.session_state[state.COMPARE_JOB] = job = saved
if getattr(job, "saved", False) and getattr(job, "preset", preset) != preset:  # shown for another preset
    st.session_state.pop(state.COMPARE_JOB, None)
    job = None
if job is None:
    found = saved_runs_of(contenders)
    if found:
        st.info("Pick a preset and press **Train all**, or show the runs this preset trained before.")
        if st.button(f"Show the saved runs ({len(found)}, the newest of each column)", key="ae.compare.saved",
                     icon=":material/history:"):
            handles = [h for h in map(runs.load_run, found) if h is not None and h.record]
            if handles:  # (one deleted since the offer is reported by load_run, and left out)
                saved = SavedComparison(handles, contenders)
                saved.preset = preset
                st.session_state[state.COMPARE_JOB] = saved
                st.rerun()
    else:
        st.info("Pick a preset and press **Train all**.")
else:
    st.fragment(results, run_every=1.0 if running else None)()
