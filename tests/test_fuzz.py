"""Every page opened at links with fuzzed query values (hypothesis): unknown names, numbers at and past their
controls' extremes, NaN and infinities, huge and hostile strings. No exception may reach the user."""
import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from tests.test_app import app, train_run  # noqa: E402
from tests.test_app_share import opened  # noqa: E402

PAGES = ["app.py", "pages/train.py", "pages/reconstructions.py", "pages/filters.py", "pages/compare.py",
         "pages/denoising.py", "pages/contraction.py", "pages/latent.py", "pages/generate.py", "pages/sentences.py",
         "pages/pretraining.py", "pages/library.py", "pages/your_images.py"]
_KNOWN: dict[str, list[str]] = {}
_RUNS: dict[str, str] = {}


def _page_params(page: str, run: str) -> list[str]:
    """The parameters a page writes to its link (read once from the page itself)."""
    if page not in _KNOWN:
        at = opened(page, {"dataset": "digits", "run": run})
        _KNOWN[page] = sorted(set(at.query_params) | {"dataset", "run", "recipe", "present"})
    return _KNOWN[page]


def _run() -> str:
    import os
    root = os.environ["AECORE_RUNS_DIR"]
    if root not in _RUNS:  # one tiny run per test's store, trained at its first example
        _RUNS[root] = train_run("vae", epochs=1, hidden=(16,), latent_size=2)
    return _RUNS[root]


numbers = st.one_of(st.integers(-10**20, 10**20).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f) if math.isfinite(f) else
                                                                       str(f)),
                    st.sampled_from(["0", "-1", "1", "2147483647", "2147483648", "1e308", "-0", "0x10", "1_000",
                                     " 5", "5 ", "", "nan", "inf", "-inf", "None", "true"]))
names = st.sampled_from(["digits", "mnist", "grammar", "../../etc/passwd", "/abs/path", "stacked", "vae", "gan",
                         "k-sparse", "worst first", "Levers", "Homotopy", "linear", "slerp", "pca", "tsne", "all",
                         "%00", "<script>alert(1)</script>", "{}", "[]", '{"model":"stacked","dataset":"digits"}',
                         "a,b,c", ",,,", "r" * 5000])
values = st.one_of(numbers, names, st.text(max_size=60), st.text(min_size=2001, max_size=2100))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_link_value_breaks_any_page(data):
    run = _run()
    page = data.draw(st.sampled_from(PAGES), label="page")
    known = _page_params(page, run)
    keys = data.draw(st.lists(st.one_of(st.sampled_from(known), st.text(min_size=1, max_size=12)), min_size=1,
                              max_size=6, unique=True), label="keys")
    params = {k: data.draw(values, label=k) for k in keys}
    params.setdefault("dataset", "digits")
    at = opened(page, params)  # asserts that no exception is shown
    assert not [e for e in at.error if "Traceback" in e.value]
    at.run()  # and the rerun after it (the link is applied once, its leftovers wait)
    assert not at.exception, at.exception


def test_extreme_slider_values_from_links_are_clamped_or_refused():
    run = train_run("stacked", epochs=1, hidden=(16,), code_size=4)
    at = opened("pages/latent.py", {"dataset": "digits", "run": run, "points": "100000", "grid": "-3",
                                    "perplexity": "1e999", "k": "20"})
    assert at.slider(key="ae.latent.grid").value == 10  # refused: the default
    assert at.slider(key="ae.latent.k").value == 20  # the maximum itself is fine
    shown = " ".join(t.value for t in at.toast)
    assert "**points**" in shown and "**grid**" in shown
    base = app("pages/train.py")
    assert not base.exception
