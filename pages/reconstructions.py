"""Reconstructions page: test inputs beside their reconstructions, with per-sample error, worst first, or two
runs side by side on the same inputs."""
import numpy as np
import streamlit as st

from aecore.metrics import per_sample_errors
from pages import ui
from pages.ui import figures, runs, share, state

ui.page_setup()
METRICS = {"sse": "squared error per image", "bce": "BCE per pixel", "mse": "MSE per pixel"}


@st.cache_data(max_entries=64, show_spinner="Scoring the test set…")
def _errors(run_id: str, dataset: str, _model, _x: np.ndarray) -> dict[str, np.ndarray]:
    return per_sample_errors(_model, _x)


def errors_for(handle: runs.RunHandle, dataset) -> dict[str, np.ndarray]:
    if handle.training:  # weights still change: never cache
        return per_sample_errors(handle.model, dataset.x_test)
    return _errors(handle.id, dataset.name, handle.model, dataset.x_test)


def parse_indices(text: str, n: int) -> list[int]:
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        idx = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"indices must be whole numbers separated by commas, got {text!r}") from None
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise ValueError(f"indices must be between 0 and {n - 1}; out of range: {bad}")
    return idx


st.title("Reconstructions")
dataset = state.current_dataset(modality="image")
run = runs.require_run(dataset, reconstructs=True)
if run.training:
    st.warning("This run is still training: what you see uses its weights as of now.")

# The controls and what they change rerun as a fragment: a change redraws this part, not the sidebar around it.
@st.fragment
def view() -> None:
    n_test = len(dataset.x_test)
    c1, c2, c3, c4 = st.columns([2, 1, 2, 2])
    order = share.widget("order", c1.radio, "Samples", ["random", "chosen", "worst first"], horizontal=True,
                         key="ae.rec.order")
    most = max(1, min(48, len(dataset.x_test)))  # an upload of 24 pictures has 4 test images: "12" showed 4
    count = share.widget("count", c2.number_input, "How many", min_value=1, max_value=most, value=min(12, most),
                         key="ae.rec.count")
    metric = share.widget("error", c3.selectbox, "Error", list(METRICS), format_func=METRICS.get, key="ae.rec.metric")
    others = [r for r in runs.usable_runs(dataset, reconstructs=True) if r != run.id]
    other_id = share.widget("other", c4.selectbox, "Compare with", ["(none)"] + others, key="ae.rec.other",
                            help="Another run on the same inputs, for example PCA with the same code size.")

    errs = errors_for(run, dataset)
    if order == "random":
        seed = st.session_state.setdefault(state.REC_SEED, 0)
        if st.button("New random samples", key="ae.rec.shuffle"):
            st.session_state[state.REC_SEED] = seed = seed + 1
        idx = np.random.default_rng(seed).choice(n_test, size=min(count, n_test), replace=False)
    elif order == "chosen":
        text = share.widget("indices", st.text_input, f"Test indices (0–{n_test - 1})", value="0, 1, 2, 3, 4, 5",
                            key="ae.rec.indices", max_chars=400)
        try:
            idx = np.array(parse_indices(text, n_test), dtype=int)
        except ValueError as e:
            st.error(str(e))
            st.stop()
        if len(idx) == 0:
            st.info("Type one or more test indices.")
            st.stop()
    else:
        idx = np.argsort(-errs[metric], kind="stable")[:count]

    other = runs.load_run(other_id) if other_id != "(none)" else None
    shown = [run] + ([other] if other is not None else [])
    cols = st.columns(len(shown))
    all_errs = [errs] + [errors_for(o, dataset) for o in shown[1:]]
    for col, r, e in zip(cols, shown, all_errs):
        if ui.presenting():  # one line: as metrics they pushed the reconstructions off a 1280x720 projector
            col.markdown(f"**{r.id}** · test BCE {e['bce'].mean():.4f} / pixel · MSE {e['mse'].mean():.4f} / pixel · "
                         f"squared error {e['sse'].mean():.2f} / image")
            continue
        col.markdown(f"**{r.id}**")
        a, b, c = col.columns(3)
        a.metric("test BCE / pixel", f"{e['bce'].mean():.4f}")
        b.metric("MSE / pixel", f"{e['mse'].mean():.4f}")
        c.metric("squared error / image", f"{e['sse'].mean():.2f}")

    x = dataset.x_test[idx]
    st.markdown("**Input**")
    figures.images(x, dataset.image_shape, [figures.tile_caption(f"#{i}", dataset.class_names[dataset.y_test[i]])
                                            for i in idx])
    for r, e in zip(shown, all_errs):
        recon = r.model.reconstruct(__import__("torch").as_tensor(x)).numpy()
        st.markdown(f"**{r.id}** — {METRICS[metric]} under each")
        figures.images(recon, dataset.image_shape, [f"{e[metric][i]:.3f}" for i in idx])


view()
