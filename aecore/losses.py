"""Reconstruction losses and the penalties that several model families share.

Every term returns a scalar already multiplied by its weight, so the named terms of a model's output add up to the
loss that is minimised and each can be plotted by name.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-7


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, output_kind: str) -> torch.Tensor:
    """Mean per-pixel loss: BCE on logits (``output_kind="logits"``) or MSE on linear outputs."""
    if output_kind == "logits":
        return F.binary_cross_entropy_with_logits(recon, target)
    return F.mse_loss(recon, target)


def to_pixels(recon: torch.Tensor, output_kind: str) -> torch.Tensor:
    """Reconstruction in pixel space [0, 1]: sigmoid of logits, or a clamp of linear outputs."""
    return torch.sigmoid(recon) if output_kind == "logits" else recon.clamp(0.0, 1.0)


def per_image_errors(pixels: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image errors of reconstructions already in [0, 1]: (B, D) -> three (B,) tensors.

    ``bce``: mean binary cross-entropy per pixel; ``mse``: mean squared error per pixel; ``sse``: squared error
    summed over the image's pixels (the figure Hinton & Salakhutdinov 2006 report for MNIST).
    """
    p = pixels.clamp(EPS, 1 - EPS)
    bce = -(target * p.log() + (1 - target) * (1 - p).log()).mean(dim=1)
    sq = (pixels - target).pow(2)
    return {"bce": bce, "mse": sq.mean(dim=1), "sse": sq.sum(dim=1)}
