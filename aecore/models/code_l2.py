"""Autoencoder with an L2 penalty on the code (lecture notes of seed 004): codes gather near 0, so decoding points
drawn near the origin of code space, as the Latent space page's grid does, gives digits rather than noise."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..registry import register_model
from .stacked import StackedAutoencoder, StackedConfig


def code_l2_penalty(code: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight`` * squared L2 norm of the code, averaged over the batch: (B, K) -> scalar."""
    return weight * code.pow(2).sum(dim=1).mean()


@dataclass(frozen=True)
class CodeL2Config(StackedConfig):
    code_size: int = param(2, min=1, max=1024, step=1, help="units in the code layer (2: a plane you can grid)")
    code_activation: str = param("linear", choices=("linear", "tanh", "gelu"), help="activation of the code layer")
    code_l2: float = param(1e-3, min=1e-6, max=1.0, log=True, help="weight of the squared L2 norm of the code")


@register_model("code-l2", CodeL2Config, "Autoencoder with an L2 penalty on the code: codes near 0 decode to digits",
                presets={"2-D code (for the decoder grid)": {}, "30-D code": {"code_size": 30}})
class CodeL2Autoencoder(StackedAutoencoder):
    def penalties(self, x: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"code_l2": code_l2_penalty(code, self.config.code_l2)}
