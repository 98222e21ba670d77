"""The pages' shared parts, by what each is for: ``state`` (session state and its keys, shared resources), ``runs``
(which runs a page shows), ``controls`` (widgets built from config metadata), ``figures``. ``page_setup`` is the
first line of every page, ``app.py`` (Home) included."""
from __future__ import annotations

import streamlit as st

from . import state
from .runs import sidebar

# The app uses Streamlit's own pages/ folder mode (app.py is the entry page), so a fresh server opened at any
# page's URL runs that page directly; the default navigation is hidden in .streamlit/config.toml and drawn here
# with titles and icons.
NAV = (("app.py", "Home", ":material/home:"),
       ("pages/train.py", "Train", ":material/model_training:"),
       ("pages/reconstructions.py", "Reconstructions", ":material/compare:"),
       ("pages/filters.py", "Filters", ":material/grid_view:"),
       ("pages/compare.py", "Compare", ":material/view_column:"),
       ("pages/denoising.py", "Denoising", ":material/blur_on:"),
       ("pages/contraction.py", "Contraction", ":material/compress:"),
       ("pages/latent.py", "Latent space", ":material/scatter_plot:"),
       ("pages/generate.py", "Generate", ":material/auto_awesome:"),
       ("pages/sentences.py", "Sentences", ":material/notes:"),
       ("pages/pretraining.py", "Few labels", ":material/label:"))


def page_setup() -> None:
    """Page config, session state, the navigation and the shared sidebar."""
    st.set_page_config(page_title="Autoencoder Explorer", page_icon=":material/hub:", layout="wide")
    state.init_state()
    with st.sidebar:
        for path, label, icon in NAV:
            st.page_link(path, label=label, icon=icon)
        st.divider()
    sidebar()
