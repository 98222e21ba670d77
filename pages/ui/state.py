"""Session state, set up once: every key the pages read or write outside a widget lives here, namespaced ``ae.``;
widget keys follow ``ae.<page>.<name>``. Also the server-wide set-up (torch threads, warm-up) and the shared
resources every page uses (the run store, the datasets, this session's jobs)."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import streamlit as st

from aecore import DatasetError, RunStore, TrainingJob
from aecore.data import DEFAULT_DATASET, dataset_info
from aecore.native import release_free_memory

DATASET = "ae.dataset"  # the sidebar's dataset (a widget)
RUN = "ae.run"  # the sidebar's run (a widget)
RUN_LABELS = "ae.run.labels"  # every label the sidebar showed this session -> its run id
RUN_GONE = "ae.run.gone"  # (run id, the run shown instead or None, dataset): the selected run left the store
RUN_PIN = "ae.run.pin"  # (run id, until): a run a page selected for the user, for a few seconds
PENDING_RUN = "ae.pending_run"  # a run a page asks the sidebar to select at the next rerun
PENDING_DATASET = "ae.pending_dataset"  # and its dataset, where that is not the sidebar's (a run just uploaded)
JOBS = "ae.jobs"  # run id -> TrainingJob of this session
TRAIN_ACTIVE = "ae.train.active"  # the run id the Train page shows
TRAIN_ERROR = "ae.train.error"  # why Train's callback could not start a job, for the script to show
TRAIN_AUTO = "ae.train.auto"  # the Train page's "Retrain on change" toggle (a widget)
TRAIN_STARTED = "ae.train.started"  # (dataset, model, config, settings) of the form that started the last job
TRAIN_RUN_BEFORE = "ae.train.run_before"  # the sidebar's run when Train was last pressed
TRAIN_SEEN_DONE = "ae.train.seen_done"  # run ids whose end the Train page has rerun for
TRAIN_MODEL = "ae.train.model"  # the Train page's model picker (a widget)
TRAIN_MODEL_APPLIED = "ae.train.model_applied"  # the model whose family training settings the controls hold
COMPARE_JOB = "ae.compare.job"
COMPARE_SEEN_DONE = "ae.compare.seen_done"
REC_SEED = "ae.rec.seed"
DENOISE_SEED = "ae.denoise.seed"
FILTERS_UNIT = "ae.filters.unit"  # a widget the mosaic's click sets
LATENT_TASK = "ae.latent.task"
LATENT_POINT = "ae.latent.point"  # a widget a click on the chart sets
GEN_VIEW = "ae.gen.view"  # the Generate page's section (a widget)
GEN_SEED = "ae.gen.seed"  # the seed of the side-by-side samples (a widget the seed button moves on)
GEN_RUNS = "ae.gen.runs"  # the runs shown side by side (a widget)
GEN_ORIGIN = "ae.gen.origin"  # what the levers were last set from: (run, source, image or drawing)
GEN_NLL = "ae.gen.nll"  # this session's importance-weighted NLL task key
SENT_VIEW = "ae.sent.view"  # the Sentences page's section (a widget)
SENT_A = "ae.sent.a"  # the homotopy's first sentence (a widget the corpus button sets)
SENT_B = "ae.sent.b"  # and its second
PRESENT = "ae.present"  # presenter mode (a widget, and ?present=1)
USER_DATASETS = "ae.user_datasets"  # name -> (title, Dataset) uploaded in this session
LINK_MISSING = "ae.link.missing"  # (run id, Recipe) of an opened link whose run this server lacks
GALLERY_JOB = "ae.gallery.job"  # (preset key, CompareJob) training a talk preset's missing runs
LIB_CONFIRM = "ae.library.confirm"  # the run id whose delete awaits confirmation


def lowest_priority(fn):
    """``fn`` run at the lowest CPU priority its thread can have (Linux lets a thread set its own), so that it only
    uses time no one else wants: measured, training runs 6.5x slower beside numba compiling at normal priority and
    not measurably slower beside it at nice 19."""
    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):  # not Linux: run at normal priority
            pass
        fn()
    return run


def compile_projections() -> int:
    """t-SNE's numba code compiled (or found in the cache) by a child process at the lowest priority; waits for it
    and returns its exit status."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    code = "import os\nif hasattr(os, 'nice'): os.nice(19)\nfrom aecore.latent import warm_up\nwarm_up(umap=False)"
    return subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode


def freeze_long_lived() -> int:
    """Move every object alive now (the imported modules, the warm-up's figure classes: about 250,000) out of the
    garbage collector's full scans, and return how many. Each full collection held the GIL while a script run or a
    training step waited: 150-190 ms in a warm server (one or two amid 30 control changes), 60-80 ms once frozen
    (what pages import later is not). Garbage of that moment is collected first, so none is kept for good."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@st.cache_resource
def _warm_up() -> list[threading.Thread]:
    """Once per server, in the background: imports that would otherwise delay the first live view (Plotly imports
    its figure classes on first use, and a script run importing one waits for the import lock while another thread
    imports), and t-SNE's numba code compiled into numba's cache on disk.

    Nothing here may hold the GIL for long while a user clicks: a Train click in the first seconds after the page
    opened missed 1 s on 2 of 10 fresh servers, and on none of 10 when clicked 12 s later. So no torch._dynamo
    (torch.optim's first optimiser imports it, 1.2 s of Python; the registry's jobs use aecore.optim's Adam), and
    the compilation in a child process: a thread at the lowest priority kept the GIL while the scheduler kept the
    thread waiting. The server's first t-SNE loads the compiled code from the cache (0.3 s)."""
    from .figures import warm_up as warm_figures
    # pandas whole before any thread starts: Plotly's validators test values against pandas' types whenever pandas
    # is in sys.modules, and the warm-up's figures met it half-imported by the page (the embedded digits' loader),
    # an AttributeError that ended the warm-up (2 fresh servers of 2 when its start was slowed, 1 in an AppTest);
    # a script's own figures would meet it the same way if the warm-up imported it. 0.4 s, once, that the first
    # page mostly paid anyway.
    import pandas  # noqa: F401

    def warm() -> None:
        try:
            warm_figures()
        finally:
            freeze_long_lived()
    threads = [threading.Thread(target=warm, name="aecore-warm-up", daemon=True)]
    if os.environ.get("AECORE_WARM_PROJECTIONS", "1") != "0":  # the tests turn it off: it only costs them time
        # t-SNE's only: importing and compiling umap-learn holds 211 MB for the server's life (measured in one
        # process), which the memory goal (1.5 GB with five runs open) cannot spare; the first UMAP compiles it
        threads.append(threading.Thread(target=compile_projections, name="aecore-warm-projections", daemon=True))
    for thread in threads:
        thread.start()
    return threads


@st.cache_resource
def torch_threads() -> int:
    """Once per server: torch computes on one core fewer than the machine has (at least one), leaving a core to the
    browser and to Streamlit; Streamlit's script threads set it themselves (below). With both of 2 cores, every
    parallel op of a training step waited for the core the browser was drawing on: 8 epochs of the seed recipe on
    full MNIST took 24-30 s with the Train page watching, 17 s with one thread, 14.5 s with two and no page open.
    ``AECORE_TORCH_THREADS`` overrides it, say for a server whose users browse from elsewhere."""
    import torch
    try:
        n = int(os.environ.get("AECORE_TORCH_THREADS", "0"))
    except ValueError:
        n = 0
    n = n if n > 0 else max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(n)

    # GNU OpenMP keeps the thread count per thread, and a new thread starts from the machine's: its first exp, tanh
    # or GELU made an OpenMP team of 2 on 2 cores, 3-30 ms (12 new threads: 92-104 ms against 3.3-3.9 ms, /tmp
    # script). Streamlit runs every rerun and fragment in a new thread, so each of its script threads sets the count
    # first. Training jobs are left as they were measured (their products on the machine's count).
    previous = threading.getprofile()  # a profiler's, kept

    def first_call(*args) -> None:
        sys.setprofile(previous)
        if previous is not None:
            previous(*args)
        if threading.current_thread().name == "ScriptRunner.scriptThread":
            torch.set_num_threads(n)
    threading.setprofile(first_call)
    # numpy's OpenBLAS too (threadpoolctl comes with scikit-learn): with two threads on 2 cores beside the browser,
    # the Latent page's SVD of 2,000 codes took 0.1-0.4 s a run in the server, against 2 ms alone
    from threadpoolctl import threadpool_limits
    threadpool_limits(n, user_api="blas")
    return n


def warm_up() -> None:
    """Start the server's warm-up (once per server; see :func:`_warm_up`)."""
    _warm_up()


def init_state(warm_up_now: bool = True) -> None:
    """Session state is set up once, with namespaced keys."""
    torch_threads()
    if warm_up_now:
        _warm_up()
    release_free_memory()
    st.session_state.setdefault(DATASET, DEFAULT_DATASET)
    st.session_state.setdefault(JOBS, {})
    st.session_state.setdefault(TRAIN_SEEN_DONE, set())
    st.session_state.setdefault(USER_DATASETS, {})


def jobs() -> dict[str, TrainingJob]:
    """This session's training jobs, running or ended, by run id."""
    return st.session_state[JOBS]


@st.cache_resource
def _running_jobs() -> dict[str, TrainingJob]:
    """Every session's jobs still training, by run id: how a reloaded tab, or another tab holding the run's link,
    finds its job again. No page lists them; only a link with the exact run id reaches one."""
    return {}


@st.cache_resource
def preset_jobs() -> dict:
    """Talk presets training, by (preset key, dataset), for every session: a preset's runs are everyone's once
    saved, and a reloaded tab found only "Train and open" mid-way, which trained the runs a second time."""
    return {}


def start_job(job: TrainingJob) -> TrainingJob:
    """Start ``job`` as this session's, findable by its run id after a reload; the Train page shows it."""
    running = _running_jobs()
    for rid in [rid for rid, j in running.items() if j.progress().done]:
        running.pop(rid, None)
    jobs()[job.run_id] = running[job.run_id] = job.start()
    st.session_state[TRAIN_ACTIVE] = job.run_id
    return job


def attach_job(run_id: str) -> bool:
    """Make the still-running job ``run_id`` (started by a session that reloaded, or by another tab) this
    session's too, shown on the Train page with its Stop button; False if no job of that id is training."""
    job = _running_jobs().get(run_id)
    if job is None or job.progress().done:
        return False
    jobs()[run_id] = job
    st.session_state[TRAIN_ACTIVE] = run_id
    return True


def keep_newest_finished(entries: dict, is_done, keep: int = 16) -> None:
    """Drop all but the ``keep`` newest finished entries of a task cache shared by sessions (dicts keep insertion
    order, so the first are the oldest); running ones always stay."""
    for old in [k for k, v in entries.items() if is_done(v)][:-keep]:
        del entries[old]


def run_store() -> RunStore:
    return RunStore(os.environ.get("AECORE_RUNS_DIR") or None)


@st.cache_resource(show_spinner="Loading dataset…")
def _dataset(name: str):
    return __import__("aecore").load_dataset(name)


def dataset_names() -> list[str]:
    """Every dataset the sidebar offers: built-in, saved uploads, then this session's uploads."""
    from aecore.data import list_datasets
    return list_datasets() + [n for n in st.session_state.get(USER_DATASETS, {}) if n not in list_datasets()]


def dataset_title(name: str) -> str:
    uploaded = st.session_state.get(USER_DATASETS, {})
    if name in uploaded:
        return f"{uploaded[name][0]} (uploaded, this session)"
    try:
        return dataset_info(name).title
    except KeyError:
        return name


def load_named_dataset(name: str):
    """Dataset ``name``: one uploaded in this session, or a registered one (cached for every session)."""
    uploaded = st.session_state.get(USER_DATASETS, {})
    return uploaded[name][1] if name in uploaded else _dataset(name)


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _offer_dataset(modality: str) -> None:
    """A button that switches the sidebar to the first dataset of ``modality`` that works offline."""
    from aecore.data import list_datasets
    fits = [n for n in list_datasets() if dataset_info(n).modality == modality and dataset_info(n).offline]
    if fits:
        st.button(f"Use {dataset_title(fits[0])}", icon=":material/swap_horiz:", key="ae.switch_dataset",
                  on_click=lambda: st.session_state.__setitem__(DATASET, fits[0]))


def current_dataset(modality: str | None = None):
    """The dataset picked in the sidebar; if it cannot be loaded, or is not of ``modality`` where the page needs
    one, say why and stop the page."""
    name = st.session_state[DATASET]
    uploaded = st.session_state.get(USER_DATASETS, {})
    if name in uploaded:
        if modality not in (None, "image"):
            st.info(f"This page shows {modality} models; **{uploaded[name][0]}** holds images. Pick a {modality} "
                    f"dataset in the sidebar.")
            _offer_dataset(modality)
            st.stop()
        return uploaded[name][1]
    try:
        info = dataset_info(name)
    except KeyError:  # a saved upload deleted since, say
        st.error(f"Dataset **{name}** is no longer available; pick another in the sidebar.")
        st.stop()
    if modality is not None and info.modality != modality:
        st.info(f"This page shows {modality} models; **{info.title}** is {_a(info.modality)} dataset. Pick "
                f"{_a(modality)} dataset in the sidebar.")
        _offer_dataset(modality)
        st.stop()
    try:
        return _dataset(name)
    except DatasetError as e:
        st.error(f"**{info.title}** is not available: {e}")
        st.stop()
