"""AppTest for the few-labels page."""
import json

from tests.test_app import open_page, rerun_until, train_run


def _open(run_id):
    return open_page("pages/pretraining.py", run_id)


def test_pretraining_page_runs_the_experiment_and_plots_it():
    run = train_run("stacked", epochs=3, hidden=(32,), code_size=16)
    at = _open(run)
    at.multiselect(key="ae.pretrain.counts").set_value([5, "all"]).run()
    at.slider(key="ae.pretrain.seeds").set_value(2).run()
    at.select_slider(key="ae.pretrain.steps").set_value(100).run()
    at.button(key="ae.pretrain.start").click().run()
    assert at.get("progress") and at.button(key="ae.pretrain.start").disabled  # one experiment at a time
    rerun_until(at, lambda a: a.get("plotly_chart"), timeout=120)
    assert not at.error
    chart = at.get("plotly_chart")
    assert len(chart) == 1
    table = at.dataframe[0].value
    assert list(table.columns) == ["scratch", "frozen codes + logistic", "fine-tuned encoder", "PCA codes + logistic"]
    assert len(table) == 2 and ((table >= 0) & (table <= 100)).all().all() and table.values.max() > 1  # percent
    assert list(table.index) == ["5", "all"] and table.index.name == "labels per class"
    xaxis = json.loads(chart[0].proto.spec)["layout"]["xaxis"]
    ticks = xaxis["ticktext"]  # the measured counts, nothing else
    assert ticks[0] == "5" and ticks[-1].endswith("<br>(all)") and len(ticks) == 2
    assert xaxis["tickangle"] == 0  # level: "125 (all)" beside "100" tilted every label
    # a reload (a new session) finds the result instead of losing it
    again = _open(run)
    assert again.get("plotly_chart") and again.dataframe[0].value.equals(table)
    assert any("5, all labels per class, 2 seeds, 100 steps" in c.value and run in c.value for c in again.caption)
    # without "all", the axis does not claim it
    at.multiselect(key="ae.pretrain.counts").set_value([5]).run()
    at.button(key="ae.pretrain.start").click().run()
    spec = lambda a: a.get("plotly_chart")[0].proto.spec if a.get("plotly_chart") else ""  # noqa: E731
    rerun_until(at, lambda a: "labels per class" in spec(a) and "(all)" not in spec(a), timeout=120)


def test_pretraining_page_needs_a_choice_of_labels():
    at = _open(train_run("stacked", epochs=1, hidden=(8,), code_size=4))
    at.multiselect(key="ae.pretrain.counts").set_value([]).run()
    assert at.button(key="ae.pretrain.start").disabled
    assert any("at least one" in i.value for i in at.info)


def test_a_paper_network_runs_the_papers_stage_and_shows_both_figures():
    run = train_run("k-sparse", epochs=1, code_size=1000, k=25)  # the paper preset's network, on the digits
    at = _open(run)
    assert any("1.35 %" in m.value and "Makhzani & Frey" in m.value for m in at.markdown)
    at.button(key="ae.pretrain.paper").click().run()
    rerun_until(at, lambda a: len(a.metric) == 2, timeout=120)
    shown, paper = at.metric[0], at.metric[1]
    assert paper.label == "paper" and paper.value == "1.35 %"
    # the run's own figure is the stage computed directly on the same run
    from aecore import RunStore, load_dataset
    from aecore.papers import PAPERS, figure_of
    model, _ = RunStore().load(run)
    direct = figure_of(PAPERS["k-sparse"], model, load_dataset("digits"))["figure"]
    assert shown.label == "this run" and shown.value == f"{direct:.2f} %"
    assert any("this run is on digits, so the two do not compare" in c.value for c in at.caption)


def test_a_run_of_no_papers_network_shows_no_paper():
    at = _open(train_run("k-sparse", epochs=1, code_size=64, k=5))
    assert not any("Against the paper" in s.value for s in at.subheader)
    assert not at.get("button") or all(b.key != "ae.pretrain.paper" for b in at.button)


def test_a_dataset_of_one_class_is_said_to_have_nothing_to_classify():
    """Pictures uploaded without a folder per class are one class, "unlabelled": every classifier on the page
    scored 100 % on them."""
    from aecore import images as user_images
    from tests.test_app import app
    from tests.test_recipes import _bars, _zip
    files = {f"{i}.png": data for i, data in enumerate(v for k, v in _bars().items() if k.endswith(".png"))}
    ds = user_images.dataset_from_upload(_zip(files), "loose.zip", "Loose pictures", side=16)
    assert ds.class_names == ("unlabelled",)
    user_images.save_dataset(ds, "Loose pictures")
    at = app("pages/pretraining.py")
    at.sidebar.selectbox(key="ae.dataset").select(ds.name).run()
    assert not at.exception and "has one class, so there is nothing to classify" in at.info[0].value
    assert not at.button  # no experiment to start

