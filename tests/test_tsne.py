"""The t-SNE engine against its definitions: neighbours, perplexity calibration, symmetric affinities, the exact
attraction and repulsion sums, and an embedding that keeps clusters apart while showing its progress."""
import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from aecore import tsne as T
from aecore.latent import knn_accuracy


def _points(n=300, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_nearest_neighbours_match_scikit_learn():
    x = _points()
    d2, idx = T.nearest_neighbours(torch.as_tensor(x), 7, chunk=64)  # several chunks
    dist, ref = NearestNeighbors(n_neighbors=8).fit(x).kneighbors(x)
    assert (idx.numpy() == ref[:, 1:]).all()
    np.testing.assert_allclose(d2.numpy(), dist[:, 1:] ** 2, rtol=1e-4, atol=1e-4)


def test_each_row_has_the_asked_perplexity():
    x = _points()
    d2, _ = T.nearest_neighbours(torch.as_tensor(x), 60)
    p = T.conditional_probabilities(d2, 15.0).double()
    assert torch.allclose(p.sum(1), torch.ones(len(p), dtype=torch.float64), atol=1e-5)
    entropy = -(p * p.clamp_min(1e-30).log()).sum(1)  # nats
    np.testing.assert_allclose(entropy.exp().numpy(), 15.0, rtol=1e-3)


def test_affinities_are_symmetric_and_sum_to_one():
    x = _points(120)
    p = T.affinities(x, 10.0)
    dense = p.toarray()
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    assert dense.sum() == pytest.approx(1.0) and (np.diag(dense) == 0).all()
    # p_ij = (p(j|i) + p(i|j)) / 2N from the conditional probabilities over 31 neighbours
    d2, idx = T.nearest_neighbours(torch.as_tensor(x), 31)
    cond = np.zeros((120, 120))
    np.put_along_axis(cond, idx.numpy(), T.conditional_probabilities(d2, 10.0).numpy(), axis=1)
    np.testing.assert_allclose(dense, (cond + cond.T) / 240, atol=1e-8)


def test_attraction_is_the_sparse_sum():
    x, y = _points(150), np.random.default_rng(1).normal(size=(150, 2)) * 3
    p = T.affinities(x, 10.0).toarray()
    diff = y[:, None, :] - y[None]
    w = 1 / (1 + (diff ** 2).sum(-1))
    want = ((p * w)[..., None] * diff).sum(1)
    # p in float32: each term within 1e-7 of its size, so a sum that cancels is within 1e-7 of the largest force
    np.testing.assert_allclose(T.attraction(y, T.upper_triangle(T.affinities(x, 10.0))), want, rtol=1e-6,
                               atol=1e-7 * np.abs(want).max())


@pytest.mark.parametrize("scale", [0.05, 3.0, 30.0])  # early (a blob), middle and late layouts
def test_grid_repulsion_is_close_to_the_exact_sum(scale):
    y = np.random.default_rng(2).normal(size=(800, 2)) * scale
    diff = y[:, None, :] - y[None]
    w = 1 / (1 + (diff ** 2).sum(-1))
    exact = ((w * w)[..., None] * diff).sum(1)
    z_exact = w.sum() - len(y)
    force, z = T.repulsion(y)
    assert z == pytest.approx(z_exact, rel=0.01)
    assert np.linalg.norm(force - exact) / np.linalg.norm(exact) < 0.08


def test_tsne_separates_clusters_and_reports_its_progress():
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 10, (4, 10))
    x = np.concatenate([c + rng.normal(size=(60, 10)) for c in centres]).astype(np.float32)
    labels = np.repeat(np.arange(4), 60)
    seen = []
    y = T.tsne(x, 20.0, early_iter=100, n_iter=200, tolerance=None,
               callback=lambda it, total, layout: seen.append((it, total, layout)))
    assert y.shape == (240, 2) and np.isfinite(y).all()
    assert knn_accuracy(y, labels) == 1.0
    # the PCA start comes first, before the neighbour search, then every 10 iterations
    assert [s[0] for s in seen] == list(range(0, 301, 10)) and all(s[1] == 300 for s in seen)
    np.testing.assert_allclose(seen[0][2], T.pca_init(x))
    np.testing.assert_array_equal(seen[-1][2], y)
    assert np.ptp(seen[1][2]) < np.ptp(y)  # the layout grows out of the tiny PCA start
    # deterministic, and a callback returning False stops early with the layout so far
    stopped = T.tsne(x, 20.0, early_iter=100, n_iter=200, tolerance=None,
                     callback=lambda it, total, layout: it < 50)
    assert np.ptp(stopped) < np.ptp(y)
    np.testing.assert_array_equal(T.tsne(x, 20.0, early_iter=100, n_iter=200, tolerance=None), y)


def test_kl_divergence_is_the_direct_sum():
    x, y = _points(150), np.random.default_rng(5).normal(size=(150, 2)) * 2
    p = T.affinities(x, 10.0)
    dense = p.toarray()
    w = 1 / (1 + ((y[:, None] - y[None]) ** 2).sum(-1))
    np.fill_diagonal(w, 0.0)
    q = w / w.sum()
    nz = dense > 0
    want = (dense[nz] * np.log(dense[nz] / q[nz])).sum()
    assert T.kl_divergence(y, p, w.sum()) == pytest.approx(want, rel=1e-7)
    # as the t-SNE loop gets it: the log sum from the attraction's own pass over the upper triangle (float32 p)
    force, log_sum = T.attraction(y, T.upper_triangle(p), with_log_sum=True)
    np.testing.assert_array_equal(force, T.attraction(y, T.upper_triangle(p)))
    p_log_p = float(np.sum(p.data * np.log(p.data)))
    assert T.kl_from_terms(p_log_p, log_sum, w.sum()) == pytest.approx(want, rel=1e-6)


def test_tsne_stops_once_the_kl_divergence_stops_falling():
    rng = np.random.default_rng(6)
    x = np.concatenate([c + rng.normal(size=(80, 6)) for c in rng.normal(0, 8, (3, 6))]).astype(np.float32)
    kls, seen = [], []
    real = T.kl_from_terms

    def spy(p_log_p, log_sum, z):
        kls.append(real(p_log_p, log_sum, z))
        return kls[-1]

    import unittest.mock
    with unittest.mock.patch.object(T, "kl_from_terms", spy):
        y = T.tsne(x, 15.0, early_iter=100, n_iter=900, tolerance=0.01,
                   callback=lambda it, total, layout: seen.append(it))
    stop = seen[-1]
    assert stop < 1000, "a layout of three clusters converges long before 1,000 iterations"
    assert stop == 100 + T.KL_EVERY * (len(kls) - 1) + 1  # checked every KL_EVERY iterations after exaggeration
    assert kls[-2] - kls[-1] < 0.01 * kls[-1] and all(a - b >= 0.01 * b for a, b in zip(kls[:-2], kls[1:-1]))
    assert knn_accuracy(y, np.repeat(np.arange(3), 80)) == 1.0


def test_clustered_neighbours_find_almost_all_exact_ones():
    rng = np.random.default_rng(7)
    x = torch.as_tensor(np.concatenate([c + rng.normal(size=(600, 8)) for c in rng.normal(0, 3, (10, 8))]),
                        dtype=torch.float32)
    d_exact, i_exact = T.exact_neighbours(x, 30)
    d2, idx = T.nearest_neighbours(x, 30, exact_up_to=1000)  # 6,000 points: the clustered search
    recall = (idx[:, :, None] == i_exact[:, None, :]).any(2).float().mean().item()
    assert recall > 0.95
    assert not (idx == torch.arange(len(x))[:, None]).any()  # never one's own neighbour
    assert all(len(set(row)) == 30 for row in idx.tolist())  # no neighbour twice
    assert (d2[:, 1:] >= d2[:, :-1]).all()  # nearest first
    torch.testing.assert_close(d2, ((x[:, None] - x[idx]) ** 2).sum(-1), rtol=1e-4, atol=1e-3)  # true distances
    assert (d2 >= d_exact - 1e-3).all()  # each found one no nearer than the exact one of its rank
    # cells too small to hold k candidates compare with every point, a query's chunks past the first too
    tiny = x[:60]
    for k, chunk in ((50, 1024), (20, 3)):
        d2, idx = T.clustered_neighbours(tiny, k, chunk=chunk)
        assert not (idx == torch.arange(len(tiny))[:, None]).any() and all(len(set(r)) == k for r in idx.tolist())
        torch.testing.assert_close(d2, ((tiny[:, None] - tiny[idx]) ** 2).sum(-1), rtol=1e-4, atol=1e-3)


def test_cosine_metric_ignores_the_length_of_codes_and_wide_codes_are_reduced():
    x = _points(100)
    scaled = x * np.random.default_rng(4).uniform(0.5, 5, (100, 1)).astype(np.float32)
    a, b = T.prepare(x, "cosine"), T.prepare(scaled, "cosine")
    np.testing.assert_allclose(a, b, atol=1e-6)
    cos = x @ x.T / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(x, axis=1))
    np.testing.assert_allclose(((a[:, None] - a[None]) ** 2).sum(-1), 2 * (1 - cos), atol=1e-5)
    wide = _points(100, 80)
    reduced = T.prepare(wide)
    assert reduced.shape == (100, 50)
    # the 50 leading components keep most of the pairwise distances (80 isotropic dims: roughly 50/80 of them)
    ratio = ((reduced[:, None] - reduced[None]) ** 2).sum(-1).sum() / ((wide[:, None] - wide[None]) ** 2).sum(-1).sum()
    assert 0.6 < ratio < 1.0
    with pytest.raises(ValueError, match="unknown metric"):
        T.prepare(x, "manhattan")


def test_prepared_affinities_are_computed_once_even_when_threads_ask_together(monkeypatch):
    import threading
    import time
    x = _points(200, seed=11)
    calls = []
    real = T.affinities

    def slow(rows, perplexity):
        calls.append(perplexity)
        time.sleep(0.2)  # long enough for the other threads to ask while this one computes
        return real(rows, perplexity)

    monkeypatch.setattr(T, "affinities", slow)
    results = []
    threads = [threading.Thread(target=lambda: results.append(T.prepared(x, 15.0))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [15.0] and len(results) == 3
    assert all(r[1] is results[0][1] for r in results)
    expected = real(T.prepare(x), 15.0)
    assert (abs(results[0][1] - expected)).max() == 0
    assert T.prefetch(x, 15.0) is None  # already there: nothing started
    # other data, perplexity or metric are other entries; a prefetch computes one in the background
    thread = T.prefetch(x, 16.0, delay=0)
    assert thread is not None
    thread.join()
    assert calls == [15.0, 16.0]
    T.prepared(x, 16.0)
    assert calls == [15.0, 16.0]


def test_a_prefetch_asked_again_within_its_delay_gives_way_to_the_newer_one(monkeypatch):
    """A slider moved step by step asks for a search at each step; only the last one computes."""
    x = _points(150, seed=13)
    calls = []
    real = T.affinities
    monkeypatch.setattr(T, "affinities", lambda rows, perplexity: calls.append(perplexity) or real(rows, perplexity))
    first = T.prefetch(x, 21.0, delay=0.3)
    second = T.prefetch(x, 22.0, delay=0.3)
    first.join()
    second.join()
    assert calls == [22.0]
    assert T.prefetch(x, 22.0) is None  # computed and kept
    third = T.prefetch(x, 23.0, delay=0.3)
    assert T.prefetch(x, 23.0, delay=0.3) is None  # the same asked again (a rerun) neither postpones nor repeats it
    third.join()
    assert calls == [22.0, 23.0]  # alone in its delay, it computes


def test_a_failed_preparation_is_not_kept(monkeypatch):
    x = _points(120, seed=12)

    def broken(rows, perplexity):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(T, "affinities", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        T.prepared(x, 9.0)
    monkeypatch.undo()
    rows, p = T.prepared(x, 9.0)  # asked again: computed, not the stored error
    assert p.shape == (120, 120) and abs(p.sum() - 1) < 1e-6


def test_codes_that_are_all_one_point_get_a_message_not_a_nan():
    with pytest.raises(ValueError, match="every code is the same point"):
        T.tsne(np.ones((40, 4), np.float32), 5.0, early_iter=5, n_iter=5)


def test_prepared_keeps_only_the_newest_entries(monkeypatch):
    """Each entry for 70,000 points holds 136 MB: the oldest go once more than PREPARED_KEEP are made."""
    import collections
    monkeypatch.setattr(T, "_prepared", collections.OrderedDict())
    xs = [_points(60, seed=20 + i) for i in range(T.PREPARED_KEEP + 2)]
    for x in xs:
        T.prepared(x, 5.0)
    kept = list(T._prepared)
    assert kept == [T._key(x, 5.0, "euclidean") for x in xs[-T.PREPARED_KEEP:]]
    T.prepared(xs[-T.PREPARED_KEEP], 5.0)  # asked again: the newest now, so the other one goes first
    T.prepared(_points(60, seed=40), 5.0)
    assert T._key(xs[-T.PREPARED_KEEP], 5.0, "euclidean") in T._prepared
