"""Autoencoder with L2 weight decay, written as a named loss term (lambda/2 * sum of squared weights) so that the
cost curve shows it; biases are not decayed."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..losses import weight_decay_penalty
from ..registry import register_model
from .stacked import StackedAutoencoder, StackedConfig


@dataclass(frozen=True)
class L2Config(StackedConfig):
    l2_weight: float = param(1e-4, min=1e-7, max=1.0, log=True, help="lambda of the weight decay lambda/2 * sum W^2")


@register_model("l2", L2Config, "Autoencoder with L2 weight decay")
class L2Autoencoder(StackedAutoencoder):
    def penalties(self, x: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"weight_decay": weight_decay_penalty(self.dense_weights(), self.config.l2_weight)}
