"""PCA as the linear baseline, in closed form: the code is the projection on the top principal axes and the
reconstruction maps it back (Hinton & Salakhutdinov 2006 compare their deep autoencoder against it)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import ConfigError, param
from ..registry import register_model
from .base import AEConfig, Autoencoder, Capabilities


@dataclass(frozen=True)
class PCAConfig(AEConfig):
    code_size: int = param(30, min=1, max=4096, step=1, help="number of principal components kept")

    def validate(self) -> None:
        if self.code_size > self.input_dim:
            raise ConfigError(f"code_size {self.code_size} exceeds the input dimension {self.input_dim}")


@register_model("pca", PCAConfig, "PCA, fitted in closed form: the linear baseline")
class PCA(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, filters=True)
    output_kind = "linear"
    closed_form = True

    def __init__(self, config: PCAConfig):
        super().__init__(config)
        d, k = config.input_dim, config.code_size
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.eye(d)[:k].clone())  # (K, D), orthonormal rows

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.components.t()  # (B, D) -> (B, K)

    def encoder_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        return self.components.expand(len(x), -1, -1)  # the same projection everywhere: (B, K, D)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return code @ self.components + self.mean  # (B, K) -> (B, D)

    @torch.no_grad()
    def fit_closed_form(self, x: torch.Tensor) -> None:
        """Top eigenvectors of the covariance, computed in float64 for accuracy."""
        x64 = x.double()
        mean = x64.mean(dim=0)
        centred = x64 - mean
        cov = centred.t() @ centred / max(len(x) - 1, 1)
        _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
        top = vecs[:, -self.code_size:].flip(1).t()  # (K, D), largest first
        self.mean.copy_(mean.to(self.mean.dtype))
        self.components.copy_(top.to(self.components.dtype))

    def first_layer_weights(self) -> torch.Tensor:
        return self.components

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)
