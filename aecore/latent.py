"""What codes mean: projections to 2-D with their quality scores, decoder grids over code space, interpolation
between codes, and retrieval by code distance. UI-free; codes come from each family's ``features``."""
from __future__ import annotations

import itertools
import sys
import threading
from typing import Callable

import numpy as np
import torch

PROJECTIONS = ("pca", "tsne", "umap")


class ProjectionError(ValueError):
    """Settings that cannot work for the data at hand (too few points for the perplexity, say)."""


def _device(model) -> torch.device:
    return next(itertools.chain(model.parameters(), model.buffers())).device


@torch.no_grad()
def encode_all(model, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Codes for downstream use of every row of ``x``: (N, D) -> (N, K)."""
    model.eval()
    x = torch.as_tensor(x)
    return torch.cat([model.features(x[i:i + batch_size].to(_device(model))).float().cpu()
                      for i in range(0, len(x), batch_size)]).numpy()


Progress = Callable[[float, "np.ndarray | None"], "bool | None"]


def check_projection(n: int, method: str, *, perplexity: float = 30.0, n_neighbors: int = 15, **_) -> None:
    """Raise ``ProjectionError`` with a reason if ``method`` cannot project ``n`` points with these settings."""
    if method not in PROJECTIONS:
        raise ProjectionError(f"unknown projection {method!r}; valid: {', '.join(PROJECTIONS)}")
    if n < 3:
        raise ProjectionError(f"need at least 3 points to project, got {n}")
    if method == "tsne" and not 1 <= perplexity < n:
        raise ProjectionError(f"perplexity {perplexity:g} needs more than {perplexity:g} points; there are {n}. "
                              f"Lower the perplexity below {n}, or project more points where the data has them")
    if method == "umap" and not 2 <= n_neighbors < n:
        raise ProjectionError(f"{n_neighbors} neighbours need more than {n_neighbors} points; there are {n}. "
                              f"Lower the neighbours below {n}, or project more points where the data has them")


def project(codes: np.ndarray, method: str, *, perplexity: float = 30.0, n_neighbors: int = 15,
            min_dist: float = 0.1, metric: str = "euclidean", progress: Progress | None = None) -> np.ndarray:
    """(N, K) codes -> (N, 2) by PCA, t-SNE (:mod:`aecore.tsne`) or UMAP (umap-learn on exact neighbours).

    ``progress(fraction, layout_so_far)`` is called as the work goes on (t-SNE passes its layout every few
    iterations, UMAP None); returning False stops a t-SNE early with the layout so far.
    """
    n = len(codes)
    check_projection(n, method, perplexity=perplexity, n_neighbors=n_neighbors)
    report = progress or (lambda fraction, layout: None)
    if method == "pca":  # the same coordinates the decoder grid uses
        return principal_axes(codes)[2]
    if method == "tsne":
        if "aecore.tsne" not in sys.modules:  # the PCA start on screen while the module loads (0.3 s the first time)
            report(0.0, pca_init(prepare(codes, metric)))
        from .tsne import tsne
        return tsne(codes, perplexity, metric=metric, every=5,
                    callback=lambda it, total, layout: report(it / total, layout))
    return _umap(codes, n_neighbors, min_dist, metric, report)


# t-SNE's start, here rather than in aecore.tsne so that a page can draw it before that module (numba: 0.3 s) loads
def _principal_directions(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` leading principal directions of the centred rows ``x`` as (D, k), from the D x D covariance."""
    _, vectors = torch.linalg.eigh(x.T @ x)
    return vectors[:, -k:].flip(1)


def pca_init(x: np.ndarray) -> np.ndarray:
    """The first two principal components, scaled so the first has standard deviation 1e-4 (openTSNE, sklearn)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    xt = xt - xt.mean(0)
    y = xt @ _principal_directions(xt, 2)
    y = y * torch.sign(y.sum(0) + 1e-30)  # a fixed orientation
    spread = float(y[:, 0].std()) if len(y) > 1 else 0.0
    if not spread > 0.0:  # a NaN from the scaling below failed later, as "cannot convert float NaN to integer"
        raise ValueError("every code is the same point, so there is nothing to lay out (the encoder gives all these "
                         "images one code)")
    return (y / spread * 1e-4).numpy()


def prepare(x: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Rows ready for the neighbour search: unit length for the cosine metric (squared distances between unit
    vectors are 2 x the cosine distance), and at most 50 principal components, the usual reduction."""
    x = np.asarray(x, dtype=np.float32)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    elif metric != "euclidean":
        raise ValueError(f"unknown metric {metric!r}; valid: euclidean, cosine")
    if x.shape[1] > 50:
        xt = torch.as_tensor(x, dtype=torch.float64)
        xt = xt - xt.mean(0)
        x = (xt @ _principal_directions(xt, 50)).float().numpy()
    return x


def prefetch_tsne(codes: np.ndarray, perplexity: float, metric: str,
                  wrap: Callable[[Callable], Callable] = lambda fn: fn, delay: float = 1.0) -> threading.Thread | None:
    """:func:`aecore.tsne.prefetch`, without importing :mod:`aecore.tsne` (numba and scipy's FFT and graph code:
    0.3 s, 90 MB) in the caller: the first time, a thread imports it ``delay`` seconds on, so that a page showing PCA
    neither waits for it nor has it compete with the user's first change. The import runs at the thread's own
    priority: ``wrap`` (which may lower it) applies to the search only, since a thread that the scheduler keeps
    waiting while it holds the import lock would keep every other import waiting too."""
    def start() -> threading.Thread | None:
        from .tsne import prefetch
        return prefetch(codes, perplexity, metric, wrap=wrap)
    if "aecore.tsne" in sys.modules:
        return start()
    timer = threading.Timer(delay, start)
    timer.name, timer.daemon = "aecore-tsne-import", True
    timer.start()
    return timer


_umap_compiled = False  # umap-learn's numba code is compiled in this process (its first UMAP also compiles it)


def umap_compiled() -> bool:
    return _umap_compiled


def _umap(codes: np.ndarray, n_neighbors: int, min_dist: float, metric: str, report: Progress) -> np.ndarray:
    """umap-learn given our exact neighbours, which skips its approximate search and that search's numba
    compilation. Its parallel optimisation (no random_state) is twice as fast on 2 cores, and not bitwise
    repeatable."""
    import warnings

    import umap
    from .tsne import nearest_neighbours
    x = torch.as_tensor(codes, dtype=torch.float32)
    if metric == "cosine":
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    report(0.05, None)
    d2, idx = nearest_neighbours(x, n_neighbors - 1)
    n = len(codes)
    knn_idx = np.concatenate([np.arange(n)[:, None], idx.numpy()], 1)  # umap-learn counts each point first
    dist = d2.numpy() / 2 if metric == "cosine" else np.sqrt(d2.numpy())  # |a-b|^2 = 2 (1 - cos) on unit vectors
    knn_dist = np.concatenate([np.zeros((n, 1), np.float32), dist], 1)
    report(0.15, None)
    with warnings.catch_warnings():  # its notes on precomputed neighbours and on parallelism
        warnings.simplefilter("ignore")
        out = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                        precomputed_knn=(knn_idx, knn_dist, None)).fit_transform(codes)
    report(1.0, None)
    global _umap_compiled
    _umap_compiled = True
    return out.astype(np.float64)


def warm_up(umap: bool = True) -> None:
    """Compile the numba code that t-SNE (and, with ``umap``, UMAP) run, on a few random points: umap-learn's first
    call in a process otherwise spends 5-30 s there. Meant for a background thread at server start."""
    from .tsne import tsne
    codes = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    tsne(codes, 10, early_iter=2, n_iter=2)
    if umap:
        project(codes, "umap", n_neighbors=15)


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour majority vote in ``points``."""
    from sklearn.neighbors import NearestNeighbors
    idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)[:, 1:]
    votes = labels[idx]  # (N, k)
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return float((pred == labels).mean())


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """scikit-learn's trustworthiness of the embedding ``low`` of ``high`` (1 = neighbours all preserved)."""
    from sklearn.manifold import trustworthiness as tw
    return float(tw(high, low, n_neighbors=k))


def precision_at_k(codes: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's k nearest other points (Euclidean) that have its label."""
    from sklearn.neighbors import NearestNeighbors
    idx = NearestNeighbors(n_neighbors=k + 1).fit(codes).kneighbors(codes, return_distance=False)[:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


def nearest(codes: np.ndarray, query: int | np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` points nearest to ``query``, nearest first: a point's index (itself excluded) or a code
    from elsewhere."""
    exclude = int(query) if np.ndim(query) == 0 else None
    diff = codes - (codes[exclude] if exclude is not None else query)
    d = np.einsum("ij,ij->i", diff, diff)  # squared distances: half the time of np.linalg.norm's (10,000 x 784)
    order = np.argsort(d, kind="stable")
    if exclude is not None:  # not only last: with k >= the number of points it was still among them
        order = order[order != exclude]
    return order[:k]


def principal_axes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (K,), the two leading principal directions (2, K) and the codes' coordinates along them (N, 2)."""
    mean = codes.mean(axis=0)
    centred = codes - mean
    if codes.shape[1] == 1:
        axes = np.array([[1.0], [0.0]])
    else:
        # the leading eigenvectors of the K x K scatter matrix, which are the SVD's right singular vectors: the
        # SVD's N x K factors (10,000 x 1,000 for a k-sparse run) were part of a 180 MB rise of the server's peak
        scatter = (centred.T @ centred).astype(np.float64)
        _, vecs = np.linalg.eigh(scatter)  # ascending eigenvalues
        axes = vecs[:, ::-1][:, :2].T.astype(codes.dtype)
        axes *= np.sign(axes[np.arange(2), np.abs(axes).argmax(1)])[:, None]  # a fixed sign: largest entry > 0
    return mean, axes, centred @ axes.T


@torch.no_grad()
def decoder_grid(model, box: tuple[float, float, float, float], n: int, mean: np.ndarray | None = None,
                 axes: np.ndarray | None = None) -> np.ndarray:
    """Decode an n x n grid over ``box`` = (x0, x1, y0, y1): in code space for a 2-D code, else along ``axes``
    (2, K) through ``mean`` (K,). Rows go from y1 (top) to y0. Returns (n*n, D) pixels in [0, 1]."""
    x0, x1, y0, y1 = box
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y1, y0, n))
    coords = np.column_stack([gx.ravel(), gy.ravel()])  # (n*n, 2)
    codes = coords if axes is None else mean + coords @ axes
    model.eval()
    from .losses import to_pixels
    z = torch.as_tensor(codes, dtype=torch.float32).to(_device(model))
    return to_pixels(model.decode(z), model.output_kind).cpu().numpy()


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between vectors a and b for each t in [0, 1]: (K,), (K,), (T,) -> (T, K). The norm
    moves linearly from |a| to |b| (equal norms stay equal), the direction along the great circle."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    ua, ub = a / max(na, 1e-12), b / max(nb, 1e-12)
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    t = np.asarray(t, dtype=np.float64)[:, None]
    if omega < 1e-6:
        direction = (1 - t) * ua + t * ub
    else:
        direction = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    return direction * ((1 - t) * na + t * nb)


def path(a: np.ndarray, b: np.ndarray, steps: int, mode: str = "linear") -> np.ndarray:
    """``steps`` points from a to b, evenly in t, on a line (``linear``) or by :func:`slerp`: (K,), (K,) -> (steps, K)."""
    t = np.linspace(0.0, 1.0, steps)
    return slerp(a, b, t) if mode == "slerp" else (1 - t)[:, None] * a + t[:, None] * b


@torch.no_grad()
def interpolate(model, xa: np.ndarray, xb: np.ndarray, steps: int, mode: str = "linear") -> dict[str, np.ndarray]:
    """Decode codes interpolated between two images (``linear`` or ``slerp``), with the pixel blend for contrast.
    Returns ``decoded`` (steps, D) and ``blend`` (steps, D)."""
    model.eval()
    device = _device(model)
    za, zb = (model.encode(torch.as_tensor(v[None]).to(device))[0].cpu().numpy() for v in (xa, xb))
    t = np.linspace(0.0, 1.0, steps)
    codes = path(za, zb, steps, mode)
    from .losses import to_pixels
    decoded = to_pixels(model.decode(torch.as_tensor(codes, dtype=torch.float32).to(device)), model.output_kind)
    return {"decoded": decoded.cpu().numpy(), "blend": (1 - t)[:, None] * xa + t[:, None] * xb}

