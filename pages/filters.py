"""Filters page: a run's first-layer weights as a mosaic (each tile normalised, and on one global scale), the
samples and the input that excite a chosen unit most, sparsity diagnostics, and the mosaic replayed by epoch."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aecore import analysis
from pages import ui
from pages.ui import figures, runs, share, state
from pages.ui.mosaic import clickable_mosaics

ui.page_setup()
st.title("Filters")
dataset = state.current_dataset(modality="image")
run = runs.require_run(dataset, filters=True)
weights_now = run.model.first_layer_weights()


@st.cache_resource(max_entries=16, show_spinner="Measuring unit activity on the test set…")
def _activations(run_id: str, outputs: bool, _model, _x: np.ndarray) -> np.ndarray | None:
    # a resource, shared and never copied (the pages only read it): st.cache_data keeps a pickled copy and
    # unpickles another at every run, 80 MB more per run for the 10,000 x 1,000 activations of a k-sparse run
    return analysis.unit_activations(_model, _x, outputs=outputs)


@st.cache_data(max_entries=256, show_spinner="Maximising the unit's activation…")
def _act_max(run_id: str, unit: int, norm: float, _model) -> np.ndarray:
    return analysis.activation_maximization(_model, unit, _model.config.input_dim, norm)


def _snapshots() -> dict[int, np.ndarray]:
    if run.job is not None:
        return run.job.progress().snapshots
    return state.run_store().snapshots(run.id)


# activations rank the samples that excite a unit; outputs (after a k-sparse top-k or a threshold) measure sparsity
acts, outs = (analysis.unit_activations(run.model, dataset.x_test, outputs=o) if run.training else
              _activations(run.id, o, run.model, dataset.x_test) for o in (False, True))
n_units = len(weights_now)
is_conv = weights_now.dim() == 3

# Three parts: the settings every part reads (a change reruns the page), the mosaics with their own controls, and
# one unit; the mosaics and the unit rerun as fragments, so ordering the tiles redraws the two mosaics and nothing
# else (the browser redrew the whole page, then the unit's images and the histogram too, at every change).
c_epoch, c_threshold = st.columns(2)
threshold = share.widget("threshold", c_threshold.number_input, "Active when activation >", value=0.1, step=0.05,
                         min_value=-100.0, max_value=100.0, format="%.2f", key="ae.filters.thr",
                         help="a unit fires on a sample when its activation exceeds this")
snaps = _snapshots()
epochs = sorted(snaps)
if len(epochs) > 1:
    epoch = share.widget("epoch", c_epoch.select_slider, "Epoch", epochs + ["now"], value="now",
                         key="ae.filters.epoch",
                         help="replay the mosaic from snapshots saved during training (epoch 0: initial)")
else:
    epoch = "now"
    c_epoch.caption("No epoch snapshots for this run.")
weights = weights_now.detach().float().cpu().numpy() if epoch == "now" else snaps[epoch]
stats = analysis.sparsity_stats(outs, threshold) if outs is not None else None
shape = dataset.image_shape
tile = tuple(weights.shape[1:]) if is_conv else tuple(shape)


@st.fragment
def mosaics() -> None:
    c1, c2 = st.columns(2)
    order_by = share.widget("order", c1.radio, "Order tiles by", ["norm", "firing", "index"], horizontal=True,
                            key="ae.filters.order",
                            help="weight norm, how often the unit fires on the test set, or unit number")
    n_show = share.widget("tiles", c2.slider, "Tiles", min_value=1, max_value=min(n_units, 256),
                          value=min(n_units, 100), key="ae.filters.n")
    order = analysis.unit_order(weights, stats["fire_rate"][:len(weights)] if stats else None, order_by)
    if order_by == "firing" and stats is None:
        st.caption("This family gives no unit activations; tiles are in index order.")
    st.caption(f"{n_units} units; showing {n_show}. Click a tile to inspect its unit below.")
    shown = order[:n_show]
    ncols = int(np.ceil(np.sqrt(len(shown))))
    scale = max(1, 84 // max(tile)) if is_conv else 1
    step = (tile[0] * scale + scale, tile[1] * scale + scale)  # tile plus one padding pixel, enlarged
    panels = [(title, figures.filter_images(weights, shape, per_tile, n_show, order, ncols=ncols, scale=scale))
              for title, per_tile in (("each tile contrast-normalised", True), ("one global scale (grey = 0)", False))]
    # plain images, not a Plotly chart: an order change ended within 150 ms in 7-10 of 10 against 2-7 (bench/README)
    # under the pointer: what the orders sort by
    norms = analysis.unit_norms(weights)
    fire = stats["fire_rate"] if stats and len(stats["fire_rate"]) >= n_units else None
    labels = [f"unit {u} · norm {norms[u]:.2f}" + (f" · fires on {fire[u]:.0%}" if fire is not None else "")
              for u in shown]
    unit = clickable_mosaics(panels, shown, labels, ncols, step, scale,  # one padding pixel, enlarged, first
                             300 if ui.presenting() else 420, key="ae.filters.mosaic")
    if unit is not None:  # a tile clicked: the whole page, so that the unit's part shows it
        st.session_state[state.FILTERS_UNIT] = unit
        st.rerun()


@st.fragment
def one_unit() -> None:
    st.subheader("One unit")
    unit = share.widget("unit", st.number_input, f"Unit (0–{n_units - 1})", min_value=0, max_value=n_units - 1,
                        value=0, key=state.FILTERS_UNIT)
    u1, u2, u3 = st.columns([1, 3, 1])
    u1.image(figures.png_url(figures.filter_images(weights, shape, True, 1, np.array([unit]),
                                                   scale=max(2, 112 // max(tile)))),
             caption=f"filter of unit {unit}")
    if acts is None:
        u2.info("This family gives no unit activations to rank samples by.")
        return
    top = analysis.top_activating(acts, unit, 9)
    with u2:
        st.markdown(f"**The {len(top)} test samples that excite it most**" if len(top) > 1 else
                    "**The test sample that excites it most**")
        for row in np.array_split(top, 3):  # a 3x3 grid at any width (one row of 9 wrapped as 8 + 1 at 1280 px)
            figures.images(dataset.x_test[row], shape,
                           [f"{acts[i, unit]:.2f} · {dataset.class_names[dataset.y_test[i]]}" for i in row], width=84)
    norm = float(np.linalg.norm(dataset.x_test, axis=1).mean())
    best = analysis.activation_maximization(run.model, unit, dataset.input_dim, norm) if run.training else \
        _act_max(run.id, unit, norm, run.model)
    u3.image(figures.png_url(figures.filter_images(best[None], shape, True, 1, np.array([0]),
                                                   scale=max(2, 112 // max(shape)))),
             caption=f"activation maximisation (input norm {norm:.1f})")


mosaics()
if run.model.registry_name in ("stacked", "tied") and not ui.presenting():  # a new user's first run: noise-like
    st.caption("With no penalty, an autoencoder's units spread their weights over the whole image; sparse and "
               "denoising autoencoders learn localised pen strokes. See them side by side:")
    runs.offer(("Compare: sparse coding, five ways", runs.COMPARE_PAGE, {"preset": "sparse coding, five ways"}))
one_unit()
if stats is not None:
    st.subheader("Sparsity")
    m1, m2, m3 = st.columns(3)
    m1.metric("dead units", f"{stats['dead_share']:.0%}", help="never above the threshold on the test set")
    m2.metric("active units per sample", f"{stats['active_per_sample']:.1f}", help=f"out of {acts.shape[1]}")
    m3.metric("mean activation", f"{outs.mean():.3f}")
    hist = go.Figure(go.Histogram(x=stats["mean_activation"], nbinsx=40))  # graph_objects: px took 40 ms a run
    hist.update_xaxes(title_text="mean activation of a unit over the test set")
    hist.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis_title="units")
    st.plotly_chart(hist, key="ae.filters.hist")
