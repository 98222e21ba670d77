"""Generate page: samples of several runs side by side with classifier scores; a VAE's latent levers from a test
image or a drawing; interpolation between two images or two noise vectors; a VAE's KL per dimension and NLL
bound, a GAN's samples epoch by epoch with what went wrong and a roll-back."""
import html
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from aecore import RunStoreError, latent, model_spec, scores, viz
from aecore.data import classifiable, classifier_noun, digit_classes
from aecore.jobs import BackgroundTask
from pages import ui
from pages.ui import figures, runs, share, state

ui.page_setup()
st.title("Generate")
dataset = state.current_dataset(modality="image")
shape = dataset.image_shape
PRESENTER_GRID_PX = 300
SCORE_N = scores.SCORE_N  # samples behind each run's three numbers (the grid shows the first of them)
VIEWS = ("Side by side", "Levers", "Interpolation", "Diagnostics")
TRAIN_VAE = ("Train a VAE", {"model": "vae"})  # what a view that needs a sampling run offers


@st.cache_resource
def _classifier_tasks() -> dict:
    """(store root, dataset) -> the BackgroundTask that loads or trains its digit classifier; shared by sessions."""
    return {}


def classifier():
    """The dataset's digit classifier, or ``None`` while it trains (a progress bar says so; the page reruns) or
    where the dataset has one class (nothing to train it on)."""
    if not classifiable(dataset):
        return None
    key = (str(state.run_store().root), dataset.name)
    tasks = _classifier_tasks()
    task = tasks.get(key)
    if task is None or (task.done and task.error):
        task = tasks[key] = BackgroundTask(lambda progress: scores.classifier_for(dataset, key[0], progress=progress),
                                           name="digit-classifier").start()
    if task.done:
        return task.result
    @st.fragment(run_every=0.5)
    def wait() -> None:
        st.progress(task.fraction, text=f"Training the {classifier_noun(dataset)} that scores samples (once per "
                                        f"dataset, then cached)… {runs.fmt_left(task.seconds_left())}".strip())
        if task.done:
            st.rerun()
    wait()
    return None


@st.cache_data(max_entries=4, show_spinner="Reading the test set's features…")
def _reference(dataset_name: str, _clf) -> np.ndarray:
    return scores.classify(_clf, dataset.x_test)[0]


@st.cache_data(max_entries=64, show_spinner=False)
def _samples(run_key: tuple, seed: int, n: int, _model) -> np.ndarray:
    return scores.draw_samples(_model, n, seed, dataset)


@st.cache_data(max_entries=64, show_spinner=False)
def _scores(run_key: tuple, seed: int, _model, _clf, _reference) -> dict:
    samples = _samples(run_key, seed, SCORE_N, _model)
    return scores.sample_scores(_clf, samples, _reference, labels=True)


@st.cache_data(max_entries=4, show_spinner="Measuring the distance's scale on real images…")
def _scale(dataset_name: str, _clf) -> list:
    return scores.frechet_scale(_clf, dataset, n=min(2000, len(dataset.x_test)))


@st.cache_resource
def _listed_scores_saved() -> set:
    """(store root, run id) of the runs whose listed scores this server has written: once each."""
    return set()


def save_listed_scores(handle, s: dict) -> None:
    """A saved run listed by sample scores it lacks (a GAN from before they existed, or one whose scoring Stop
    skipped) gets them from the grid's own: the same 1,000 samples at seed 0, so the same numbers the job computes;
    the lists show them from the next rerun on."""
    store = state.run_store()
    key, saved = (str(store.root), handle.id), _listed_scores_saved()
    labels = type(handle.model).metric_labels
    if handle.training or handle.record is None or key in saved or "classifier_frechet" not in labels or \
            "classifier_frechet" in handle.record.metrics:
        return
    saved.add(key)
    try:
        store.add_metrics(handle.id, {"classifier_frechet": s["classifier_frechet"],
                                      "confident_share": s["confident_share"]}, labels)
    except RunStoreError:  # a read-only or damaged store: the page shows the numbers all the same
        pass


def run_key(handle) -> tuple:
    """What cached samples of a run depend on: its id and, while it trains, the step of the weights shown."""
    return handle.id, handle.job.progress().weights_step if handle.training else -1


def histogram(shares: list[float], height: int = 150) -> go.Figure:
    fig = go.Figure(go.Bar(x=[str(c) for c in dataset.class_names], y=shares, marker_color="#4c6ef5"))
    # the label right of the plot: inside it, it sat over the last bar when that bar was taller than uniform
    fig.add_hline(y=1 / len(shares), line_dash="dot", line_color="#868e96", annotation_text="uniform",
                  annotation_position="right", annotation_font_color="#868e96")
    fig.update_layout(height=height, margin=dict(l=0, r=56, t=10, b=0), yaxis=dict(tickformat=".0%"),
                      xaxis=dict(type="category", title=None), showlegend=False)  # every class labelled
    return fig


def history_of(handle) -> list[dict]:
    return handle.job.progress().history if handle.job is not None else (handle.record.history if handle.record else [])


def rollback_controls(handle, key: str) -> None:
    """A roll-back to an epoch whose weights the run kept (GANs keep their generator's)."""
    if handle.record is None:
        return
    epochs = state.run_store().checkpoint_epochs(handle.id)
    if not epochs:
        return
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    epoch = c1.selectbox("Roll back to the weights after epoch", epochs[::-1], key=f"ae.gen.rollback.{key}")
    if c2.button("Roll back", key=f"ae.gen.rollback_btn.{key}", help="Saves a new run; this one is kept."):
        new = state.run_store().rollback(handle.id, epoch)
        st.session_state[state.PENDING_RUN] = new
        st.success(f"Saved **{new}**: {handle.id} with its weights after epoch {epoch}. It is selected in the "
                   "sidebar.")


# --- side by side -------------------------------------------------------------------------------------------------
def side_by_side() -> None:
    # a GAN's, a VAE's and a plain autoencoder's samples side by side by default, the newest of each, whatever
    # other families were trained since (a contractive and a denoising run had pushed the VAE out)
    choices = runs.usable_runs(dataset, prefer=("gan", "vae", "stacked"), samples=True)
    if not choices:
        st.info("No run on this dataset can sample yet. Train a **vae**, a **gan** or any autoencoder on the "
                "**Train** page (an autoencoder samples by decoding codes drawn from a Gaussian fitted to its "
                "training codes).")
        runs.offer(("Train a VAE", runs.TRAIN_PAGE, {"model": "vae"}),
                   ("Train a GAN", runs.TRAIN_PAGE, {"model": "gan"}))
        return
    if not set(st.session_state.get(state.GEN_RUNS, ())) <= set(choices):
        st.session_state.pop(state.GEN_RUNS, None)
    if state.GEN_RUNS not in st.session_state:  # the newest run of each of up to three models
        st.session_state[state.GEN_RUNS] = runs.one_per_model(choices, 3)
    presenting = ui.presenting()
    runs.picker(choices, state.GEN_RUNS, max_selections=4)
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    n = share.widget("n", c1.select_slider, "Samples per run", [16, 25, 36, 49, 64, 100], value=36, key="ae.gen.n")
    share.widget("seed", c2.number_input, "Seed", min_value=0, max_value=2**31 - 1, value=0, key=state.GEN_SEED)
    c3.button("New seed", icon=":material/casino:", width="stretch", key="ae.gen.reseed",
              on_click=lambda: st.session_state.__setitem__(state.GEN_SEED, st.session_state[state.GEN_SEED] + 1))
    picked = st.session_state[state.GEN_RUNS]
    if not picked:
        st.info("Pick one or more runs above.")
        return
    clf = classifier()
    ref = _reference(dataset.name, clf[0]) if clf else None
    seed = int(st.session_state[state.GEN_SEED])
    # at least two columns: one run's grid alone took the page's width, its 36 samples 130 px each and three screens
    cols = st.columns(max(len(picked), 2))
    if len(picked) == 1:  # the free column says how to fill it
        with cols[1]:
            if len(choices) > 1:
                st.caption("Add another run under **Runs** to see its samples beside these, scored the same way.")
            else:
                st.caption("Samples of another family beside these show what each learned; train one:")
                have = runs.model_of(picked[0])
                runs.offer(*[(f"Train a {m.upper() if m != 'stacked' else 'plain autoencoder'}", runs.TRAIN_PAGE,
                              {"model": m}) for m in ("vae", "gan", "stacked") if m != have])
    for col, rid in zip(cols, picked):
        with col:
            handle = runs.load_run(rid)
            if handle is None:
                continue
            # one line, cut with an ellipsis if the column is narrow: a wrapped title pushed its grid below the others
            title = f"<b>{html.escape(runs.model_of(rid))}</b> · {html.escape(rid)}" + (
                " (training…)" if handle.training else "")
            st.html(f'<div title="{html.escape(rid)}" style="white-space:nowrap;overflow:hidden;'
                    f'text-overflow:ellipsis">{title}</div>')
            try:
                samples = _samples(run_key(handle), seed, SCORE_N, handle.model)[:n]
            except RuntimeError as e:
                st.error(f"Cannot sample from this run: {e}")
                continue
            # on a 1280x720 projector a grid that fits under the controls (the columns' width drew 390 px, half of
            # it off screen); the scores follow below it
            grid = viz.mosaic(samples, shape, ncols=int(np.ceil(np.sqrt(n))), scale=figures.scale_for(shape, 56))
            st.image(figures.png_url(grid),
                     width=PRESENTER_GRID_PX if presenting else "stretch")
            if clf is None:
                continue
            s = _scores(run_key(handle), seed, handle.model, clf[0], ref)
            if seed == 0:
                save_listed_scores(handle, s)
            m1, m2 = st.columns(2)
            m1.metric("confident ≥ 0.9", f"{s['confident_share']:.0%}",
                      help=f"share of the samples the {classifier_noun(dataset)} labels with probability ≥ 0.9")
            m2.metric("classifier Fréchet", f"{s['classifier_frechet']:.0f}",
                      help="Fréchet distance between the classifier's features of the samples and of the test set; "
                           "lower is closer (scale below)")
            st.plotly_chart(histogram(s["label_histogram"]), key=f"ae.gen.hist.{rid}")
            problems = handle.model.diagnose(history_of(handle), samples, dataset.x_test[:256], s["labels"],
                                             len(dataset.class_names))
            for problem in problems:
                st.warning(problem)
            if problems:  # one roll-back however many problems (two would share a widget key)
                rollback_controls(handle, f"side.{rid}")
    if not classifiable(dataset):
        st.caption(f"Samples are not scored here: {state.dataset_title(dataset.name)} has one class, and the "
                   "scores come from a classifier of a dataset's classes.")
    if clf is not None:
        st.caption(f"The numbers come from {SCORE_N:,} samples per run (the grid shows the first {n}), scored by a "
                   f"small conv net trained on {state.dataset_title(dataset.name)} (test accuracy "
                   f"{clf[1]['test_accuracy']:.1%}). The distance is a Fréchet distance between that net's 128 "
                   "penultimate features: **not an Inception FID**, and not comparable with published FIDs.")
        with st.expander("What the distance's values mean on this dataset"):
            st.table({"images": [r[0] for r in _scale(dataset.name, clf[0])],
                      "classifier Fréchet distance to the test set": [f"{r[1]:.1f}" for r in _scale(dataset.name,
                                                                                                       clf[0])]})


# --- levers -------------------------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def _code_stats(key: tuple, _model, posterior: bool) -> dict:
    x = dataset.x_test[:2000]
    if posterior:
        return _model.posterior_stats(x)
    codes = latent.encode_all(_model, x)
    return {"mean": codes.mean(0), "spread": codes.std(0), "kl": None}


def _drawing() -> np.ndarray:
    from streamlit_drawable_canvas import st_canvas
    st.caption(("Draw a digit" if digit_classes(dataset) else "Draw one of the dataset's images")
               + " (white on black); it is scaled and centred as MNIST's digits are.")
    result = st_canvas(stroke_width=16, stroke_color="#ffffff", background_color="#000000", height=196, width=196,
                       drawing_mode="freedraw", return_image_data=True, key="ae.gen.canvas")
    try:
        pixels = result.image_data if result is not None else None
    except (RuntimeError, ValueError, OSError):  # nothing drawn yet, or an unreadable image
        pixels = None
    return viz.digit_from_drawing(pixels, shape)


def levers() -> None:
    run = runs.require_run(dataset, encodes=True, reconstructs=True, suggest=TRAIN_VAE)
    posterior = model_spec(runs.model_of(run.id)).capabilities.posterior
    st.fragment(lever_view)(run, posterior)


MANIFOLD_N = 15  # tiles a side of a 2-D code's decoded manifold


@st.cache_data(max_entries=16, show_spinner=False)
def _manifold(key: tuple, _model, box: tuple[float, float, float, float]) -> np.ndarray:
    """The decoded n x n grid over ``box`` as one picture (drawn once a run, not at every lever move)."""
    return viz.mosaic(latent.decoder_grid(_model, box, MANIFOLD_N), shape, ncols=MANIFOLD_N, scale=1)


def lever_view(run, posterior: bool) -> None:
    """The starting point and the decodes on the left, one slider per latent dimension on the right: the decode
    stays in sight beside the sliders (below them, it was off a 1280x720 screen), and a lever or a new start reruns
    only this view."""
    model = run.model
    left, right = st.columns([1, 2], gap="large")
    with left:
        source = share.widget("from", st.radio, "Start from", ["a test image", "a drawing"], horizontal=True,
                              key="ae.gen.source")
        if source == "a test image":
            c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
            share.widget("index", c1.number_input, "Test image", min_value=0, max_value=len(dataset.x_test) - 1,
                         value=0, key="ae.gen.index")
            c2.button("Random", key="ae.gen.random", help="a random test image",
                      on_click=lambda: st.session_state.__setitem__(
                          "ae.gen.index", int(np.random.default_rng().integers(len(dataset.x_test)))))
            x0 = dataset.x_test[int(st.session_state["ae.gen.index"])]
            origin = (run.id, int(st.session_state["ae.gen.index"]))
        else:
            x0 = _drawing()
            origin = (run.id, "drawing", hash(x0.tobytes()))
        shown = st.empty()
    with torch.no_grad():
        z0 = model.encode(torch.as_tensor(x0[None]))[0].numpy()
    stats = _code_stats(run_key(run), model, posterior)
    keys = [f"ae.gen.z.{i}" for i in range(len(z0))]
    if st.session_state.get(state.GEN_ORIGIN) != origin:  # a new starting point: every lever moves to its code
        for k, v in zip(keys, z0):
            st.session_state[k] = float(v)
        st.session_state[state.GEN_ORIGIN] = origin
    with right:
        z = lever_sliders(z0, stats, keys)
        if len(z) == 2:  # the whole manifold beside the levers (below the page, it was off a 1280x720 screen),
            # a ring where they sit on it
            lo, hi = stats["mean"] - 3 * stats["spread"], stats["mean"] + 3 * stats["spread"]
            box = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
            # scale 1: shown 360 px wide anyway, and each lever move encodes it again (13 ms; 28 ms at scale 2)
            st.image(figures.png_url(viz.mark_grid_point(_manifold(run_key(run), model, box), box, MANIFOLD_N,
                                                         shape, tuple(z), scale=1)),
                     width=360, caption="The whole decoded 2-D latent space, ±3 standard deviations of the test "
                     "codes on each axis (z₁ left to right, z₂ bottom to top); the ring: the levers")
    with torch.no_grad():
        decoded = model.decode_pixels(torch.as_tensor(z[None]))[0].numpy()
        start = model.decode_pixels(torch.as_tensor(z0[None].astype(np.float32)))[0].numpy()
    with shown.container():
        if source == "a test image":
            figures.images(np.stack([x0, start]), shape, ["the start", "its decode"], width=84)
            figures.images(decoded[None], shape, ["decoded with the levers"], width=168)
        else:  # the canvas above is the start
            figures.images(np.stack([start, decoded]), shape, ["its decode", "with the levers"], width=112)


def lever_sliders(z0: np.ndarray, stats: dict, keys: list[str]) -> np.ndarray:
    """One slider per latent dimension, each spanning ±3 standard deviations of its codes; returns their values."""
    kl = stats.get("kl")
    cols = st.columns(4)
    z = np.array(z0, dtype=np.float32)
    for i, key in enumerate(keys):
        lo = float(min(stats["mean"][i] - 3 * stats["spread"][i], z0[i], -1e-3))
        hi = float(max(stats["mean"][i] + 3 * stats["spread"][i], z0[i], 1e-3))
        st.session_state[key] = float(np.clip(st.session_state[key], lo, hi))
        quiet = kl is not None and kl[i] < 0.01
        label = f"z{i + 1}" + (f" · carries no information (KL {kl[i]:.3f})" if quiet else
                               (f" · KL {kl[i]:.2f}" if kl is not None else ""))
        z[i] = cols[i % 4].slider(label, lo, hi, step=(hi - lo) / 200, key=key, format="%.2f",
                                  help="a dimension whose KL to the prior is ~0 is ignored by the decoder" if quiet
                                  else None)
    if kl is not None:
        st.caption(f"{int((kl >= 0.01).sum())} of {len(kl)} dimensions carry information (KL ≥ 0.01 nats on "
                   "average over test images); each slider spans ±3 standard deviations of its posterior means.")
    return z


# --- interpolation ------------------------------------------------------------------------------------------------
def interpolation() -> None:
    run = runs.require_run(dataset, samples=True, suggest=TRAIN_VAE)
    caps = model_spec(runs.model_of(run.id)).capabilities
    c1, c2, c3, c4 = st.columns(4)
    steps = share.widget("steps", c3.slider, "Steps", min_value=3, max_value=16, value=10, key="ae.gen.steps")
    mode = share.widget("path", c4.radio, "Path", ["linear", "spherical"], horizontal=True, key="ae.gen.path",
                    help="spherical (slerp) keeps the norm of the latent vector, which suits a Gaussian prior")
    if caps.encodes:
        a = share.widget("a", c1.number_input, "From test image", min_value=0, max_value=len(dataset.x_test) - 1,
                         value=0, key="ae.gen.a")
        b = share.widget("b", c2.number_input, "To test image", min_value=0, max_value=len(dataset.x_test) - 1,
                         value=1, key="ae.gen.b")
        out = latent.interpolate(run.model, dataset.x_test[a], dataset.x_test[b], steps,
                                 "slerp" if mode == "spherical" else "linear")
        st.image(figures.png_url(viz.mosaic(np.concatenate([out["decoded"], out["blend"]]), shape, ncols=steps,
                                            scale=figures.scale_for(shape, 84))),
                 caption="Decoded along the path between the two codes (top); the pixel blend, for contrast "
                         "(bottom)")
        return
    a = share.widget("na", c1.number_input, "From noise seed", min_value=0, max_value=2**31 - 1, value=0,
                     key="ae.gen.na")
    b = share.widget("nb", c2.number_input, "To noise seed", min_value=0, max_value=2**31 - 1, value=1,
                     key="ae.gen.nb")
    model = run.model
    model.prepare_sampling(dataset)
    za, zb = (model.prior_latents(1, torch.Generator().manual_seed(int(s)))[0].cpu().numpy() for s in (a, b))
    codes = latent.path(za, zb, steps, "slerp" if mode == "spherical" else "linear")
    with torch.no_grad():
        strip = model.decode_pixels(torch.as_tensor(codes, dtype=torch.float32)).cpu().numpy()
    st.image(figures.png_url(viz.mosaic(strip, shape, ncols=steps, scale=figures.scale_for(shape, 84))),
             caption="Generated along the path between two noise vectors")


# --- diagnostics --------------------------------------------------------------------------------------------------
@st.cache_resource
def _nll_tasks() -> dict:
    return {}


def posterior_diagnostics(run) -> None:
    stats = _code_stats(run_key(run), run.model, True)
    kl = stats["kl"]
    st.subheader("KL per latent dimension")
    fig = go.Figure(go.Bar(x=[f"z{i + 1}" for i in range(len(kl))], y=kl,
                           marker_color=["#4c6ef5" if v >= 0.01 else "#ced4da" for v in kl]))
    fig.update_layout(height=240, margin=dict(l=0, r=0, t=10, b=0), yaxis_title="nats (mean over test images)")
    st.plotly_chart(fig, key="ae.gen.kl")
    active = int((stats["spread"] ** 2 > 0.01).sum())
    st.caption(f"Active units (Burda et al. 2016: variance of the posterior mean over images > 0.01): "
               f"**{active}** of {len(kl)}. Grey bars carry (almost) no information.")
    st.subheader("ELBO and the importance-weighted bound")
    c1, c2, c3 = st.columns(3)
    k = share.widget("k", c1.select_slider, "Samples per image (K)", [1, 5, 10, 50, 100, 500], value=50,
                     key="ae.gen.k")
    n = share.widget("images", c2.select_slider, "Test images", [100, 500, 1000, 2000, 5000, 10000], value=1000,
                     key="ae.gen.nimg")
    key = (run_key(run), k, min(n, len(dataset.x_test)))
    tasks = _nll_tasks()
    if c3.button("Estimate", type="primary", key="ae.gen.estimate", width="stretch") and key not in tasks:
        subset = SimpleNamespace(x_test=dataset.x_test[:key[2]])
        model = run.model
        tasks[key] = BackgroundTask(lambda progress: model.evaluate(subset, iw_samples=k, progress=progress),
                                    name="iw-nll").start()
        state.keep_newest_finished(tasks, lambda t: t.done)
    task = tasks.get(key)
    if task is None:
        st.caption("The ELBO is what training maximises; the importance-weighted bound (Burda et al. 2016) is "
                   "tighter as K grows, so the gap shows how far the ELBO is from log p(x).")
        return

    @st.fragment(run_every=0.5 if not task.done else None)
    def show() -> None:
        if not task.done:
            st.progress(task.fraction, text=f"{k} samples per image on {key[2]:,} test images… "
                                            f"{runs.fmt_left(task.seconds_left())}".strip())
            return
        if task.error:
            st.error(task.error)
            return
        r = task.result
        m1, m2, m3 = st.columns(3)
        m1.metric("−ELBO (nats / image)", f"{r['elbo_loss']:.2f}")
        m2.metric(f"importance-weighted NLL, K={k}", f"{r['nll_iw']:.2f}")
        m3.metric("gap", f"{r['elbo_loss'] - r['nll_iw']:.2f} nats")
    show()


def sample_snapshots(run) -> None:
    snaps = run.job.progress().snapshots if run.job is not None else state.run_store().snapshots(run.id)
    snaps = {e: np.asarray(v, dtype=np.float32) for e, v in sorted(snaps.items())}
    if not snaps:
        st.caption("No epoch snapshots yet.")
        return
    st.subheader("Samples from fixed noise, epoch by epoch")
    epochs = list(snaps)
    epoch = st.select_slider("Epoch", epochs, value=epochs[-1], key=f"ae.gen.epoch.{run.id}") if len(epochs) > 1 \
        else epochs[0]
    st.image(figures.png_url(viz.mosaic(snaps[epoch], shape, ncols=16, scale=figures.scale_for(shape, 56))),
             caption=f"after epoch {epoch}")
    clf = classifier()
    labels = scores.classify(clf[0], snaps[epoch])[1].argmax(1) if clf else None
    history = [h for h in history_of(run) if h.get("epoch", 0) <= max(epoch, 1e-9)]
    problems = run.model.diagnose(history, snaps[epoch], dataset.x_test[:256], labels, len(dataset.class_names))
    for problem in problems:
        st.warning(f"Epoch {epoch}: {problem}")
    if not problems:
        st.success(f"Epoch {epoch}: no sign of mode collapse or divergence in these samples.")
    rollback_controls(run, "diag")


def diagnostics() -> None:
    run = runs.require_run(dataset, samples=True, suggest=TRAIN_VAE)
    caps = model_spec(runs.model_of(run.id)).capabilities
    p_hist = history_of(run)
    if p_hist:
        labels = run.job.progress().stat_labels if run.job is not None else run.record.stat_labels
        units = run.job.progress().units if run.job is not None else run.record.units
        rows = run.job.progress().epoch_rows if run.job is not None else run.record.epochs
        st.plotly_chart(figures.cost_figure(p_hist, rows, units, height=260, stats=labels), key="ae.gen.curve")
    if caps.posterior:
        posterior_diagnostics(run)
    if getattr(run.model, "snapshot_kind", "") == "samples":
        sample_snapshots(run)
    if not _diagnosed(runs.model_of(run.id)):
        choices = runs.run_choices(dataset.name)
        fits = [rid for rid in choices if _diagnosed(runs.model_of(rid))]
        st.info("This run's family has no diagnostics beyond its cost curve: a VAE shows its KL per dimension and "
                "NLL bound here, a GAN its samples epoch by epoch" + (": switch to one of these runs." if fits else
                                                                        "; train one on the **Train** page."))
        runs.run_buttons(fits, choices)


def _diagnosed(model_name: str) -> bool:
    """Whether the Diagnostics tab shows more than a cost curve for runs of ``model_name`` (a VAE, a GAN)."""
    try:
        builder = model_spec(model_name).builder
    except KeyError:
        return False
    return builder.capabilities.posterior or getattr(builder, "snapshot_kind", "") == "samples"


view = share.widget("view", st.segmented_control, "View", list(VIEWS), key=state.GEN_VIEW, value=VIEWS[0],
                    label_visibility="collapsed")
{"Side by side": side_by_side, "Levers": levers, "Interpolation": interpolation,
 "Diagnostics": diagnostics}.get(view or VIEWS[0])()
