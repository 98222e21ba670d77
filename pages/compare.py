"""Compare page: several configurations trained on the same data with the same seed as one action, their filters,
reconstructions and cost curves in aligned columns."""
import numpy as np
import pandas as pd
import streamlit as st
import torch

from aecore import ConfigError, TrainSettings
from aecore.compare import COMPARE_PRESETS, CompareJob
from aecore.viz import mosaic
from pages import ui
from pages.ui import figures, state

ui.page_setup()
st.title("Compare")
st.caption("Train several autoencoders on the same data with the same seed, then read their filters, "
           "reconstructions and cost curves side by side. Every run is also saved, so the other pages can open it.")
dataset = state.current_dataset(modality="image")
job: CompareJob | None = st.session_state.get(state.COMPARE_JOB)
running = job is not None and not job.done

c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
preset = c1.selectbox("Preset", list(COMPARE_PRESETS), key="ae.compare.preset", disabled=running)
epochs = c2.number_input("Epochs", 1, 200, 5, key="ae.compare.epochs", disabled=running)
lr = c3.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-3, key="ae.compare.lr",
                      format_func=lambda v: f"{v:g}", disabled=running)
seed = c4.number_input("Seed", 0, 2**31 - 1, 0, key="ae.compare.seed", disabled=running)
contenders = COMPARE_PRESETS[preset]
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


def column(col, contender, run, shape, inputs) -> None:
    p = run.progress()
    col.markdown(f"**{contender.label}**  \n`{contender.model}`")
    if p.status == "pending":
        col.caption("skipped" if job.done else "waiting…")
        return
    col.progress(p.fraction, text=f"{p.status} · epoch {p.epoch}/{p.epochs}")
    model = run.view_model()  # a copy of the published weights: the worker trains the live model
    if model is None:
        return
    weights = model.first_layer_weights()
    if weights is not None:
        w = weights.detach().float().cpu().numpy()
        n = min(len(w), 100)
        order = np.arange(len(w))
        col.image(figures.filter_images(w, shape, True, n, order, scale=2 if w.ndim == 2 else 6),
                  caption="filters, each normalised")
        col.image(figures.filter_images(w, shape, False, n, order, scale=2 if w.ndim == 2 else 6),
                  caption="filters, one scale")
    else:
        col.caption("no first-layer filters")
    if not p.done:  # weights change under the worker: read reconstructions from the published probe
        recon = p.probe[:N_RECON] if p.probe is not None else None
    else:
        recon = model.reconstruct(torch.as_tensor(inputs)).numpy()
    if recon is not None:
        col.image(mosaic(recon, shape, ncols=4, scale=2), caption="reconstructions")
    if p.history:
        col.plotly_chart(figures.cost_figure(p.history, p.epoch_rows, p.units, height=260, stats=p.stat_labels),
                         key=f"ae.compare.curve.{run.run_id}")
    if run.record is not None and run.record.headline:
        label, value = run.record.headline
        col.metric(label, f"{value:.4f}")
    if p.message:
        col.caption(p.message)


def results() -> None:
    shape = job.jobs[0].dataset.image_shape
    inputs = job.jobs[0].probe_inputs[:N_RECON]
    st.progress(job.fraction, text="training…" if not job.done else "done")
    st.image(mosaic(inputs, shape, ncols=N_RECON, scale=3), caption="the same test inputs for every column")
    cols = st.columns(len(job.jobs))
    for col, contender, run in zip(cols, job.contenders, job.jobs):
        column(col, contender, run, shape, inputs)
    if job.done and not st.session_state.get(state.COMPARE_SEEN_DONE) is job:
        st.session_state[state.COMPARE_SEEN_DONE] = job
        st.rerun()  # one full rerun so the sidebar lists the new runs


if job is None:
    st.info("Pick a preset and press **Train all**.")
else:
    st.fragment(results, run_every=1.0 if running else None)()
