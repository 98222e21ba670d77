"""Reconstruction losses and the penalties that several model families share.

Every term returns a scalar already multiplied by its weight, so the named terms of a model's output add up to the
loss that is minimised and each can be plotted by name.
"""
from __future__ import annotations

import math

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


# --- regularizers shared by the sparse, L2 and contractive families -------------------------------------------------

def l1_activity_penalty(code: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight`` * sum over units of |code|, averaged over the batch (Keras' ``ActivityRegularization(l1=...)``)."""
    return weight * code.abs().sum(dim=1).mean()


def kl_sparsity_penalty(code: torch.Tensor, rho: float, beta: float) -> torch.Tensor:
    """``beta`` * sum_j KL(rho || rho_hat_j), rho_hat_j the mean activation of unit j over the batch (UFLDL's sparse
    autoencoder; the code must lie in (0, 1)). (B, K) -> scalar."""
    rho_hat = code.mean(dim=0).clamp(EPS, 1 - EPS)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return beta * kl.sum()


def weight_decay_penalty(weights: list[torch.Tensor], weight: float) -> torch.Tensor:
    """``weight``/2 * the summed squares of ``weights`` (biases are not decayed)."""
    return 0.5 * weight * sum(w.pow(2).sum() for w in weights)


def sigmoid_jacobian_norm2(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm of the Jacobian of ``h = sigmoid(x W^T + b)`` per sample, in closed form (Rifai et al.
    2011, eq. 5): sum_j (h_j (1 - h_j))^2 sum_i W_ji^2. h: (B, K), w: (K, D) -> (B,)."""
    return (h * (1 - h)).pow(2) @ w.pow(2).sum(dim=1)


# --- variational and adversarial terms --------------------------------------------------------------------------------

def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension, in closed form (Kingma & Welling 2014, appendix B):
    0.5 (mu^2 + sigma^2 - 1 - log sigma^2). (B, K) -> (B, K) nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def anneal_weight(step: int, steps: int, schedule: str) -> float:
    """A KL weight in [0, 1] at global step ``step``: ``linear`` ramps over ``steps`` (Bowman et al. 2016 use a
    ramp); ``logistic`` is Bowman's sigmoid, 1 / (1 + exp(-k (step - steps / 2))) with k = 10 / steps, so it is
    0.007 at 0, 0.5 half-way and 0.993 at ``steps``; ``cyclical`` ramps linearly over the first half of every
    ``steps``-long cycle and holds 1 for the second (Fu et al. 2019). ``steps`` <= 0: always 1."""
    if steps <= 0:
        return 1.0
    if schedule == "logistic":
        return 1.0 / (1.0 + math.exp(-10.0 / steps * (step - steps / 2)))
    if schedule == "cyclical":
        return min(1.0, (step % steps) / (steps / 2))
    return min(1.0, step / steps)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) summed over pixels, for x in [0, 1] (binary cross-entropy with the sign flipped).
    (..., D) -> (...) nats."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
