"""Home page: what the tool is and how to start."""
import streamlit as st

from aecore import list_models, model_spec
from aecore.data import dataset_info, list_datasets
from pages import common

common.page_setup()
st.title("Autoencoder Explorer")
st.markdown(
    "Train autoencoders in your browser and see what they learn: reconstructions next to their inputs, live cost "
    "curves, and (as more pages land) filters, codes and samples. Everything runs locally on PyTorch; the default "
    "dataset ships inside an installed package, so it works offline.")
st.subheader("How to start")
st.markdown(
    "1. Pick a dataset in the sidebar (the default, *MNIST 5k*, is embedded).\n"
    "2. Open **Train**, keep the defaults (the seed recipe: a 784-100-30 GELU autoencoder with a sigmoid output "
    "and binary cross-entropy, Adam, batch 32) and press **Train**. The cost curve and reconstructions update "
    "live.\n"
    "3. Open **Reconstructions** to compare inputs and outputs, worst first, or two runs side by side (try the "
    "autoencoder against `pca` with the same code size).")
c1, c2, c3 = st.columns(3)
c1.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
c2.page_link("pages/reconstructions.py", label="Inspect reconstructions", icon=":material/compare:")
st.subheader("Models")
st.table({"model": list_models(), "what it is": [model_spec(n).summary for n in list_models()]})
st.subheader("Datasets")
st.table({"dataset": list_datasets(), "about": [dataset_info(n).description for n in list_datasets()]})
