"""AppTest: every page driven through its widgets, asserting on what it shows."""
import json
import time
from pathlib import Path

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from aecore import RunStore, TrainSettings, TrainingJob, list_models, load_dataset

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def open_page(page: str, run_id: str | None = None) -> AppTest:
    """The app on the digits dataset, with ``run_id`` selected in the sidebar, switched to ``page``."""
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    if run_id:
        at.sidebar.selectbox(key="ae.run").select(run_id).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def select_on_chart(at: AppTest, key: str, points: list[dict] = (), box: list[dict] = ()) -> AppTest:
    """Rerun ``at`` as the browser does after a click (``points``) or a box drag (``box``) on the Plotly chart
    ``key``: the chart's selection state travels as its widget value, a JSON string."""
    chart = next(c for c in at.get("plotly_chart") if c.key == key)
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id = chart.proto.id
    state.string_value = json.dumps({"selection": {
        "points": list(points), "point_indices": [p.get("point_index", 0) for p in points], "box": list(box),
        "lasso": []}})
    at._run(states)
    assert not at.exception, at.exception
    return at


def trigger_component(at: AppTest, key: str, event: str, value) -> AppTest:
    """Rerun ``at`` as the browser does when the v2 component ``key`` sends ``event`` with ``value`` (a click): its
    events travel as a JSON list in one trigger widget of the component's."""
    from streamlit.components.v2.bidi_component.main import _make_trigger_id
    component = next(c for c in at.get("bidi_component") if c.proto.id.endswith(f"-{key}"))
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id = _make_trigger_id(component.proto.id, "events")
    state.json_trigger_value = json.dumps([{"event": event, "value": value}])
    at._run(states)
    assert not at.exception, at.exception
    return at


def rerun_until(at: AppTest, done, timeout: float = 60.0) -> AppTest:
    """Rerun ``at`` until ``done(at)`` holds, as the page's polling fragments would; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, "timed out waiting for the page"
        time.sleep(0.2)
        at.run()
        assert not at.exception, at.exception
    return at


def train_run(model: str, dataset: str = "digits", epochs: int = 2, **config) -> str:
    job = TrainingJob(model, config, load_dataset(dataset), TrainSettings(epochs=epochs), store=RunStore())
    job.start().join()
    return job.run_id


def test_the_idle_preload_finds_the_code_of_every_widget_kind_it_names():
    """Streamlit's widget code lives in files named by kind and hash; a kind renamed by an upgrade would drop out of
    the preload without a sound."""
    from pages.ui import IDLE_PRELOAD, idle_preload_script
    script = idle_preload_script()
    for kind in IDLE_PRELOAD:
        assert f"'{kind}." in script, kind


def test_home_explains_and_lists_models():
    at = app()
    assert at.title[0].value == "Autoencoder Explorer"
    assert any("How to start" in s.value for s in at.subheader)
    table = at.table[0].value
    assert list(table["model"]) == list_models()
    assert at.sidebar.selectbox(key="ae.dataset").value == "mnist-5k"


def test_the_saved_run_is_selected_even_if_the_picker_went_back_to_the_run_before_train(monkeypatch):
    """A rerun of the live view can carry back the sidebar's value from before Train once the page's few seconds
    of pinning it are over (1 of 8 browsers training at once on a loaded VM ended on its old run): at the end the
    Train page selects the saved run; a run the user picked that is neither is left alone. (Long runs, stopped
    once the picker has moved, so that it moves while they train.)"""
    from pages.ui import runs
    monkeypatch.setattr(runs, "PIN_SECONDS", 0.0)
    old = train_run("stacked", hidden=[8], code_size=2)
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    assert at.sidebar.selectbox(key="ae.run").value == old
    at.slider(key="ae.train.settings.epochs").set_value(500).run()
    at.text_input(key="ae.train.cfg.stacked.hidden").input("8").run()

    def train_while_the_picker_moves_to(run_id: str):
        known = set(at.session_state["ae.jobs"])
        at.button(key="ae.train.start").click().run()
        (job,) = [j for k, j in at.session_state["ae.jobs"].items() if k not in known]
        assert at.sidebar.selectbox(key="ae.run").value == job.run_id
        at.sidebar.selectbox(key="ae.run").select(run_id).run()
        assert not job.progress().done
        job.stop()
        assert job.join(timeout=120) and job.record is not None  # stopped, and saved
        at.run()
        assert not at.exception, at.exception
        assert any(f"Run {job.run_id}" in w.value.replace("*", "") and "Saved" in w.value for w in at.warning)
        return job

    job = train_while_the_picker_moves_to(old)  # what the browser sent back
    assert at.sidebar.selectbox(key="ae.run").value == job.run_id
    third = train_run("stacked", hidden=[8], code_size=3)
    at.run()
    train_while_the_picker_moves_to(third)  # the user's own pick of a third run stands
    assert at.sidebar.selectbox(key="ae.run").value == third


def test_train_page_says_when_a_gan_s_epochs_give_it_too_few_steps_and_sets_enough():
    """A GAN's 5 epochs of the embedded 4,000 digits are 315 steps, and it drew blobs: the page says so and one
    click sets the epochs its 9,000 steps need; a model that needs no such count gets no hint."""
    at = app("pages/train.py")
    assert not [b for b in at.button if b.key == "ae.train.enough_steps"]
    at.selectbox(key="ae.train.model").select("gan").run()
    assert at.slider(key="ae.train.settings.epochs").value == 5
    assert any("5 epochs of these 4,000 training images are 315 steps" in c.value and "9,000" in c.value
               for c in at.caption)
    at.button(key="ae.train.enough_steps").click().run()
    assert not at.exception, at.exception
    assert at.slider(key="ae.train.settings.epochs").value == 143  # ceil(9,000 / 63 batches of 64)
    assert not [b for b in at.button if b.key == "ae.train.enough_steps"]
    assert not any("steps;" in c.value for c in at.caption)


def test_train_page_trains_live_and_saves_a_selectable_run():
    at = app("pages/train.py")
    assert at.selectbox(key="ae.train.model").value == "stacked"  # the seed recipe is the default
    assert at.text_input(key="ae.train.cfg.stacked.hidden").value == "100"
    assert at.number_input(key="ae.train.cfg.stacked.code_size").value == 30
    # before any run: the probe batch and an idle progress bar, where the live view will draw them
    assert "probe batch" in at.image[0].captions[0] and at.get("progress")[0].proto.text.startswith("not started")
    assert "reconstructions of a probe batch" in at.info[0].value
    at.selectbox(key="ae.train.model").select("gan").run()  # a model that samples: no probe image, samples promised
    assert not at.image and "samples from a fixed noise batch" in at.info[0].value
    assert "reconstructions" not in at.info[0].value
    at.selectbox(key="ae.train.model").select("stacked").run()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.slider(key="ae.train.settings.epochs").set_value(3).run()
    at.text_input(key="ae.train.cfg.stacked.hidden").input("32").run()
    at.button(key="ae.train.start").click().run()
    assert not at.exception, at.exception
    jobs = at.session_state["ae.jobs"]
    assert len(jobs) == 1
    job = next(iter(jobs.values()))
    assert job.join(timeout=120)
    at.run()  # the live view's next poll shows the finished run
    assert not at.exception, at.exception
    assert any(f"Run {job.run_id}" in s.value.replace("*", "") and "finished" in s.value for s in at.success)
    status = at.get("progress")[0].proto.text  # the status line of an ended run: no "ETA 0:00", no "training…"
    assert status.startswith("finished") and "took" in status and "ETA" not in status
    assert "training…" not in at.sidebar.selectbox(key="ae.run").format_func(job.run_id)
    assert at.get("plotly_chart"), "the cost curve is shown"
    assert at.image and "reconstructions" in at.image[0].captions[0], "the probe reconstructions are shown"
    # leaving the page and coming back neither kills nor duplicates the run
    at.switch_page("app.py").run()
    at.switch_page("pages/train.py").run()
    assert len(at.session_state["ae.jobs"]) == 1
    # saved and selectable everywhere
    assert job.run_id in [r.id for r in RunStore().list()]
    assert job.run_id in at.sidebar.selectbox(key="ae.run").options[0] or \
        at.sidebar.selectbox(key="ae.run").value == job.run_id
    record = RunStore().record(job.run_id)
    assert record.config["hidden"] == [32] and len(record.epochs) == 3
    # another dataset picked in the sidebar: the form is its, the run shown is still the last one, and says where
    at.sidebar.selectbox(key="ae.dataset").select("mnist-5k").run()
    assert not at.exception, at.exception
    assert any(f"Run {job.run_id} on digits finished" in s.value.replace("*", "") for s in at.success)
    assert at.get("progress")[0].proto.text.startswith("digits · finished")


def test_a_second_run_is_drawn_against_the_previous_one():
    """Tweak a control and train again: the new curve comes with the previous run's test curve in grey, what
    changed, and each metric's change from the previous run."""
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.slider(key="ae.train.settings.epochs").set_value(2).run()
    at.text_input(key="ae.train.cfg.stacked.hidden").input("16").run()
    at.button(key="ae.train.start").click().run()
    first = next(iter(at.session_state["ae.jobs"].values()))
    assert first.join(timeout=120)
    at.run()
    assert not any("previous" in c.value for c in at.caption)  # nothing to compare the first run with
    assert [m.delta for m in at.metric if m.label == "test BCE"] == [""]
    at.number_input(key="ae.train.cfg.stacked.code_size").set_value(4).run()
    at.button(key="ae.train.start").click().run()
    second = list(at.session_state["ae.jobs"].values())[-1]
    assert second is not first and second.join(timeout=120)
    at.run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.caption if "previous" in c.value)
    assert first.run_id in caption and "code_size 30 → 4" in caption and "hidden" not in caption
    chart = next(c for c in at.get("plotly_chart") if c.key == f"ae.train.curve.{second.run_id}")
    traces = json.loads(chart.proto.spec)["data"]
    grey = [t for t in traces if t["name"].startswith("previous run, test")]
    assert len(grey) == 1
    want = [r["val_reconstruction"] for r in first.progress().epoch_rows]
    assert np.allclose(grey[0]["y"], want)
    bce = next(m for m in at.metric if m.label == "test BCE")
    delta = second.record.metrics["bce"] - first.record.metrics["bce"]
    assert bce.delta == f"{delta:+.3g}" and bce.value == f"{second.record.metrics['bce']:.4g}"


def test_retrain_on_change_starts_a_run_for_each_change_and_stops_the_one_in_progress():
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.slider(key="ae.train.settings.epochs").set_value(2).run()
    at.text_input(key="ae.train.cfg.stacked.hidden").input("16").run()
    assert not at.session_state["ae.jobs"]
    at.toggle(key="ae.train.auto").set_value(True).run()  # the form differs from what last trained (nothing): go
    jobs = at.session_state["ae.jobs"]
    assert len(jobs) == 1
    first = list(jobs.values())[0]
    assert first.join(timeout=120)
    at.run()
    at.switch_page("pages/filters.py").run()
    at.switch_page("pages/train.py").run()
    assert at.toggle(key="ae.train.auto").value is True  # kept across pages, as the other controls are
    assert len(at.session_state["ae.jobs"]) == 1  # no change, no new run
    at.number_input(key="ae.train.cfg.stacked.code_size").set_value(4).run()
    jobs = list(at.session_state["ae.jobs"].values())
    assert len(jobs) == 2 and jobs[1].config.code_size == 4 and jobs[1].config.hidden == (16,)
    assert jobs[1].join(timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert any("code_size 30 → 4" in c.value for c in at.caption)
    # a long run, then a change while it trains: it is stopped (and kept), the new settings train at once
    at.slider(key="ae.train.settings.epochs").set_value(200).run()
    assert not at.exception, at.exception
    long = list(at.session_state["ae.jobs"].values())[-1]
    # (failed once in CI, not reproduced in 165 tries since: the state that decides, said in full if it recurs)
    assert long.config.code_size == 4 and long.settings.epochs == 200 and not long.progress().done, (
        long.run_id, long.settings.epochs, long.progress().status, at.session_state["ae.train.settings.epochs"],
        at.session_state["ae.train.started"], [e.value for e in at.error], dict(at.query_params))
    assert not at.number_input(key="ae.train.cfg.stacked.code_size").disabled  # the controls stay live
    at.number_input(key="ae.train.cfg.stacked.code_size").set_value(6).run()
    jobs = list(at.session_state["ae.jobs"].values())
    assert len(jobs) == 4 and jobs[-1].config.code_size == 6
    assert long.progress().status == "stopped" and long.record is not None and long.record.status == "stopped"
    jobs[-1].stop()
    assert jobs[-1].join(timeout=60)
    at.run()
    assert not at.exception, at.exception
    # the grey curve is the last finished run's (code size 4, 2 epochs), not the stopped one's
    assert any(f"previous stacked run, {jobs[1].run_id}" in c.value for c in at.caption)
    # the library clears this session's stopped runs in one go, after a confirmation, and nothing else
    job = TrainingJob("stacked", {"hidden": (8,)}, load_dataset("digits"), TrainSettings(epochs=50), store=RunStore())
    job.start().stop()
    assert job.join(timeout=60)
    other = job.run_id
    assert RunStore().record(other).status == "stopped"  # another session's stopped run
    at.switch_page("pages/library.py").run()
    assert not at.exception, at.exception
    ask = at.button(key="ae.library.delete_stopped")
    assert "Delete the 2 runs this session stopped part way" in ask.label
    ask.click().run()
    at.button(key="ae.library.delete_stopped_yes").click().run()
    assert not at.exception, at.exception
    left = {e.id for e in RunStore().list()}
    assert long.run_id not in left and jobs[-1].run_id not in left
    assert {jobs[0].run_id, jobs[1].run_id, other} <= left


def test_presenter_mode_opens_the_hyperparameters_when_retraining_on_change():
    """A projector shows what the model learns, so presenter mode folds the settings; with Retrain on change the
    controls are what the presenter moves, so they are open."""
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.sidebar.toggle(key="ae.present").set_value(True).run()
    panel = lambda: next(e for e in at.expander if e.label == "Model hyperparameters")  # noqa: E731
    assert panel().proto.expanded is False
    training = next(e for e in at.expander if e.label == "Training")
    assert training.proto.expanded is False  # folded: the greedy hint names it rather than pointing "above"
    assert any("Greedy* toggle under **Training**" in c.value for c in at.caption)
    at.toggle(key="ae.train.auto").set_value(True).run()
    assert panel().proto.expanded is True
    for job in at.session_state["ae.jobs"].values():
        job.stop()
        assert job.join(timeout=60)


def test_greedy_pretraining_is_greyed_out_for_a_family_without_it():
    at = app("pages/train.py")
    assert not at.toggle(key="ae.train.settings.greedy").disabled  # the seed recipe's stack has layers
    at.selectbox(key="ae.train.model").select("gan").run()
    greedy = at.toggle(key="ae.train.settings.greedy")
    assert greedy.disabled and "no greedy layer-wise pretraining" in greedy.help  # it did nothing when toggled
    assert not at.select_slider(key="ae.train.settings.lr").disabled
    at.selectbox(key="ae.train.model").select("neural-sparse-coding").run()  # Arora et al.'s rule steps by eta
    lr = at.select_slider(key="ae.train.settings.lr")
    assert lr.disabled and "eta" in lr.help and at.selectbox(key="ae.train.settings.lr_schedule").disabled
    bias = lambda: at.toggle(key="ae.train.settings.output_bias_from_data")  # noqa: E731
    assert not bias().disabled
    at.selectbox(key="ae.train.model").select("recurrent").run()  # no output bias to start
    assert bias().disabled and "no output bias" in bias().help


def test_a_closed_form_model_promises_no_epochs_and_no_cost_curve():
    at = app("pages/train.py")
    assert [c.key for c in at.get("plotly_chart")] == ["ae.train.curve.empty"]
    at.selectbox(key="ae.train.model").select("pca").run()
    assert [p.proto.text for p in at.get("progress")] == ["not started · fitted in closed form, no epochs"]
    assert not at.get("plotly_chart") and "closed form" in at.info[0].value  # it said "30 epochs" and drew 0-30
    assert at.image[0].captions[0].endswith("once it is fitted")  # "as it trains"
    at.button(key="ae.train.start").click().run()
    job = next(iter(at.session_state["ae.jobs"].values()))
    assert job.join(60)
    at.run()
    assert [p.proto.text.split(" · took")[0] for p in at.get("progress")] == ["finished · fitted in closed form"]


def test_controls_read_their_field_names_out():
    at = app("pages/train.py")
    assert at.select_slider(key="ae.train.settings.lr").label == "Learning rate"  # was "Lr"
    assert at.selectbox(key="ae.train.settings.lr_schedule").label == "Learning rate schedule"
    at.selectbox(key="ae.train.model").select("k-sparse").run()
    labels = {w.key.rsplit(".", 1)[-1]: w.label for w in [*at.number_input, *at.slider] if w.key}
    assert labels["aux_k"] == "AuxK" and labels["init_std"] == "Initial deviation", labels


def test_train_page_refuses_bad_settings_at_the_control():
    at = app("pages/train.py")
    at.text_input(key="ae.train.cfg.stacked.hidden").input("100, abc").run()
    assert any("comma-separated integers" in e.value for e in at.error)
    assert at.button(key="ae.train.start").disabled
    at.text_input(key="ae.train.cfg.stacked.hidden").input("100").run()
    assert not at.error and not at.button(key="ae.train.start").disabled
    at.text_input(key="ae.train.cfg.stacked.hidden").input("100 50").run()  # two layers, not one of 10,050 units
    assert not at.error and at.session_state["ae.train.cfg.stacked.hidden"] == "100 50"
    from aecore.config import parse_sizes
    assert parse_sizes("100 50") == parse_sizes("100, 50") == parse_sizes(" 100 ,50 ") == (100, 50)


def test_train_and_stop_sit_above_the_settings():
    """Train and Stop come before the hyperparameter panels, so that the live view at the top of the right column is
    in sight when Train is pressed; an error about a setting shows beside them."""
    at = app("pages/train.py")
    left = list(at.columns[0].children.values())
    kinds = [type(c).__name__ for c in left]
    holds_train = [i for i, c in enumerate(left) if kinds[i] == "Block"
                   and any(b.key == "ae.train.start" for b in c.button)]
    assert holds_train and holds_train[0] < kinds.index("Expander")
    at.text_input(key="ae.train.cfg.stacked.hidden").input("100, abc").run()
    block = list(at.columns[0].children.values())[holds_train[0]]
    assert any("comma-separated integers" in e.value for e in block.error)


def test_the_model_and_preset_labels_give_the_dataset_s_input_size():
    """Over the 8x8 digits the form read "seed recipe (784-100-30)" while it built and trained a 64-100-30 net."""
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key="ae.train.cfg.stacked.preset").options == [
        "seed recipe (64-100-30)", "Hinton & Salakhutdinov (64-1000-500-250-30)"]
    assert "stacked — Stacked fully connected autoencoder (seed recipe 64-100-30 GELU)" in \
        at.selectbox(key="ae.train.model").options
    assert at.selectbox(key="ae.train.cfg.stacked.preset").value == "seed recipe (784-100-30)"  # the name it keeps
    at.sidebar.selectbox(key="ae.dataset").select("mnist-5k").run()
    assert at.selectbox(key="ae.train.cfg.stacked.preset").options[0] == "seed recipe (784-100-30)"


def test_train_page_preset_fills_the_controls():
    at = app("pages/train.py")
    at.selectbox(key="ae.train.cfg.stacked.preset").select("Hinton & Salakhutdinov (784-1000-500-250-30)").run()
    assert at.text_input(key="ae.train.cfg.stacked.hidden").value == "1000,500,250"
    assert at.selectbox(key="ae.train.cfg.stacked.code_activation").value == "linear"
    # a paper's preset: its figure and source beside it, and the recipe's training settings in the controls
    assert any("Paper: **3.00** test squared error per image" in c.value and "Science 2006" in c.value
               for c in at.caption)
    from aecore.papers import PAPERS
    assert at.slider(key="ae.train.settings.epochs").value == PAPERS["hinton"].settings["epochs"] != 30
    assert at.selectbox(key="ae.train.settings.lr_schedule").value == "cosine"
    at.selectbox(key="ae.train.cfg.stacked.preset").select("seed recipe (784-100-30)").run()
    assert at.slider(key="ae.train.settings.epochs").value == 30
    assert at.selectbox(key="ae.train.settings.lr_schedule").value == "constant"
    assert not any("Paper:" in c.value for c in at.caption)


def test_a_field_not_in_use_is_greyed_out_and_says_when_it_is():
    at = app("pages/train.py")
    at.selectbox(key="ae.train.model").select("vae").run()
    hidden, channels = (at.text_input(key=f"ae.train.cfg.vae.{f}") for f in ("hidden", "channels"))
    assert not hidden.disabled and channels.disabled
    assert "used only when architecture is conv" in channels.help
    at.selectbox(key="ae.train.cfg.vae.architecture").select("conv").run()
    hidden, channels = (at.text_input(key=f"ae.train.cfg.vae.{f}") for f in ("hidden", "channels"))
    assert hidden.disabled and not channels.disabled and "used only when architecture is mlp" in hidden.help
    # a bad value left in a field that is now greyed out (which the user cannot mend) does not block training
    at.selectbox(key="ae.train.cfg.vae.architecture").select("mlp").run()
    at.text_input(key="ae.train.cfg.vae.hidden").input("abc").run()
    assert any("layer sizes" in e.value for e in at.error) and at.button(key="ae.train.start").disabled
    at.selectbox(key="ae.train.cfg.vae.architecture").select("conv").run()
    assert not any("layer sizes" in e.value for e in at.error) and not at.button(key="ae.train.start").disabled
    at.selectbox(key="ae.train.model").select("stacked").run()  # a family with greedy pretraining
    assert at.slider(key="ae.train.settings.greedy_epochs").disabled  # greedy is off
    at.toggle(key="ae.train.settings.greedy").set_value(True).run()
    assert not at.slider(key="ae.train.settings.greedy_epochs").disabled and not at.exception


def test_a_familys_first_preset_is_what_its_controls_show_when_it_is_picked():
    """The Train page names a family's first preset over its controls; where that preset is not the family's
    defaults (k-sparse's is the paper's SGD and start), picking the family must show the preset's values."""
    from aecore import list_models, model_spec
    at = app("pages/train.py")
    checked = 0
    for name in list_models(modality="image"):
        presets = model_spec(name).presets
        first = next(iter(presets.values()), {})
        if not first:
            continue
        at.selectbox(key="ae.train.model").select(name).run()
        for field, value in first.items():
            want = ",".join(map(str, value)) if isinstance(value, tuple) else value
            assert at.session_state[f"ae.train.cfg.{name}.{field}"] == want, (name, field)
            checked += 1
    assert checked and not at.exception


def test_a_model_whose_first_preset_is_a_papers_starts_from_the_papers_recipe():
    """k-sparse's first preset is the paper's: picking the model must put the recipe the caption names (20 epochs,
    SGD at lr 0.01) in the controls, as picking that preset does; it kept the family's 30 epochs at Adam's 1e-3."""
    from aecore.papers import PAPERS
    at = app("pages/train.py")
    at.selectbox(key="ae.train.model").select("k-sparse").run()
    assert any("This preset trains the paper's recipe (20 epochs)" in c.value for c in at.caption)
    assert at.slider(key="ae.train.settings.epochs").value == PAPERS["k-sparse"].settings["epochs"] == 20
    assert at.select_slider(key="ae.train.settings.lr").value == PAPERS["k-sparse"].settings["lr"] == 0.01
    assert at.selectbox(key="ae.train.cfg.k-sparse.optimizer").value == "sgd"
    at.selectbox(key="ae.train.cfg.k-sparse.preset").select("196 units, k 20 (for filters)").run()
    assert at.slider(key="ae.train.settings.epochs").value == 30
    assert at.select_slider(key="ae.train.settings.lr").value == 1e-3
    assert at.selectbox(key="ae.train.cfg.k-sparse.optimizer").value == "adam"
    at.selectbox(key="ae.train.model").select("stacked").run()
    at.selectbox(key="ae.train.model").select("k-sparse").run()  # back to its non-paper preset: no recipe
    assert at.selectbox(key="ae.train.cfg.k-sparse.preset").value == "196 units, k 20 (for filters)"
    assert at.slider(key="ae.train.settings.epochs").value == 30
    assert not at.exception


def test_help_texts_from_the_engine_keep_their_asterisks():
    """Help tooltips are markdown: the k-sparse paper's note holds "alpha*k" twice, and the two asterisks made the
    text between them italic and vanished. Engine texts reach the page escaped, so each shows as written."""
    import re
    from aecore.papers import PAPERS
    at = app("pages/train.py")
    at.selectbox(key="ae.train.model").select("k-sparse").run()
    recipe = PAPERS["k-sparse"]
    note = next(c for c in at.caption if "This preset trains the paper's recipe" in c.value).proto.help
    alpha = at.slider(key="ae.train.cfg.k-sparse.alpha").help
    for text, written in ((note, f"{recipe.source}. {recipe.choices}"), (alpha, "alpha*k units are kept when "
                                                                                "encoding features")):
        assert written.count("*") >= 1 and not re.search(r"(?<!\\)[*_`$]", text), text  # every mark escaped
        assert re.sub(r"\\(.)", r"\1", text) == written  # and nothing else changed
    assert not at.exception


def test_a_finished_run_of_a_papers_network_shows_the_papers_figure_beside_its_own():
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.selectbox(key="ae.train.cfg.stacked.preset").select("Hinton & Salakhutdinov (784-1000-500-250-30)").run()
    at.slider(key="ae.train.settings.epochs").set_value(1).run()
    at.button(key="ae.train.start").click().run()
    rerun_until(at, lambda a: any("paper: **3.00**" in m.value for m in a.markdown), timeout=120)
    line = next(m.value for m in at.markdown if "paper: **3.00**" in m.value)
    record = RunStore().record(next(r.id for r in RunStore().list()))
    assert f"This run: **{record.metrics['sse_per_image']:.2f}**" in line
    assert "this run is on digits, so the two do not compare" in line  # the paper's 3.00 is on 784-pixel MNIST


def test_train_page_stop_keeps_the_run():
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.slider(key="ae.train.settings.epochs").set_value(200).run()
    at.button(key="ae.train.start").click().run()
    job = next(iter(at.session_state["ae.jobs"].values()))
    at.button(key="ae.train.stop").click().run()
    assert job.join(timeout=60)
    at.run()
    p = job.progress()
    assert p.status == "stopped" and p.step < p.total_steps
    assert any("stopped" in w.value for w in at.warning)
    assert RunStore().record(job.run_id).status == "stopped"


def test_the_train_click_draws_the_job_training_in_its_own_run(monkeypatch):
    """The job starts in Train's callback, before the script runs, so the click's own run already shows it training
    (Train disabled, Stop enabled, the live view, the run in the sidebar): no second full run (issue 17's 1 s)."""
    import streamlit as st
    reruns = []
    real_rerun = st.rerun
    monkeypatch.setattr(st, "rerun", lambda *a, **k: (reruns.append(1), real_rerun(*a, **k)))
    at = app("pages/train.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.slider(key="ae.train.settings.epochs").set_value(200).run()
    at.text_input(key="ae.train.cfg.stacked.hidden").input("48").run()
    at.button(key="ae.train.start").click().run()
    assert not at.exception, at.exception
    job = next(iter(at.session_state["ae.jobs"].values()))
    try:
        assert not reruns, "the click took a second script run"
        assert at.button(key="ae.train.start").disabled and not at.button(key="ae.train.stop").disabled
        assert at.get("progress"), "the live view is drawn"
        assert at.sidebar.selectbox(key="ae.run").value == job.run_id
        assert job.config.hidden == (48,) and job.settings.epochs == 200  # what the form showed
    finally:
        job.stop()
        job.join(timeout=60)


def test_reconstructions_page_needs_a_run():
    at = app("pages/reconstructions.py")
    assert any("No run selected" in i.value for i in at.info)


def test_a_page_that_leaves_the_sidebars_run_out_switches_to_one_that_fits_in_one_click():
    """A GAN picked in the sidebar left the Reconstructions page with a list of run ids to copy into the picker."""
    ae = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    gan = train_run("gan", epochs=1)
    at = open_page("pages/reconstructions.py", gan)
    assert any(gan in i.value and "left out" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not at.get("image")
    button = at.button(key=f"ae.use_run.{ae}")
    assert button.label == RunStore().record(ae).label  # named as the sidebar names it, not by a bare id
    button.click().run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="ae.run").value == ae
    assert not any("left out" in i.value for i in at.info)
    assert at.get("plotly_chart") or at.get("image"), "the run's reconstructions are shown"
    assert not [b for b in at.button if b.key.startswith("ae.use_run.")]


def test_a_run_deleted_while_it_is_shown_is_said_to_be_deleted():
    """Deleted from another tab or the command line, the run shown gave way to another run (or to "No run
    selected") without a word, and the page's figures were then another run's."""
    older = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    newer = train_run("stacked", epochs=1, hidden=(16,), code_size=6)
    at = open_page("pages/reconstructions.py", newer)
    assert at.sidebar.selectbox(key="ae.run").value == newer and not at.toast
    RunStore().delete(newer)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="ae.run").value == older
    assert [t.value for t in at.toast] == [f"Run {newer} was deleted; another run is shown."]
    at.run()
    assert not at.toast  # said once
    RunStore().delete(older)
    at.run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [f"Run **{older}** was deleted from the run store (in the Model library, "
                                          "another tab or the command line). No run selected. Train one on the "
                                          "**Train** page, or pick a saved run in the sidebar."]
    at.sidebar.selectbox(key="ae.dataset").select("mnist-5k").run()  # another dataset: nothing was deleted there
    assert [i.value for i in at.info] == ["No run selected. Train one on the **Train** page, or pick a saved run "
                                          "in the sidebar."]


def test_a_fresh_session_selects_the_newest_run_that_reconstructs():
    """After ``prepare-talk`` the newest run was a GAN, and a first visit to Filters, Latent space or
    Reconstructions said only that it was left out; the sidebar now starts on a run most pages can show."""
    ae = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    train_run("gan", epochs=1)
    at = open_page("pages/filters.py")
    assert at.sidebar.selectbox(key="ae.run").value == ae
    assert not any("left out" in i.value for i in at.info)
    gan_only = RunStore()
    gan_only.delete(ae)
    at = open_page("pages/generate.py")  # only a GAN on the dataset: it is selected, as before
    assert model_of_selected(at) == "gan"


def model_of_selected(at: AppTest) -> str:
    return RunStore().record(at.sidebar.selectbox(key="ae.run").value).model


def offers(at: AppTest) -> dict[str, tuple[str, dict]]:
    """The links an empty page offers (the navigation's left out): label -> (page, the values it opens with)."""
    from urllib.parse import parse_qsl
    return {e.proto.label: (e.proto.page, dict(parse_qsl(e.proto.query_string))) for e in at.get("page_link")
            if e.proto.icon == ":material/arrow_forward:"}


def test_empty_pages_link_to_what_fills_them_and_the_links_open_it():
    """With no runs, each page that needs one offers a link to the page and settings that would make one; each
    link's values are taken by the page it opens (a model or preset renamed would break it)."""
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    expected = {
        "pages/reconstructions.py": {"Train a model": ("train", {})},
        "pages/latent.py": {"Train a model": ("train", {})},
        "pages/generate.py": {"Train a VAE": ("train", {"model": "vae"}), "Train a GAN": ("train", {"model": "gan"})},
        "pages/denoising.py": {"Train a denoising autoencoder": ("train", {"model": "denoising"}),
                               "Compare: regularizers": ("compare", {"preset": "regularizers"})},
        "pages/contraction.py": {"Compare: regularizers": ("compare", {"preset": "regularizers"}),
                                 "Train a contractive autoencoder": ("train", {"model": "contractive"})},
        "pages/library.py": {"Train a model": ("train", {})},
    }
    for page, links in expected.items():
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert offers(at) == links, page
    keys = {"train": ("pages/train.py", "model", "ae.train.model"),
            "compare": ("pages/compare.py", "preset", "ae.compare.preset")}
    for page, values in [link for links in expected.values() for link in links.values() if link[1]]:
        script, param, key = keys[page]
        at.query_params.clear()
        at.switch_page("app.py").run()  # a link applies when its page is entered: from another page
        at.query_params.update(values)
        at.switch_page(script).run()
        assert not at.exception, at.exception
        assert at.selectbox(key=key).value == values[param], (page, values)


def test_the_denoising_and_contraction_pages_offer_the_side_of_the_comparison_that_is_missing():
    """A new user who had trained the seed recipe saw it alone on the Denoising and Contraction pages, with
    nothing to compare it with."""
    train_run("stacked", epochs=1, hidden=(), code_size=8)
    at = app("pages/denoising.py")
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    assert offers(at) == {"Train a denoising autoencoder": ("train", {"model": "denoising"})}
    train_run("denoising", epochs=1, hidden=(), code_size=8)
    at.run()
    assert not offers(at) and not at.exception
    at.switch_page("pages/contraction.py").run()  # no contractive run: offered, as on the empty page
    assert offers(at) == {"Train a contractive autoencoder": ("train", {"model": "contractive"}),
                          "Compare: regularizers": ("compare", {"preset": "regularizers"})}
    train_run("contractive", epochs=1, hidden=(), code_size=8)
    at.run()
    assert not offers(at) and not at.exception
    RunStore().delete(next(e.record.id for e in RunStore().list() if e.record.model == "stacked"))
    at.switch_page("pages/denoising.py").run()
    assert offers(at) == {"Train a plain autoencoder": ("train", {"model": "stacked"})}


def test_pages_that_need_a_sampling_run_offer_the_family_that_fills_them():
    """"Train a model" opened the Train page on the seed recipe, which the Sentences page and Generate's levers
    cannot show."""
    at = app("pages/sentences.py")
    at.sidebar.selectbox(key="ae.dataset").select("grammar").run()
    assert offers(at) == {"Train a sentence VAE": ("train", {"model": "sentence-vae"})}
    at.query_params.clear()
    at.switch_page("app.py").run()
    at.query_params.update({"model": "sentence-vae"})
    at.switch_page("pages/train.py").run()  # the link's value is taken on the text dataset
    assert at.selectbox(key="ae.train.model").value == "sentence-vae" and not at.exception
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.switch_page("pages/generate.py").run()
    at.segmented_control(key="ae.gen.view").set_value("Levers").run()
    assert offers(at) == {"Train a VAE": ("train", {"model": "vae"})}


def test_a_text_page_on_an_image_dataset_offers_a_text_dataset():
    at = app("pages/sentences.py")
    assert any("is an image dataset" in i.value for i in at.info)
    at.button(key="ae.switch_dataset").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="ae.dataset").value == "grammar"
    assert not any("image dataset" in i.value for i in at.info)


def test_reconstructions_page_orders_compares_and_validates():
    ae = train_run("stacked", epochs=2)
    pca = train_run("pca", code_size=8)
    at = app()
    at.sidebar.selectbox(key="ae.dataset").select("digits").run()
    at.sidebar.selectbox(key="ae.run").select(ae).run()
    at.switch_page("pages/reconstructions.py").run()
    assert not at.exception, at.exception
    # worst first: the per-sample errors under the reconstructions are sorted, largest first
    at.radio(key="ae.rec.order").set_value("worst first").run()
    rows = at.image
    assert len(rows) == 2  # inputs, one run
    errors = [float(c) for c in rows[1].captions]
    assert errors == sorted(errors, reverse=True) and len(errors) == 12
    # side by side with PCA on the same inputs
    at.selectbox(key="ae.rec.other").select(pca).run()
    assert len(at.image) == 3
    assert len(at.metric) == 6
    # chosen samples, and a clear message for bad input
    at.radio(key="ae.rec.order").set_value("chosen").run()
    at.text_input(key="ae.rec.indices").input("3, 5, 100000").run()
    assert any("out of range" in e.value for e in at.error)
    at.text_input(key="ae.rec.indices").input("3, 5").run()
    assert [c.split("·")[0] for c in at.image[0].captions] == ["#3", "#5"]
    assert not any(" " in c for c in at.image[0].captions)  # "#8496·0" fits under a 56-px tile, "#8496 · 0" wraps


def test_the_server_leaves_a_core_to_the_browser(monkeypatch):
    import os
    import threading

    import torch

    from pages.ui import state
    before = torch.get_num_threads()
    seen = []
    try:
        default = max(1, (os.cpu_count() or 2) - 1)
        for env, want in [(None, default), ("3", 3), ("zero", default)]:
            if env is None:
                monkeypatch.delenv("AECORE_TORCH_THREADS", raising=False)
            else:
                monkeypatch.setenv("AECORE_TORCH_THREADS", env)
            state.torch_threads.clear()
            assert state.torch_threads() == want
            # threads started afterwards (training jobs, projections, script runs) compute with that many
            worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
            worker.start()
            worker.join()
            assert seen[-1] == want
    finally:
        state.torch_threads.clear()
        torch.set_num_threads(before)


def test_a_new_script_thread_makes_no_openmp_team_on_its_first_op():
    """Streamlit runs every rerun and fragment in a new thread. GNU OpenMP keeps the thread count per thread, so a
    new thread's first exp made a team of the machine's size (3-30 ms) whatever torch.set_num_threads said in
    another thread. Counted in a fresh interpreter, inside the new thread, before and after its first exp."""
    import os
    import subprocess
    import sys
    if (os.cpu_count() or 1) < 2 or not os.path.isdir("/proc/self/task"):
        pytest.skip("one core (no team to make), or no /proc")
    script = """
import os, threading, torch
from pages.ui import state
torch.set_num_threads(1)
def grew():
    out = []
    def first_op():
        before = len(os.listdir("/proc/self/task"))
        torch.rand(100).exp()
        out.append(len(os.listdir("/proc/self/task")) - before)
    t = threading.Thread(target=first_op, name="ScriptRunner.scriptThread")  # Streamlit's name for them
    t.start()
    t.join()
    return out[0]
print(grew(), end=" ")
state.torch_threads()
print(grew(), grew())
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, *after = map(int, done.stdout.split())
    if before == 0:
        pytest.skip("this OpenMP runtime makes no team for a new thread's first op")
    assert after == [0, 0]


def test_the_home_page_loads_no_dataset_to_pick_the_gallery_s(monkeypatch):
    """The talk gallery takes the sidebar's dataset where it holds images and needs no download, as the registry
    says: loading it to ask took a fresh server's Home page 0.2-0.5 s, and started a download for one not fetched."""
    import aecore
    from pages.ui import state
    loaded = []
    real = aecore.load_dataset
    monkeypatch.setattr(aecore, "load_dataset", lambda name: loaded.append(name) or real(name))
    state._dataset.clear()
    at = app()
    assert any("on mnist-5k" in c.value for c in at.caption)
    for name, shown in (("digits", "digits"), ("mnist", "mnist-5k"), ("grammar", "mnist-5k")):
        at.sidebar.selectbox(key="ae.dataset").select(name).run()  # mnist: not downloaded here; grammar: text
        assert not at.exception, at.exception
        assert any(f"not trained yet on {shown}" in c.value for c in at.caption), name
    assert loaded == []


def test_the_home_page_draws_its_title_before_torch_and_imports_no_torch_dynamo(tmp_path):
    """A fresh server's first run of the Home page imports torch and the engine (1.3-1.7 s): its title and
    introduction come first, so the page is not blank meanwhile. And the talk presets' recipes were checked by building
    each model on the meta device, where spectral norm's and an embedding's starts import torch._dynamo: 0.55-0.78 s
    of Python. A recipe names a model without building it; its size is checked where it trains. In a fresh
    interpreter, as a server starts."""
    import os
    import subprocess
    import sys
    script = """
import re
import sys
from pathlib import Path
import streamlit as st
from streamlit.testing.v1 import AppTest
torch_at_title, preloads, pandas_at_button = [], [], []
title, html, button = st.title, st.html, st.button
st.title = lambda *a, **k: torch_at_title.append("torch" in sys.modules) or title(*a, **k)
st.html = lambda body, **k: ("ae-preload" in body and preloads.append(("torch" in sys.modules, body))) or html(body, **k)
st.button = lambda *a, **k: pandas_at_button.append("pandas" in sys.modules) or button(*a, **k)
at = AppTest.from_file("app.py", default_timeout=120).run()
assert not at.exception, at.exception
assert len(at.button) >= 3, "the talk gallery's cards"
print("pandas before the gallery's first button:", pandas_at_button[0])
(torch_then, body), = preloads
static = Path(st.__file__).parent / "static" / "static" / "js"
named = [f for f in re.findall(r"'([A-Za-z]+[.][A-Za-z0-9_-]+[.]js)'", body) if (static / f).is_file()]
shipped = sorted(k for k in ("Button", "Checkbox", "PageLink", "Selectbox", "Table") if list(static.glob(k + ".*.js")))
print("preloaded before torch:", not torch_then, sorted(f.split(".")[0] for f in named) == shipped, "Button" in shipped)
print(torch_at_title, "torch._dynamo" in sys.modules)
"""
    env = {**os.environ, "AECORE_RUNS_DIR": str(tmp_path / "runs"), "AECORE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "[False] False", done.stdout
    # the code of the widgets drawn after the imports is asked for before them: the browser loads it meanwhile
    # (every one of the five that this Streamlit ships, each by its file name)
    assert "preloaded before torch: True True True" in done.stdout
    # the server's warm-up and its synchronous pandas import (0.3 s) come after the gallery, not before it
    assert "pandas before the gallery's first button: False" in done.stdout


def _png(url: str):
    """The pixels of a ``data:image/png;base64,`` URL."""
    import base64
    import io

    import numpy as np
    from PIL import Image
    head, data = url.split(",", 1)
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def test_image_rows_are_sent_as_exact_pngs_inside_the_page(monkeypatch):
    """st.image stored an array as a JPEG the browser fetched after the page was drawn: a Reconstructions change
    put its 24 tiles on screen 0.29-0.36 s after the click (0.13-0.17 s inline), and JPEG blurred the digits'
    edges. The rows now go as PNG data URLs, pixel for pixel."""
    import numpy as np
    from aecore.viz import image_tiles
    from pages.ui import figures
    calls = []
    monkeypatch.setattr(figures.st, "image", lambda urls, **kw: calls.append(urls))
    x = np.random.default_rng(0).random((3, 784))
    figures.images(x, (28, 28), ["a", "b", "c"])
    assert all(u.startswith("data:image/png;base64,") for u in calls[0])
    assert all(np.array_equal(_png(u), t) for u, t in zip(calls[0], image_tiles(x, (28, 28), scale=2)))


def test_reconstruction_tiles_of_small_images_share_one_width(monkeypatch):
    """Before, 8x8 digits at scale 2 were 16 px wide, narrower than their captions, and in the browser each tile
    took its caption's width, out of line. (AppTest does not expose an image's display width, so the row helper's
    call to st.image is checked.)"""
    import numpy as np
    from pages.ui import figures
    calls = []
    monkeypatch.setattr(figures.st, "image", lambda urls, **kw: calls.append(([_png(u) for u in urls], kw)))
    figures.images(np.random.rand(5, 64), (8, 8), [f"#{i} · 9" for i in range(5)])
    figures.images(np.random.rand(5, 784), (28, 28), [f"#{i} · 9" for i in range(5)])
    (small, kw_small), (mnist, kw_mnist) = calls
    assert {t.shape for t in small} == {(56, 56)} and kw_small["width"] == 56
    assert {t.shape for t in mnist} == {(56, 56)} and kw_mnist["width"] == 56  # MNIST keeps its scale of 2
    # presenter mode: a projector's tiles, wide enough for its larger captions ("#8496·0" wrapped under 56 px)
    from pages.ui import state
    monkeypatch.setattr(figures.st, "session_state", {state.PRESENT: True})
    figures.images(np.random.rand(5, 784), (28, 28), [f"#{i} · 9" for i in range(5)])
    figures.images(np.random.rand(5, 64), (8, 8), [f"#{i} · 9" for i in range(5)])
    (big, kw_big), (small_big, kw_small_big) = calls[2:]
    assert {t.shape for t in big} == {(84, 84)} and kw_big["width"] == 84
    assert {t.shape for t in small_big} == {(88, 88)} and kw_small_big["width"] == 88


def test_tiles_asked_for_a_width_get_it_whatever_the_images_size(monkeypatch):
    """The Generate page's levers showed an 8x8 digit's start, its decode and the larger decode all at 56 px (their
    scales were MNIST's), and "decoded with the levers" broke inside its first word; 64-pixel images were twice
    the size of MNIST's everywhere."""
    import numpy as np
    from pages.ui import figures
    calls = []
    monkeypatch.setattr(figures.st, "image", lambda urls, **kw: calls.append(kw["width"]))
    for side in (8, 28, 64):
        figures.images(np.random.rand(1, side * side), (side, side), ["decoded with the levers"], width=168)
        figures.images(np.random.rand(2, side * side), (side, side), ["the start", "its decode"], width=84)
    assert calls == [168, 80, 168, 84, 192, 64]  # whole scales: 8 px x 21 and x 10; 64 px x 3 and x 1
    # by default a row's tiles are about MNIST's 56 px: an upload's 64-pixel images were 128 px, so Reconstructions'
    # 12 made two rows and Filters' 3 top samples a row of 2 and one of 1
    for side in (8, 28, 32, 48, 64):
        figures.images(np.random.rand(3, side * side), (side, side), ["#16·c1"] * 3)
    assert calls[6:] == [56, 56, 64, 96, 64]  # 48 px: once is under the 56 px a caption needs, so twice
    # the mosaics too (Compare's reconstructions, the Latent page's strips, Train's probe): 12-pixel images at 24 px
    assert [figures.scale_for((s, s), 56) for s in (8, 12, 28, 64)] == [7, 5, 2, 1]


def test_a_class_that_is_a_word_is_spaced_from_the_image_s_number_in_its_caption():
    """ "#54·pullover" broke inside the words under a 56-px tile ("#54·pull" / "over"); digits keep "#8496·0"."""
    from pages.ui import figures
    assert figures.tile_caption("#8496", "0") == "#8496·0"
    assert figures.tile_caption("#54", "pullover") == "#54 pullover"
    assert figures.tile_caption("train #3", "T-shirt/top") == "train #3 T-shirt/top"


def test_a_queued_job_shows_its_place_and_stop_cancels_it(monkeypatch, digits):
    from aecore import jobs
    monkeypatch.setattr(jobs, "SLOTS", jobs.JobSlots(1))
    other = TrainingJob("stacked", {"hidden": (8,)}, digits, TrainSettings(epochs=500), store=RunStore()).start()
    try:
        assert other.wait_for_progress(30)
        at = app("pages/train.py")
        at.sidebar.selectbox(key="ae.dataset").select("digits").run()
        at.slider(key="ae.train.settings.epochs").set_value(1).run()
        at.button(key="ae.train.start").click().run()
        rerun_until(at, lambda a: any("Waiting for a free slot" in i.value for i in a.info), timeout=30)
        assert any("next to start" in i.value for i in at.info) and not at.button(key="ae.train.stop").disabled
        assert [p.proto.text for p in at.get("progress")] == ["queued: next to start · 1 epoch"]  # not "step 0/0"
        at.button(key="ae.train.stop").click().run()
        job = next(iter(at.session_state["ae.jobs"].values()))
        assert job.join(30) and job.progress().status == "stopped" and job.record is None
        at.run()
        assert [w.value for w in at.warning] == [f"Cancelled before it started ({job.run_id}): nothing was trained or "
                                                 f"saved."]
    finally:
        other.stop()
        other.join(60)


WARM_UP_CHILD = """
import sys
from pages.ui import figures, state
seen = []
warm = figures.warm_up
figures.warm_up = lambda: (seen.append(hasattr(sys.modules.get("pandas"), "Series")), warm())
for thread in state._warm_up():
    thread.join()
print(seen, __import__("gc").get_freeze_count())
"""


def test_the_warm_up_meets_pandas_whole_and_freezes_what_it_loaded():
    """In a fresh server process, pandas is imported whole before the warm-up thread builds its figures (the page's
    own import of it, half done, made Plotly raise in that thread), and the objects alive after it are frozen out of
    the garbage collector's full scans."""
    import os
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "AECORE_WARM_PROJECTIONS": "0", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", WARM_UP_CHILD], cwd=root, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen, frozen = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert seen == "[True]"
    assert int(frozen) > 100_000  # the imported modules' objects: about 250,000 in a server


def _contrast_on_white(color: str) -> float:
    """WCAG 2 contrast ratio of ``color`` ("#rrggbb") against white."""
    channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_chart_colour_stands_out_on_a_projector_and_no_deploy_button_shows():
    import tomllib

    from pages.ui import figures

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    palette = config["theme"]["chartCategoricalColors"]
    assert len(palette) >= 8
    assert _contrast_on_white("#83c9ff") < 2  # Streamlit's own second colour: what this replaces
    assert [c for c in palette + figures._PALETTE if _contrast_on_white(c) < 3.0] == []
    assert config["client"]["toolbarMode"] == "viewer"


def test_the_panel_of_one_logged_value_is_named_by_it():
    """The VAE's curve put its β alone under "logged values"; a GAN's two accuracies keep that title."""
    from pages.ui import figures
    history = [{"step": i, "epoch": i / 2, "reconstruction": 90.0 - i, "kl": 20.0 + i, "beta": 1.0,
                "d_real_acc": 0.5, "d_fake_acc": 0.6} for i in range(3)]
    vae = figures.cost_figure([{k: h[k] for k in ("step", "epoch", "reconstruction", "kl", "beta")} for h in history],
                              [], stats={"beta": "KL weight β in force"})
    gan = figures.cost_figure([{k: h[k] for k in ("step", "epoch", "kl", "d_real_acc", "d_fake_acc")}
                               for h in history], [], stats={"d_real_acc": "D on real", "d_fake_acc": "D on fake"})
    assert [a["text"] for a in vae["layout"]["annotations"]] == ["reconstruction", "kl", "KL weight β in force"]
    assert [a["text"] for a in gan["layout"]["annotations"]][-1] == "logged values"
