"""Codes: projections, their scores, decoder grids, interpolation and retrieval."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aecore import TrainSettings, create_model, train
from aecore.latent import (ProjectionError, decoder_grid, interpolate, knn_accuracy, nearest, precision_at_k,
                           principal_axes, project, slerp)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projections_give_two_columns_per_point(method):
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(0, 1, (40, 6)), rng.normal(8, 1, (40, 6))]).astype(np.float32)
    out = project(codes, method, perplexity=10, n_neighbors=10)
    assert out.shape == (80, 2) and np.isfinite(out).all()
    labels = np.repeat([0, 1], 40)
    assert knn_accuracy(out, labels, k=5) > 0.95  # two far-apart clusters stay apart


def test_too_few_points_for_the_perplexity_is_a_clear_error():
    with pytest.raises(ProjectionError, match="perplexity 30 needs more than 30 points; there are 20. Lower the "
                                              "perplexity below 20"):  # it advised more points an upload lacked
        project(np.random.rand(20, 4), "tsne", perplexity=30)
    with pytest.raises(ProjectionError, match="Lower the neighbours below 10"):
        project(np.random.rand(10, 4), "umap", n_neighbors=15)


def test_precision_at_k_on_a_constructed_example():
    codes = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.3]])
    labels = np.array([0, 0, 1, 1, 1, 0])
    # k = 1: nearest other point of each: 1, 0 (or 2), 1, 4, 3, 4 -> labels 0,0,0,1,1,1 vs own 0,0,1,1,1,0
    assert precision_at_k(codes, labels, k=1) == pytest.approx(4 / 6)
    assert precision_at_k(codes, labels, k=2) == pytest.approx(np.mean([1/2, 1/2, 0, 1/2, 1/2, 0]))
    assert list(nearest(codes, 3, 2)) == [4, 5]
    # asked for more neighbours than there are other points (4 test images of an upload, 8 asked): the point itself
    # was listed among its own neighbours
    assert list(nearest(codes, 3, 8)) == [4, 5, 2, 1, 0] and list(nearest(codes, np.array([10.0]), 8))[0] == 3


def test_slerp_keeps_norms_and_ends():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=8), rng.normal(size=8)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = slerp(a, b, np.linspace(0, 1, 7))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-6)
    np.testing.assert_allclose(path[0], a, atol=1e-9)
    np.testing.assert_allclose(path[-1], b, atol=1e-9)


def test_decoder_grid_decodes_the_right_count(digits):
    model = create_model("stacked", input_shape=(8, 8), hidden=(16,), code_size=2)
    train(model, digits.x_train[:300], TrainSettings(epochs=1))
    pixels = decoder_grid(model, (-1, 1, -2, 2), 5)
    assert pixels.shape == (25, 64) and pixels.min() >= 0 and pixels.max() <= 1
    # top-left cell decodes (x0, y1), bottom-right (x1, y0)
    with torch.no_grad():
        corner = torch.sigmoid(model.decode(torch.tensor([[-1.0, 2.0], [1.0, -2.0]]))).numpy()
    np.testing.assert_allclose(pixels[[0, 24]], corner, atol=1e-6)
    # a larger code: the grid runs along the two principal axes through the mean
    wide = create_model("stacked", input_shape=(8, 8), hidden=(16,), code_size=6)
    codes = wide.encode(torch.as_tensor(digits.x_test)).detach().numpy()
    mean, axes, coords = principal_axes(codes)
    assert axes.shape == (2, 6) and coords.shape == (len(codes), 2)
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-5)
    _, _, vt = np.linalg.svd(codes - codes.mean(0), full_matrices=False)  # the same axes as the SVD's, up to sign
    np.testing.assert_allclose(np.abs(axes @ vt[:2].T), np.eye(2), atol=1e-4)
    np.testing.assert_allclose(mean, codes.mean(0), atol=1e-6)
    assert decoder_grid(wide, (-1, 1, -1, 1), 3, mean, axes).shape == (9, 64)


def test_interpolation_starts_and_ends_at_the_reconstructions(digits):
    model = create_model("stacked", input_shape=(8, 8), hidden=(16,), code_size=4)
    xa, xb = digits.x_test[0], digits.x_test[1]
    for mode in ("linear", "slerp"):
        out = interpolate(model, xa, xb, 6, mode)
        assert out["decoded"].shape == (6, 64) and out["blend"].shape == (6, 64)
        recon = model.reconstruct(torch.as_tensor(np.stack([xa, xb]))).numpy()
        np.testing.assert_allclose(out["decoded"][[0, -1]], recon, atol=1e-5)
        np.testing.assert_allclose(out["blend"][[0, -1]], np.stack([xa, xb]), atol=1e-6)


def test_the_server_compiles_the_projections_in_a_child_process(monkeypatch):
    from pages.ui import state
    monkeypatch.chdir("/")  # the child finds aecore wherever the server was started from
    assert state.compile_projections() == 0


def test_warm_up_compiles_what_the_projections_run():
    from aecore import latent
    latent.warm_up(umap=False)  # the server's: t-SNE's numba loop only
    latent.warm_up()  # t-SNE's numba loop and umap-learn on 300 points; raises if either path is broken
    assert latent.umap_compiled()  # the Latent page stops saying that the first UMAP compiles
    out = project(np.random.default_rng(5).normal(size=(60, 3)).astype(np.float32), "umap", n_neighbors=5)
    assert out.shape == (60, 2) and np.isfinite(out).all()


def test_a_t_sne_shows_its_start_before_its_module_has_loaded():
    """t-SNE's module (numba, scipy's FFT and graph code) took 0.3 s to import, and a t-SNE opened by a link showed
    nothing until it had: its PCA start now comes first, the same layout t-SNE itself starts from."""
    code = """
import json, sys
import numpy as np
from aecore import latent
x = np.random.default_rng(5).normal(size=(200, 6)).astype(np.float32)
seen = []
def progress(fraction, layout):
    seen.append((fraction, None if layout is None else layout.tolist(), "aecore.tsne" in sys.modules))
    return False if len(seen) > 2 else None  # enough: the start twice, then the first iterations
latent.project(x, "tsne", perplexity=10.0, progress=progress)
from aecore import tsne
print(json.dumps({"seen": seen, "start": tsne.pca_init(tsne.prepare(x)).tolist()}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    (f0, first, loaded0), (f1, again, loaded1) = got["seen"][:2]
    assert f0 == 0.0 and not loaded0 and loaded1, got["seen"]
    np.testing.assert_allclose(first, got["start"])
    np.testing.assert_allclose(again, got["start"])  # t-SNE's own start: the picture does not jump
