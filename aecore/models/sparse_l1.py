"""Sparse autoencoder with an L1 activity penalty on the code (seed 002: a 300-unit sigmoid code, weight 1e-3, as
Keras' ``ActivityRegularization(l1=1e-3)``). The penalty pushes codes to 0 so that each input uses few units."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..losses import l1_activity_penalty
from ..registry import register_model
from .blocks import ACTIVATIONS
from .stacked import StackedAutoencoder, StackedConfig


@dataclass(frozen=True)
class SparseL1Config(StackedConfig):
    code_size: int = param(300, min=1, max=4096, step=1, help="units in the (over-complete) code layer")
    code_activation: str = param("sigmoid", choices=ACTIVATIONS, help="activation of the code layer")
    l1_weight: float = param(1e-3, min=1e-6, max=1.0, log=True, help="weight of the L1 penalty on the code")


@register_model("sparse-l1", SparseL1Config, "Sparse autoencoder: L1 penalty on the code activations",
                presets={"seed (784-100-300 sigmoid, L1 1e-3)": {},
                         "one layer, 196 units (for filters)": {"hidden": (), "code_size": 196}})
class SparseL1Autoencoder(StackedAutoencoder):
    def penalties(self, x: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"l1_sparsity": l1_activity_penalty(code, self.config.l1_weight)}
