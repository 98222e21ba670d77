"""AppTest for the Latent space page."""
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aecore import RunStore, load_dataset
from aecore.latent import encode_all, principal_axes
from tests.test_app import open_page, rerun_until, select_on_chart, train_run

ROOT = Path(__file__).resolve().parents[1]


def _open(run_id):
    return open_page("pages/latent.py", run_id)


def test_latent_page_projects_links_and_decodes():
    run = train_run("stacked", epochs=2, hidden=(32,), code_size=6)
    at = _open(run)
    assert len(at.get("plotly_chart")) == 1
    assert at.get("download_button")
    # a chosen point: input, reconstruction and its 8 nearest codes
    at.number_input(key="ae.latent.point").set_value(7).run()
    first = at.image[0]
    assert first.captions[:2] == ["input", "recon"] and len(first.captions) == 10
    grid = next(img for img in at.image if "decodes over the selected box" in img.captions[0])
    assert "principal axes" in grid.captions[0]
    at.slider(key="ae.latent.grid").set_value(4).run()
    assert any("4×4 decodes" in c for img in at.image for c in img.captions)
    at.radio(key="ae.latent.mode").set_value("slerp").run()
    assert any("slerp path" in c for img in at.image for c in img.captions)
    at.toggle(key="ae.latent.precision").set_value(True).run()
    labels = [m.label for m in at.metric]
    assert "precision@10, codes" in labels and "precision@10, pixels" in labels
    at.toggle(key="ae.latent.side").set_value(True).run()
    assert not at.exception, at.exception
    assert len([m for m in at.metric if m.label == "10-NN label accuracy in 2-D"]) == 2


def test_precision_at_10_is_taken_once_not_at_every_query(monkeypatch):
    """Precision@10 over the test set (3.2 s on full MNIST, codes and pixels) was taken again at every change of the
    retrieval's query while it was shown; now once per run and dataset, with the same values."""
    from aecore import latent
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=5)
    calls, real = [], latent.precision_at_k
    monkeypatch.setattr(latent, "precision_at_k", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    at = _open(run)
    at.toggle(key="ae.latent.precision").set_value(True).run()
    digits = load_dataset("digits")
    codes = encode_all(RunStore().load(run)[0], digits.x_test)
    shown = {m.label: m.value for m in at.metric}
    assert shown["precision@10, codes"] == f"{real(codes, digits.y_test):.3f}"
    assert shown["precision@10, pixels"] == f"{real(digits.x_test, digits.y_test):.3f}"
    assert 1 <= len(calls) <= 2  # this run's codes; the digits' pixels, unless another test's session took them
    taken = len(calls)
    for query in (5, 6):
        at.number_input(key="ae.latent.query").set_value(query).run()
    assert not at.exception and len(calls) == taken and {m.label: m.value for m in at.metric} == shown


def test_a_small_training_set_is_encoded_as_the_page_opens(monkeypatch):
    """The first Points change past the test images encoded the training images, and was the slowest of ten changes
    in the browser (0.17-0.18 s against 0.06-0.13 s). Where that costs a few ms, it is done as the page opens."""
    import aecore.latent as latent
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=5)
    at = _open(run)  # the 8x8 digits: 359 test images, then 1,438 training images
    encoded = []
    real = latent.encode_all
    monkeypatch.setattr(latent, "encode_all", lambda model, x, *a, **k: encoded.append(len(x)) or
                        real(model, x, *a, **k))
    at.slider(key="ae.latent.n").set_value(400).run()
    assert not at.exception and "all 359 test images and 41 training images" in " ".join(c.value for c in at.caption)
    assert encoded == []


def test_the_pca_view_prepares_tsne_in_the_background():
    import time
    from aecore import tsne
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=5)
    at = _open(run)
    assert at.selectbox(key="ae.latent.method").value == "pca"
    n = at.slider(key="ae.latent.n").value
    model, record = RunStore().load(run)
    codes = encode_all(model, load_dataset(record.dataset).x_test)[:n]
    key = tsne._key(codes, 30.0, "euclidean")
    deadline = time.monotonic() + 30
    while not (key in tsne._prepared and tsne._prepared[key].done()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert key in tsne._prepared, "opening the page should have started the t-SNE's neighbour search"
    rows, p = tsne.prepared(codes, 30.0)  # there already: what the t-SNE will start from
    assert p.shape == (n, n)
    at.selectbox(key="ae.latent.method").select("tsne").run()
    assert not at.exception and (_live_picture(at) or "ae.latent.scatter" in _scatter_keys(at))


def test_no_tsne_search_starts_while_a_umap_computes(monkeypatch):
    """The PCA view starts t-SNE's neighbour search ahead of a click; a UMAP still computing would share its CPU and
    memory with it (70,000 points: the search's 412 MB on top of UMAP's), so the search waits for the UMAP."""
    import threading
    from aecore import latent
    release = threading.Event()

    def umap_held(codes, method, progress=None, **params):  # a UMAP that finishes when the test says so
        assert method == "umap"
        release.wait(30)
        return np.random.default_rng(0).normal(size=(len(codes), 2))

    asked = []
    monkeypatch.setattr(latent, "project", umap_held)
    monkeypatch.setattr(latent, "prefetch_tsne", lambda x, *args, **kwargs: asked.append(len(x)))
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=5)
    at = _open(run)
    n = at.slider(key="ae.latent.n").value
    assert asked == [n], "the PCA view should start the search"
    at.run()
    assert asked == [n], "asked once per settings, not at every run"
    at.selectbox(key="ae.latent.method").select("umap").run()
    at.slider(key="ae.latent.n").set_value(n - 100).run()
    at.run()
    assert not at.exception and "ae.latent.scatter" not in _scatter_keys(at) and asked == [n]
    release.set()
    rerun_until(at, lambda a: "ae.latent.scatter" in _scatter_keys(a))
    assert asked == [n, n - 100], "once the UMAP is shown, the search for its points may start"


def test_the_pca_view_leaves_t_sne_s_code_to_the_search_s_own_thread():
    """t-SNE's module brings numba and scipy's FFT and graph code (0.3 s, 90 MB): imported by the page itself, every
    first visit of a server waited for it before its PCA chart. In a fresh interpreter, the page's run draws the chart
    and asks for the search without importing it; the search's thread then imports it and prepares the codes."""
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=5)
    code = f"""
import json, sys
from aecore import latent
asked = []
latent.prefetch_tsne = lambda x, *args, **kwargs: asked.append(len(x))
from tests.test_app import open_page
at = open_page("pages/latent.py", {run!r})
print(json.dumps({{"imported": "aecore.tsne" in sys.modules, "asked": asked, "charts": len(at.get("plotly_chart")),
                  "exceptions": len(at.exception)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "AECORE_WARM_PROJECTIONS": "0"})
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["charts"] == 1 and seen["exceptions"] == 0 and len(seen["asked"]) == 1, seen
    assert not seen["imported"], seen


def test_prefetch_tsne_imports_t_sne_in_its_own_thread_and_prepares_the_codes():
    code = """
import json, sys
import numpy as np
from aecore import latent
x = np.random.default_rng(3).normal(size=(300, 5)).astype(np.float32)
timer = latent.prefetch_tsne(x, 13.0, "euclidean", delay=0.2)
before = "aecore.tsne" in sys.modules
timer.join(60)
from aecore import tsne
tsne._prefetch[0].join(60)
rows, p = tsne.prepared(x, 13.0)
print(json.dumps({"before": before, "prepared": tsne._key(x, 13.0, "euclidean") in tsne._prepared,
                  "same": bool(np.array_equal(rows, x)), "shape": list(p.shape),
                  "again": latent.prefetch_tsne(x, 13.0, "euclidean") is None}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"before": False, "prepared": True, "same": True, "shape": [300, 300], "again": True}, seen


def test_latent_page_tsne_refuses_a_perplexity_too_large():
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    at = _open(run)
    at.selectbox(key="ae.latent.method").select("tsne").run()
    at.slider(key="ae.latent.n").set_value(100).run()
    at.slider(key="ae.latent.perplexity").set_value(100).run()
    assert not at.exception, at.exception
    assert any("perplexity 100 needs more than 100 points" in e.value for e in at.error)
    at.slider(key="ae.latent.perplexity").set_value(10).run()
    assert not at.error
    # it runs in the background: a progress bar and the layout so far, then the final, selectable chart
    # (the PCA start while neighbours are found, then the iterations)
    assert at.get("progress") and at.get("progress")[0].proto.text.startswith(("t-SNE: iteration",
                                                                                "t-SNE: finding each point"))
    rerun_until(at, lambda a: any(c.key == "ae.latent.scatter" for c in a.get("plotly_chart")))
    assert not at.get("progress") and not at.error


def _array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array {"dtype", "bdata" (base64)}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).ravel()
    return np.ravel(value)


def _scatter_keys(at):
    return [c.key for c in at.get("plotly_chart")]


def _live_picture(at):
    live = [img for img in at.image if any("The layout so far" in c for c in img.captions)]
    # inside the message (a stored picture was fetched by the browser after the message was drawn)
    assert all(i.proto.imgs[0].url.startswith("data:image/jpeg;base64,") for i in live)
    return bool(live)


def test_latent_page_shows_tsne_forming_and_caches_it():
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    at = _open(run)
    at.selectbox(key="ae.latent.method").select("tsne").run()
    at.slider(key="ae.latent.n").set_value(300).run()
    # the rerun that starts it waits for the first layout, so a picture comes at once, not after the first poll
    assert _live_picture(at) or "ae.latent.scatter" in _scatter_keys(at)
    seen = []
    rerun_until(at, lambda a: seen.append((_live_picture(a), _scatter_keys(a))) or "ae.latent.scatter" in seen[-1][1])
    # while it optimises: a picture of all the points and a legend, no chart (redrawing one slowed t-SNE down)
    assert (True, []) in seen, "the layout should be drawn while t-SNE optimises"
    assert not _live_picture(at)
    # back to PCA and to t-SNE again: the finished layout comes from the cache, at once
    at.selectbox(key="ae.latent.method").select("pca").run()
    at.selectbox(key="ae.latent.method").select("tsne").run()
    assert "ae.latent.scatter" in _scatter_keys(at) and not at.get("progress")


def test_clicking_a_point_shows_it_and_a_box_in_the_pca_view_drives_the_grid():
    run = train_run("stacked", epochs=2, hidden=(32,), code_size=6)
    at = _open(run)
    at.slider(key="ae.latent.n").set_value(359).run()  # every test point of the 8x8 digits
    select_on_chart(at, "ae.latent.scatter", points=[{"point_index": 0, "customdata": [42], "x": 0, "y": 0}])
    assert at.number_input(key="ae.latent.point").value == 42
    digits = load_dataset("digits")
    model = RunStore().load(run)[0]
    codes = encode_all(model, digits.x_test[:500])
    first = at.image[0]
    want = [f"#{i}·{digits.class_names[digits.y_test[i]]}" for i in np.argsort(
        np.linalg.norm(codes - codes[42], axis=1))[1:9]]
    assert first.captions[2:] == want
    # a box in PCA coordinates decodes a grid over exactly that box
    xy = principal_axes(codes)[2]
    x0, x1 = np.percentile(xy[:, 0], [25, 75])
    y0, y1 = np.percentile(xy[:, 1], [25, 75])
    select_on_chart(at, "ae.latent.scatter", box=[{"xref": "x", "yref": "y", "x": [x1, x0], "y": [y0, y1]}])
    assert any(f"x {x0:.2f}…{x1:.2f}, y {y0:.2f}…{y1:.2f}" in c.value for c in at.caption)
    assert any("decodes over the selected box" in c for img in at.image for c in img.captions)
    # a box with no width: a message, not a traceback
    select_on_chart(at, "ae.latent.scatter", box=[{"xref": "x", "yref": "y", "x": [x0, x0], "y": [y0, y1]}])
    assert any("empty in one direction" in i.value for i in at.info)
    # the selection cleared: the grid's own range sliders again
    select_on_chart(at, "ae.latent.scatter")
    assert not any("Region from your box selection" in c.value for c in at.caption)
    assert at.slider(key="ae.latent.rx").value and any("decodes over the selected box" in c for img in at.image
                                                        for c in img.captions)
    # what a crafted message may send is passed by: the point and the grid's ranges stay (a string raised before)
    for points, box in (([{"customdata": ["abc"]}], []), ([{"customdata": [None]}], []), ([{"customdata": [359]}], []),
                        ([{"customdata": [-3]}], []), ([], [{"x": "a", "y": [1, 2]}]), ([], [{"x": [], "y": []}]),
                        ([], [{"x": [float("nan"), 1.0], "y": [0.0, 1.0]}]), ([], ["zz"])):
        select_on_chart(at, "ae.latent.scatter", points=points, box=box)
        assert at.number_input(key="ae.latent.point").value == 42
        assert not any("Region from your box selection" in c.value for c in at.caption)


def test_a_typed_point_replaces_a_clicked_one_and_stays():
    """The click stays selected on the chart; it used to be applied again at every run, so a point typed after a
    click was put back to the clicked one at once."""
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    at = _open(run)
    select_on_chart(at, "ae.latent.scatter", points=[{"point_index": 0, "customdata": [42], "x": 0, "y": 0}])
    assert at.number_input(key="ae.latent.point").value == 42
    at.number_input(key="ae.latent.point").set_value(7).run()
    assert at.number_input(key="ae.latent.point").value == 7
    at.slider(key="ae.latent.n").set_value(200).run()
    assert at.number_input(key="ae.latent.point").value == 7
    assert any(c.value.startswith("#7 (") for c in at.caption)


def test_a_points_change_redraws_the_point_and_its_neighbours_without_computing_them_again(monkeypatch):
    """The point's image, reconstruction and nearest test images do not depend on Points, but each change encoded,
    searched and wrote their ten PNGs again: a quarter of the projection's rerun on the server (py-spy)."""
    import aecore.latent as latent
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=5)
    at = _open(run)
    at.number_input(key="ae.latent.point").set_value(9).run()
    shown = at.image[0].captions
    assert at.number_input(key="ae.latent.query").value not in (9, 10)  # the retrieval's query searches too
    searched, real = [], latent.nearest
    monkeypatch.setattr(latent, "nearest", lambda codes, query, k: searched.append(query) or real(codes, query, k))
    for n in (200, 300, 200):
        at.slider(key="ae.latent.n").set_value(n).run()
        assert not at.exception and at.image[0].captions == shown
    assert 9 not in searched
    at.number_input(key="ae.latent.point").set_value(10).run()  # another point is searched
    assert searched.count(10) == 1 and at.image[0].captions != shown


def test_more_points_keep_the_pca_view_and_the_grid_s_ranges():
    """The PCA view and the decoder grid sit on the test codes' plane: adding points neither turns the view nor
    resets the ranges a user set (the sliders' bounds used to follow the points, which made new sliders)."""
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=5)
    at = _open(run)
    at.slider(key="ae.latent.n").set_value(100).run()
    xs = at.get("plotly_chart")[0].proto.spec
    lo, hi = at.slider(key="ae.latent.rx").value
    chosen = (lo + (hi - lo) / 4, hi - (hi - lo) / 4)
    at.slider(key="ae.latent.rx").set_value(chosen).run()
    at.slider(key="ae.latent.n").set_value(300).run()
    assert not at.exception, at.exception
    assert at.slider(key="ae.latent.rx").value == pytest.approx(chosen)
    digits = load_dataset("digits")
    codes = encode_all(RunStore().load(run)[0], digits.x_test)
    want = principal_axes(codes)[2][:100]  # the first 100 points where they were, on the test codes' plane
    shown = np.concatenate([np.asarray(t["x"]) if isinstance(t["x"], list) else _decode(t["x"])
                            for t in json.loads(xs)["data"]])
    assert np.allclose(np.sort(shown), np.sort(want[:, 0]), atol=1e-5)


def _decode(typed: dict) -> np.ndarray:
    """A Plotly typed array ({"dtype", "bdata"}) as numpy."""
    return np.frombuffer(base64.b64decode(typed["bdata"]), dtype=typed["dtype"])


def test_two_dimensional_code_grids_in_code_space():
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=2)
    at = _open(run)
    assert any("of code space" in c for img in at.image for c in img.captions)


def test_projections_of_many_points_are_drawn_with_webgl(monkeypatch):
    from pages.ui import figures
    monkeypatch.setattr(figures, "SVG_POINTS", 500)
    at = _open(train_run("stacked", epochs=1, hidden=(16,), code_size=4))
    at.slider(key="ae.latent.n").set_value(600).run()
    chart = next(c for c in at.get("plotly_chart") if c.key == "ae.latent.scatter")
    assert {t["type"] for t in json.loads(chart.proto.spec)["data"]} == {"scattergl"}
    at.slider(key="ae.latent.n").set_value(500).run()
    chart = next(c for c in at.get("plotly_chart") if c.key == "ae.latent.scatter")
    assert {t["type"] for t in json.loads(chart.proto.spec)["data"]} == {"scatter"}


def test_projections_take_the_training_images_too_and_a_click_shows_one():
    run = train_run("stacked", epochs=2, hidden=(32,), code_size=6)
    at = _open(run)
    digits = load_dataset("digits")
    n_test, n_all = len(digits.x_test), len(digits.x_test) + len(digits.x_train)
    assert at.slider(key="ae.latent.n").max == n_all
    at.slider(key="ae.latent.n").set_value(n_all).run()
    assert any(f"all {n_test:,} test images and {n_all - n_test:,} training images" in c.value for c in at.caption)
    chart = next(c for c in at.get("plotly_chart") if c.key == "ae.latent.scatter")
    shown = np.concatenate([_array(t["customdata"]) for t in json.loads(chart.proto.spec)["data"]])
    assert sorted(shown.tolist()) == list(range(n_all))  # every image is a point of the chart
    assert {t["type"] for t in json.loads(chart.proto.spec)["data"]} == {"scatter"}  # SVG: 1,797 points
    select_on_chart(at, "ae.latent.scatter", points=[{"point_index": 0, "customdata": [n_test + 5], "x": 0, "y": 0}])
    assert not at.exception, at.exception
    assert at.number_input(key="ae.latent.point").value == n_test + 5
    model = RunStore().load(run)[0]
    codes = encode_all(model, np.concatenate([digits.x_test, digits.x_train]))
    labels = np.concatenate([digits.y_test, digits.y_train])
    name = lambda i: f"#{i}" if i < n_test else f"train #{i - n_test}"  # noqa: E731
    assert any(c.value.startswith(f"train #5 ({digits.class_names[digits.y_train[5]]})") for c in at.caption)
    want = [f"{name(i)}·{digits.class_names[labels[i]]}"  # the nearest test images
            for i in np.argsort(np.linalg.norm(codes[:n_test] - codes[n_test + 5], axis=1))[:8]]
    assert at.image[0].captions[2:] == want


def test_the_comparison_with_pixels_joins_no_pixels_once_computed(monkeypatch):
    """With the training images among the points, the comparison's pixels are a join of two arrays (188 MB for full
    MNIST); it is made when its PCA and scores are computed, not again at every rerun of the page."""
    run = train_run("stacked", epochs=2, hidden=(32,), code_size=6)
    at = _open(run)
    digits = load_dataset("digits")
    n_all, width = len(digits.x_test) + len(digits.x_train), digits.x_test.shape[1]
    at.slider(key="ae.latent.n").set_value(n_all).run()
    joins = []
    concatenate = np.concatenate

    def spy(arrays, *args, **kwargs):
        arrays = list(arrays)
        if any(np.ndim(a) == 2 and np.shape(a)[1] == width for a in arrays):
            joins.append([np.shape(a) for a in arrays])
        return concatenate(arrays, *args, **kwargs)

    monkeypatch.setattr(np, "concatenate", spy)
    at.toggle(key="ae.latent.side").set_value(True).run()
    assert not at.exception, at.exception
    assert len([m for m in at.metric if m.label == "10-NN label accuracy in 2-D"]) == 2
    assert joins  # the first time, the pixels of all points
    joins.clear()
    at.number_input(key="ae.latent.point").set_value(3).run()
    at.run()
    assert not at.exception, at.exception
    assert len([m for m in at.metric if m.label == "10-NN label accuracy in 2-D"]) == 2
    assert joins == []
