"""Input corruptions for denoising autoencoders (Vincent et al. 2008, 2010) and the denoising demo."""
from __future__ import annotations

import torch

NOISE_KINDS = ("gaussian", "masking", "dropout", "salt-pepper")
LEVEL_HELP = "sigma for gaussian; the share of corrupted pixels for masking, dropout and salt-and-pepper"
DROPOUT_HELP = "dropout is masking with the kept pixels scaled by 1 / (1 - level), as Keras' Dropout"


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of pixels ``x`` in [0, 1].

    ``gaussian``: add N(0, level^2) noise, unclipped (Vincent et al. 2010's additive noise, Keras' GaussianNoise in
    seed 002). ``masking``: set each pixel to 0 with probability ``level`` (Vincent's masking noise: the kept pixels
    unchanged). ``dropout``: the same, the kept pixels scaled by 1 / (1 - level), as Keras' Dropout in seed 002.
    ``salt-pepper``: set each pixel with probability ``level`` to 0 or 1, equally likely. Gaussian and dropout
    leave [0, 1] so that each pixel keeps its mean: clipped Gaussian noise brightens the black background (by
    0.12 on average at 0.3), unscaled masking darkens the digits, and a denoiser trained on either met clean test
    images unlike its inputs (bench/README, session 46).
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise {kind!r}; valid: {', '.join(NOISE_KINDS)}")
    if level <= 0:
        return x.clone()
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + level * noise
    hit = torch.rand(x.shape, generator=generator, device=x.device) < level
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    if kind == "dropout":
        return x.masked_fill(hit, 0.0) / (1.0 - level) if level < 1 else torch.zeros_like(x)
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def psnr(clean: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image for pixels in [0, 1]: (B, D), (B, D) -> (B,)."""
    mse = (clean - other).pow(2).mean(dim=1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)
