"""AppTest for the Generate page: samples side by side with their scores and the seed button, a VAE's levers (a
test image and a blank drawing), interpolation, and the diagnostics with the NLL bound and a GAN's roll-back."""
import json

import numpy as np

from aecore import RunStore, load_dataset
from tests.test_app import app, open_page, rerun_until, train_run


def _images(at) -> list[bytes]:
    return [str(img.proto) for img in at.image]


def _scored(at) -> bool:
    return any(m.label == "classifier Fréchet" for m in at.metric)


def test_side_by_side_scores_and_the_seed_button():
    vae = train_run("vae", epochs=2, hidden=(16,), latent_size=2)
    gan = train_run("gan", epochs=2, width=8)
    at = open_page("pages/generate.py", gan)
    at.multiselect(key="ae.gen.runs").set_value([vae, gan]).run()
    rerun_until(at, _scored, timeout=120)  # the digit classifier trains on first use
    assert not at.exception and not at.error
    assert len(at.image) == 2
    # each grid's title on one line (cut with an ellipsis), so that the grids start level
    titles = [h.value for h in at.html if "white-space:nowrap" in h.value]
    assert len(titles) == 2 and all(f"{model}</b> · {rid}" in t for model, rid, t in zip(("vae", "gan"), (vae, gan),
                                                                                           titles))
    labels = [m.label for m in at.metric]
    assert labels.count("confident ≥ 0.9") == 2 and labels.count("classifier Fréchet") == 2
    hists = [c for c in at.get("plotly_chart") if c.key.startswith("ae.gen.hist.")]
    assert len(hists) == 2
    # one labelled bar per class: numeric class names on a category axis (a linear one labelled 0, 2, 4, 6, 8)
    assert all(json.loads(c.proto.spec)["layout"]["xaxis"]["type"] == "category" for c in hists)
    # the line's label right of the bars, in the margin kept for it, never over the last bar
    notes = [json.loads(c.proto.spec)["layout"]["annotations"][0] for c in hists]
    assert all(n["text"] == "uniform" and n["x"] == 1 and n["xanchor"] == "left" for n in notes)
    assert all(json.loads(c.proto.spec)["layout"]["margin"]["r"] >= 50 for c in hists)
    assert any("not an Inception FID" in c.value for c in at.caption)
    # the dataset by its title, as the sidebar names it (an upload was "upload-clothes-2afb49")
    assert any("trained on scikit-learn 8x8 digits (embedded) (test accuracy" in c.value for c in at.caption)
    before = _images(at)
    seed = at.number_input(key="ae.gen.seed").value
    at.button(key="ae.gen.reseed").click().run()
    assert at.number_input(key="ae.gen.seed").value == seed + 1
    after = _images(at)
    assert len(after) == 2 and all(a != b for a, b in zip(before, after))  # new samples for every run
    scale = at.table[0].value  # the distance's scale: the floor, then noise and blur
    assert len(scale) == 7 and "floor" in scale.iloc[0, 0]
    distances = [float(v) for v in scale.iloc[:, 1]]
    assert distances[1] < distances[3] and distances[4] < distances[6]  # more noise, more blur: farther


def test_one_run_alone_takes_half_the_width_and_the_other_half_offers_more():
    from tests.test_app import offers
    vae = train_run("vae", epochs=1, hidden=(16,), latent_size=2)
    at = open_page("pages/generate.py", vae)
    assert at.multiselect(key="ae.gen.runs").value == [vae] and not at.exception
    grid, free = at.columns[3], at.columns[4]  # after the seed row's three
    assert grid.proto.weight == free.proto.weight == 0.5  # two halves, the grid in one
    assert any(type(e).__name__ == "Image" for e in grid)
    links = offers(at)
    assert links["Train a GAN"][1]["model"] == "gan" and links["Train a plain autoencoder"][1]["model"] == "stacked"
    assert "Train a VAE" not in links  # the family shown already
    gan = train_run("gan", epochs=1, width=8)
    at = open_page("pages/generate.py", gan)
    at.multiselect(key="ae.gen.runs").set_value([gan]).run()
    assert not offers(at) and any("Add another run" in c.value for c in at.caption)


def test_a_run_with_two_problems_gets_one_roll_back(monkeypatch):
    """Side by side, each problem a GAN's diagnosis finds is a warning, under which one roll-back is offered (one
    per problem gave two widgets the same key, and the page failed)."""
    from aecore.models.gan import GAN
    gan = train_run("gan", epochs=2, width=8)
    monkeypatch.setattr(GAN, "diagnose", lambda self, *a, **k: ["mode collapse: one", "divergence: two"])
    at = open_page("pages/generate.py", gan)
    at.multiselect(key="ae.gen.runs").set_value([gan]).run()
    rerun_until(at, _scored, timeout=120)
    assert not at.exception
    assert [w.value for w in at.warning] == ["mode collapse: one", "divergence: two"]
    assert len([b for b in at.selectbox if b.key and b.key.startswith("ae.gen.rollback.side.")]) == 1


def test_levers_move_the_decode_and_a_blank_drawing_still_decodes():
    vae = train_run("vae", epochs=2, hidden=(16,), latent_size=2)
    at = open_page("pages/generate.py", vae)
    at.segmented_control(key="ae.gen.view").set_value("Levers").run()
    assert not at.exception and not at.error
    sliders = [s for s in at.slider if s.key and s.key.startswith("ae.gen.z.")]
    assert len(sliders) == 2
    # the decode stays in sight: in the left column beside the sliders, not below them (off a 1280x720 screen)
    left, right = at.columns[0], at.columns[3]
    assert any("decoded with the levers" in str(e.proto) for e in left if type(e).__name__ == "Image")
    assert [s.key for s in right.get("slider")] == [s.key for s in sliders]
    decoded = _images(at)
    s = sliders[0]
    s.set_value(float(np.clip(s.value + 0.5 * (s.max - s.min) / 2, s.min, s.max))).run()
    assert not at.exception
    assert _images(at) != decoded  # the decode under the levers changed
    # the 2-D manifold beside the levers, in their column (below the page it was off a 1280x720 screen), its ring
    # moved with them
    manifold = [e for e in right if type(e).__name__ == "Image" and "whole decoded 2-D latent space" in str(e.proto)]
    assert len(manifold) == 1
    before = str(manifold[0].proto)
    s.set_value(s.min).run()
    after = [str(e.proto) for e in at.columns[3] if type(e).__name__ == "Image"]
    assert len(after) == 1 and after[0] != before
    at.run()
    assert [str(e.proto) for e in at.columns[3] if type(e).__name__ == "Image"] == after  # the same picture, the same
    at.number_input(key="ae.gen.index").set_value(5).run()  # a new start moves every lever to its code
    assert not at.exception
    at.radio(key="ae.gen.source").set_value("a drawing").run()
    assert not at.exception and not at.error  # nothing drawn: a blank image encodes and decodes
    assert len([s for s in at.slider if s.key and s.key.startswith("ae.gen.z.")]) == 2


def test_levers_explain_a_run_without_an_encoder():
    gan = train_run("gan", epochs=1, width=8)
    at = open_page("pages/generate.py", gan)
    at.segmented_control(key="ae.gen.view").set_value("Levers").run()
    assert not at.exception
    assert any("has no encoder" in i.value for i in at.info)


def test_interpolation_between_images_and_between_noise_vectors():
    vae = train_run("vae", epochs=1, hidden=(16,), latent_size=2)
    gan = train_run("gan", epochs=1, width=8)
    at = open_page("pages/generate.py", vae)
    at.segmented_control(key="ae.gen.view").set_value("Interpolation").run()
    at.slider(key="ae.gen.steps").set_value(6).run()
    assert not at.exception and len(at.image) == 1
    at.radio(key="ae.gen.path").set_value("spherical").run()
    assert not at.exception
    at.sidebar.selectbox(key="ae.run").select(gan).run()
    assert not at.exception
    assert at.number_input(key="ae.gen.na") is not None and len(at.image) == 1


def test_diagnostics_show_kl_bars_the_nll_gap_and_roll_back_a_gan():
    vae = train_run("vae", epochs=2, hidden=(16,), latent_size=3)
    gan = train_run("gan", epochs=2, width=8)
    at = open_page("pages/generate.py", vae)
    at.segmented_control(key="ae.gen.view").set_value("Diagnostics").run()
    assert not at.exception and any(c.key == "ae.gen.kl" for c in at.get("plotly_chart"))
    at.select_slider(key="ae.gen.k").set_value(10).run()
    at.select_slider(key="ae.gen.nimg").set_value(100).run()
    at.button(key="ae.gen.estimate").click().run()
    rerun_until(at, lambda a: any(m.label == "gap" for m in a.metric))
    vals = {m.label: float(m.value.split()[0]) for m in at.metric}
    assert vals["gap"] >= 0 and abs(vals["−ELBO (nats / image)"] - vals["importance-weighted NLL, K=10"]
                                     - vals["gap"]) < 0.02
    at.sidebar.selectbox(key="ae.run").select(gan).run()
    assert not at.exception
    rerun_until(at, lambda a: any("Epoch 2" in (x.value if hasattr(x, "value") else "") for x in
                                  [*a.success, *a.warning]), timeout=120)
    at.selectbox(key="ae.gen.rollback.diag").select(1).run()
    at.button(key="ae.gen.rollback_btn.diag").click().run()
    assert not at.exception
    assert any("with its weights after epoch 1" in s.value for s in at.success)
    assert any((r.record and r.record.message.startswith(f"rolled back from {gan}")) for r in RunStore().list())


def test_diagnostics_of_a_plain_autoencoder_offer_the_runs_that_have_them():
    vae = train_run("vae", epochs=1, hidden=(16,), latent_size=3)
    plain = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    at = open_page("pages/generate.py", plain)
    at.segmented_control(key="ae.gen.view").set_value("Diagnostics").run()
    assert any("switch to one of these runs" in i.value for i in at.info)
    assert [b.key for b in at.button if b.key.startswith("ae.use_run.")] == [f"ae.use_run.{vae}"]
    at.button(key=f"ae.use_run.{vae}").click().run()
    assert not at.exception and at.sidebar.selectbox(key="ae.run").value == vae
    assert any(c.key == "ae.gen.kl" for c in at.get("plotly_chart"))


def test_train_page_switches_to_a_familys_training_settings_and_trains_a_gan():
    at = open_page("pages/train.py")
    at.selectbox(key="ae.train.model").select("gan").run()
    assert at.select_slider(key="ae.train.settings.lr").value == 5e-4
    assert at.select_slider(key="ae.train.settings.batch_size").value == 64
    at.selectbox(key="ae.train.model").select("stacked").run()
    assert at.select_slider(key="ae.train.settings.lr").value == 1e-3
    assert at.select_slider(key="ae.train.settings.batch_size").value == 32
    at.selectbox(key="ae.train.model").select("gan").run()
    at.slider(key="ae.train.cfg.gan.width").set_value(8).run()
    at.slider(key="ae.train.settings.epochs").set_value(1).run()
    at.button(key="ae.train.start").click().run()
    rerun_until(at, lambda a: any("finished" in s.value for s in a.success), timeout=120)
    assert any("fixed noise" in (img.captions[0] if img.captions else "") for img in at.image)
    labels = [m.label for m in at.metric]  # the stats under their labels, not their keys
    assert "D accuracy on real" in labels and "d_real_acc" not in labels
    assert any(c.key.startswith("ae.train.curve.") for c in at.get("plotly_chart"))


def test_train_page_reports_a_collapsing_gan_live(monkeypatch):
    from aecore.models import gan
    monkeypatch.setattr(gan.GAN, "preview", lambda self, batch: np.full((64, 64), 0.5, dtype=np.float32))
    at = open_page("pages/train.py")
    at.selectbox(key="ae.train.model").select("gan").run()
    at.slider(key="ae.train.cfg.gan.width").set_value(8).run()
    at.slider(key="ae.train.settings.epochs").set_value(1).run()
    at.button(key="ae.train.start").click().run()
    rerun_until(at, lambda a: any("finished" in s.value for s in a.success), timeout=120)
    assert any("mode collapse" in w.value.lower() and "roll" in w.value for w in at.warning)


def test_side_by_side_starts_with_a_gan_a_vae_and_a_plain_autoencoder():
    """The brief's comparison by default: the newest GAN, VAE and plain autoencoder, even where other families
    were trained after them."""
    vae = train_run("vae", epochs=1, hidden=(16,), latent_size=2)
    stacked = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    gan = train_run("gan", epochs=1, width=8)
    train_run("contractive", epochs=1, code_size=16)
    train_run("denoising", epochs=1, hidden=(16,), code_size=4)
    at = open_page("pages/generate.py", gan)
    assert not at.exception
    assert at.multiselect(key="ae.gen.runs").value == [gan, vae, stacked]


def test_a_gan_saved_without_its_scores_gets_them_from_the_generate_page(monkeypatch):
    """A GAN saved before runs were listed by their samples (or whose scoring Stop skipped) stayed listed by its D
    loss for good. The Generate page scores the same 1,000 samples at seed 0 as the job does, and writes them into
    the run's record once, so every list shows them; another seed's numbers are not written."""
    import aecore.scores as scores
    from aecore.scores import SCORE_N, classifier_for, classify, draw_samples, sample_scores
    real = scores.listed_scores
    monkeypatch.setattr(scores, "listed_scores", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no scores")))
    gan = train_run("gan", epochs=2, width=8)
    monkeypatch.setattr(scores, "listed_scores", real)
    store = RunStore()
    assert "classifier_frechet" not in store.record(gan).metrics and store.record(gan).headline[0] == "test D loss"
    # the page opened at seed 3: opened at 0 and then moved to 3, it scored seed 0 wherever the classifier was
    # ready before the move (a slow machine's classifier trained within the opening's reruns)
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.sidebar.selectbox(key="ae.run").select(gan).run()
    at.session_state["ae.gen.seed"] = 3
    at.switch_page("pages/generate.py").run()
    assert at.number_input(key="ae.gen.seed").value == 3
    rerun_until(at, _scored, timeout=120)  # the digit classifier trains on first use
    assert not at.exception and "classifier_frechet" not in store.record(gan).metrics  # seed 3: not the listed one
    at.number_input(key="ae.gen.seed").set_value(0).run()
    assert not at.exception
    record = store.record(gan)
    model, _ = store.load(gan)
    digits = load_dataset("digits")
    clf, _ = classifier_for(digits, store.root)
    direct = sample_scores(clf, draw_samples(model, SCORE_N, 0, digits), classify(clf, digits.x_test)[0])
    assert np.isclose(record.metrics["classifier_frechet"], direct["classifier_frechet"], rtol=1e-6)
    assert record.metrics["confident_share"] == direct["confident_share"]
    assert record.headline[0] == "classifier Fréchet" and "classifier Fréchet" in store.list()[0].record.label
    shown = [m.value for m in at.metric if m.label == "classifier Fréchet"]
    assert shown == [f"{record.metrics['classifier_frechet']:.0f}"]  # the page's number is the listed one


def test_clicking_the_chosen_view_again_keeps_it():
    """The views are a segmented control, and clicking the chosen segment again unselects it: the page then fell
    back to Side by side, so a presenter who clicked Levers twice lost the levers."""
    vae = train_run("vae", epochs=1, hidden=(16,), latent_size=2)
    at = open_page("pages/generate.py", vae)
    at.segmented_control(key="ae.gen.view").set_value("Levers").run()
    assert at.segmented_control(key="ae.gen.view").value == "Levers" and at.slider
    at.segmented_control(key="ae.gen.view").set_value(None).run()  # what the second click sends
    assert not at.exception and at.segmented_control(key="ae.gen.view").value == "Levers" and at.slider


def test_the_generate_page_leaves_samples_of_a_one_class_dataset_unscored():
    """It trained a one-class "digit classifier" behind a progress bar, then scored every sample confident."""
    from aecore import images as user_images
    from tests.test_app import app, train_run
    from tests.test_recipes import _bars, _zip
    files = {f"{i}.png": data for i, data in enumerate(v for k, v in _bars().items() if k.endswith(".png"))}
    ds = user_images.dataset_from_upload(_zip(files), "loose.zip", "Loose pictures", side=16)
    user_images.save_dataset(ds, "Loose pictures")
    run = train_run("vae", dataset=ds.name, epochs=2, latent_size=2)
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select(ds.name).run()
    at.sidebar.selectbox(key="ae.run").select(run).run()
    at.switch_page("pages/generate.py").run()
    assert not at.exception and at.image and not at.get("progress") and not at.metric
    assert any("Samples are not scored here" in c.value and "one class" in c.value for c in at.caption)
