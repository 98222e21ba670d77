"""Unsupervised pretraining with few labels: test accuracy against labels per class for a classifier trained from
scratch, logistic regression on the run's frozen codes, the run's encoder fine-tuned, and logistic regression on PCA
codes of the same size (seeds 000-002)."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from aecore.data import classifiable
from aecore.jobs import BackgroundTask
from aecore.papers import STAGES, figure_of, paper_for
from aecore.probe import METHODS, MIN_EPOCHS, few_label_experiment, labelled_subset, network_steps
from pages import ui
from pages.ui import runs, share, state

ui.page_setup()
st.title("Pretraining with few labels")
if not ui.presenting():  # on a projector the chart comes first; its legend says what each line is
    st.caption("Does what an autoencoder learned without labels help a classifier that has only a few? Each point is "
               "the mean test accuracy over several random labelled subsets; bars show one standard deviation. Pick "
               "a run trained with greedy layer-wise pretraining to compare that too.")
dataset = state.current_dataset(modality="image")
if not classifiable(dataset):  # pictures uploaded without a folder per class: every classifier scored 100 %
    st.info(f"**{state.dataset_title(dataset.name)}** has one class, so there is nothing to classify. Upload a "
            "zip with a folder per class on **Your images**, or pick another dataset in the sidebar.")
    st.stop()
run = runs.require_run(dataset, encodes=True)
if run.training:
    st.info("This run is still training; come back when it has finished.")
    st.stop()


@st.cache_resource
def _experiments() -> dict:
    """(run, dataset) -> (BackgroundTask, what it runs) of the latest experiment on it. Shared by every session, so
    a reload or a second tab finds the experiment still running or its result, instead of orphaning it."""
    return {}


experiments = _experiments()
key = (run.id, dataset.name)
task: BackgroundTask | None
task, about = experiments.get(key, (None, ""))
busy = task is not None and not task.done
c1, c2, c3 = st.columns([3, 1, 1])
counts = share.widget("labels", c1.multiselect, "Labels per class", [1, 5, 10, 50, 100, "all"],
                      value=[1, 5, 10, 50, 100, "all"], key="ae.pretrain.counts", disabled=busy)
seeds = share.widget("seeds", c2.slider, "Seeds", min_value=1, max_value=5, value=3, key="ae.pretrain.seeds",
                     disabled=busy)
steps = share.widget("steps", c3.select_slider, "Steps", [100, 200, 300, 500, 1000], value=300,
                     key="ae.pretrain.steps", disabled=busy,
                     help=f"Optimiser steps (batches of 64) for the networks trained on the labels, or "
                          f"{MIN_EPOCHS} passes over the labelled images where that takes more: all "
                          f"{len(dataset.y_train):,} labels take {network_steps(len(dataset.y_train), 0):,} steps.")
if st.button("Run the experiment", type="primary", disabled=busy or not counts, key="ae.pretrain.start"):
    per_class = [None if c == "all" else int(c) for c in counts]
    model = run.model
    task = BackgroundTask(lambda progress: few_label_experiment(model, dataset, per_class, seeds=seeds, steps=steps,
                                                                progress=progress), name=f"probe-{run.id}").start()
    most = max(len(labelled_subset(dataset.y_train, c, 0)) for c in per_class)
    longest = network_steps(most, steps)
    about = (f"{', '.join(map(str, counts))} labels per class, {seeds} seed{'s' * (seeds > 1)}, {steps} steps for "
             f"the networks" + (f" (up to {longest:,}: {MIN_EPOCHS} passes over {most:,} images)"
                                if longest > steps else ""))
    experiments[key] = task, about
    state.keep_newest_finished(experiments, lambda entry: entry[0].done)
    st.rerun()
if not counts:
    st.info("Choose at least one number of labels per class.")


def figure(rows: list[dict]) -> go.Figure:
    frame = pd.DataFrame(rows)
    frame["x"] = [len(dataset.y_train) / len(dataset.class_names) if v == "all" else v
                  for v in frame["labels_per_class"]]
    fig = go.Figure()
    for method in METHODS:
        part = frame[frame["method"] == method].groupby("x")["accuracy"].agg(["mean", "std"]).reset_index()
        fig.add_scatter(x=part["x"], y=part["mean"], error_y=dict(array=part["std"].fillna(0.0)),
                        mode="lines+markers", name=method)
    every = (frame["labels_per_class"] == "all").any()
    ticks = sorted(frame["x"].unique())  # the measured counts, not plotly's log ticks ("1 2 5 10 2 5 100")
    # "(all)" on a line of its own and the labels kept level: beside a close count (125 against 100 on a small
    # upload) Plotly tilted every label to fit "125 (all)"
    fig.update_xaxes(tickvals=ticks, tickangle=0,
                     ticktext=[f"{t:,.0f}" + ("<br>(all)" if every and t == ticks[-1] else "") for t in ticks])
    fig.update_layout(xaxis_type="log", xaxis_title="labels per class", yaxis=dict(title="test accuracy",
                      tickformat=".0%"), height=420, margin=dict(l=10, r=10, t=10, b=10))  # as the table: percent
    return fig


def results() -> None:
    st.caption(f"Latest experiment on **{runs.model_of(run.id)}** · {run.id}: {about}.")
    if not task.done:
        st.progress(task.fraction, text=f"training classifiers… {task.fraction:.0%} "
                                        f"{runs.fmt_left(task.seconds_left())}".strip())
        return
    if task.error:
        st.error(f"The experiment failed: {task.error}")
        return
    rows = task.result
    st.plotly_chart(figure(rows), key=f"ae.pretrain.chart.{run.id}")
    table = pd.DataFrame(rows).groupby(["labels_per_class", "method"], sort=False)["accuracy"].agg(
        ["mean", "std"]).unstack("method")["mean"]
    table.index = table.index.map(str).rename("labels per class")  # counts beside "all": one type for Arrow
    st.dataframe(100 * table, column_config={m: st.column_config.NumberColumn(m, format="%.1f %%")
                                             for m in table.columns})
    if busy:
        st.rerun()


if task is not None:
    st.fragment(results, run_every=1.0 if busy else None)()


# --- the paper's own figure, for a run of a paper's network (issue 18) ------------------------------------------------
recipe = paper_for(run.record.model, config=run.record.config) if run.record is not None else None
if recipe is not None and recipe.stage != "reconstruction":
    st.subheader("Against the paper")
    paper_key = (run.id, dataset.name, "paper")
    paper_task, _ = experiments.get(paper_key, (None, ""))
    paper_busy = paper_task is not None and not paper_task.done
    how = ("logistic regression on the frozen features, its L2 weight picked on a validation split"
           if recipe.stage == "logistic" else "the encoder and a softmax layer fine-tuned with SGD, stopped early on a "
                                              "validation split")
    st.markdown(f"{recipe.cite}: **{recipe.figure_text()}** {recipe.metric}. The same stage on this run: {how}, on "
                f"all {len(dataset.y_train):,} labels.", help=ui.plain(f"{recipe.source}. {recipe.choices}"))
    if st.button("Run the paper's classifier stage", disabled=paper_busy, key="ae.pretrain.paper"):
        model = run.model
        paper_task = BackgroundTask(lambda progress: figure_of(recipe, model, dataset, progress=progress),
                                    name=f"paper-{run.id}").start()
        experiments[paper_key] = paper_task, recipe.key
        state.keep_newest_finished(experiments, lambda entry: entry[0].done)
        st.rerun()

    def paper_result() -> None:
        if not paper_task.done:
            st.progress(paper_task.fraction, text=f"{STAGES[recipe.stage]}… {paper_task.fraction:.0%}")
            return
        if paper_task.error:
            st.error(f"The classifier stage failed: {paper_task.error}")
            return
        out, same_data = paper_task.result, dataset.name == recipe.dataset
        a, b = st.columns(2)
        a.metric("this run", recipe.figure_text(out["figure"]), delta_color="inverse",
                 delta=f"{out['figure'] - recipe.paper:+.2f} points against the paper" if same_data else None)
        b.metric("paper", recipe.figure_text())
        if not same_data:
            st.caption(f"The paper measured on full MNIST; this run is on {dataset.name}, so the two do not compare.")
        if paper_busy:
            st.rerun()

    if paper_task is not None:
        st.fragment(paper_result, run_every=1.0 if paper_busy else None)()
