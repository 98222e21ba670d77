"""Which runs a page can show: the sidebar's run picker, and the one helper that filters its runs by what a page
needs (capabilities from the registry, the dataset's modality and image size) and says which were left out and why.
A run still training is shown through a copy of the weights its job publishes, never the live model."""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import streamlit as st

from aecore import ConfigError, DatasetError, RunRecord, RunStore, RunStoreError, TrainingJob, model_spec
from aecore import images as user_images
from aecore.recipe import Recipe

from . import share, state


@st.cache_resource(max_entries=32, show_spinner="Loading run…")
def _saved_run(root: str, run_id: str, mtime: float):
    return RunStore(root).load(run_id)


@dataclass
class RunHandle:
    """A run the pages can show: saved (``record``) or still training in this session (``job``). ``model`` is in
    eval mode and is never the model a job trains."""

    id: str
    label: str
    model: object
    record: RunRecord | None
    job: TrainingJob | None = None

    @property
    def training(self) -> bool:
        return self.job is not None and not self.job.progress().done


def _running(dataset: str) -> dict[str, TrainingJob]:
    return {rid: job for rid, job in state.jobs().items() if job.dataset.name == dataset and not job.progress().done}


PIN_SECONDS = 5.0  # how long a run a page selected for the user outweighs what the browser sends back


def runs_word(n: int) -> str:
    return "run" if n == 1 else "runs"


def fmt_left(s: float | None) -> str:
    """An estimate of the time left as a person would say it: "about 40 s left", "about 6 min left"; "" for none."""
    if s is None or not math.isfinite(s):
        return ""
    if s < 55:
        return f"about {max(5, round(s / 5) * 5)} s left"
    return f"about {max(1, round(s / 60))} min left" if s < 5400 else f"about {s / 3600:.1f} h left"


def unique_labels(labels: dict[str, str]) -> dict[str, str]:
    """Labels that name one run each: a label two runs share gets the run's id. Streamlit's pickers send back the
    label, not the run: two runs of one recipe, seed and minute had the same label, and picking (or keeping) either
    selected the last of them (eight sessions training at once: 5 of 8 sidebars showed another session's run)."""
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    return {rid: f"{label} · {rid}" if seen[label] > 1 else label for rid, label in labels.items()}


def run_choices(dataset: str) -> dict[str, str]:
    """Run id -> label of this session's runs training on ``dataset`` and every saved run on it, newest first."""
    choices = {rid: f"● {job.model_name} · {dataset} (training…)" for rid, job in _running(dataset).items()}
    for entry in state.run_store().list():
        if entry.record is not None and entry.record.dataset == dataset and entry.id not in choices:
            choices[entry.id] = entry.record.label
    return unique_labels(choices)


def _model_and_config(run_id: str) -> tuple[str, dict] | None:
    job = state.jobs().get(run_id)
    if job is not None:
        return job.model_name, vars(job.config)
    try:
        record = state.run_store().summary(run_id)
    except RunStoreError:
        return None
    return record.model, record.config


def default_run(choices: dict[str, str]) -> str:
    """The run the sidebar selects when the user has not picked one: the newest that reconstructs its input, which
    most pages can show (after ``prepare-talk`` the newest was a GAN, which Reconstructions, Filters, Latent space,
    Denoising, Contraction and Few labels all leave out), else the newest."""
    for rid in choices:
        try:
            if model_spec(model_of(rid)).capabilities.reconstructs:
                return rid
        except KeyError:  # a model this version does not know
            continue
    return next(iter(choices))


def model_of(run_id: str) -> str:
    """The model name of run ``run_id`` ("" if it cannot be read)."""
    return (_model_and_config(run_id) or ("",))[0]


def why_left_out(run_id: str, dataset, **needs: bool) -> str:
    """Why run ``run_id`` cannot be shown on a page that needs ``needs`` with ``dataset``; "" when it can."""
    found = _model_and_config(run_id)
    if found is None:
        return "cannot be read"
    name, config = found
    try:
        lacks = model_spec(name).capabilities.lacks(dataset.modality, **needs)
    except KeyError:
        return f"its model {name!r} is not known to this version"
    shape = config.get("input_shape")
    if not lacks and shape is not None and tuple(shape) != tuple(dataset.model_inputs().get("input_shape", ())):
        lacks = [f"takes {'x'.join(map(str, shape))} images, not {dataset.name}'s"]
    return f"{name} " + " and ".join(lacks) if lacks else ""


def usable_runs(dataset, prefer: tuple[str, ...] = (), **needs: bool) -> dict[str, str]:
    """Run id -> label of the sidebar's runs on ``dataset`` that serve ``needs``, runs of the ``prefer``red models
    first; a caption on the page lists the runs left out and why."""
    choices = run_choices(dataset.name)
    left_out = {rid: why for rid in choices if (why := why_left_out(rid, dataset, **needs))}
    if left_out and not st.session_state.get(state.PRESENT):  # not for an audience
        st.caption("Left out here: " + "; ".join(f"{rid} ({why})" for rid, why in list(left_out.items())[:4])
                   + (f" and {len(left_out) - 4} more" if len(left_out) > 4 else ""))
    models = {rid: model_of(rid) for rid in choices}
    rank = lambda rid: next((i for i, m in enumerate(prefer) if models[rid] == m), len(prefer))  # noqa: E731
    return {rid: choices[rid] for rid in sorted(choices, key=rank) if rid not in left_out}


def one_per_model(choices: dict[str, str], n: int) -> list[str]:
    """The first run of each model among ``choices`` (in their order: the preferred models', newest first), up to
    ``n``: what a page that compares models shows by default. The sidebar's run is one of them, in its model's place
    (or the last one): opened on an older contractive run, Contraction showed the newest instead."""
    slot, picked = {}, []
    for rid in choices:
        if (model := model_of(rid)) not in slot:
            slot[model] = len(picked)
            picked.append(rid)
    current = st.session_state.get(state.RUN)
    if current in choices and n > 0:
        picked[min(slot[model_of(current)], n - 1)] = current
    return picked[:n]


def picker(choices: dict[str, str], key: str, value: list[str] | None = None, **kw) -> list[str]:
    """The runs a page shows side by side, published as ``runs``; in presenter mode folded, named by its runs: at
    1280x720 three runs' long labels took two lines and pushed the figures below the screen."""
    def folded(label, options, key, **kw):  # named as a link has just set them
        with st.expander("Runs: " + ", ".join(model_of(r) for r in st.session_state.get(key, []))):
            return st.multiselect(label, options, key=key, **kw)

    fn = folded if st.session_state.get(state.PRESENT) else st.multiselect
    return share.widget("runs", fn, "Runs", list(choices), key=key, value=value, format_func=choices.get,
                        parse=share.parser_for(st.multiselect, list(choices), kw), **kw)


def load_run(run_id: str) -> RunHandle | None:
    """A run by id: a copy of the published weights of this session's job while it trains, else the saved run; a
    run that cannot be read is reported and gives ``None``."""
    job = state.jobs().get(run_id)
    if job is not None and not job.progress().done:
        model = job.view_model()
        if model is None:
            st.info(f"Run {run_id} is starting; its first weights come in a moment.")
            return None
        return RunHandle(run_id, f"{run_id} (training…)", model, None, job)
    store = state.run_store()
    try:
        mtime = (store.root / run_id / "model.safetensors").stat().st_mtime
        model, record = _saved_run(str(store.root), run_id, mtime)
    except (RunStoreError, OSError) as e:
        st.error(f"Run {run_id} cannot be loaded: {e}")
        return None
    return RunHandle(run_id, record.label, model, record, job)


def vocab_of(handle: RunHandle) -> tuple[str, ...]:
    """The vocabulary a text run was trained with: its job's dataset's while it trains, else the one saved with it."""
    if handle.job is not None:
        return handle.job.dataset.vocab
    return tuple(_vocab(str(state.run_store().root), handle.id))


@st.cache_data(max_entries=32, show_spinner=False)
def _vocab(root: str, run_id: str) -> list[str]:
    return RunStore(root).artifact(run_id, "vocab")


TRAIN_PAGE, COMPARE_PAGE = "pages/train.py", "pages/compare.py"


def offer(*links: tuple[str, str, dict | None]) -> None:
    """One click to what fills an empty page: a row of links, each (label, page script, the values its controls
    open with, as a share link's)."""
    with st.container(horizontal=True):
        for label, page, values in links:
            st.page_link(page, label=label, icon=":material/arrow_forward:", query_params=values)


def _use_run(run_id: str) -> None:
    st.session_state[state.PENDING_RUN] = run_id


def run_buttons(fits: list[str], choices: dict[str, str]) -> None:
    """One click to a run that fits (the first five of ``fits``), selected as the sidebar would select it and named
    as the sidebar names it (``choices``: run id -> label)."""
    with st.container(horizontal=True):
        for rid in fits[:5]:
            st.button(choices[rid], icon=":material/swap_horiz:", key=f"ae.use_run.{rid}", on_click=_use_run,
                      args=(rid,), help=f"Run {rid}")


def require_run(dataset, *, suggest: tuple[str, dict] = ("Train a model", {}), **needs: bool) -> RunHandle:
    """The run picked in the sidebar, if it serves ``needs`` (``reconstructs=True``, ...) on ``dataset``; else say
    why, name the runs that would do (or offer ``suggest``: a link's label and the Train page's values), and stop
    the page."""
    train = (suggest[0], TRAIN_PAGE, suggest[1] or None)
    run_id = st.session_state.get(state.RUN)
    if not run_id:
        st.info(gone_note() + "No run selected. Train one on the **Train** page, or pick a saved run in the sidebar.")
        offer(train)
        st.stop()
    why = why_left_out(run_id, dataset, **needs)
    if why:
        choices = run_choices(dataset.name)
        fits = [rid for rid in choices if not why_left_out(rid, dataset, **needs)]
        hint = ", or one of these that would show here:" if fits else ", or train one on the **Train** page."
        st.info(f"Run **{run_id}** is left out on this page: {why}. Pick another run in the sidebar{hint}")
        if fits:
            run_buttons(fits, choices)
        else:
            offer(train)
        st.stop()
    handle = load_run(run_id)
    if handle is None:
        st.stop()
    return handle


def recipe_of(run_id: str):
    """The recipe of a run (this session's job, or a saved run), or None if it cannot be read."""
    job = state.jobs().get(run_id)
    try:
        if job is not None:
            return Recipe.make(job.model_name, job.dataset.name, vars(job.config), dataclasses.asdict(job.settings))
        return Recipe.of_record(state.run_store().summary(run_id))
    except (RunStoreError, ConfigError, KeyError):
        return None


def _train_from_link() -> None:
    """The offer's button: train the opened link's recipe here, on its dataset, and select the new run."""
    run_id, recipe = st.session_state.pop(state.LINK_MISSING)
    try:
        dataset = state.load_named_dataset(recipe.dataset)
        job = TrainingJob(recipe.model, recipe.config, dataset, recipe.train_settings(), store=state.run_store())
    except (ConfigError, DatasetError, KeyError) as e:
        st.session_state[state.LINK_MISSING] = (run_id, None, f"It cannot be trained here: {e}")
        return
    state.start_job(job)
    st.session_state[state.DATASET] = recipe.dataset
    st.session_state[state.PENDING_RUN] = job.run_id


def _link_offer() -> None:
    """An opened link names a run this server does not have: offer to train it from the link's recipe."""
    run_id, recipe, *why = st.session_state[state.LINK_MISSING]
    if recipe is None and why and why[0].startswith(SAVED_HERE):
        st.warning(f"The link's run **{run_id}** cannot be shown. {why[0]}")
    elif recipe is None:
        st.warning(f"The link's run **{run_id}** is not on this server, and the link has no usable recipe to train "
                   f"it from. {why[0] if why else ''}")
    else:
        settings = ", ".join(f"{k}={v}" for k, v in {**recipe.config, **recipe.settings}.items()) or "defaults"
        st.warning(f"The link's run **{run_id}** is not on this server. Train it here from the link's recipe "
                   f"({recipe.model} on {recipe.dataset}: {settings})?")
        st.button("Train it", key="ae.link.train", on_click=_train_from_link, type="primary")
    if st.button("Dismiss", key="ae.link.dismiss"):
        st.session_state.pop(state.LINK_MISSING, None)
        st.rerun()


def _take_linked_run(dataset: str, asked: bool) -> dict[str, str]:
    """Select the run an opened link names: a saved one, one still training (after a reload, or from another
    tab: its job becomes this session's too), else one of the same recipe, else offer to train it; unless a page
    has just ``asked`` for a run (a job it started), which wins. Returns the sidebar's run choices."""
    raw_run, raw_recipe = share.take("run"), share.take("recipe")
    if asked:  # the user's own action, never undone by the address bar (eight sessions training at once: 2 of 8
        raw_run = None  # pages showed another session's run, the link's, instead of their own)
    if raw_run is not None and raw_run not in state.jobs():
        state.attach_job(raw_run)
    choices = run_choices(dataset)
    if raw_run is None:
        return choices
    if raw_run in choices:
        st.session_state[state.RUN] = raw_run
        return choices
    recipe = None
    if raw_recipe:
        try:
            recipe = Recipe.from_json(raw_recipe)
        except ConfigError as e:
            share.notice("recipe", raw_recipe, str(e))
    same = [rid for rid in choices if recipe is not None and rid not in state.jobs()
            and recipe.matches(state.run_store().summary(rid))] if recipe else []
    if same:  # a run of the same recipe is here: show that one
        st.session_state[state.RUN] = same[0]
        st.toast(f"The link's run {raw_run} is not on this server; showing {same[0]}, trained from the same recipe.")
        return choices
    st.session_state[state.LINK_MISSING] = (raw_run[:128], recipe)
    return choices


SAVED_HERE = "It is saved here"  # how a linked run whose dataset is gone is told from one this server lacks


def _linked_run_dataset(names: list[str]) -> None:
    """An opened link whose run is saved here opens on the run's dataset, whatever the link's ``dataset`` says or
    if it says nothing (a link typed by hand): such a link said the run "is not on this server". A run whose
    dataset this server no longer has (an upload since deleted) is said to be that."""
    pending = st.session_state.get(share.PENDING) or {}
    run = pending.get("run")
    if not run or len(run) > share.MAX_VALUE_CHARS:
        return
    try:
        dataset = state.run_store().summary(run).dataset
    except (RunStoreError, ConfigError, KeyError, ValueError):
        return  # not saved here (a job, or a recipe to train): the run picker's own path
    if dataset in names:
        pending["dataset"] = dataset
    else:
        pending.pop("run")
        st.session_state[state.LINK_MISSING] = (
            run[:128], None, f"{SAVED_HERE}, but it was trained on {dataset}, a dataset this server no longer has "
                             "(an upload deleted on **Your images**?). The **Model library** still lists it.")


def _deleted_run(choices: dict[str, str]) -> str | None:
    """The selected run, if it has left the store since it was picked (deleted in the Model library, from another
    tab or the command line): the sidebar switched to another run, or to none, without a word."""
    current = st.session_state.get(state.RUN)
    if not current or current in choices or current in state.jobs() or \
            st.session_state.get(state.RUN_LABELS, {}).get(current) in choices:
        return None
    try:
        state.run_store().summary(current)
    except (RunStoreError, ConfigError, ValueError):  # no folder, or no longer a readable run
        return current
    return None  # saved, on another dataset: the user changed the dataset


def gone_note() -> str:
    """What a page says of the run it was showing, if that run was deleted and nothing replaced it ("" if not)."""
    gone, instead, dataset = st.session_state.get(state.RUN_GONE) or (None, None, None)
    if gone and instead == st.session_state.get(state.RUN) and dataset == st.session_state.get(state.DATASET):
        return f"Run **{gone}** was deleted from the run store (in the Model library, another tab or the command " \
               f"line). "
    return ""


def _unknown_upload(names: list[str]) -> None:
    """An opened link names an upload this server lacks: say what that is (it read "not one of the choices here")."""
    pending = st.session_state.get(share.PENDING) or {}
    linked = pending.get("dataset")
    if linked and linked.startswith(user_images.PREFIX) and linked not in names and \
            len(linked) <= share.MAX_VALUE_CHARS:
        pending.pop("dataset")
        st.toast(f"The link's dataset `{linked[:60]}` is an upload this server does not have: one used only in the "
                 "session that made it, or saved on another server. The default is used here. Saved on **Your "
                 "images**, an upload's links open in every session.", icon=":material/link_off:")


def sidebar() -> None:
    """The dataset and run pickers, shared by every page; both go into the share link, the run with its recipe."""
    asked = st.session_state.pop(state.PENDING_RUN, None)
    if asked:  # a page asked to select a run (a new job, say)
        st.session_state[state.RUN] = asked
        if state.PENDING_DATASET in st.session_state:  # a run uploaded on the Model library, on another dataset
            st.session_state[state.DATASET] = st.session_state.pop(state.PENDING_DATASET)
    with st.sidebar:
        titles = {name: state.dataset_title(name) for name in state.dataset_names()}
        if not asked:
            _linked_run_dataset(list(titles))
        _unknown_upload(list(titles))
        share.widget("dataset", st.selectbox, "Dataset", list(titles), key=state.DATASET, format_func=titles.get,
                     help="Embedded datasets work offline; the others download on first use (or are read from "
                          "$AECORE_DATA_DIR). Your own images: the **Your images** page.")
        choices = _take_linked_run(st.session_state[state.DATASET], bool(asked))
        if st.session_state.get(state.LINK_MISSING):
            _link_offer()
        gone = _deleted_run(choices)
        if not choices:
            st.session_state.pop(state.RUN, None)
            if gone:
                st.session_state[state.RUN_GONE] = (gone, None, st.session_state[state.DATASET])
            st.caption("No runs on this dataset yet: train one on the **Train** page.")
            return
        shown = st.session_state.setdefault(state.RUN_LABELS, {})  # every label this session was shown -> run
        pinned, until = st.session_state.get(state.RUN_PIN, ("", 0.0))
        if asked:
            st.session_state[state.RUN_PIN] = (asked, time.monotonic() + PIN_SECONDS)
        elif time.monotonic() < until and pinned in choices:
            # the browser can send back the picker's previous value for a moment after a page selected a run
            # for the user (a rerun it asked for before it drew the new selection): the page's choice stands
            st.session_state[state.RUN] = pinned
        current = st.session_state.get(state.RUN)
        if current not in choices and shown.get(current) in choices:
            # the browser sent back a label the run had a moment ago ("● ... (training…)" before it was saved):
            # it is still that run, not a reason to jump to the newest (2 of 8 sessions training at once did)
            st.session_state[state.RUN] = shown[current]
        shown.update({label: rid for rid, label in choices.items()})
        if st.session_state.get(state.RUN) not in choices:
            st.session_state[state.RUN] = default_run(choices)
        if gone:
            st.session_state[state.RUN_GONE] = (gone, st.session_state[state.RUN], st.session_state[state.DATASET])
            st.toast(f"Run {gone} was deleted; another run is shown.", icon=":material/delete:")  # longer was cut
        run_id = st.selectbox("Run", list(choices), key=state.RUN, format_func=choices.get,
                              help="Saved runs on this dataset, and this session's runs still training. Rename, "
                                   "download or delete them in the **Model library**.")
        share.remember(state.RUN)
        share.publish("run", run_id)
        recipe = recipe_of(run_id)
        if recipe is not None:
            share.publish("recipe", recipe.to_json())
        damaged = [e for e in state.run_store().list() if e.record is None]
        if damaged:
            st.caption(f"{len(damaged)} damaged {runs_word(len(damaged))} skipped: "
                       + "; ".join(e.error for e in damaged[:3]))
