import os
import threading
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Import now, in the main thread, what would otherwise be imported while app and training threads run: pytest
# rewrites the asserts of its plugins' modules (hypothesis's, where installed) with ast.parse, and on CPython 3.11
# concurrent AST building in two threads can fail with "AST constructor recursion depth mismatch" (gh-106905).
try:
    import hypothesis  # noqa: F401
except ImportError:
    pass
import torch._dynamo  # noqa: E402,F401  (torch.optim's first optimiser imports it: the probes', the classifier's)

from tests.toys import toys  # noqa: E402,F401  (the fixture, for tests/test_spine.py)

# The app compiles t-SNE's and UMAP's numba code in a background thread at start; in the suite that thread would
# run beside every later test (and tests/test_latent.py calls the same warm-up directly).
os.environ["AECORE_WARM_PROJECTIONS"] = "0"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own run store and cache, and never sees the user's."""
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AECORE_DATASETS_DIR", str(tmp_path / "datasets"))
    monkeypatch.delenv("AECORE_DATA_DIR", raising=False)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def dataframes_arrow_ready(monkeypatch):
    """No page hands Streamlit a table Arrow cannot take as it is: Streamlit then logs the conversion error with its
    traceback in the server's log and converts the columns itself (the Few labels table's "all" beside counts did)."""
    import streamlit.dataframe_util as dataframe_util
    fixed = []
    real = dataframe_util.fix_arrow_incompatible_column_types

    def recording(df, *args, **kwargs):
        fixed.append(list(df.columns))
        return real(df, *args, **kwargs)
    monkeypatch.setattr(dataframe_util, "fix_arrow_incompatible_column_types", recording)
    yield
    assert not fixed, f"tables Streamlit had to fix for Arrow (columns): {fixed}"


@pytest.fixture(scope="session", autouse=True)
def background_threads_end():
    """Let the app's background threads (warm-up, projections, training) finish before the interpreter exits: one
    still inside a native thread pool then can abort the process ("terminate called without an active
    exception"), which would fail a green run."""
    yield
    for thread in threading.enumerate():
        if thread.daemon and thread.name.startswith(("aecore-", "project-", "train-", "probe-", "compare",
                                                         "digit-classifier", "iw-nll")):
            thread.join(timeout=300)


@pytest.fixture(scope="session")
def digits():
    from aecore import load_dataset
    return load_dataset("digits")


def shared_mnist_dir():
    d = Path(os.environ.get("AECORE_SHARED_DATA", SHARED_DATA))
    return d if (d / "mnist" / "t10k-images-idx3-ubyte.gz").exists() else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each test's outcome on its node, so fixtures can act on a failure (the browser tests' screenshots)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
