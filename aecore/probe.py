"""Unsupervised pretraining with few labels (seeds 000-002): how well a classifier does with n labels per class when
it starts from a trained autoencoder's encoder, against the same network trained from scratch and against PCA."""
from __future__ import annotations

import copy
import itertools
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import create_model
from .seeding import seeded_init

METHODS = ("scratch", "frozen codes + logistic", "fine-tuned encoder", "PCA codes + logistic")


def _device(model) -> torch.device:
    return next(itertools.chain(model.parameters(), model.buffers())).device


def labelled_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Indices of ``per_class`` random training samples of each class (all of them for ``None``)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), size=min(per_class, int((labels == c).sum())),
                                      replace=False) for c in np.unique(labels)])


def _fit_network(encoder_model, x: torch.Tensor, y: torch.Tensor, n_classes: int, steps: int, seed: int,
                 lr: float = 1e-3, batch_size: int = 64,
                 progress: Callable[[float], None] | None = None) -> nn.Module:
    """Train ``encoder_model.features`` and a new softmax head end to end on (x, y); returns the head.
    ``progress(fraction of the steps)`` is called every 50 steps."""
    with torch.no_grad():
        k = encoder_model.features(x[:1]).shape[1]
    with seeded_init(seed):
        head = nn.Linear(k, n_classes).to(x.device)
    params = [p for p in itertools.chain(encoder_model.parameters(), head.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    encoder_model.train()
    for step in range(steps):
        idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen).to(x.device)
        loss = F.cross_entropy(head(encoder_model.features(x[idx])), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None and (step + 1) % 50 == 0:
            progress((step + 1) / steps)
    encoder_model.eval()
    return head


@torch.no_grad()
def _accuracy(encoder_model, head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    pred = torch.cat([head(encoder_model.features(x[i:i + 4096])).argmax(1) for i in range(0, len(x), 4096)])
    return float((pred == y).float().mean())


def _logistic(train_codes: np.ndarray, y: np.ndarray, test_codes: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of logistic regression on codes centred per unit and divided by one overall scale (their
    root mean square).

    One scale for all units, not one per unit: standardising each unit blows up the rare ones of a sparse code
    (k-sparse features: 73% against 83% test accuracy with 10 labels per class, 96.6% against 97.3% with all), and
    dense codes score within 0.4% either way."""
    from sklearn.linear_model import LogisticRegression
    centre = train_codes.mean(0)
    scale = float(np.sqrt(np.mean((train_codes - centre) ** 2))) or 1.0
    clf = LogisticRegression(max_iter=1000).fit((train_codes - centre) / scale, y)
    return float(clf.score((test_codes - centre) / scale, y_test))


def few_label_experiment(model, dataset, labels_per_class: list[int | None], seeds: int = 3, steps: int = 300,
                         progress: Callable[[float], None] | None = None) -> list[dict]:
    """One row per (method, labels per class, seed): ``accuracy`` on the test set. ``model`` is a trained
    autoencoder (left untouched); the from-scratch network is the same family and config, freshly initialised."""
    from .latent import encode_all
    device = _device(model)
    x_tr, y_tr = dataset.x_train, dataset.y_train
    x_te_t = torch.as_tensor(dataset.x_test).to(device)
    y_te_t = torch.as_tensor(dataset.y_test).long().to(device)
    codes_tr, codes_te = encode_all(model, x_tr), encode_all(model, dataset.x_test)
    from sklearn.decomposition import PCA
    pca = PCA(n_components=min(codes_tr.shape[1], x_tr.shape[1]), random_state=0).fit(x_tr)  # unsupervised, as the AE
    pca_tr, pca_te = pca.transform(x_tr), pca.transform(dataset.x_test)
    n_classes = int(max(y_tr.max(), dataset.y_test.max())) + 1
    rows, total, done = [], len(labels_per_class) * seeds, 0

    def report(start: float, width: float):
        """Progress within the current point: the networks' steps take most of its time, the logistic fits little."""
        if progress is None:
            return None
        return lambda fraction: progress((done + start + width * fraction) / total)

    for per_class in labels_per_class:
        for seed in range(seeds):
            idx = labelled_subset(y_tr, per_class, seed)
            x = torch.as_tensor(x_tr[idx]).to(device)
            y = torch.as_tensor(y_tr[idx]).long().to(device)
            tag = {"labels_per_class": per_class if per_class is not None else "all", "seed": seed, "n": len(idx)}
            with seeded_init(seed):
                scratch = create_model(model.registry_name, **vars(model.config)).to(device)
            head = _fit_network(scratch, x, y, n_classes, steps, seed, progress=report(0.0, 0.45))
            rows.append({"method": "scratch", **tag, "accuracy": _accuracy(scratch, head, x_te_t, y_te_t)})
            rows.append({"method": "frozen codes + logistic", **tag,
                         "accuracy": _logistic(codes_tr[idx], y_tr[idx], codes_te, dataset.y_test)})
            tuned = copy.deepcopy(model)
            head = _fit_network(tuned, x, y, n_classes, steps, seed, progress=report(0.5, 0.45))
            rows.append({"method": "fine-tuned encoder", **tag, "accuracy": _accuracy(tuned, head, x_te_t, y_te_t)})
            rows.append({"method": "PCA codes + logistic", **tag,
                         "accuracy": _logistic(pca_tr[idx], y_tr[idx], pca_te, dataset.y_test)})
            done += 1
            if progress is not None:
                progress(done / total)
    return rows
