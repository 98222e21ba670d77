import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own run store and cache, and never sees the user's."""
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AECORE_DATA_DIR", raising=False)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def digits():
    from aecore import load_dataset
    return load_dataset("digits")


def shared_mnist_dir():
    d = Path(os.environ.get("AECORE_SHARED_DATA", SHARED_DATA))
    return d if (d / "mnist" / "t10k-images-idx3-ubyte.gz").exists() else None
