"""Latent space page: a run's test codes projected to 2-D (PCA, t-SNE, UMAP) and linked to the images; a decoder grid
over a box of code space; interpolation between two codes; retrieval by code distance against pixel distance."""
import html
import itertools
import time

import numpy as np
import pandas as pd
import streamlit as st

from aecore import latent, viz
from aecore.jobs import BackgroundTask
from pages import ui
from pages.ui import figures, runs, share, state

ui.page_setup()
st.title("Latent space")
dataset = state.current_dataset(modality="image")
run = runs.require_run(dataset, encodes=True, reconstructs=True)
if run.training:
    st.info("This run is still training; come back when it has finished (codes would change under the projection).")
    st.stop()
shape, n_test = dataset.image_shape, len(dataset.x_test)
n_all = n_test + len(dataset.x_train)  # the projections' points: the test images, then the training images


@st.cache_resource
def _seconds_per_image() -> dict:
    """run id -> seconds its encoder took per test image, as measured when the page encoded them."""
    return {}


@st.cache_resource(max_entries=8, show_spinner="Encoding the images…")
def _codes(run_id: str, dataset_name: str, part: str, _model, _x: np.ndarray) -> np.ndarray:
    start = time.perf_counter()
    codes = latent.encode_all(_model, _x)  # a resource, only read: no copy a run (see filters._activations)
    _seconds_per_image()[run_id] = (time.perf_counter() - start) / max(len(_x), 1)
    return codes


@st.cache_resource(max_entries=4, show_spinner="Encoding the training images…")
def _all_codes(run_id: str, dataset_name: str, _model, _test_codes: np.ndarray) -> np.ndarray:
    """The test images' codes, then the training images': one array kept, where joining them at every run of the
    view took 14 ms for full MNIST."""
    return np.concatenate([_test_codes, latent.encode_all(_model, dataset.x_train)])


def _image(i: int) -> np.ndarray:
    """Point ``i``'s pixels: test image i, or training image i - n_test."""
    return dataset.x_test[i] if i < n_test else dataset.x_train[i - n_test]


def _name(i: int) -> str:
    return f"#{i}" if i < n_test else f"train #{i - n_test}"


def _pixels(n: int) -> np.ndarray:
    """The first ``n`` points' pixels (a copy of the training images only where they are asked for)."""
    return dataset.x_test[:n] if n <= n_test else np.concatenate([dataset.x_test, dataset.x_train[:n - n_test]])


@st.cache_data(max_entries=32)
def _pca(key: tuple, _codes: np.ndarray) -> np.ndarray:
    return latent.project(_codes, "pca")


@st.cache_data(max_entries=8, show_spinner="Projecting the raw pixels…")
def _pixels_pca(dataset_name: str, n: int) -> np.ndarray:
    """PCA of the first ``n`` points' pixels; the pixels joined on a miss only (above the test images that join
    copies up to 188 MB for full MNIST, at every rerun while the comparison was on)."""
    return latent.project(_pixels(n), "pca")


@st.cache_resource(max_entries=8)
def _frame(run_id: str, dataset_name: str, _test_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test codes' mean, two principal axes and coordinates on them. The PCA view and the decoder grid use this
    plane whatever the number of points, so that adding points neither turns the view nor resets the ranges a user
    set on the grid's sliders (whose bounds come from it)."""
    return latent.principal_axes(_test_codes)


@st.cache_resource
def _projections() -> dict:
    """(run, dataset, points, method, settings) -> the BackgroundTask computing it; finished ones are the cache."""
    return {}


def _projection_task(key: tuple, codes: np.ndarray, method: str, params: dict) -> BackgroundTask:
    """The task for ``key``: the finished or running one, else a new one. A projection this session started for
    other settings and no longer needs is cancelled (it would only slow this one down)."""
    tasks = _projections()
    previous = st.session_state.get(state.LATENT_TASK)
    if previous != key and previous in tasks and not tasks[previous].done:
        tasks.pop(previous).cancel()
    task = tasks.get(key)
    if task is None or (task.done and (task.error or task.cancelled)):
        task = tasks[key] = BackgroundTask(lambda progress: latent.project(codes, method, progress=progress,
                                                                           **params), name=f"project-{method}")
        task.start()
        state.keep_newest_finished(tasks, lambda t: t.done)
    st.session_state[state.LATENT_TASK] = key
    return task


LIVE_HEIGHT = 560  # pixels: the chart's height, and the live picture's before the browser scales it to the page


def _legend() -> str:
    """The live picture's legend: a coloured dot and name per class, as the chart's legend colours them."""
    items = "".join(f'<span style="margin-right:0.9em;white-space:nowrap"><span style="color:{color}">&#9679;</span>'
                    f" {html.escape(str(name))}</span>" for name, color in
                    zip(dataset.class_names, itertools.cycle(viz.CLASS_COLORS)))
    return f'<div style="font-size:0.85rem">label: {items}</div>'


def _scatter(xy: np.ndarray, index: np.ndarray, size: int | None = None, **layout) -> dict:
    """Points ``xy`` of the images ``index`` (test, then training): one trace per class (WebGL above
    ``figures.SVG_POINTS``) in the live picture's colours, the index as customdata for the selection events;
    ``layout`` overrides the live chart's. A figure as a dict, validated once by Streamlit: 12-15 ms to its JSON for
    1,000 points where ``add_trace`` and ``update_layout`` took 23-29 ms (plotly.express: 200-600 ms)."""
    size = size or (6 if ui.presenting() else 5)
    data = []
    for c, name in enumerate(dataset.class_names):
        rows = np.flatnonzero(labels[index] == c)
        if len(rows):
            data.append(dict(type="scattergl" if len(index) > figures.SVG_POINTS else "scatter",
                             x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=str(name), customdata=index[rows],
                             marker=dict(size=size, color=viz.CLASS_COLORS[c % len(viz.CLASS_COLORS)]),
                             hovertemplate=f"%{{customdata}} · {name}<extra></extra>"))
    # the legend's room fixed, not grown by Plotly's automargin, which drew the chart twice (a third of its time)
    legend_px = 70 + 8 * max(len(str(name)) for name in dataset.class_names)  # the marker, then the name
    return dict(data=data, layout={"height": LIVE_HEIGHT, "legend": {"title": {"text": "label"}},
                                   "margin": dict(l=50, r=legend_px, t=10, b=30, autoexpand=False), **layout})


TRUST_POINTS = 3000
# a training set whose encoding should take at most this long (at the test images' pace) is encoded as the page first
# opens on a run: the embedded 4,000 digits take 5 ms for the seed recipe, 22 ms for the VAE (0.14 s for the
# recurrent model and 0.5 s for the conv one wait for the first change that needs them). Encoded on the first Points
# change past the test images instead, that change was the slowest of ten in the browser (bench/README).
EAGER_SECONDS = 0.05
GRID_BOX = "ae.latent.grid_box"  # the box drawn on the PCA view, for the decoder grid
PICKED = "ae.latent.picked"  # the point last clicked on the chart
PREFETCHED = "ae.latent.prefetched"  # the settings of the t-SNE search this session last asked for
LIVE_EVERY = 1.0  # seconds between redraws of the layout as it forms, once it has a first one
FIRST_LAYOUT_WAIT = 1.5  # seconds a rerun waits for a projection's first layout, rather than show an empty chart


def _await_first_layout(task: BackgroundTask) -> None:
    """Hold this rerun until ``task`` has a layout to show (or is done), at most FIRST_LAYOUT_WAIT: the first
    picture then comes with this rerun instead of after the live view's next poll."""
    task.wait_for_partial(FIRST_LAYOUT_WAIT)


def _selection(event, n: int) -> tuple[list[int], list[tuple[float, float, float, float]]]:
    """The chart's selection as the points' indices (below ``n``) and the boxes' (x0, x1, y0, y1): what the browser
    sent, checked (a crafted message may hold anything; a string there raised in the page)."""
    selection = getattr(event, "selection", None) or {}
    points, boxes = [], []
    for p in selection.get("points") or []:
        i = np.ravel(p.get("customdata") if isinstance(p, dict) else None)
        if i.size and isinstance(i[0], (int, np.integer)) and 0 <= i[0] < n:
            points.append(int(i[0]))
    for b in selection.get("box") or []:
        try:
            x, y = (np.asarray(b[k], dtype=float) for k in ("x", "y"))
        except (TypeError, KeyError, ValueError):
            continue
        if x.size and y.size and np.isfinite(x).all() and np.isfinite(y).all():
            boxes.append((float(x.min()), float(x.max()), float(y.min()), float(y.max())))
    return points, boxes


@st.cache_data(max_entries=8, show_spinner="Scoring the embedding…")
def _scores(key: tuple, _high, _low: np.ndarray, _labels: np.ndarray) -> tuple[float, float]:
    """``_high()`` gives the points in their own space, asked for on a miss only (the pixels are a join)."""
    sub = slice(0, TRUST_POINTS)  # trustworthiness needs all pairwise distances: quadratic time and memory
    return latent.knn_accuracy(_low, _labels), latent.trustworthiness(_high()[sub], _low[sub])


test_codes = _codes(run.id, dataset.name, "test", run.model, dataset.x_test)
if _seconds_per_image().get(run.id, np.inf) * len(dataset.x_train) <= EAGER_SECONDS:
    _all_codes(run.id, dataset.name, run.model, test_codes)  # the first Points change past the test images then waits
labels = np.concatenate([dataset.y_test, dataset.y_train])
code_size = test_codes.shape[1]

# Three fragments: a control redraws its own part only, not the sidebar and the other parts (a change of Points
# reran the whole page, its image strips included). The comparison with raw pixels follows the projection it uses.
@st.fragment
def projection() -> None:
    c1, c2, c3, c4 = st.columns(4)
    NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    method = share.widget("method", c1.selectbox, "Projection", list(latent.PROJECTIONS), key="ae.latent.method",
                          format_func=NAMES.get)
    n = share.widget("points", c2.slider, "Points", min_value=min(100, n_test), max_value=n_all,
                     value=min(2000, n_test),
                     step=100 if n_all > 1000 else 1, key="ae.latent.n",
                     help=f"The first {n_test:,} points are the test images, the rest training images")
    codes = test_codes if n <= n_test else _all_codes(run.id, dataset.name, run.model, test_codes)
    st.caption(f"{run.id}: {code_size}-d codes of " + (f"{n:,} of the {n_test:,} test images." if n <= n_test else
               f"all {n_test:,} test images and {n - n_test:,} training images."))
    params: dict = {}
    if method == "tsne":
        params["perplexity"] = share.widget("perplexity", c3.slider, "Perplexity", min_value=2, max_value=100, value=30,
                                            key="ae.latent.perplexity")
        params["metric"] = share.widget("metric", c4.selectbox, "Metric", ["euclidean", "cosine"],
                                        key="ae.latent.metric")
    elif method == "umap":
        params["n_neighbors"] = share.widget("neighbours", c3.slider, "Neighbours", min_value=2, max_value=100,
                                             value=15,
                                             key="ae.latent.neighbors")
        params["min_dist"] = share.widget("min_dist", c4.slider, "Min dist", min_value=0.0, max_value=0.99, value=0.1,
                                          step=0.01, key="ae.latent.min_dist")
        params["metric"] = share.widget("metric", st.selectbox, "Metric", ["euclidean", "cosine"],
                                        key="ae.latent.umap_metric")
    try:
        latent.check_projection(n, method, **params)
    except latent.ProjectionError as e:
        st.error(str(e))
        st.stop()
    xy, event = None, None
    if method == "pca":
        mean, axes, test_xy = _frame(run.id, dataset.name, test_codes)
        xy = test_xy[:n] if n <= n_test else np.concatenate([test_xy, (codes[n_test:n] - mean) @ axes.T])
    else:
        task = _projection_task((run.id, dataset.name, n, method, tuple(sorted(params.items()))), codes[:n], method,
                                params)
        _await_first_layout(task)
        if task.error:
            st.error(f"{NAMES[method]} failed: {task.error}")
            st.stop()
        if task.done:
            xy = task.result
        else:
            def live() -> None:
                """The layout as it forms, drawn as a picture: redrawing a Plotly chart of thousands of points every
                update took the browser so much CPU that a 10,000-point t-SNE ran 1.4-2x longer beside it. Then one
                full rerun for the interactive chart and the linked views."""
                if task.done:
                    st.rerun()
                if method == "tsne":
                    what = (f"t-SNE: iteration {round(task.fraction * 1000)} of at most 1,000" if task.fraction else
                            "t-SNE: finding each point's nearest neighbours, from the PCA layout shown…")
                elif task.fraction < 0.15:
                    what = f"{NAMES[method]}: finding neighbours…"
                else:
                    what = f"{NAMES[method]}: optimising" + (
                        "…" if latent.umap_compiled() else
                        " (the server's first UMAP also compiles umap-learn's code, 5-30 s)…")
                st.progress(task.fraction, text=what)
                layout = task.partial
                if layout is None:
                    st.caption("Finding each point's nearest neighbours…")
                    return
                st.image(figures.jpeg_url(viz.scatter_raster(layout, labels[:n], height=LIVE_HEIGHT)), width="stretch",
                         caption=f"The layout so far, all {n:,} points; the interactive chart replaces it when done.")
                st.html(_legend())
            # poll briskly until the first layout is there, then redraw once a second
            st.fragment(live, run_every=LIVE_EVERY if task.partial is not None else 0.5)()

    if xy is not None:
        ask = (run.id, dataset.name, n, st.session_state.get("ae.latent.perplexity", 30),
               st.session_state.get("ae.latent.metric", "euclidean"))
        if method != "tsne" and st.session_state.get(PREFETCHED) != ask:
            # t-SNE's neighbours and affinities ready before it is picked, so it starts at its first iteration; asked
            # for once this view is done, not beside a UMAP still computing (its CPU and memory), and once per
            # settings (the request hashes the codes: 10 ms for 70,000)
            st.session_state[PREFETCHED] = ask
            latent.prefetch_tsne(codes[:n], *ask[3:], wrap=state.lowest_priority)
        fig = _scatter(xy, np.arange(n))
        fmt = st.session_state.get("ae.latent.imgfmt", "png")
        event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box"), key="ae.latent.scatter",
                                config={"toImageButtonOptions": {"format": fmt, "filename": f"{run.id}-{method}"}})
        def coordinates(xy=xy, n=n) -> bytes:  # written when the button is pressed, not on every run (4 ms)
            return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "index": np.arange(n), "label": labels[:n]}
                                ).to_csv(index=False).encode()

        d1, d2 = st.columns([1, 3])
        d1.download_button("Coordinates as CSV", coordinates, f"{run.id}-{method}.csv", "text/csv",
                           key="ae.latent.csv")
        d2.radio("The chart's camera button saves", ["png", "svg"], horizontal=True, key="ae.latent.imgfmt")

    picked, boxes = _selection(event, n)
    click = picked[0] if len(picked) == 1 or (picked and not boxes) else None
    if st.session_state.get(PICKED) != click:  # a new click, not one a typed point has replaced since
        st.session_state[PICKED] = click
        if click is not None:
            st.session_state[state.LATENT_POINT] = click
    point_and_neighbours()

    box = None  # the decoder grid's region, from a box drawn on the PCA view (its own fragment reads it)
    if boxes and method == "pca":
        box = boxes[0]
    if st.session_state.get(GRID_BOX) != box:
        st.session_state[GRID_BOX] = box
        st.rerun()  # the whole page, so that the grid's fragment draws the new box

    st.subheader("Codes against raw pixels")
    side = st.toggle("Compare with PCA of the raw pixels (10-NN accuracy, trustworthiness)", key="ae.latent.side")
    if side and xy is None:
        st.info(f"The {NAMES[method]} layout is still being computed; the comparison follows when it is done.")
    elif side:
        pix_xy = _pixels_pca(dataset.name, n)
        s1, s2 = st.columns(2)
        for col, pts, high, title, key in ((s1, pix_xy, lambda: _pixels(min(n, TRUST_POINTS)), "PCA of raw pixels",
                                            ("pixels", "pca")),
                                           (s2, xy, lambda: codes[:n], f"{NAMES[method]} of the codes",
                                            (run.id, method, tuple(sorted(params.items()))))):
            acc, trust = _scores((*key, dataset.name, n), high, pts, labels[:n])
            f = _scatter(pts, np.arange(n), size=4, height=380, margin=dict(l=10, r=10, t=40, b=10),
                         showlegend=False, title={"text": title})
            col.plotly_chart(f, key=f"ae.latent.side.{title}")
            col.metric("10-NN label accuracy in 2-D", f"{acc:.3f}")
            col.metric("trustworthiness (10 neighbours)", f"{trust:.3f}",
                       help=f"over the first {min(n, TRUST_POINTS):,} points" if n > TRUST_POINTS else None)


def point_and_neighbours() -> None:
    """A point's image, reconstruction and nearest test images, drawn by the projection's fragment so that a click
    shows them at once. What they show does not depend on Points (the neighbours are test images, whatever the
    chart holds), so a Points change draws them unchanged: 8 and 7 of 10 changes within 150 ms in the browser,
    against 6 and 5 when they changed with Points. A fragment of their own did better there (8 and 10) but a click
    then reran the whole page: 0.21-0.25 s to the point's images against 0.13 s (bench/README)."""
    st.subheader("A point and its neighbours")
    point = share.widget("point", st.number_input,
                         f"Point (0–{n_all - 1}: test images, then training images); or click one",
                         min_value=0, max_value=n_all - 1, value=0, key=state.LATENT_POINT)
    urls, px, captions = _point_tiles(run.id, dataset.name, point, ui.presenting(), run.model)
    st.image(urls, caption=captions, width=px)
    many = f"the {len(urls) - 2} test images" if len(urls) > 3 else "the test image"
    st.caption(f"{_name(point)} ({dataset.class_names[labels[point]]}); {many} nearest to it by code distance "
               f"follow its reconstruction.")


@st.cache_data(max_entries=64)
def _point_tiles(run_id: str, dataset_name: str, point: int, presenting: bool, _model) -> tuple[list, int, list]:
    """The tiles of :func:`point_and_neighbours`, once per point: a Points change reruns the projection's fragment,
    and encoding, searching and the ten PNGs again were a quarter of its time on the server (py-spy)."""
    query = point if point < n_test else latent.encode_all(_model, _image(point)[None])[0]  # a training image's code
    neighbours = latent.nearest(test_codes, query, 8)
    recon = _model.reconstruct(__import__("torch").as_tensor(_image(point)[None])).numpy()
    urls, px = figures.tile_urls(np.stack([_image(point), recon[0]] + [_image(i) for i in neighbours]), shape)
    return urls, px, ["input", "recon"] + [figures.tile_caption(_name(i), dataset.class_names[labels[i]])
                                           for i in neighbours]


@st.fragment
def decoder_grid() -> None:
    """Decodes over a region of the plane of the test codes' principal axes (of code space for a 2-D code): a
    fragment of its own, as it does not depend on the projection's points, so changing them does not redraw it."""
    st.subheader("Decoder grid")
    mean, axes, coords = _frame(run.id, dataset.name, test_codes)
    raw_2d = code_size == 2
    if raw_2d:
        mean, axes, coords = None, None, test_codes
    where = "code space" if raw_2d else \
        "the plane of the test codes' two principal axes, the other directions at their mean"
    box = st.session_state.get(GRID_BOX)
    if box is not None and raw_2d:
        st.caption("With a 2-D code, the PCA view is a rotation of code space; the grid uses the ranges below.")
        box = None
    g1, g2 = st.columns([3, 1])
    if box is None:
        lo, hi = np.percentile(coords, 2, axis=0), np.percentile(coords, 98, axis=0)
        rx = g1.slider("Horizontal range", float(coords[:, 0].min()), float(coords[:, 0].max()),
                       (float(lo[0]), float(hi[0])), key="ae.latent.rx")
        ry = g1.slider("Vertical range", float(coords[:, 1].min()), float(coords[:, 1].max()),
                       (float(lo[1]), float(hi[1])), key="ae.latent.ry")
        box = (rx[0], rx[1], ry[0], ry[1])
        if st.session_state.get("ae.latent.method") != "pca":
            g1.caption("Box-select points in the PCA view to choose the region with the mouse.")
    else:
        g1.caption(f"Region from your box selection: x {box[0]:.2f}…{box[1]:.2f}, y {box[2]:.2f}…{box[3]:.2f}")
    if box[0] == box[1] or box[2] == box[3]:
        st.info("The selected region is empty in one direction; select a box with some width and height.")
    else:
        steps = share.widget("grid", g2.slider, "Grid size", min_value=3, max_value=20, value=10, key="ae.latent.grid")
        pixels = latent.decoder_grid(run.model, box, steps, mean, axes)
        st.image(figures.png_url(viz.mosaic(pixels, shape, ncols=steps, scale=figures.scale_for(shape, 56))),
                 caption=f"{steps}×{steps} decodes over the selected box of {where}")


@st.fragment
def interpolation() -> None:
    st.subheader("Interpolation")
    i1, i2, i3, i4 = st.columns(4)
    a = share.widget("a", i1.number_input, "From test image", min_value=0, max_value=n_test - 1, value=0,
                     key="ae.latent.a")
    b = share.widget("b", i2.number_input, "To test image", min_value=0, max_value=n_test - 1, value=1,
                     key="ae.latent.b")
    steps = share.widget("steps", i3.slider, "Steps", min_value=3, max_value=16, value=10, key="ae.latent.steps")
    mode = share.widget("path", i4.radio, "Path", ["linear", "slerp"], horizontal=True, key="ae.latent.mode")
    strip = latent.interpolate(run.model, dataset.x_test[a], dataset.x_test[b], steps, mode)
    st.image(figures.png_url(viz.mosaic(strip["decoded"], shape, ncols=steps, scale=figures.scale_for(shape, 84))),
             caption=f"decoded {mode} path between the codes")
    st.image(figures.png_url(viz.mosaic(strip["blend"], shape, ncols=steps, scale=figures.scale_for(shape, 84))),
             caption="pixel-space blend, for contrast")


@st.cache_data(max_entries=16, show_spinner="Finding every test image's 10 nearest neighbours…")
def _precision(key: tuple, _points: np.ndarray, _labels: np.ndarray) -> float:
    """Once per run and dataset: on full MNIST it takes 3.2 s (codes and pixels), and it was taken again at every
    change of the query or of k while it was shown."""
    return latent.precision_at_k(_points, _labels)


@st.fragment
def retrieval() -> None:
    st.subheader("Retrieval")
    r1, r2 = st.columns([1, 3])
    query = share.widget("query", r1.number_input, "Query test image", min_value=0, max_value=n_test - 1, value=0,
                         key="ae.latent.query")
    k = share.widget("k", r1.slider, "Top k", min_value=1, max_value=20, value=8, key="ae.latent.k")
    flat = dataset.x_test
    by_code, by_pixel = latent.nearest(test_codes, query, k), latent.nearest(flat, query, k)
    with r2:
        st.markdown("**By code distance**")
        figures.images(flat[by_code], shape, [dataset.class_names[labels[i]] for i in by_code])
        st.markdown("**By pixel distance**")
        figures.images(flat[by_pixel], shape, [dataset.class_names[labels[i]] for i in by_pixel])
    if st.toggle("Precision@10 over the whole test set", key="ae.latent.precision"):
        p_code = _precision(("codes", run.id, dataset.name), test_codes, dataset.y_test)
        p_pix = _precision(("pixels", dataset.name), flat, dataset.y_test)
        m1, m2 = st.columns(2)
        m1.metric("precision@10, codes", f"{p_code:.3f}")
        m2.metric("precision@10, pixels", f"{p_pix:.3f}")


projection()
decoder_grid()
interpolation()
retrieval()
