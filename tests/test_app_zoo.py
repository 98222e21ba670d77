"""AppTest for the zoo's pages: Filters, Compare, Denoising, Contraction."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from aecore import RunStore, analysis, load_dataset
from tests.test_app import app, open_page as _open, train_run, trigger_component
from tests.test_app_latent import _array


def test_filters_page_shows_mosaics_unit_views_and_sparsity():
    run = train_run("sparse-kl", epochs=2, hidden=(), code_size=16)
    at = _open("pages/filters.py", run)
    assert [c.key for c in at.get("plotly_chart")] == ["ae.filters.hist"]  # the mosaics are plain images
    (mosaics,) = at.get("bidi_component")
    shown = json.loads(mosaics.proto.json)
    assert [p["title"] for p in shown["panels"]] == ["each tile contrast-normalised", "one global scale (grey = 0)"]
    assert at.slider(key="ae.filters.n").value == 16 and len(shown["units"]) == 16 and shown["ncols"] == 4
    assert sorted(shown["units"]) == list(range(16))  # ordered by norm: every unit once
    # a tile's label under the pointer: its weight norm and how often it fires on the test set (threshold 0.1)
    model = RunStore().load(run)[0]
    norms = model.first_layer_weights().detach().float().norm(dim=1).numpy()
    fires = (analysis.unit_activations(model, load_dataset("digits").x_test, outputs=True) > 0.1).mean(0)
    assert shown["labels"] == [f"unit {u} · norm {norms[u]:.2f} · fires on {fires[u]:.0%}" for u in shown["units"]]
    assert list(np.argsort(-norms, kind="stable")) == shown["units"]  # ordered by norm
    for panel in shown["panels"]:  # where the page maps a click: a tile every `step` pixels, 4 to a row
        img = Image.open(io.BytesIO(base64.b64decode(panel["src"].split(",", 1)[1])))
        assert img.size == (4 * shown["step"][1] + 1, 4 * shown["step"][0] + 1)
    # a click on a tile inspects its unit; a unit typed in afterwards holds at the next run
    for unit in (11, 4):
        trigger_component(at, "ae.filters.mosaic", "unit", unit)
        assert at.number_input(key="ae.filters.unit").value == unit
        assert any(f"filter of unit {unit}" in c for img in at.image for c in img.captions)
    for sent in ("11", 16, -1, 10**12, None, [3], 2.0):  # what a crafted message may hold: ignored
        trigger_component(at, "ae.filters.mosaic", "unit", sent)
        assert at.number_input(key="ae.filters.unit").value == 4
    at.number_input(key="ae.filters.unit").set_value(7).run()
    at.slider(key="ae.filters.n").set_value(12).run()  # the mosaics' fragment reruns, the tile still selected
    assert at.number_input(key="ae.filters.unit").value == 7
    # the chosen unit: its filter, its 9 strongest test samples (captions sorted by activation), its act-max image
    at.number_input(key="ae.filters.unit").set_value(5).run()
    assert not at.exception, at.exception
    grid = [img for img in at.image if len(img.captions) == 3]  # three rows of three
    acts = [float(c.split(" ")[0]) for img in grid for c in img.captions]
    assert len(grid) == 3 and acts == sorted(acts, reverse=True)
    assert any("activation maximisation" in c for img in at.image for c in img.captions)
    metrics = {m.label: m.value for m in at.metric}
    assert "dead units" in metrics and "active units per sample" in metrics
    # the epoch scrubber replays saved snapshots: 0 (initial), 1, 2
    assert at.select_slider(key="ae.filters.epoch").options == ["0", "1", "2", "now"]
    at.select_slider(key="ae.filters.epoch").set_value(0).run()
    assert not at.exception, at.exception
    assert sorted(RunStore().snapshots(run)) == [0, 1, 2]


def test_filters_page_points_a_plain_run_to_the_regularised_ones():
    """The seed recipe's filters look like noise on the embedded digits: a new user was left to think it broken."""
    from tests.test_app import offers
    plain = _open("pages/filters.py", train_run("stacked", epochs=1, hidden=(), code_size=8))
    assert offers(plain) == {"Compare: sparse coding, five ways": ("compare", {"preset": "sparse coding, five ways"})}
    sparse = _open("pages/filters.py", train_run("sparse-kl", epochs=1, hidden=(), code_size=8))
    assert not offers(sparse) and not sparse.exception


def test_filters_page_explains_families_without_filters():
    run = train_run("recurrent", epochs=1, hidden_size=8, code_size=4)
    at = _open("pages/filters.py", run)
    assert any("no per-unit first-layer filters" in i.value for i in at.info)


def test_compare_page_trains_a_preset_in_aligned_columns():
    at = _open("pages/compare.py")
    at.selectbox(key="ae.compare.preset").select("regularizers").run()
    table = at.dataframe[0].value
    assert list(table["model"]) == ["stacked", "denoising", "contractive"]
    at.number_input(key="ae.compare.epochs").set_value(1).run()
    at.button(key="ae.compare.start").click().run()
    assert not at.exception, at.exception
    job = at.session_state["ae.compare.job"]
    assert job.join(timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert all(j.progress().status == "finished" for j in job.jobs)
    # per column: two filter mosaics and the reconstructions; plus the shared inputs on top
    captions = [c for img in at.image for c in img.captions]
    assert captions.count("filters, each normalised") == 3 and captions.count("filters, one scale") == 3
    assert captions.count("reconstructions") == 3
    assert len(at.get("plotly_chart")) == 3
    # no legend in the narrow charts (it wrapped over their top panel's title); one caption says what the lines are
    assert [json.loads(c.proto.spec)["layout"]["showlegend"] for c in at.get("plotly_chart")] == [False] * 3
    assert any(c.value.startswith("Cost curves: solid, the training loss") for c in at.caption)
    # aligned: each section is a row of its own, so a column holding a contender's reconstructions holds only them
    # (one column per contender held everything, and a wrapped heading pushed that column's figures down)
    recon_cols = [c for c in at.columns if any("reconstructions" in img.captions for img in c.get("image"))]
    assert len(recon_cols) == 3
    assert all(len(c.children) == 1 and not c.get("plotly_chart") and not c.get("markdown") for c in recon_cols)
    # same data and seed, all saved
    records = [RunStore().record(j.run_id) for j in job.jobs]
    assert {r.seed for r in records} == {0} and {r.dataset for r in records} == {"digits"}


def test_denoising_page_scores_runs_against_the_noisy_baseline():
    plain = train_run("stacked", epochs=2)
    dae = train_run("denoising", epochs=2)
    at = _open("pages/denoising.py")
    at.multiselect(key="ae.denoise.runs.digits").set_value([dae, plain]).run()
    at.selectbox(key="ae.denoise.kind").select("masking").run()
    at.slider(key="ae.denoise.level").set_value(0.4).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["run"]) == ["", dae, plain]
    assert list(table["output of"]) == ["noisy input (no model)", "denoising", "stacked"]
    psnr = list(table["mean PSNR (dB)"])
    assert all(np.isfinite(psnr))
    assert psnr[1] > psnr[0]  # the denoising run cleans masked digits
    assert len(at.image) == 4  # clean, noisy, two runs
    assert all(c.endswith("dB") for c in at.image[1].captions)
    # the runs' picker has the page's width: in a column, the second run's chip was hidden behind the first
    assert not any(m.key == "ae.denoise.runs.digits" for c in at.columns for m in c.get("multiselect"))



def test_the_denoising_page_starts_on_the_noise_its_first_denoiser_was_trained_with():
    """A denoiser scores best on its own noise; the page started on masking 0.5 whatever the run had learned."""
    plain = train_run("stacked", epochs=1)
    dae = train_run("denoising", epochs=1, noise="gaussian", noise_level=0.3)
    at = _open("pages/denoising.py")
    assert not at.exception, at.exception
    assert at.multiselect(key="ae.denoise.runs.digits").value == [dae, plain]
    assert at.selectbox(key="ae.denoise.kind").value == "gaussian"
    assert at.slider(key="ae.denoise.level").value == pytest.approx(0.3)
    assert any("(gaussian 0.3)" in m.value for m in at.markdown)
    at.selectbox(key="ae.denoise.kind").select("dropout").run()  # the user's choice then holds
    at.slider(key="ae.denoise.level").set_value(0.5).run()
    assert not at.exception, at.exception
    noisy = at.image[1]  # clean, then noisy: dropout's kept pixels are scaled by 2 and shown clipped to white
    assert any("(dropout 0.5)" in m.value for m in at.markdown) and noisy.captions[0].endswith("dB")


def test_the_denoising_page_shows_at_most_the_test_images_a_small_dataset_has():
    """24 uploaded pictures leave 4 test images; the page asked for 10 and raised an IndexError."""
    from aecore import images as user_images
    from tests.test_recipes import _bars, _zip
    ds = user_images.dataset_from_upload(_zip(_bars()), "shapes.zip", "Shapes", side=16)
    user_images.save_dataset(ds, "Shapes")
    assert len(ds.x_test) == 4
    run = train_run("denoising", dataset=ds.name, epochs=2)
    train_run("pca", code_size=4)  # on the digits, where the page opens
    at = _open("pages/denoising.py")
    at.number_input(key="ae.denoise.count").set_value(20).run()  # kept as the dataset changes
    at.sidebar.selectbox(key="ae.dataset").select(ds.name).run()
    at.switch_page("pages/denoising.py").run()
    at.multiselect(key=f"ae.denoise.runs.{ds.name}").set_value([run]).run()
    assert not at.exception, at.exception
    assert at.number_input(key="ae.denoise.count").value == 4
    assert len(at.image[0].proto.imgs) == 4 and len(at.image) == 3  # clean, noisy, the run


def test_the_filters_and_reconstructions_pages_count_the_samples_they_show():
    """The Filters heading said "The 9 test samples that excite it most" over the 4 an upload of 24 pictures has,
    and Reconstructions' "How many" said 12."""
    from aecore import images as user_images
    from tests.test_recipes import _bars, _zip
    ds = user_images.dataset_from_upload(_zip(_bars()), "shapes.zip", "Shapes", side=16)
    user_images.save_dataset(ds, "Shapes")
    run = train_run("sparse-kl", dataset=ds.name, epochs=2, hidden=(), code_size=16)
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select(ds.name).run()
    at.sidebar.selectbox(key="ae.run").select(run).run()
    at.switch_page("pages/filters.py").run()
    assert not at.exception, at.exception
    assert any(m.value == "**The 4 test samples that excite it most**" for m in at.markdown)
    at.switch_page("pages/reconstructions.py").run()  # "How many: 12" showed 4
    assert not at.exception and at.number_input(key="ae.rec.count").value == 4

def test_the_contraction_page_uses_all_the_test_points_a_small_dataset_has():
    """On 4 test images the "Test points" slider still read 100 (min 10, max 500): a count the page could not use."""
    from aecore import images as user_images
    from tests.test_recipes import _bars, _zip
    ds = user_images.dataset_from_upload(_zip(_bars()), "shapes.zip", "Shapes", side=16)
    user_images.save_dataset(ds, "Shapes")
    run = train_run("contractive", dataset=ds.name, epochs=1, code_size=8)
    train_run("pca", code_size=4)  # on the digits, where the page opens
    at = _open("pages/contraction.py")
    assert at.slider(key="ae.contract.n").value == 100  # the digits have 1,000 test images
    at.sidebar.selectbox(key="ae.dataset").select(ds.name).run()
    at.switch_page("pages/contraction.py").run()
    at.multiselect(key=f"ae.contract.runs.{ds.name}").set_value([run]).run()
    assert not at.exception, at.exception
    assert not [s for s in at.slider if s.key == "ae.contract.n"]
    assert "Test points: all 4 this dataset has" in [c.value for c in at.caption]
    assert any("over 4 test points" in c.value for c in at.caption)


def test_contraction_page_compares_jacobians():
    # the stacked run's 32 code units read a 16-unit layer: J has rank 16 at most, so 16 of its 32 singular values
    # are 0, which a log axis cannot show (drawn as 1e-16 they squashed the rest into the top of the plot)
    runs = [train_run("contractive", epochs=2, code_size=16), train_run("stacked", epochs=2, hidden=(16,),
                                                                        code_size=32)]
    at = _open("pages/contraction.py")
    at.multiselect(key="ae.contract.runs.digits").set_value(runs).run()
    at.slider(key="ae.contract.n").set_value(20).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["contractive: mean ‖J‖_F", "stacked: mean ‖J‖_F"]
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    spectra = json.loads(charts[1].proto.spec)["data"]
    assert [len(_array(t["y"])) for t in spectra] == [16, 16]
    assert min(_array(t["y"]).min() for t in spectra) > 1e-5
    assert any(f"stacked ({runs[1][-4:]}): 16 of 32" in c.value for c in at.caption)
    yaxis = json.loads(charts[1].proto.spec)["layout"]["yaxis"]  # decades only: plotly read "2 10 5 2" down it
    assert yaxis["type"] == "log" and all(np.log10(v).is_integer() for v in _array(yaxis["tickvals"]))
    assert all(t in ("1", "10") or t.startswith("10<sup>") for t in yaxis["ticktext"])
    xaxis = json.loads(charts[2].proto.spec)["layout"]["xaxis"]  # the contraction ratio's log axis: decades only
    assert xaxis["type"] == "log" and len(xaxis["ticktext"]) >= 2
    assert all(float(t) > 0 and np.log10(float(t)).is_integer() for t in xaxis["ticktext"]), xaxis["ticktext"]
    assert not any(m.key == "ae.contract.runs.digits" for c in at.columns for m in c.get("multiselect"))  # full width


def test_contraction_spectrum_index_recomputes_the_spectrum_only(monkeypatch):
    """One cache held the norms at all the test points and the spectrum at one, keyed by that one's index: each change
    of the index computed every Jacobian again (3.7 s for a 784-1000 encoder at 100 points, against 0.2 s)."""
    run = train_run("contractive", epochs=1, code_size=16)
    norms, real = [], analysis.jacobian_norms
    monkeypatch.setattr(analysis, "jacobian_norms", lambda *a, **k: norms.append(1) or real(*a, **k))
    at = _open("pages/contraction.py", run)
    assert not at.exception, at.exception
    assert len(norms) == 1
    at.number_input(key="ae.contract.point").set_value(7).run()
    assert not at.exception, at.exception
    assert len(norms) == 1  # the norms' cache still holds
    spec = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert spec["layout"]["title"]["text"] == "singular values of J at test #7"
    model = RunStore().load(run)[0]
    expected = analysis.nonzero_spectrum(analysis.jacobian_spectrum(model, load_dataset("digits").x_test[7]))[0]
    np.testing.assert_allclose(_array(spec["data"][0]["y"]), expected, rtol=1e-5)
    at.slider(key="ae.contract.n").set_value(20).run()  # another count of points: the norms again
    assert len(norms) == 2 and any("over 20 test points" in c.value for c in at.caption)


def test_pages_without_runs_say_what_to_do():
    for page in ("pages/denoising.py", "pages/contraction.py", "pages/filters.py"):
        at = _open(page)
        assert at.info, page


def test_train_page_refuses_impossible_zoo_settings_at_the_control():
    at = app("pages/train.py")
    at.selectbox(key="ae.train.model").select("k-sparse").run()
    at.number_input(key="ae.train.cfg.k-sparse.code_size").set_value(20).run()
    at.number_input(key="ae.train.cfg.k-sparse.k").set_value(30).run()
    assert any("larger than the code" in e.value for e in at.error)
    assert at.button(key="ae.train.start").disabled
    at.selectbox(key="ae.train.model").select("conv").run()
    at.text_input(key="ae.train.cfg.conv.channels").input("8,16,32").run()
    assert any("at most 2 conv stage" in e.value for e in at.error)
    assert at.button(key="ae.train.start").disabled
    at.text_input(key="ae.train.cfg.conv.channels").input("8,16").run()
    assert not at.error and not at.button(key="ae.train.start").disabled


def test_filters_page_shows_conv_kernels():
    run = train_run("conv", epochs=1, channels=(6,), code_size=4)
    at = _open("pages/filters.py", run)
    assert not at.error
    assert at.slider(key="ae.filters.n").value == 6  # one tile per first-layer channel
    assert [c.key for c in at.get("plotly_chart")] == ["ae.filters.hist"]
    shown = json.loads(at.get("bidi_component")[0].proto.json)
    assert sorted(shown["units"]) == list(range(6)) and len(shown["panels"]) == 2
    assert any("filter of unit 0" in c for img in at.image for c in img.captions)


def test_filters_page_measures_k_sparse_sparsity_after_the_top_k():
    """Before, the diagnostics read the activations before the top-k: 40.6 active units per sample with k = 25."""
    run = train_run("k-sparse", epochs=1, code_size=32, k=4)
    at = _open("pages/filters.py", run)
    assert not at.exception and not at.error
    at.number_input(key="ae.filters.thr").set_value(0.0).run()
    metrics = {m.label: m.value for m in at.metric}
    assert 0 < float(metrics["active units per sample"]) <= 4


def test_contraction_page_defaults_to_one_run_of_each_model():
    """Before, a contractive run and two denoising ones were shown, and the plain baseline was left out."""
    plain = train_run("stacked", epochs=1, hidden=(), code_size=8)
    contractive = train_run("contractive", epochs=1)
    train_run("denoising", epochs=1, hidden=(), code_size=8)
    newest_denoising = train_run("denoising", epochs=1, hidden=(), code_size=8)
    at = _open("pages/contraction.py")
    assert not at.exception
    assert at.multiselect(key="ae.contract.runs.digits").value == [contractive, newest_denoising, plain]


def test_compared_runs_start_with_the_sidebar_s_run_in_its_model_s_place():
    """Opened on an older denoising run, Contraction showed the newest denoising run instead of it."""
    plain = train_run("stacked", epochs=1, hidden=(), code_size=8)
    older = train_run("denoising", epochs=1, hidden=(), code_size=8)
    contractive = train_run("contractive", epochs=1)
    newest = train_run("denoising", epochs=1, hidden=(), code_size=8)
    at = _open("pages/contraction.py", older)
    assert not at.exception
    assert at.multiselect(key="ae.contract.runs.digits").value == [contractive, older, plain]
    # a model the page does not prefer takes the last place
    sparse = train_run("k-sparse", epochs=1, code_size=16, k=4)
    at = _open("pages/contraction.py", sparse)
    assert at.multiselect(key="ae.contract.runs.digits").value == [contractive, newest, sparse]
