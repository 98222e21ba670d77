"""The pages' shared parts, by what each is for: ``state`` (session state and its keys, shared resources), ``runs``
(which runs a page shows), ``controls`` (widgets built from config metadata), ``figures``. ``page_setup`` is the
first line of every page, ``app.py`` (Home) included."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import streamlit as st

from . import share, state
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
       ("pages/pretraining.py", "Few labels", ":material/label:"),
       ("pages/library.py", "Model library", ":material/inventory_2:"),
       ("pages/your_images.py", "Your images", ":material/upload:"))

# Presenter mode: type and figures for the back of a room, on a 1280x720 projector. Streamlit sizes its text in
# rem, so the root size scales the whole page; the toolbar and the header's menu go, and the top padding shrinks so
# that a page's key figure stays in view.
PRESENTER_CSS = """<style>
html { font-size: 19px; }
[data-testid="stHeader"] { background: transparent; }
[data-testid="stToolbarActions"], [data-testid="stMainMenu"], [data-testid="stAppDeployButton"] { display: none; }
[data-testid="stMainBlockContainer"] { padding: 1rem 1.5rem 1rem 1.5rem !important; max-width: none; }
.modebar-container { display: none !important; }
[data-testid="stCaptionContainer"], [data-testid="stImageCaption"] { font-size: 0.95rem !important; }
[data-testid="stElementToolbar"] { display: none; }
</style>"""
# Streamlit pushes a browser-history entry for every write to the query string, and the pages write one for each
# control that changed: a visit to Reconstructions left 9 entries, so Back stayed on the page (each press went to
# the same page's previous address, which the page then wrote again). A write that keeps the path now replaces the
# entry; going to another page still pushes one, so Back returns to the page before, as it last looked.
# This script runs once the page has drawn it, after the first page's own writes (7 entries for Reconstructions
# opened from a link): Back from it stayed on it four presses running. Where the browser lists its entries (the
# Navigation API; Chromium has it, elsewhere nothing changes), Back into one of those goes to the entry before them.
ONE_HISTORY_ENTRY_A_PAGE = """<style>[data-testid="stElementContainer"]:has(#ae-history) { display: none; }</style>
<script id="ae-history">
(() => {
  if (window.aeOneHistoryEntryAPage) return;
  window.aeOneHistoryEntryAPage = true;
  const push = history.pushState.bind(history);
  history.pushState = (state, unused, url) => {
    const same = url !== undefined && url !== null && new URL(url, location.href).pathname === location.pathname;
    return same ? history.replaceState(state, unused, url) : push(state, unused, url);
  };
  const nav = window.navigation;
  if (!nav || !nav.currentEntry) return;
  const entries = nav.entries(), now = nav.currentEntry.index, path = (e) => new URL(e.url).pathname;
  let first = now;
  while (first > 0 && path(entries[first - 1]) === location.pathname) first--;
  const early = new Set(entries.slice(first, now).map((e) => e.key));
  if (!early.size) return;
  window.addEventListener("popstate", () => {
    const here = nav.currentEntry;
    if (early.has(here.key)) history.go(first - here.index - 1);  // out of range (a new tab): no move
  });
})();
</script>"""

# Widgets' code, fetched and parsed by the browser while a page sits idle, so that the first page to draw one does
# not wait for it: the browser loads each kind's code the first time a page draws it, and Plotly's (4.7 MB) took the
# Latent space page's first visit of a tab from 2.1-2.3 s to the chart to 1.2-1.5 s when loaded before (bench/README).
# Once a tab, from the first page's first quiet moment after it is drawn.
IDLE_PRELOAD = ("PlotlyChart", "Slider", "Selectbox", "Checkbox", "NumberInput", "Radio", "ButtonGroup", "ImageList",
                "Progress", "Metric", "DownloadButton", "Multiselect", "TextInput", "Html")


@functools.cache
def idle_preload_script() -> str:
    """A script that has the browser import the code of the IDLE_PRELOAD kinds (Streamlit's file names carry a hash,
    so they are looked up here) once the tab has drawn its first page and gone quiet."""
    static = Path(st.__file__).parent / "static" / "static" / "js"
    files = [f.name for kind in IDLE_PRELOAD for f in static.glob(f"{kind}.*.js") if f.name.count(".") == 2]
    return ("<script>(() => { if (window.aeIdlePreload) return; window.aeIdlePreload = true;"
            " const load = () => { const main = document.querySelector('script[src*=\"static/js/index.\"]');"
            f" if (main) for (const f of {files!r}) import(new URL(f, main.src).href).catch(() => {{}}); }};"
            " setTimeout(() => (window.requestIdleCallback || setTimeout)(load, {timeout: 5000}), 2000); })();"
            "</script>")


# Always: captions one step larger than Streamlit's 12 px, and Plotly's toolbar only on hover, off the legend.
BASE_CSS = """<style>
[data-testid="stCaptionContainer"], [data-testid="stImageCaption"] { font-size: 0.9rem; }
</style>"""


def confirmed(question: str, key: str, pending: str) -> bool:
    """A pending delete's ``question`` with Yes and Cancel: True once Yes is pressed; either ends the confirmation
    (the session key ``pending`` that holds it), and Cancel redraws the page."""
    st.warning(question)
    d1, d2, _ = st.columns([1, 1, 4])
    yes = d1.button("Yes, delete", key=f"{key}_yes", type="primary")
    if yes or d2.button("Cancel", key=f"{key}_no"):
        st.session_state.pop(pending, None)
        if not yes:
            st.rerun()
    return yes


_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\*_`~$[]#"})


def plain(text: str) -> str:
    """``text`` from the engine or a user (help texts, papers' notes, sentences: plain text) escaped for Streamlit's
    markdown, where two asterisks made the k-sparse paper's note italic between its two "alpha*k" and dropped the
    asterisks, and a table cell starting with Penn Treebank's "#" (pounds) would be a heading."""
    return text.translate(_MARKDOWN)


def presenting() -> bool:
    """Whether presenter mode is on (the sidebar's toggle, or ``?present=1`` in a link)."""
    return bool(st.session_state.get(state.PRESENT))


def page_setup(warm_up: bool = True) -> None:
    """Page config, session state, the share link's values, the navigation and the shared sidebar. ``warm_up=False``
    leaves the server's warm-up to the page (:func:`state.warm_up`), once its first screen is out."""
    linked = st.query_params.get("present") in ("1", "true")  # a presenter's link opens with the sidebar folded
    st.set_page_config(page_title="Autoencoder Explorer", page_icon=":material/hub:", layout="wide",
                       initial_sidebar_state="collapsed" if linked or st.session_state.get(state.PRESENT) else "auto")
    page = sys._getframe(1).f_globals.get("__file__", "")  # the page script that called us
    share.restore_kept(page, (state.DATASET, state.RUN))
    state.init_state(warm_up)
    share.begin(page)
    with st.sidebar:
        for path, label, icon in NAV:
            st.page_link(path, label=label, icon=icon)
        share.widget("present", st.toggle, "Presenter mode", key=state.PRESENT, value=False,
                     help="Larger type and figures for a projector, fewer controls. A link with ?present=1 opens "
                          "in it.")
        st.divider()
    st.html((PRESENTER_CSS if presenting() else BASE_CSS) + ONE_HISTORY_ENTRY_A_PAGE + idle_preload_script(),
            unsafe_allow_javascript=True)
    sidebar()
