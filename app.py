"""Autoencoder Explorer: the entry page (Home) of Streamlit's pages/ folder mode; every other page is a script in
pages/. Run with `streamlit run app.py`."""
import streamlit as st

from aecore import list_models, model_spec
from aecore.data import dataset_info, list_datasets
from pages import ui

ui.page_setup()
st.title("Autoencoder Explorer")
st.markdown(
    "Train autoencoders in your browser and see what they learn: reconstructions next to their inputs, live cost "
    "curves, first-layer filters, and how sparse, denoising and contractive autoencoders differ. Everything runs locally on PyTorch; the default "
    "dataset ships inside an installed package, so it works offline.")
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
    "**Sentences** to type two sentences and watch one turn into the other.")
c1, c2, c3 = st.columns(3)
c1.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
c2.page_link("pages/reconstructions.py", label="Inspect reconstructions", icon=":material/compare:")
c3.page_link("pages/compare.py", label="Compare regularizers", icon=":material/view_column:")
st.subheader("Models")
st.table({"model": list_models(), "what it is": [model_spec(n).summary for n in list_models()]})
st.subheader("Datasets")
st.table({"dataset": list_datasets(), "about": [dataset_info(n).description for n in list_datasets()]})
