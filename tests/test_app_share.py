"""AppTest: share links, settings that survive, presenter mode, the model library, your own images and the talk
gallery."""
import io
import json
import zipfile

from streamlit.testing.v1 import AppTest

from aecore import RunStore
from tests.test_app import APP, app, offers, rerun_until, train_run
from tests.test_recipes import _bars, _zip


def opened(page: str, params: dict) -> AppTest:
    """A fresh session opening ``page`` at a link with ``params`` (a new browser, no state)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page)
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def toasts(at: AppTest) -> str:
    return " ".join(t.value for t in at.toast)


def test_a_link_to_an_upload_this_server_lacks_says_what_it_is():
    """A link made while an upload was used in its session only said "not one of the choices here" elsewhere."""
    at = opened("pages/reconstructions.py", {"dataset": "upload-shapes-35714e"})
    assert at.sidebar.selectbox(key="ae.dataset").value == "mnist-5k"
    shown = toasts(at)
    assert "`upload-shapes-35714e` is an upload this server does not have" in shown
    assert "Saved on **Your images**, an upload's links open in every session." in shown
    assert "not one of the choices" not in shown
    other = opened("pages/reconstructions.py", {"dataset": "cifar"})  # not an upload: the notice it had
    assert "not one of the choices here" in toasts(other) and "upload" not in toasts(other)


def test_a_share_link_round_trip_restores_the_train_page():
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.selectbox(key="ae.train.model").select("k-sparse").run()
    at.number_input(key="ae.train.cfg.k-sparse.k").set_value(12).run()
    at.slider(key="ae.train.settings.epochs").set_value(7).run()
    at.number_input(key="ae.train.settings.seed").set_value(42).run()
    link = dict(at.query_params)
    assert link["model"] == "k-sparse" and link["k"] == "12" and link["epochs"] == "7" and link["seed"] == "42"
    assert link["dataset"] == "digits"
    again = opened("pages/train.py", link)  # a fresh browser at that link
    assert again.sidebar.selectbox(key="ae.dataset").value == "digits"
    assert again.selectbox(key="ae.train.model").value == "k-sparse"
    assert again.number_input(key="ae.train.cfg.k-sparse.k").value == 12
    assert again.slider(key="ae.train.settings.epochs").value == 7
    assert again.number_input(key="ae.train.settings.seed").value == 42
    assert not toasts(again)
    # the link applies once: the user's next change is not undone by it
    again.slider(key="ae.train.settings.epochs").set_value(9).run()
    assert again.slider(key="ae.train.settings.epochs").value == 9 and again.query_params["epochs"] == "9"


def test_a_control_change_writes_only_what_changed_to_the_link(monkeypatch):
    """Each query-string write is a message the browser answers with a history.pushState (70 ms a change on the
    Filters page when every control was rewritten on every run): a change writes its own parameter only, and a
    control the page stops showing leaves the link by the next run."""
    from streamlit.runtime.state.query_params import QueryParams
    writes = []
    send = QueryParams._send_query_param_msg
    monkeypatch.setattr(QueryParams, "_send_query_param_msg", lambda self: (writes.append(dict(self)), send(self)))
    at = app("pages/train.py")
    at.selectbox(key="ae.train.model").select("k-sparse").run()
    at.run()  # the stacked model's own controls leave the link
    writes.clear()
    at.slider(key="ae.train.settings.epochs").set_value(7).run()
    assert len(writes) == 1 and at.query_params["epochs"] == "7"
    at.run()
    assert len(writes) == 1  # a rerun with nothing changed writes nothing
    assert at.query_params["k"]
    at.selectbox(key="ae.train.model").select("stacked").run()
    at.run()
    assert "k" not in at.query_params and at.query_params["model"] == "stacked"


def test_every_run_gives_the_memory_freed_before_back(monkeypatch):
    """glibc keeps what a script run freed in that run's thread arena: each run trims it (bench/memory.py's peak
    fell from 1,587 to 1,334 MB)."""
    from types import SimpleNamespace

    calls = []
    monkeypatch.setattr("aecore.native.libc", lambda: SimpleNamespace(
        malloc_trim=lambda pad: calls.append(pad) or 1, mallopt=lambda *a: 1))
    at = app("pages/train.py")
    at.run()
    assert len(calls) >= 3 and set(calls) == {0}


def test_hostile_link_values_fall_back_to_defaults_with_a_notice():
    at = opened("pages/train.py", {
        "dataset": "../../etc/passwd", "model": "nope", "epochs": "1e12", "lr": "abc", "seed": "a5",
        "hidden": "100000,x", "run": "r" * 5000, "recipe": "{" * 3000, "present": "maybe", "unknown": "1"})
    assert at.sidebar.selectbox(key="ae.dataset").value == "mnist-5k"
    assert at.selectbox(key="ae.train.model").value == "stacked"
    assert at.slider(key="ae.train.settings.epochs").value == 30
    assert at.number_input(key="ae.train.settings.seed").value == 0
    assert at.text_input(key="ae.train.cfg.stacked.hidden").value == "100"
    shown = toasts(at)
    for param in ("dataset", "model", "epochs", "lr", "seed", "hidden", "present"):
        assert f"**{param}**" in shown, param
    assert "over 2000 characters" in shown
    assert "`a5` was ignored (not a number)" in shown  # not Python's "could not convert string to float: 'a5'"
    assert not at.error and not at.exception


def test_a_link_to_a_run_this_server_lacks_offers_to_train_it_from_its_recipe():
    recipe = '{"model":"stacked","dataset":"digits","config":{"hidden":[16],"code_size":4},"settings":{"epochs":2}}'
    at = opened("pages/reconstructions.py", {"dataset": "digits", "run": "20250101-000000-stacked-abcd",
                                             "recipe": recipe, "order": "worst first"})
    assert any("not on this server" in w.value for w in at.sidebar.warning)
    at.sidebar.button(key="ae.link.train").click().run()
    jobs = at.session_state["ae.jobs"]
    assert len(jobs) == 1
    job = next(iter(jobs.values()))
    assert job.join(timeout=120) and job.record.config["hidden"] == [16]
    at.run()
    assert at.sidebar.selectbox(key="ae.run").value == job.run_id
    assert at.radio(key="ae.rec.order").value == "worst first"
    # a second link to the missing run now finds the run trained from the same recipe
    again = opened("pages/reconstructions.py", {"dataset": "digits", "run": "20250101-000000-stacked-abcd",
                                                "recipe": recipe})
    assert again.sidebar.selectbox(key="ae.run").value == job.run_id and not again.sidebar.warning



def test_a_link_to_a_saved_run_opens_on_its_dataset_or_says_that_dataset_is_gone():
    """A link naming a saved run but another dataset, or none (typed by hand), said the run "is not on this
    server"; it opens on the run's dataset. A run whose dataset is gone (an upload since deleted) is said to be
    that, not missing."""
    from aecore import images as user_images
    from tests.test_recipes import _bars
    run = train_run("stacked", epochs=1, hidden=(8,), code_size=4)  # on the digits
    for params in ({"run": run}, {"dataset": "mnist-5k", "run": run}):
        at = opened("pages/reconstructions.py", params)
        assert at.sidebar.selectbox(key="ae.dataset").value == "digits", params
        assert at.sidebar.selectbox(key="ae.run").value == run and not at.sidebar.warning, params
    shapes = user_images.dataset_from_upload(_zip(_bars()), "shapes.zip", "Shapes", side=16)
    path = user_images.save_dataset(shapes, "Shapes")
    gone = train_run("stacked", dataset=shapes.name, epochs=1, hidden=(8,), code_size=4)
    path.unlink()
    at = opened("pages/reconstructions.py", {"dataset": shapes.name, "run": gone})
    warning = " ".join(w.value for w in at.sidebar.warning)
    assert f"trained on {shapes.name}, a dataset this server no longer has" in warning
    assert "not on this server" not in warning and not at.exception

def test_settings_survive_a_visit_to_another_page_and_presenter_mode_opens_from_a_link():
    at = app("pages/train.py")
    at.selectbox(key="ae.train.model").select("denoising").run()
    at.slider(key="ae.train.settings.epochs").set_value(4).run()
    at.selectbox(key="ae.train.cfg.denoising.noise").select("gaussian").run()
    at.switch_page("pages/filters.py").run()
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key="ae.train.model").value == "denoising"
    assert at.slider(key="ae.train.settings.epochs").value == 4
    assert at.selectbox(key="ae.train.cfg.denoising.noise").value == "gaussian"
    shown = opened("pages/train.py", {"present": "1"})
    assert shown.sidebar.toggle(key="ae.present").value is True
    assert any("font-size: 19px" in h.proto.body for h in shown.get("html"))


def test_presenter_mode_fits_the_worst_reconstructions_under_their_inputs():
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    train_run("gan", epochs=1, width=8)  # left out of the page: said to a user, not to an audience
    params = {"dataset": "digits", "run": run, "order": "worst first"}
    plain = opened("pages/reconstructions.py", params)
    assert [m.label for m in plain.metric] == ["test BCE / pixel", "MSE / pixel", "squared error / image"]
    assert any(c.value.startswith("Left out here") for c in plain.caption)
    shown = opened("pages/reconstructions.py", {**params, "present": "1"})
    assert not shown.metric and not any(c.value.startswith("Left out here") for c in shown.caption)
    # one line instead of a row of metrics (they pushed the reconstructions off a 1280x720 projector)
    line = next(m.value for m in shown.markdown if m.value.startswith(f"**{run}** · test BCE"))
    assert f"squared error {plain.metric[2].value} / image" in line and len(shown.image) == 2


def test_presenter_mode_fits_the_filter_mosaics_on_a_projector():
    run = train_run("stacked", epochs=1, hidden=(), code_size=16)
    heights = {}
    for present in ("0", "1"):
        at = opened("pages/filters.py", {"dataset": "digits", "run": run, "present": present})
        heights[present] = json.loads(at.get("bidi_component")[0].proto.json)["height"]
    # the mosaics' images at most this high: at 460 px with their titles the last rows were below 720
    assert heights == {"0": 420, "1": 300}


def test_presenter_mode_shows_noisy_inputs_then_their_denoised_outputs_first():
    dae = train_run("denoising", epochs=1, hidden=(), code_size=8)
    params = {"dataset": "digits", "runs": dae}
    plain = opened("pages/denoising.py", params)
    psnr = plain.dataframe[0].value["mean PSNR (dB)"]
    assert len(plain.image) == 3 and not plain.image[0].captions[0].endswith("dB")  # clean, noisy, denoised
    shown = opened("pages/denoising.py", {**params, "present": "1"})
    assert not shown.dataframe and len(shown.image) == 3  # the table's means in the rows' headings instead
    # noisy, denoised, clean; each image's PSNR left out (the plain run's row was below 720), the means kept
    assert [any(i.captions) for i in shown.image] == [False, False, True]
    headings = [m.value for m in shown.markdown if "mean PSNR" in m.value]
    assert [h.split("mean PSNR ")[1] for h in headings] == [f"{v:.1f} dB" for v in psnr]
    assert not shown.caption and shown.expander[0].label == "Runs: denoising"  # no introduction; the picker folded


def test_presenter_mode_fits_the_samples_side_by_side_on_a_projector(monkeypatch):
    """At 1280x720 the picker's long labels took two lines and each grid the column's 390 px, its last rows below
    the screen: on a projector the picker is folded (named by its runs) and each grid 300 px wide. (AppTest does not
    expose an image's display width, so the page's calls to st.image are checked.)"""
    import streamlit as st
    vae = train_run("vae", epochs=1, hidden=(16,), latent_size=2)
    gan = train_run("gan", epochs=1, width=8)
    params = {"dataset": "digits", "run": gan, "view": "Side by side", "runs": f"{vae},{gan}"}
    widths, image = [], st.image
    monkeypatch.setattr(st, "image", lambda *a, **kw: (widths.append(kw.get("width")), image(*a, **kw))[1])
    plain = opened("pages/generate.py", params)
    plain_widths, widths[:] = widths[:], []
    shown = opened("pages/generate.py", {**params, "present": "1"})
    for at in (plain, shown):
        assert at.multiselect(key="ae.gen.runs").value == [vae, gan] and not at.exception and len(at.image) == 2
    # the distance's scale has an expander of its own once it is computed (in the background, so not always yet)
    assert [e.label for e in plain.expander if e.label.startswith("Runs")] == []
    assert [e.label for e in shown.expander if e.label.startswith("Runs")] == ["Runs: vae, gan"]
    assert plain_widths == ["stretch"] * 2 and widths == [300] * 2


def test_presenter_mode_fits_the_contraction_charts_on_a_projector():
    """At 1280x720 the introduction, the picker's two lines and the metrics with their captions put the three
    charts' tops at the screen's edge: on a projector the introduction goes, the picker folds and each run's norms
    are one line."""
    plain_run = train_run("stacked", epochs=1, hidden=(), code_size=8)
    dae = train_run("denoising", epochs=1, hidden=(), code_size=8)
    params = {"dataset": "digits", "runs": f"{dae},{plain_run}"}
    plain, shown = opened("pages/contraction.py", params), opened("pages/contraction.py", {**params, "present": "1"})
    for at in (plain, shown):
        assert at.multiselect(key="ae.contract.runs.digits").value == [dae, plain_run] and not at.exception
        assert len(at.get("plotly_chart")) == 3
    assert len(plain.metric) == 2 and not plain.expander and any("Jacobian" in c.value for c in plain.caption)
    assert not shown.metric and shown.expander[0].label == "Runs: denoising, stacked"
    assert not any("Jacobian" in c.value for c in shown.caption)
    lines = [m.value for m in shown.markdown if "mean ‖J‖_F" in m.value]
    assert [line.split("**")[1] for line in lines] == ["denoising", "stacked"]
    assert [line.split("**")[3] for line in lines] == [m.value for m in plain.metric]  # the same norms
    assert {json.loads(c.proto.spec)["layout"]["height"] for c in shown.get("plotly_chart")} == {340}


def test_presenter_mode_leaves_out_the_few_labels_introduction():
    run = train_run("stacked", epochs=1, hidden=(), code_size=8)
    params = {"dataset": "digits", "run": run}
    plain, shown = opened("pages/pretraining.py", params), opened("pages/pretraining.py", {**params, "present": "1"})
    assert any(c.value.startswith("Does what an autoencoder") for c in plain.caption) and not plain.exception
    assert not any(c.value.startswith("Does what an autoencoder") for c in shown.caption) and not shown.exception
    assert not shown.button(key="ae.pretrain.start").disabled  # the experiment is still one click away


def test_a_link_restores_the_latent_and_generate_views():
    run = train_run("vae", epochs=1, latent_size=2, hidden=(32,))
    at = opened("pages/latent.py", {"dataset": "digits", "run": run, "point": "17", "grid": "5", "path": "slerp"})
    assert at.number_input(key="ae.latent.point").value == 17 and at.slider(key="ae.latent.grid").value == 5
    assert any("5×5 decodes" in c for img in at.image for c in img.captions)
    at = opened("pages/generate.py", {"dataset": "digits", "run": run, "view": "Interpolation", "steps": "4"})
    assert at.slider(key="ae.gen.steps").value == 4


def test_the_compare_page_shows_the_saved_runs_a_link_names():
    a = train_run("stacked", epochs=1, hidden=(), code_size=16)
    b = train_run("k-sparse", epochs=1, code_size=16, k=4)
    at = opened("pages/compare.py", {"dataset": "digits", "runs": f"{a},{b},missing-run"})
    assert "missing-run" in toasts(at)
    assert [m.value for m in at.markdown if m.value.startswith("**")][-2:] == ["**plain AE**  \n`stacked`",
                                                                              "**k-sparse**  \n`k-sparse`"]
    assert at.get("plotly_chart") and at.query_params["runs"] == f"{a},{b}"


def test_a_link_naming_one_run_this_server_lacks_keeps_the_others():
    """A picker's ``runs`` with one deleted run in it was dropped whole: the page opened on its default runs."""
    a = train_run("stacked", epochs=1, hidden=(), code_size=8)
    b = train_run("denoising", epochs=1, hidden=(), code_size=8)
    train_run("stacked", epochs=1, hidden=(), code_size=4)  # the newest: a default pick, not the link's
    at = opened("pages/denoising.py", {"dataset": "digits", "runs": f"{b},20250101-000000-stacked-gone,{a}"})
    assert at.multiselect(key="ae.denoise.runs.digits").value == [b, a]
    assert "`20250101-000000-stacked-gone` not here; the rest are used" in toasts(at)
    assert at.query_params["runs"] == f"{b},{a}"
    hostile = opened("pages/denoising.py", {"dataset": "digits", "runs": f"{a},x`[y](http://z)`"})
    assert "`x'[y](http://z)'` not here" in toasts(hostile)  # a backtick cannot end the code span early
    none = opened("pages/denoising.py", {"dataset": "digits", "runs": "gone-1,gone-2"})  # none known: the default
    assert "not one of the choices here" in toasts(none) and none.multiselect(key="ae.denoise.runs.digits").value


def test_the_compare_page_offers_the_runs_a_preset_trained_before():
    """A comparison trained before (another day, a tab since closed) was out of sight on the Compare page, which
    offered only to train it all again. It now offers the newest saved run of each column, and shows them."""
    from aecore.compare import COMPARE_PRESETS
    ids = [train_run(c.model, epochs=1, **c.config) for c in COMPARE_PRESETS["regularizers"]]
    train_run("stacked", epochs=1, hidden=(), code_size=16)  # a run of no column: not offered
    at = opened("pages/compare.py", {"dataset": "digits", "preset": "regularizers"})
    at.button(key="ae.compare.saved").click().run()
    assert not at.exception
    heads = [m.value for m in at.markdown if m.value.startswith("**")][-3:]
    assert heads == ["**plain**  \n`stacked`", "**denoising**  \n`denoising`", "**contractive**  \n`contractive`"]
    assert at.query_params["runs"] == ",".join(ids)  # the columns are these runs, and the link says so
    at.selectbox(key="ae.compare.preset").select("sparse coding, five ways").run()  # no saved runs of its own
    assert not [b for b in at.button if b.key == "ae.compare.saved"]
    at.selectbox(key="ae.compare.preset").select("regularizers").run()
    for rid in ids:  # deleted between the offer and the click: no exception, and no offer any more
        RunStore().delete(rid)
    at.button(key="ae.compare.saved").click().run()
    assert not at.exception and not [b for b in at.button if b.key == "ae.compare.saved"]
    at.selectbox(key="ae.compare.preset").select("sparse coding, five ways").run()
    assert not [b for b in at.button if b.key == "ae.compare.saved"]
    assert any("press **Train all**." in i.value for i in at.info)


def test_the_model_library_renames_deletes_after_confirming_exports_and_imports():
    first = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    store = RunStore()
    path = store.root / first / "run.json"  # a score below 0.1, where 4 significant digits and 4 decimals differ
    path.write_text(json.dumps({**json.loads(path.read_text()), "metrics": {"bce": 0.090254}}))
    blob = store.export(first)
    at = app("pages/library.py")
    table = at.dataframe[0].value
    assert list(table["id"]) == [first] and table["model"][0] == "stacked" and table["size (MB)"][0] > 0
    assert list(table.columns[:3]) == ["name", "id", "metric"]  # in sight at 1280 px: later, they were cut off
    assert table["metric"][0] == "test BCE 0.0903" and "test BCE 0.0903 ·" in store.record(first).label  # as the
    # sidebar reads it: the table had 0.09025
    assert [b.label for b in at.get("download_button")] == ["Download (zip)", "Export as script (.py)"]
    at.text_input(key=f"ae.library.name.{first}").input("tiny digits AE")
    at.button[0].click().run()  # the form's Rename submits the name
    assert store.record(first).name == "tiny digits AE"
    assert at.dataframe[0].value["name"][0] == "tiny digits AE"
    at.button(key="ae.library.delete").click().run()
    assert any("for good" in w.value for w in at.warning) and first in [e.id for e in store.list()]
    at.button(key="ae.library.delete_no").click().run()
    assert first in [e.id for e in store.list()]
    at.button(key="ae.library.delete").click().run()
    at.button(key="ae.library.delete_yes").click().run()
    assert store.list() == [] and any("No saved runs" in i.value for i in at.info)
    # upload: a hostile zip is refused and writes nothing; the exported one comes back
    at.file_uploader(key="ae.library.upload").set_value(("evil.zip", _zip({"../x.json": b"{}"}), "application/zip"))
    at.run()
    at.button(key="ae.library.import").click().run()
    assert any("Not added" in e.value for e in at.error) and store.list() == []
    at.file_uploader(key="ae.library.upload").set_value((f"{first}.zip", blob, "application/zip"))
    at.run()
    at.button(key="ae.library.import").click().run()
    assert [e.id for e in store.list()] == [first] and any("Added" in s.value for s in at.success)
    # the sidebar shows it at once: it said "pick it in the sidebar", where its dataset was not the sidebar's
    assert at.sidebar.selectbox(key="ae.dataset").value == "digits"
    assert at.sidebar.selectbox(key="ae.run").value == first
    assert [s.value for s in at.success] == [f"Added as **{first}**, a run on scikit-learn 8x8 digits (embedded): "
                                             "the sidebar shows it now."]
    # a run whose dataset this server lacks is added, and said to be out of the pages' reach
    store.delete(first)
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    meta = next(n for n in members if n.endswith("run.json"))
    members[meta] = json.dumps({**json.loads(members[meta]), "dataset": "upload-gone-0a1b2c"}).encode()
    at.file_uploader(key="ae.library.upload").set_value((f"{first}.zip", _zip(members), "application/zip"))
    at.run()
    at.button(key="ae.library.import").click().run()
    assert not at.exception, at.exception
    assert any("its dataset upload-gone-0a1b2c is not on this server" in w.value for w in at.warning)


def test_a_delete_the_store_refuses_is_said_and_keeps_the_run(monkeypatch):
    """The library's other deletes said why they failed; this one raised the error onto the page."""
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=4)

    def refuse(self, run_id):
        raise PermissionError(13, "Permission denied", run_id)
    monkeypatch.setattr(RunStore, "delete", refuse)
    at = app("pages/library.py")
    at.button(key="ae.library.delete").click().run()
    at.button(key="ae.library.delete_yes").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [f"Not deleted: [Errno 13] Permission denied: '{run}'"]
    assert [e.id for e in RunStore().list()] == [run] and list(at.dataframe[0].value["id"]) == [run]


def test_your_images_upload_previews_and_trains_on_every_page():
    at = app("pages/your_images.py")
    files = {**_bars(), "shapes/wide/_damaged_.png": b"\x89PNG cut short"}  # left out, named as it is; the rest load
    at.file_uploader(key="ae.images.file").set_value(("shapes.zip", _zip(files), "application/zip"))
    at.run()
    at.selectbox(key="ae.images.side").select(16).run()
    at.button(key="ae.images.convert").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "24 images, 16×16" in at.subheader[0].value
    assert [w.value for w in at.warning] == ["**1 file left out**, the rest loaded: shapes/wide/\\_damaged\\_.png is "
                                             "not a readable PNG or JPEG"]  # its underscores escaped, not italics
    assert list(at.dataframe[0].value["class"]) == ["tall", "wide"]
    at.button(key="ae.images.use").click().run()
    name = at.sidebar.selectbox(key="ae.dataset").value
    assert name.startswith("upload-shapes")
    assert offers(at) == {"Train a model on it": ("train", {})}
    at.switch_page("pages/train.py").run()
    at.slider(key="ae.train.settings.epochs").set_value(2).run()
    at.button(key="ae.train.start").click().run()
    job = next(iter(at.session_state["ae.jobs"].values()))
    assert job.join(timeout=120) and job.record.dataset == name and job.record.config["input_shape"] == [16, 16]
    at.switch_page("pages/reconstructions.py").run()
    assert not at.exception and at.image
    # a bad upload: a clear message, no preview, no dataset
    at.switch_page("pages/your_images.py").run()
    at.file_uploader(key="ae.images.file").set_value(("x.npz", b"not an npz", "application/octet-stream"))
    at.run()
    at.button(key="ae.images.convert").click().run()
    assert any("Not loaded" in e.value for e in at.error)


def test_a_saved_dataset_is_deleted_from_your_images_after_a_confirmation():
    from aecore import images as user_images
    ds = user_images.dataset_from_upload(_zip(_bars()), "shapes.zip", "My shapes", side=16)
    path = user_images.save_dataset(ds, "My shapes")
    at = app("pages/your_images.py")
    assert at.expander[0].label == "Your saved datasets (1)"
    at.button(key="ae.images.delete").click().run()
    assert path.exists() and "Delete **My shapes (uploaded)** for good?" in at.warning[0].value
    at.button(key="ae.images.delete_no").click().run()
    assert path.exists() and not at.warning
    at.button(key="ae.images.delete").click().run()
    at.button(key="ae.images.delete_yes").click().run()
    assert not path.exists() and [s.value for s in at.success] == ["Deleted My shapes (uploaded)."]
    assert not at.expander and ds.name not in at.sidebar.selectbox(key="ae.dataset").options


def test_the_gallery_trains_a_missing_preset_then_opens_its_view():
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    assert any(b.label == "Train and open" for b in at.button)
    at.button(key="ae.gallery.seed-recipe").click().run()
    rerun_until(at, lambda a: any(t.value == "Reconstructions" for t in a.title), timeout=120)
    assert at.radio(key="ae.rec.order").value == "worst first"
    run = at.sidebar.selectbox(key="ae.run").value
    assert RunStore().record(run).settings["epochs"] == 10
    at.switch_page("app.py").run()
    assert at.button(key="ae.gallery.seed-recipe").label == "Open"


def test_a_preset_training_in_another_tab_shows_its_progress_instead_of_training_again(digits):
    """A reloaded tab (or a second visitor) found "Train and open" while the preset's runs trained, and trained
    them a second time."""
    from aecore.talk import TALK_PRESETS
    from pages.ui import state
    job = TALK_PRESETS["seed-recipe"].trainer(digits, RunStore())  # not started: training as far as a page knows
    state.preset_jobs()[("seed-recipe", "digits")] = job
    try:
        at = app()
        at.sidebar.selectbox(key="ae.dataset").select("digits").run()
        assert not at.exception and not [b for b in at.button if b.key == "ae.gallery.seed-recipe"]
        assert "training 1 run on digits" in [p.proto.text for p in at.get("progress")][0]
        assert any(b.key == "ae.gallery.denoising" for b in at.button)  # the other presets as they were
    finally:
        state.preset_jobs().clear()


def test_a_reloaded_tab_finds_its_running_job_again_and_can_stop_it():
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.slider(key="ae.train.settings.epochs").set_value(500).run()
    at.button(key="ae.train.start").click().run()
    job = next(iter(at.session_state["ae.jobs"].values()))
    link = dict(at.query_params)
    assert link["run"] == job.run_id
    try:
        # a reload is a new session at the same link: the job is found, live, with its Stop button
        again = opened("pages/train.py", link)
        assert again.sidebar.selectbox(key="ae.run").value == job.run_id
        assert not again.button(key="ae.train.stop").disabled
        assert not again.sidebar.warning  # not offered for training again
        # a session without the link never sees another's run in progress
        other = opened("pages/train.py", {"dataset": "digits"})
        assert not [s for s in other.sidebar.selectbox if s.key == "ae.run"]  # no run on digits to list
        assert job.run_id not in other.session_state["ae.jobs"]
        again.button(key="ae.train.stop").click().run()
        assert job.join(timeout=60) and job.progress().status == "stopped"
    finally:
        job.stop()
        job.join(timeout=60)


def test_a_link_that_names_a_preset_opens_with_the_presets_settings():
    from aecore.papers import PAPERS
    at = opened("pages/train.py", {"preset": "Hinton & Salakhutdinov (784-1000-500-250-30)", "epochs": "7"})
    assert at.text_input(key="ae.train.cfg.stacked.hidden").value == "1000,500,250"
    assert at.selectbox(key="ae.train.settings.lr_schedule").value == PAPERS["hinton"].settings["lr_schedule"]
    assert at.slider(key="ae.train.settings.epochs").value == 7  # the link's own value wins over the preset's


def test_a_link_that_names_a_model_opens_with_its_familys_training_settings():
    """``?model=vae`` starts from the VAE's own settings (batch 128, 10 epochs, mixed precision where native), as
    picking it in the menu does; the link's own values still win; going back to the seed recipe resets them."""
    from aecore import model_spec
    at = opened("pages/train.py", {"model": "vae", "lr": "0.002"})
    assert at.selectbox(key="ae.train.model").value == "vae"
    defaults = model_spec("vae").train_defaults
    assert at.select_slider(key="ae.train.settings.batch_size").value == defaults["batch_size"]
    assert at.slider(key="ae.train.settings.epochs").value == defaults["epochs"]
    assert at.selectbox(key="ae.train.settings.precision").value == defaults["precision"]
    assert at.select_slider(key="ae.train.settings.lr").value == 0.002  # the link's own value wins
    at.selectbox(key="ae.train.model").select("stacked").run()
    assert at.select_slider(key="ae.train.settings.batch_size").value == 32
    assert at.selectbox(key="ae.train.settings.precision").value == "float32"
