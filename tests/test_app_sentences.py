"""AppTest for the Sentences page (typing two sentences, bad input, samples and decodes, whether z is used) and for
training a sentence model live on the Train page."""
import json

from aecore import RunStore, TrainSettings, TrainingJob, load_dataset
from tests.test_app import app

SMALL = {"hidden_size": 32, "embedding_size": 16, "latent_size": 4}


def sentence_run(model: str = "sentence-vae") -> str:
    config = SMALL if model == "sentence-vae" else {"hidden_size": 32, "embedding_size": 16}
    job = TrainingJob(model, config, load_dataset("grammar"), TrainSettings(epochs=1, batch_size=256, lr=3e-3),
                      store=RunStore())
    job.start().join()
    assert job.record is not None
    return job.run_id


def sentences_page(run_id: str):
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("grammar").run()
    at.sidebar.selectbox(key="ae.run").select(run_id).run()
    at.switch_page("pages/sentences.py").run()
    assert not at.exception, at.exception
    return at


def test_typing_two_sentences_gives_the_homotopy_and_bad_input_a_message():
    at = sentences_page(sentence_run())
    at.text_input(key="ae.sent.a").input("the cat sees a ball").run()
    at.text_input(key="ae.sent.b").input("many dogs are chasing some apples").run()
    assert not at.exception and not at.error
    table = at.table[0].value  # a static table: long sentences wrap instead of being cut
    assert list(table.columns) == ["t", "decoded", "grammatical"] and len(table) == 7
    assert table["t"].iloc[0] == "0.00" and table["t"].iloc[-1] == "1.00"
    assert any("own code" in c.value for c in at.caption)
    at.slider(key="ae.sent.steps").set_value(4).run()
    assert len(at.table[0].value) == 4
    at.segmented_control(key="ae.sent.decode").set_value("beam").run()
    assert not at.exception and len(at.table[0].value) == 4
    at.text_input(key="ae.sent.a").input("the zebra sees a ball").run()  # an unknown word is read as <unk>
    assert not at.exception and any("zebra" in w.value for w in at.warning)
    at.text_input(key="ae.sent.a").input("the zeb*ra sees a _ball_").run()  # markdown's marks shown as typed
    assert not at.exception and any("zeb\\*ra" in w.value and "\\_ball\\_" in w.value for w in at.warning)
    for bad, reason in (("", "empty"), ("zebra quux", "vocabulary"), ("the cat " * 20, "at most")):
        at.text_input(key="ae.sent.a").input(bad).run()
        assert not at.exception and any(reason in e.value for e in at.error), bad
    at.button(key="ae.sent.pick").click().run()  # two sentences from the corpus
    assert not at.exception and not at.error and len(at.table[0].value) == 4


def test_samples_decodes_and_whether_z_is_used():
    at = sentences_page(sentence_run())
    at.segmented_control(key="ae.sent.view").set_value("Samples and decodes").run()
    assert not at.exception and not at.error
    at.slider(key="ae.sent.n").set_value(6).run()
    samples, decodes = at.table[0].value, at.table[1].value
    assert len(samples) == 6 and len(decodes) == 6  # the posterior mean and five draws
    assert decodes["code"].iloc[0] == "posterior mean"
    at.segmented_control(key="ae.sent.view").set_value("Does it use z?").run()
    assert not at.exception and not at.error
    assert any(m.label == "Active units" for m in at.metric)
    assert [c.key for c in at.get("plotly_chart")] == ["ae.sent.kl"]
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert bars["data"][0]["x"][:2] == ["z1", "z2"] and bars["layout"]["xaxis"]["type"] == "category"
    assert any("Its own code" in m.value for m in at.markdown)


def test_a_language_model_run_says_what_it_lacks():
    at = sentences_page(sentence_run("sentence-lm"))
    assert any("has no encoder" in i.value for i in at.info)
    at.segmented_control(key="ae.sent.view").set_value("Samples and decodes").run()
    assert not at.exception and len(at.table[0].value) == 10


def test_image_dataset_points_to_a_text_one():
    at = app("pages/sentences.py")
    assert any("text dataset" in i.value for i in at.info)


def test_train_page_trains_a_sentence_vae_live():
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("grammar").run()
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key="ae.train.model").value == "sentence-vae"
    assert at.slider(key="ae.train.settings.epochs").value == 10  # the family's own training settings
    for field, value in SMALL.items():
        key = f"ae.train.cfg.sentence-vae.{field}"
        widget = next(w for kind in ("slider", "number_input") for w in at.get(kind) if w.key == key)
        widget.set_value(value).run()
    at.slider(key="ae.train.settings.epochs").set_value(1).run()
    at.button(key="ae.train.start").click().run()
    assert not at.exception, at.exception
    job = next(iter(at.session_state["ae.jobs"].values()))
    assert job.join(timeout=120)
    at.run()
    assert not at.exception and any("finished" in s.value for s in at.success)
    preview = at.table[0].value  # a static table: it wraps the sentences instead of cutting "decoded" off
    assert list(preview.columns) == ["sentence", "decoded"] and len(preview) == 10
    assert {"nll", "ppl", "kl", "active_units"} <= set(RunStore().record(job.run_id).metrics)
