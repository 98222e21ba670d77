"""Train page: pick a model, set its hyperparameters, train in the background and watch it learn."""
import numpy as np
import streamlit as st

from aecore import ConfigError, TrainSettings, TrainingJob, list_models, make_config, model_spec
from aecore.registry import DEFAULT_MODEL
from aecore.viz import mosaic
from pages import common

common.page_setup()
st.title("Train")
dataset = common.current_dataset()
jobs = common.jobs()
active_id = st.session_state.get("ae.train.active")
active = jobs.get(active_id)
running = active is not None and not active.progress().done

left, right = st.columns([1, 2], gap="large")
with left:
    names = list_models()
    st.session_state.setdefault("ae.train.model", DEFAULT_MODEL if DEFAULT_MODEL in names else names[0])
    name = st.selectbox("Model", names, key="ae.train.model", disabled=running,
                        format_func=lambda n: f"{n} — {model_spec(n).summary}")
    spec = model_spec(name)
    prefix = f"ae.train.cfg.{name}"
    if spec.presets:
        def _apply():
            common.apply_preset(prefix, spec.config_cls, spec.presets[st.session_state[f"{prefix}.preset"]])
        st.selectbox("Preset", list(spec.presets), key=f"{prefix}.preset", on_change=_apply, disabled=running)
    # Train and Stop sit above the settings (filled in below, once the settings are read), so that the live view
    # at the top of the right column is in sight when Train is pressed
    actions = st.container()
    with st.expander("Model hyperparameters", expanded=True):
        config, errors = common.config_controls(spec.config_cls, prefix, disabled=running)
    closed_form = spec.builder.closed_form
    greedy_ok = spec.builder.supports_greedy()
    with st.expander("Training", expanded=not closed_form):
        if closed_form:
            st.caption("This model is fitted in closed form: no epochs or learning rate.")
        settings_values, settings_errors = common.config_controls(TrainSettings, "ae.train.settings",
                                                                  disabled=running or closed_form)
    if not greedy_ok:
        settings_values.update(greedy=False)
    elif not settings_values["greedy"]:
        st.caption("Greedy layer-wise pretraining is available for this model (toggle above).")
    errors += settings_errors
    try:
        make_config(name, **config, input_shape=dataset.image_shape)
    except ConfigError as e:
        errors.append(str(e))
with actions:
    b1, b2 = st.columns(2)
    clicked = b1.button("Train", type="primary", disabled=running or bool(errors), key="ae.train.start",
                        width="stretch")
    stop = b2.button("Stop", disabled=not running, key="ae.train.stop", width="stretch")
    for err in errors:
        st.error(err)
    if clicked:
        try:
            job = TrainingJob(name, config, dataset, TrainSettings(**settings_values), store=common.run_store())
        except ConfigError as e:
            st.error(str(e))
        else:
            jobs[job.run_id] = job.start()
            job.wait_for_progress(timeout=0.4)  # so the first picture already has a curve and reconstructions
            st.session_state["ae.train.active"] = job.run_id
            st.session_state[common.K_PENDING_RUN] = job.run_id
            st.rerun()
    if stop:
        active.stop()


def live_view(job: TrainingJob) -> None:
    p = job.progress()
    if p.status == "pending" or (p.status == "running" and p.phase == "starting"):
        st.info("Starting…")
    rate = f" · {p.samples_per_s:,.0f} samples/s" if p.samples_per_s else ""
    st.progress(p.fraction, text=f"{p.phase or p.status} · epoch {p.epoch}/{p.epochs} · step "
                                 f"{p.step:,}/{p.total_steps:,}{rate} · elapsed {common.fmt_seconds(p.elapsed)}"
                                 f" · ETA {common.fmt_seconds(p.eta)}")
    if p.losses:
        cols = st.columns(len(p.losses))
        for col, (k, v) in zip(cols, p.losses.items()):
            col.metric(k, f"{v:.4f}")
    if p.history:
        st.plotly_chart(common.cost_figure(p.history, p.epoch_rows), key=f"ae.train.curve.{job.run_id}")
    if p.probe is not None:
        shape = job.dataset.image_shape
        grid = mosaic(np.concatenate([job.probe_inputs, p.probe]), shape, ncols=len(p.probe), scale=3)
        st.image(grid, caption="Probe batch from the test set: inputs (top), current reconstructions (bottom)")
    if p.done:
        msg = {"finished": st.success, "stopped": st.warning, "diverged": st.error, "failed": st.error}[p.status]
        text = f"Run **{job.run_id}** {p.status}"
        if job.record is not None and job.record.metrics:
            m = job.record.metrics
            text += (f" — test BCE {m['bce']:.4f}, MSE {m['mse']:.4f}, squared error per image "
                     f"{m['sse_per_image']:.2f}. Saved: it is selectable in the sidebar on every page.")
        msg(text + (f"\n\n{p.message}" if p.message else ""))
        seen = st.session_state.setdefault("ae.train.seen_done", set())
        if job.run_id not in seen:  # one full rerun, so the sidebar lists the saved run
            seen.add(job.run_id)
            st.rerun()


with right:
    if active is None:
        st.info("Pick a model and press **Train**. The cost curve and reconstructions of a probe batch appear here "
                "and update live; you can leave this page while it trains.")
        # an empty chart now, so the browser has its chart library loaded before the first curve arrives
        empty = common.cost_figure([], [])
        empty.update_xaxes(range=[0, settings_values["epochs"]]).update_yaxes(range=[0, 0.7])
        empty.add_annotation(text="the cost curve appears here", showarrow=False, x=settings_values["epochs"] / 2,
                             y=0.35, font=dict(color="#868e96"))
        st.plotly_chart(empty, key="ae.train.curve.empty")
    else:
        st.fragment(live_view, run_every=0.5 if running else None)(active)
