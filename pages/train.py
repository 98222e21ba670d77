"""Train page: pick a model, set its hyperparameters, train in the background and watch it learn."""
import dataclasses
import re

import numpy as np
import pandas as pd
import streamlit as st

from aecore import ConfigError, TrainSettings, TrainingJob, list_models, model_spec
from aecore.jobs import model_config
from aecore.papers import PAPERS, paper_for
from aecore.registry import DEFAULT_MODELS, steps
from aecore.store import short_value
from aecore.viz import mosaic
from pages import ui
from pages.ui import controls, figures, share, state


def form(name: str, dataset) -> tuple[dict, dict, list[str]]:
    """(model config, training settings, errors) as the form's controls hold them in session state."""
    spec = model_spec(name)
    config, errors = controls.state_values(spec.config_cls, f"ae.train.cfg.{name}")
    settings, settings_errors = controls.state_values(TrainSettings, "ae.train.settings")
    if not spec.builder.supports_greedy():
        settings.update(greedy=False)
    errors += settings_errors
    try:
        model_config(name, config, dataset)
    except ConfigError as e:
        errors.append(str(e))
    return config, settings, errors


def _start_training_from(name: str, preset: str | None, names: list[str]) -> None:
    """The training controls a model and preset start from: a paper's preset, the paper's recipe; otherwise the
    family's settings, with what a paper's recipe had set back at its default."""
    paper, plain = paper_for(name, preset=preset), TrainSettings()
    reset = {k: getattr(plain, k) for r in PAPERS.values() for k in r.settings}
    controls.apply_train_defaults("ae.train.settings", TrainSettings,
                                  {**reset, **model_spec(name).train_defaults, **(paper.settings if paper else {})},
                                  names)


def start_training(name: str, dataset) -> None:
    """Train's callback: start a job of what the form shows (its errors are shown by the script that follows)."""
    config, settings, errors = form(name, dataset)
    if errors:
        return
    st.session_state[state.TRAIN_STARTED] = (dataset.name, name, config, settings)
    st.session_state[state.TRAIN_RUN_BEFORE] = st.session_state.get(state.RUN)
    try:
        job = TrainingJob(name, config, dataset, TrainSettings(**settings), store=state.run_store())
    except ConfigError as e:
        st.session_state[state.TRAIN_ERROR] = str(e)
        return
    state.start_job(job)
    job.wait_for_progress(timeout=0.4)  # so the first picture already has a curve and reconstructions
    st.session_state[state.PENDING_RUN] = job.run_id


def steps_hint(name: str, dataset, settings: dict, locked: bool) -> None:
    """Where the epochs give a family that needs its steps (a GAN, a VAE) fewer than it needs on this dataset, say
    so and offer the epochs that give them: a GAN's 5 epochs of the embedded 4,000 digits are 315 steps, and it drew
    blobs (bench/README, session 33)."""
    spec, size = model_spec(name), len(getattr(dataset, "x_train", ()))
    epochs = spec.epochs_for(settings["epochs"], size, settings["batch_size"])
    if epochs == settings["epochs"]:
        return
    taken = steps(settings["epochs"], size, settings["batch_size"])
    word, verb = ("epoch", "is") if settings["epochs"] == 1 else ("epochs", "are")
    st.caption(f"{settings['epochs']} {word} of these {size:,} training images {verb} {taken:,} steps; a `{name}` "
               f"shows what it learns after about {spec.min_steps:,}.")
    st.button(f"Set {epochs} epochs", key="ae.train.enough_steps", disabled=locked,
              on_click=lambda: st.session_state.update({"ae.train.settings.epochs": epochs}))


ui.page_setup()
st.title("Train")
dataset = state.current_dataset()


def sized(label: str) -> str:
    """A model's or preset's label with its input size as this dataset's: "seed recipe (784-100-30)" read so over
    the 8x8 digits' 64 pixels, where the network built is 64-100-30."""
    d = getattr(dataset, "input_dim", 784) if dataset.modality == "image" else 784
    return re.sub(r"\b784(?=-)", str(d), label) if d != 784 else label


jobs = state.jobs()
active = jobs.get(st.session_state.get(state.TRAIN_ACTIVE))
running = active is not None and not active.progress().done
auto = bool(st.session_state.get(state.TRAIN_AUTO))  # "Retrain on change": the controls stay live while it trains
locked = running and not auto

left, right = st.columns([1, 2], gap="large")
with left:
    names = list_models(modality=dataset.modality)
    if not names:
        st.info(f"No model works on {dataset.modality} data yet; pick another dataset in the sidebar.")
        st.stop()
    if st.session_state.get(state.TRAIN_MODEL) not in names:
        first = DEFAULT_MODELS.get(dataset.modality)
        st.session_state[state.TRAIN_MODEL] = first if first in names else names[0]
    name = share.widget("model", st.selectbox, "Model", names, key=state.TRAIN_MODEL, disabled=locked,
                        format_func=lambda n: f"{n} — {sized(model_spec(n).summary)}")
    spec = model_spec(name)
    prefix = f"ae.train.cfg.{name}"
    if st.session_state.get(state.TRAIN_MODEL_APPLIED) != name:
        # a model picked by the user, for the user or by a link starts from its family's training settings (a VAE's
        # batch 128), or from its paper's recipe where the preset in force is a paper's (k-sparse's first); a
        # link's own settings are applied after this, as their controls are drawn, so they win
        if spec.presets and f"{prefix}.preset" not in st.session_state:  # the first time: its first preset's values
            controls.apply_preset(prefix, spec.config_cls, next(iter(spec.presets.values())))
        _start_training_from(name, st.session_state.get(f"{prefix}.preset", next(iter(spec.presets), None)), names)
        st.session_state[state.TRAIN_MODEL_APPLIED] = name
    recipe = None
    if spec.presets:
        def _apply():
            chosen = st.session_state[f"{prefix}.preset"]
            controls.apply_preset(prefix, spec.config_cls, spec.presets[chosen])
            _start_training_from(name, chosen, names)
        preset = share.widget("preset", st.selectbox, "Preset", list(spec.presets), key=f"{prefix}.preset",
                              on_change=_apply, disabled=locked, format_func=sized)
        applied = f"{prefix}.preset_applied"
        if st.session_state.get(applied, list(spec.presets)[0]) != preset:
            _apply()  # a link chose it: the controls follow as when the user picks it (the link's own values win)
        st.session_state[applied] = preset
        recipe = paper_for(name, preset=preset)
        if recipe is not None:
            st.caption(f"Paper: **{recipe.figure_text()}** {recipe.metric} ({recipe.cite}). This preset trains "
                       f"the paper's recipe ({recipe.settings['epochs']} epochs); `python -m aecore paper "
                       f"{recipe.key}` runs it whole.", help=ui.plain(f"{recipe.source}. {recipe.choices}"))
    # Train and Stop sit above the settings (filled in below, once the settings are read), so that the live view
    # at the top of the right column is in sight when Train is pressed
    actions = st.container()
    # a projector shows what it learns; with Retrain on change, the controls are what the presenter moves
    with st.expander("Model hyperparameters", expanded=not ui.presenting() or auto):
        controls.config_controls(spec.config_cls, prefix, disabled=locked)
    closed_form = spec.builder.closed_form
    with st.expander("Training", expanded=not closed_form and not ui.presenting()):
        if closed_form:
            st.caption("This model is fitted in closed form: no epochs or learning rate.")
        controls.config_controls(TrainSettings, "ae.train.settings", disabled=locked or closed_form,
                                 unavailable=spec.builder.settings_unused())
    config_values, settings_values, errors = form(name, dataset)
    if spec.builder.supports_greedy() and not settings_values["greedy"]:
        st.caption("Greedy layer-wise pretraining is available for this model: the *Greedy* toggle under "
                   "**Training**.")  # "toggle above" pointed at a section presenter mode folds
with actions:
    b1, b2 = st.columns(2)
    # the job starts in the click's callback, before this script runs: the same run draws the page with the job
    # training, where starting it here took a second full run (0.3-0.5 s more to the first picture)
    b1.button("Train", type="primary", disabled=running or bool(errors), key="ae.train.start", width="stretch",
              on_click=start_training, args=(name, dataset))
    stop = b2.button("Stop", disabled=not running, key="ae.train.stop", width="stretch")
    st.session_state.setdefault(share.KEPT, set()).add(state.TRAIN_AUTO)  # on when the user comes back; not in links
    st.toggle("Retrain on change", key=state.TRAIN_AUTO,
              help="Each change of a setting stops the run in progress (it is kept, as stopped) and trains the new "
                   "settings at once; the curve shows the last finished run's beside it. Made for small data: the "
                   "embedded digits train the seed recipe in seconds.")
    share.remember(state.TRAIN_AUTO)
    start_error = st.session_state.pop(state.TRAIN_ERROR, None)
    for err in errors + ([start_error] if start_error else []):
        st.error(err)
    if not closed_form:  # beside Train: under the settings it was below a 1400x1000 screen
        steps_hint(name, dataset, settings_values, locked)
    if stop:
        active.stop()
    elif auto and not errors and \
            st.session_state.get(state.TRAIN_STARTED) != (dataset.name, name, config_values, settings_values):
        if running:  # its stop saves it; waited for, so that the new run does not queue behind it
            active.stop()
            active.join(timeout=10)
        start_training(name, dataset)
        st.rerun()  # the sidebar and the controls as they are with the new job


def preview(job: TrainingJob, shown) -> None:
    """The model's preview of the probe batch, as its capabilities say: reconstructions under their inputs,
    samples, or sentences."""
    caps = model_spec(job.model_name).capabilities
    if caps.modality == "text":
        decode = job.dataset.decode
        rows = {"sentence": [decode(ids) for ids in job.probe_inputs.tokens.numpy()]}
        if caps.reconstructs:
            rows["decoded"] = [decode(ids) for ids in shown]
        else:
            rows = {"sample": [decode(ids) for ids in shown]}
        # a static table wraps the sentences: the interactive one cut "decoded" off at the column's edge (1280 px)
        st.table(pd.DataFrame(rows).map(ui.plain), hide_index=True, border="horizontal")
        return
    shape = job.dataset.image_shape
    if caps.reconstructs:
        grid = mosaic(np.concatenate([job.probe_inputs, shown]), shape, ncols=len(shown),
                      scale=figures.scale_for(shape, 84))
        st.image(figures.png_url(grid),
                 caption="Probe batch from the test set: inputs (top), current reconstructions (bottom)")
    else:
        st.image(figures.png_url(mosaic(shown, shape, ncols=min(16, len(shown)), scale=figures.scale_for(shape, 84))),
                 caption="Samples from a fixed noise batch")
        model = job.view_model()  # what has gone wrong so far, as the family judges it (a GAN: collapse, D at 0)
        problems = model.diagnose(job.progress().history, shown, job.dataset.x_test[:256]) if model else []
        for problem in problems:
            st.warning(f"{problem[0].upper()}{problem[1:]}. The **Generate** page's *Diagnostics* can roll the "
                       "run back to an earlier epoch once it is saved.")


def paper_line(record) -> None:
    """The paper's figure beside the run's own, for a run of a paper's network."""
    paper = paper_for(record.model, config=record.config)
    if paper is None:
        return
    other = "" if record.dataset == paper.dataset else \
        f" The paper measured on full MNIST; this run is on {record.dataset}, so the two do not compare."
    if paper.stage == "reconstruction" and "sse_per_image" in record.metrics:
        st.markdown(f"This run: **{paper.figure_text(record.metrics['sse_per_image'])}** {paper.metric} · paper: "
                    f"**{paper.figure_text()}** ({paper.cite}).{other}")
    else:
        st.markdown(f"Paper: **{paper.figure_text()}** {paper.metric}. The run's own figure: the **Few labels** "
                    f"page, or `python -m aecore paper {paper.key} --run {record.id}`.{other}")


def previous_of(job: TrainingJob) -> TrainingJob | None:
    """This session's last finished run of the same model on the same data before ``job``: what a change of the
    controls is judged against (not a run stopped part way, as "Retrain on change" stops them)."""
    earlier = list(state.jobs().values())
    earlier = earlier[:earlier.index(job)] if job in earlier else []
    return next((j for j in reversed(earlier) if j.model_name == job.model_name and
                 j.dataset.name == job.dataset.name and j.record is not None and j.record.status == "finished"),
                None)


def changes(old: TrainingJob, new: TrainingJob) -> list[str]:
    """The settings of ``new`` that differ from ``old``'s, as "name old → new"."""
    a = {**vars(old.config), **dataclasses.asdict(old.settings)}
    b = {**vars(new.config), **dataclasses.asdict(new.settings)}
    return [f"{k} {short_value(a.get(k))} → {short_value(v)}" for k, v in b.items() if a.get(k) != v]


def live_view(job: TrainingJob) -> None:
    p = job.progress()
    previous = previous_of(job)
    if p.phase.startswith("queued"):  # the server trains a few jobs at a time; Stop cancels a waiting one
        st.info(f"Waiting for a free slot ({p.phase}); it starts by itself. **Stop** cancels it.")
    elif p.status == "pending" or (p.status == "running" and p.phase == "starting"):
        st.info("Starting…")
    # the sidebar's dataset changed since it started: the form is the new dataset's, this run is still the old one's
    other = job.dataset.name if job.dataset.name != st.session_state.get(state.DATASET) else ""
    rate = f" · {p.samples_per_s:,.0f} samples/s" if p.samples_per_s else ""
    when = f"took {figures.fmt_seconds(p.elapsed)}" if p.done else \
        f"elapsed {figures.fmt_seconds(p.elapsed)} · ETA {figures.fmt_seconds(p.eta)}"
    if p.phase.startswith("queued") or p.phase == "cancelled":  # no step, no clock: it has not started
        st.progress(0.0, text=f"{other + ' · ' if other else ''}{p.phase} · {p.epochs} "
                              f"{'epoch' if p.epochs == 1 else 'epochs'}")
    else:
        steps = f"epoch {p.epoch}/{p.epochs} · step {p.step:,}/{p.total_steps:,}" if p.epochs else \
            "fitted in closed form"  # not "epoch 0/0 · step 1/1"
        st.progress(p.fraction, text=f"{other + ' · ' if other else ''}"
                                     f"{p.status if p.done else p.phase or p.status} · {steps}{rate} · {when}")
    if p.probe is not None:  # what it learns first: in sight at 1280x720 while it trains
        preview(job, p.probe)
    if p.losses:
        cols = st.columns(len(p.losses))
        for col, (k, v) in zip(cols, p.losses.items()):
            col.metric(p.stat_labels.get(k, k), f"{v:.4g}" if k in p.stat_labels else f"{v:.4f}",
                       help=p.units.get(k))
    if p.history:
        reference = None
        if previous is not None:
            reference = (f"previous run, test ({previous.run_id[-4:]})", previous.progress().epoch_rows)
        st.plotly_chart(figures.cost_figure(p.history, p.epoch_rows, p.units, stats=p.stat_labels,
                                            reference=reference),
                        key=f"ae.train.curve.{job.run_id}")
        if previous is not None:
            diff = changes(previous, job)
            st.caption(f"Grey: the test curve of this session's previous {job.model_name} run, {previous.run_id}"
                       + (", trained with the same settings." if not diff else ". Changed since: "
                          + "; ".join(diff[:6]) + (f" and {len(diff) - 6} more." if len(diff) > 6 else ".")))
    if p.done:
        msg = {"finished": st.success, "stopped": st.warning, "diverged": st.error, "failed": st.error}[p.status]
        if p.phase == "cancelled":  # it never ran: there is no run to speak of
            text = f"Cancelled before it started ({job.run_id}): nothing was trained or saved."
        else:
            text = f"Run **{job.run_id}**{f' on **{other}**' if other else ''} {p.status}"
            if job.record is not None:
                text += ". Saved: it is selectable in the sidebar on every page."
            text += f"\n\n{p.message}" if p.message else ""
        msg(text)
        if job.record is not None:
            figures.metrics_row(job.record.metrics, job.record.metric_labels,
                                previous=previous.record.metrics if previous is not None else None)
            if previous is not None:
                st.caption(f"Under each figure, its change from the previous run ({previous.run_id}).")
            paper_line(job.record)
        seen = st.session_state[state.TRAIN_SEEN_DONE]
        if job.run_id not in seen:  # one full rerun, so the sidebar lists the saved run
            seen.add(job.run_id)
            if job.record is not None and not other and \
                    st.session_state.get(state.RUN) == st.session_state.get(state.TRAIN_RUN_BEFORE):
                # and selects it: a rerun of the live view can carry back the picker's value from before Train
                # (1 of 8 sessions training at once on a loaded VM ended on its old run)
                st.session_state[state.PENDING_RUN] = job.run_id
            st.rerun()


with right:
    if active is None:
        caps = spec.capabilities
        shows = ("decodings of a probe batch of sentences" if caps.modality == "text" and caps.reconstructs else
                 "sentences it generates" if caps.modality == "text" else
                 "reconstructions of a probe batch" if caps.reconstructs else "samples from a fixed noise batch")
        st.info("Pick a model and press **Train**. " + (
            f"It is fitted in closed form, at once: its {shows} appear here." if closed_form else
            f"The cost curve and {shows} appear here and update live; you can leave this page while it trains."))
        # what the first live view draws, drawn now, so the browser has fetched its code (a progress bar, an image)
        # before Train is pressed: the image's code was fetched only once the first picture had arrived
        st.progress(0.0, text="not started · fitted in closed form, no epochs" if closed_form else
                    f"not started · {settings_values['epochs']} epochs")
        if dataset.modality == "image" and caps.reconstructs:
            probe = np.asarray(dataset.probe(10))
            st.image(figures.png_url(mosaic(probe, dataset.image_shape, ncols=max(1, len(probe)),
                                            scale=figures.scale_for(dataset.image_shape, 84))),
                     caption="The probe batch: its reconstructions appear under these test images " +
                             ("once it is fitted" if closed_form else "as it trains"))
        if not closed_form:  # a fit in closed form draws no cost curve
            # an empty chart now, so the browser has its chart library loaded before the first curve arrives
            empty = figures.cost_figure([], [])
            empty["layout"]["xaxis"]["range"] = [0, settings_values["epochs"]]
            empty["layout"]["yaxis"]["range"] = [0, 0.7]
            empty["layout"]["annotations"] = [dict(text="the cost curve appears here", showarrow=False, font=dict(
                color="#868e96"), x=settings_values["epochs"] / 2, y=0.35)]
            st.plotly_chart(empty, key="ae.train.curve.empty")
    else:
        st.fragment(live_view, run_every=0.5 if running else None)(active)
