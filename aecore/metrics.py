"""Test metrics of a trained autoencoder."""
from __future__ import annotations

import itertools

import numpy as np
import torch

from .losses import per_image_errors


@torch.no_grad()
def per_sample_errors(model: torch.nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 2048,
                      device: torch.device | None = None) -> dict[str, np.ndarray]:
    """Per-image ``bce`` (mean per pixel), ``mse`` (mean per pixel) and ``sse`` (summed over pixels), (N,) each."""
    device = device or next(itertools.chain(model.parameters(), model.buffers())).device
    x = torch.as_tensor(x)
    was_training = model.training
    model.eval()
    parts: dict[str, list] = {"bce": [], "mse": [], "sse": []}
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        for k, v in per_image_errors(model.reconstruct(xb), xb).items():
            parts[k].append(v.cpu())
    model.train(was_training)
    return {k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in parts.items()}


def evaluate(model: torch.nn.Module, x: np.ndarray | torch.Tensor, **kw) -> dict[str, float]:
    """Mean BCE per pixel, MSE per pixel and squared error per image (summed over pixels) on ``x``."""
    errs = per_sample_errors(model, x, **kw)
    return {"bce": float(errs["bce"].mean()), "mse": float(errs["mse"].mean()),
            "sse_per_image": float(errs["sse"].mean()), "n": int(len(errs["bce"]))}
