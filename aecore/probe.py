"""Unsupervised pretraining with few labels (seeds 000-002): how well a classifier does with n labels per class when
it starts from a trained autoencoder's encoder, against the same network trained from scratch and against PCA."""
from __future__ import annotations

import copy
import math
import itertools
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .optim import adam, sgd
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


MIN_EPOCHS = 5  # passes over the labelled images, at least, for the networks of the few-label experiment


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
    opt = adam(params, lr, x.device)
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


def network_steps(n_labelled: int, steps: int, min_epochs: int = MIN_EPOCHS, batch_size: int = 64) -> int:
    """Optimiser steps for a network trained on ``n_labelled`` images: ``steps``, or ``min_epochs`` passes over them
    if that is more. 300 steps of 64 were a third of a pass over MNIST's 60,000: its "all" point scored 90.8 %
    from scratch and 88.5 % fine-tuned, against 97.1 % and 96.8 % after 5 passes (the seed recipe, bench/README)."""
    return max(steps, -(-min_epochs * n_labelled // batch_size))


def few_label_experiment(model, dataset, labels_per_class: list[int | None], seeds: int = 3, steps: int = 300,
                         progress: Callable[[float], None] | None = None) -> list[dict]:
    """One row per (method, labels per class, seed): ``accuracy`` on the test set. ``model`` is a trained
    autoencoder (left untouched); the from-scratch network is the same family and config, freshly initialised.
    Each network trains :func:`network_steps` steps."""
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
    subsets = {pc: [labelled_subset(y_tr, pc, seed) for seed in range(seeds)] for pc in labels_per_class}
    # progress counted in network steps (two networks a point), plus a little for each point's logistic fits
    cost = {pc: 2 * network_steps(len(subsets[pc][0]), steps) + 50 for pc in labels_per_class}
    total, rows, done = sum(cost.values()) * seeds, [], 0.0

    def report(start: float, width: float, of: float):
        """Progress within the current point: its networks' steps take most of its time, the logistic fits little."""
        if progress is None:
            return None
        return lambda fraction: progress((done + of * (start + width * fraction)) / total)

    for per_class in labels_per_class:
        for seed, idx in enumerate(subsets[per_class]):
            x = torch.as_tensor(x_tr[idx]).to(device)
            y = torch.as_tensor(y_tr[idx]).long().to(device)
            n_steps, of = network_steps(len(idx), steps), cost[per_class]
            tag = {"labels_per_class": per_class if per_class is not None else "all", "seed": seed, "n": len(idx)}
            with seeded_init(seed):
                scratch = create_model(model.registry_name, **vars(model.config)).to(device)
            head = _fit_network(scratch, x, y, n_classes, n_steps, seed, progress=report(0.0, 0.48, of))
            rows.append({"method": "scratch", **tag, "accuracy": _accuracy(scratch, head, x_te_t, y_te_t)})
            rows.append({"method": "frozen codes + logistic", **tag,
                         "accuracy": _logistic(codes_tr[idx], y_tr[idx], codes_te, dataset.y_test)})
            tuned = copy.deepcopy(model)
            head = _fit_network(tuned, x, y, n_classes, n_steps, seed, progress=report(0.5, 0.48, of))
            rows.append({"method": "fine-tuned encoder", **tag, "accuracy": _accuracy(tuned, head, x_te_t, y_te_t)})
            rows.append({"method": "PCA codes + logistic", **tag,
                         "accuracy": _logistic(pca_tr[idx], y_tr[idx], pca_te, dataset.y_test)})
            done += of
            if progress is not None:
                progress(min(done / total, 1.0))
    return rows


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Codes centred per unit (the training codes' means) and divided by one overall scale, their root mean square
    (see :func:`_logistic` for why one scale)."""
    centre = train.mean(0)
    scale = float(np.sqrt(np.mean((train - centre) ** 2))) or 1.0
    return [((a - centre) / scale).astype(np.float32) for a in (train, *others)]


def logistic_regression(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, max_iter: int = 500,
                        tol: float = 1e-7) -> nn.Linear:
    """Multinomial logistic regression fitted by full-batch L-BFGS: minimises mean cross-entropy +
    ``l2``/2 * ||W||^2 (bias not penalised), which is scikit-learn's objective with C = 1 / (l2 * N).

    A 60,000 x 1000 problem takes seconds here (tens of matrix products per second), against minutes for
    scikit-learn's lbfgs on 2 cores, so a validation sweep over ``l2`` is affordable."""
    with seeded_init(0):
        head = nn.Linear(x.shape[1], n_classes).to(x.device)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, tolerance_grad=tol,
                            tolerance_change=tol * 1e-2, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(x), y) + 0.5 * l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


@torch.no_grad()
def error_rate(head: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows of ``x`` whose arg-max class under ``head`` is not ``y``."""
    pred = torch.cat([head(x[i:i + 4096]).argmax(1) for i in range(0, len(x), 4096)])
    return float((pred != y).float().mean())


def split_validation(n: int, n_val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, validation) index sets of a training set of ``n``: the papers' 50,000 / 10,000 split of
    MNIST's 60,000 with ``n_val`` = 10,000."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def logistic_on_codes(train_codes: np.ndarray, y_train: np.ndarray, test_codes: np.ndarray, y_test: np.ndarray,
                      l2_grid: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2), n_val: int = 10_000,
                      progress: Callable[[float], None] | None = None) -> dict:
    """Frozen codes + logistic regression, as the k-sparse paper evaluates its features: the L2 weight picked on
    a validation split of the training set, then refitted on all of it; returns ``test_error``, ``l2`` and the
    validation error of each weight."""
    tr, va = split_validation(len(train_codes), min(n_val, len(train_codes) // 6))
    x_all, x_test = (torch.as_tensor(a) for a in standardise(train_codes, test_codes))
    y_all, y_te = torch.as_tensor(y_train).long(), torch.as_tensor(y_test).long()
    n_classes = int(max(y_all.max(), y_te.max())) + 1
    val_errors = {}
    for i, l2 in enumerate(l2_grid):
        head = logistic_regression(x_all[tr], y_all[tr], n_classes, l2)
        val_errors[l2] = error_rate(head, x_all[va], y_all[va])
        if progress is not None:
            progress((i + 1) / (len(l2_grid) + 1))
    best = min(val_errors, key=val_errors.get)
    head = logistic_regression(x_all, y_all, n_classes, best)
    if progress is not None:
        progress(1.0)
    return {"test_error": error_rate(head, x_test, y_te), "l2": best, "validation_errors": val_errors}


def fine_tune(encoder_model, dataset, epochs: int = 100, patience: int = 15, lr: float = 0.05,
              momentum: float = 0.9, batch_size: int = 100, n_val: int = 10_000, seed: int = 0,
              progress: Callable[[float], None] | None = None) -> dict:
    """Supervised fine-tuning of ``encoder_model.features`` with a new softmax layer on top, as the contractive
    paper does it (following Vincent et al. 2010): SGD with momentum on the training set less a validation split,
    the epoch of lowest validation error kept (early stopping, ``patience`` epochs without a better one), and that
    epoch's test error reported. ``encoder_model`` is changed in place. Returns ``test_error``,
    ``validation_error``, ``train_error`` (on the images it trained on), ``best_epoch``, ``epochs`` (trained) and
    per-epoch ``validation_errors``."""
    device = _device(encoder_model)
    x_all = torch.as_tensor(dataset.x_train).to(device)
    y_all = torch.as_tensor(dataset.y_train).long().to(device)
    x_te = torch.as_tensor(dataset.x_test).to(device)
    y_te = torch.as_tensor(dataset.y_test).long().to(device)
    tr, va = (torch.as_tensor(i).to(device) for i in split_validation(len(x_all), min(n_val, len(x_all) // 6), seed))
    n_classes = int(max(y_all.max(), y_te.max())) + 1
    with torch.no_grad():
        k = encoder_model.features(x_all[:1]).shape[1]
    with seeded_init(seed):
        head = nn.Linear(k, n_classes).to(device)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    net = nn.ModuleDict({"encoder": encoder_model, "head": head})
    classify = lambda x: head(encoder_model.features(x))  # noqa: E731
    opt = sgd(net.parameters(), lr, device, momentum=momentum)
    gen = torch.Generator().manual_seed(seed)
    best = (math.inf, 0, copy.deepcopy(net.state_dict()))
    val_errors: list[float] = []
    for epoch in range(1, epochs + 1):
        encoder_model.train()
        order = tr[torch.randperm(len(tr), generator=gen).to(device)]
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(classify(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        encoder_model.eval()
        val_errors.append(error_rate(classify, x_all[va], y_all[va]))
        if val_errors[-1] < best[0]:
            best = (val_errors[-1], epoch, copy.deepcopy(net.state_dict()))
        if progress is not None:
            progress(epoch / epochs)
        if epoch - best[1] >= patience:
            break
    net.load_state_dict(best[2])
    encoder_model.eval()
    return {"test_error": error_rate(classify, x_te, y_te), "validation_error": best[0],
            "train_error": error_rate(classify, x_all[tr], y_all[tr]), "best_epoch": best[1],
            "epochs": len(val_errors), "validation_errors": val_errors}
