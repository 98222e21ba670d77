"""Autoencoder Explorer: the router. Sets up session state once, draws the shared sidebar, runs the page."""
import streamlit as st

from pages import common

st.set_page_config(page_title="Autoencoder Explorer", page_icon=":material/hub:", layout="wide")
common.init_state()

page = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
    st.Page("pages/filters.py", title="Filters", icon=":material/grid_view:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/view_column:"),
    st.Page("pages/denoising.py", title="Denoising", icon=":material/blur_on:"),
    st.Page("pages/contraction.py", title="Contraction", icon=":material/compress:"),
    st.Page("pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("pages/pretraining.py", title="Few labels", icon=":material/label:"),
])
common.sidebar()
page.run()
