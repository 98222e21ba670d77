"""Contractive diagnostics: how strongly each encoder reacts to small changes of its input, for a contractive, a
denoising and a plain autoencoder side by side (Rifai et al. 2011, section 6)."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aecore import analysis
from pages import ui
from pages.ui import runs, share, state

ui.page_setup()
st.title("Contraction")
if not ui.presenting():  # on a projector the charts come first; their titles say what each is
    st.caption("The encoder's Jacobian J = ∂code/∂input at test points: its Frobenius norm, its singular values at "
               "one point, and the contraction ratio ‖f(x + r·u) − f(x)‖ / r over random directions u as the input "
               "distance r grows. A contractive encoder has a small norm and few large singular values.")
dataset = state.current_dataset(modality="image")
choices = runs.usable_runs(dataset, prefer=("contractive", "denoising", "stacked"), encodes=True)
if not choices:
    st.info("No run on this dataset has an encoder yet. Train a **contractive**, a **denoising** and a **stacked** model (the "
            "Compare page's *regularizers* preset trains all three).")
    runs.offer(("Compare: regularizers", runs.COMPARE_PAGE, {"preset": "regularizers"}),
               ("Train a contractive autoencoder", runs.TRAIN_PAGE, {"model": "contractive"}))
    st.stop()
# the runs on a row of their own: in a column, the third run's chip was hidden behind the first two
picked = runs.picker(choices, f"ae.contract.runs.{dataset.name}", value=runs.one_per_model(choices, 3))
if not ui.presenting() and "contractive" not in {runs.model_of(i) for i in choices}:  # nothing to set against
    st.caption("A contractive autoencoder beside these shows what its penalty does to the encoder; train one:")
    runs.offer(("Train a contractive autoencoder", runs.TRAIN_PAGE, {"model": "contractive"}),
               ("Compare: regularizers", runs.COMPARE_PAGE, {"preset": "regularizers"}))
c2, c3 = st.columns([2, 1])
n_test = len(dataset.x_test)
if n_test >= 20:  # a slider needs two stops; an upload of 24 pictures has 4 test images, and it still said 100
    top = min(500, n_test // 10 * 10)
    n_points = share.widget("points", c2.slider, "Test points", min_value=10, max_value=top, value=min(100, top),
                            step=10, key="ae.contract.n")
else:
    n_points = n_test
    share.take("points")  # a link's count, made for a larger dataset: all are shown anyway
    c2.caption(f"Test points: all {n_test} this dataset has")
point = share.widget("index", c3.number_input, f"Spectrum at test index (0–{len(dataset.x_test) - 1})", min_value=0,
                     max_value=len(dataset.x_test) - 1, value=0, key="ae.contract.point")
shown = [r for r in (runs.load_run(i) for i in picked) if r is not None]
if not shown:
    st.info("Choose at least one run trained on this dataset.")
    st.stop()


def diagnostics(model, x_test: np.ndarray, n: int) -> dict:
    x = x_test[:n]
    radii = np.geomspace(0.05, 20, 14)
    return {"norms": analysis.jacobian_norms(model, x), "radii": radii,
            "ratio": analysis.contraction_curve(model, x, radii)}


# Two caches: the spectrum's test index is a control of its own, and one cache for both made each change of it compute
# the Jacobians at all the test points again (a 784-1000 encoder: 3.7 s for 100 points against 0.2 s for the one).
@st.cache_data(max_entries=64, show_spinner=False)
def _diagnostics(run_id: str, dataset_name: str, n: int, _model, _x: np.ndarray) -> dict:
    return diagnostics(_model, _x, n)


@st.cache_data(max_entries=64, show_spinner=False)
def _spectrum(run_id: str, dataset_name: str, point: int, _model, _x: np.ndarray) -> np.ndarray:
    return analysis.jacobian_spectrum(_model, _x[point])


diags = {}
progress = st.progress(0.0, text="Computing Jacobians…")
for i, r in enumerate(shown):
    if r.training:  # weights still change: nothing cached
        d = diagnostics(r.model, dataset.x_test, n_points)
        d["spectrum"] = analysis.jacobian_spectrum(r.model, dataset.x_test[int(point)])
    else:
        d = {**_diagnostics(r.id, dataset.name, n_points, r.model, dataset.x_test),
             "spectrum": _spectrum(r.id, dataset.name, int(point), r.model, dataset.x_test)}
    diags[r.id] = d
    progress.progress((i + 1) / len(shown), text=f"{r.id} done")
progress.empty()

cols = st.columns(len(shown))
for col, r in zip(cols, shown):
    d = diags[r.id]
    if ui.presenting():  # one line each: as metrics with captions they pushed the charts below a 1280x720 screen
        col.markdown(f"**{r.model.registry_name}** · mean ‖J‖_F **{d['norms'].mean():.3f}** · median "
                     f"{np.median(d['norms']):.3f}")
        continue
    col.metric(f"{r.model.registry_name}: mean ‖J‖_F", f"{d['norms'].mean():.3f}", help=r.id)
    col.caption(f"{r.id} · median {np.median(d['norms']):.3f} over {len(d['norms'])} test points")

hist, spec, ratio = go.Figure(), go.Figure(), go.Figure()
LAYOUT = dict(height=340 if ui.presenting() else 380, margin=dict(l=10, r=10, t=40, b=10),
              legend=dict(orientation="h", y=-0.3))
zeros, nonzero = [], []
for r in shown:
    d, name = diags[r.id], f"{r.model.registry_name} ({r.id[-4:]})"
    hist.add_histogram(x=d["norms"], name=name, opacity=0.6, nbinsx=30)
    values, n_zero = analysis.nonzero_spectrum(d["spectrum"])
    nonzero.append(values)
    spec.add_scatter(y=values, x=np.arange(1, len(values) + 1), mode="lines+markers", name=name)
    if n_zero:
        zeros.append(f"{name}: {n_zero} of {len(d['spectrum'])}")
    ratio.add_scatter(x=d["radii"], y=d["ratio"], mode="lines+markers", name=name)
hist.update_layout(barmode="overlay", title="‖J‖_F at test points", xaxis_title="Frobenius norm",
                   yaxis_title="points", **LAYOUT)
kept = np.concatenate(nonzero)
powers = np.arange(np.floor(np.log10(kept.min())), np.ceil(np.log10(kept.max())) + 1) if kept.size else np.zeros(1)
spec.update_layout(title=f"singular values of J at test #{point}", xaxis_title="rank", yaxis_title="singular value",
                   yaxis_type="log", **LAYOUT,
                   # decades only, as 10⁻⁴ (not "100µ"); within two decades plotly read "2 10 5 2" down the axis
                   yaxis=dict(tickvals=10.0 ** powers,
                              ticktext=[{0: "1", 1: "10"}.get(int(p), f"10<sup>{int(p)}</sup>") for p in powers]))
radii = np.concatenate([diags[r.id]["radii"] for r in shown])
decades = 10.0 ** np.arange(np.floor(np.log10(radii.min())), np.ceil(np.log10(radii.max())) + 1)
ratio.update_layout(title="contraction ratio by distance", xaxis_title="input distance r",
                    yaxis_title="‖f(x+ru) − f(x)‖ / r", xaxis_type="log", **LAYOUT,
                    # decades only: plotly's own log ticks read "5 0.1 2 5 1 2 5 10 2"
                    xaxis=dict(tickvals=decades, ticktext=[f"{v:g}" for v in decades]))
a, b, c = st.columns(3)
a.plotly_chart(hist, key="ae.contract.hist")
b.plotly_chart(spec, key="ae.contract.spec")
c.plotly_chart(ratio, key="ae.contract.ratio")
if zeros:
    b.caption("Singular values that are 0 (below 10⁻⁶ of the largest: a code unit off at this point, or a layer "
              "narrower than the code) are left off the log axis: " + "; ".join(zeros) + ".")
