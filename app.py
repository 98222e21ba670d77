"""Autoencoder Explorer: the entry page (Home) of Streamlit's pages/ folder mode; every other page is a script in
pages/. Run with `streamlit run app.py`."""
import streamlit as st

# The title and the introduction before the imports below: on a fresh server they import torch and the engine,
# 1.3-1.7 s of its first run, and the page stayed blank until they were done (bench/README).
st.set_page_config(page_title="Autoencoder Explorer", page_icon=":material/hub:", layout="wide")
st.title("Autoencoder Explorer")
st.markdown(
    "Train autoencoders in your browser and see what they learn: reconstructions next to their inputs, live cost "
    "curves, first-layer filters, and how sparse, denoising and contractive autoencoders differ. Everything runs "
    "locally on PyTorch; the default dataset ships inside an installed package, so it works offline.")


def _preload_widget_code() -> None:
    """Ask the browser for the code of the widgets this page draws after the imports below (sidebar and gallery), so
    that it loads while they run: on a fresh server the browser fetched it only once they had arrived (2.7-3.6 s on
    the page's clock, the title at 1.1 s); with it, the gallery is out 0.65 s sooner (bench/README)."""
    import pathlib
    static = pathlib.Path(st.__file__).parent / "static" / "static" / "js"
    files = [f.name for kind in ("Button", "Selectbox", "PageLink", "Checkbox", "Table") for f in
             static.glob(f"{kind}.*.js") if f.name.count(".") == 2]
    st.html('<style>[data-testid="stElementContainer"]:has(#ae-preload) { display: none; }</style>'
            '<script id="ae-preload">(() => { const main = document.querySelector(\'script[src*="static/js/index."]\');'
            f' if (main) for (const f of {files!r}) import(new URL(f, main.src).href).catch(() => {{}}); }})();'
            '</script>', unsafe_allow_javascript=True)


_preload_widget_code()

from aecore import ConfigError, DatasetError, list_models, model_spec  # noqa: E402
from aecore.data import DEFAULT_DATASET, dataset_info, is_available_offline, list_datasets  # noqa: E402
from aecore.talk import TALK_PRESETS  # noqa: E402
from pages import ui  # noqa: E402
from pages.ui import state  # noqa: E402
from pages.ui.runs import fmt_left, runs_word  # noqa: E402

ui.page_setup(warm_up=False)  # after the gallery: its synchronous pandas import is 0.3 s


def image_dataset() -> str:
    """The image dataset the presets use: the sidebar's, unless it holds sentences or needs the network. Read from
    the registry: loading the dataset to ask took a fresh server's Home page 0.2-0.5 s (the embedded digits' CSV),
    and a download where the sidebar named one not yet fetched."""
    name = st.session_state[state.DATASET]
    uploaded = st.session_state.get(state.USER_DATASETS, {})
    try:
        usable = uploaded[name][1].modality == "image" if name in uploaded else \
            dataset_info(name).modality == "image" and is_available_offline(name)
    except KeyError:
        usable = False
    return name if usable else DEFAULT_DATASET


def open_preset(key: str) -> None:
    preset = TALK_PRESETS[key]
    dataset = preset.dataset_for(image_dataset())
    found = preset.find_runs(state.run_store(), dataset)
    st.switch_page(preset.page, query_params={"dataset": dataset, **preset.link([r for r in found if r]),
                                              **({"present": "1"} if ui.presenting() else {})})


@st.fragment(run_every=1.0)
def training_progress(job, where: str) -> None:
    """A preset's runs training, polled; the whole page reruns when they are done. Its values are arguments: a
    closure over the gallery's loop read the last card's dataset on every poll after the first ("on grammar")."""
    st.progress(job.fraction, text=f"training {len(job.jobs)} {runs_word(len(job.jobs))} on {where}… "
                                   f"{fmt_left(job.seconds_left())}".strip())
    if job.done:
        st.rerun()


def gallery() -> None:
    """One card per talk preset: open it, or train its missing runs first with a progress bar."""
    pending = st.session_state.get(state.GALLERY_JOB)
    if pending is not None:
        key, job = pending
        if job.done:
            st.session_state.pop(state.GALLERY_JOB)
            failed = [j.run_id for j in job.jobs if j.record is None or j.record.status != "finished"]
            if failed:
                st.error(f"**{TALK_PRESETS[key].title}**: {len(failed)} {runs_word(len(failed))} did not finish "
                         f"({', '.join(failed)}); see the Train page's messages, or try again.")
            else:
                open_preset(key)
    image = image_dataset()
    cols = st.columns(3)
    for i, preset in enumerate(TALK_PRESETS.values()):
        with cols[i % 3].container(border=True):
            st.markdown(f"**{preset.title}**")
            st.caption(preset.look_for)
            found = preset.find_runs(state.run_store(), preset.dataset_for(image))
            missing = sum(r is None for r in found)
            where = preset.dataset_for(image)
            shared = state.preset_jobs().get((preset.key, where))
            if pending is not None and pending[0] == preset.key:
                training_progress(pending[1], where)
            elif shared is not None and not shared.done:  # started by another tab, or this one before a reload
                training_progress(shared, where)
            elif missing:
                st.caption(f"{missing} of {len(found)} {runs_word(len(found))} not trained yet on {where}: the "
                           f"button trains them first (or run `python -m aecore prepare-talk` before the talk).")
                if st.button("Train and open", key=f"ae.gallery.{preset.key}", disabled=pending is not None):
                    try:
                        job = preset.trainer(state.load_named_dataset(where), state.run_store())
                    except (ConfigError, DatasetError) as e:
                        st.error(f"This preset cannot run on {where}: {e}")
                    else:
                        st.session_state[state.GALLERY_JOB] = (preset.key, job.start())
                        state.preset_jobs()[(preset.key, where)] = job
                        st.rerun()
            elif st.button("Open", key=f"ae.gallery.{preset.key}", type="primary"):
                open_preset(preset.key)


st.subheader("Presets for a talk")
st.caption("One click opens a ready setup with its trained runs. Turn on **Presenter mode** in the sidebar for a "
           "projector.")
gallery()
state.warm_up()
st.subheader("How to start")
st.markdown(
    "1. Pick a dataset in the sidebar (the default, *MNIST 5k*, is embedded).\n"
    "2. Open **Train**, keep the defaults (the seed recipe: a 784-100-30 GELU autoencoder with a sigmoid output "
    "and binary cross-entropy, Adam, batch 32) and press **Train**. The cost curve and reconstructions update "
    "live.\n"
    "3. Open **Reconstructions** to compare inputs and outputs, worst first, or two runs side by side (try the "
    "autoencoder against `pca` with the same code size).\n"
    "4. Open **Compare** and train the *sparse coding, five ways* preset: a plain autoencoder's filters are not "
    "specific to anything, while the sparse ones pick out pen strokes. **Filters** shows one run's units in "
    "detail, **Denoising** scores runs on corrupted digits, and **Contraction** compares their encoders' "
    "Jacobians.\n"
    "5. Open **Latent space** to see a run's codes projected to 2-D, decode a grid over a region of code space, "
    "interpolate between two digits and retrieve look-alikes by code.\n"
    "6. Open **Generate** to put samples of an autoencoder, a VAE and a GAN side by side.\n"
    "7. For text, pick *Sentences from a small grammar* in the sidebar, train a `sentence-vae` on **Train**, and open "
    "**Sentences** to type two sentences and watch one turn into the other.\n"
    "8. Keep, rename, download or upload runs in the **Model library**; bring your own pictures on **Your images**. "
    "Every page's address is a link back to what it shows.")
c1, c2, c3 = st.columns(3)
c1.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
c2.page_link("pages/reconstructions.py", label="Inspect reconstructions", icon=":material/compare:")
c3.page_link("pages/compare.py", label="Compare regularizers", icon=":material/view_column:")
st.subheader("Models")
st.table({"model": list_models(), "what it is": [model_spec(n).summary for n in list_models()]})
st.subheader("Datasets")
st.table({"dataset": list_datasets(), "about": [dataset_info(n).description for n in list_datasets()]})
