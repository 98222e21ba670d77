"""Contractive autoencoder (Rifai, Vincent, Muller, Glorot & Bengio, *Contractive Auto-Encoders*, ICML 2011): the loss
adds lambda * ||J_f(x)||_F^2, the squared Frobenius norm of the encoder's Jacobian, averaged over the batch.

For a single sigmoid layer the norm has a closed form (``losses.sigmoid_jacobian_norm2``); for deeper encoders or
other activations the per-sample Jacobian is the product of the layers' (``MLP.jacobian``), differentiated again.

The paper ties the decoder to the encoder (W' = W^T); the Rifai preset does too. Untied, on full MNIST the encoder's
rows shrank to norm 0.33 while the decoder's columns grew to 7.6, so the penalty was dodged rather than obeyed, and
the fine-tuned network did no better than one from random weights (2.06 % against 2.08-2.10 % test error). Tied,
both are 2.9, two thirds of the unit outputs saturate (the CAE's binary-like code), and fine-tuning gives 1.38 %.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..analysis import replicated_jacobians
from ..config import param
from ..losses import sigmoid_jacobian_norm2
from ..registry import register_model
from .blocks import ACTIVATIONS
from .stacked import StackedAutoencoder, StackedConfig
from .tied import TransposedLinear


def encoder_jacobian(encode, x: torch.Tensor) -> torch.Tensor:
    """Per-sample Jacobians of ``encode`` at each row of ``x``: (B, D) -> (B, K, D), differentiable, by autograd
    (:func:`aecore.analysis.replicated_jacobians`): for encoders without a closed form."""
    return replicated_jacobians(encode, x, create_graph=True)


@dataclass(frozen=True)
class ContractiveConfig(StackedConfig):
    hidden: tuple[int, ...] = param((), min=1, max=4096,
                                    help="hidden layer sizes before the code, comma-separated (empty: one layer)")
    code_size: int = param(256, min=1, max=4096, step=1, help="units in the code layer")
    code_activation: str = param("sigmoid", choices=ACTIVATIONS, help="activation of the code layer")
    contraction: float = param(1e-3, min=1e-6, max=10.0, log=True,
                               help="lambda, the weight of the squared Frobenius norm of the encoder's Jacobian")
    tied: bool = param(False, help="each decoder layer uses its mirror encoder layer's weights transposed (Rifai et "
                                   "al.'s setting): the decoder cannot undo a shrunken encoder")


@register_model("contractive", ContractiveConfig, "Contractive autoencoder: penalise the encoder's Jacobian",
                presets={"one sigmoid layer of 256 (closed form)": {},
                         "Rifai MNIST (1000 sigmoid units)": {"code_size": 1000, "tied": True}})
class ContractiveAutoencoder(StackedAutoencoder):
    def __init__(self, config: ContractiveConfig):
        super().__init__(config)
        if config.tied:
            self.decoder.layers = nn.ModuleList(TransposedLinear(l) for l in reversed(self.encoder.layers))

    @property
    def closed_form_jacobian(self) -> bool:
        return not self.config.hidden and self.config.code_activation == "sigmoid"

    def jacobian_norm2(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        """||J_f(x)||_F^2 per sample, (B, D) -> (B,)."""
        if self.closed_form_jacobian:
            code = self.encode(x) if code is None else code
            return sigmoid_jacobian_norm2(code, self.encoder.layers[0].weight)
        jac = self.encoder_jacobian(x)
        return (encoder_jacobian(self.encode, x) if jac is None else jac).pow(2).sum(dim=(1, 2))

    def penalties(self, x: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"contractive": self.config.contraction * self.jacobian_norm2(x, code).mean()}
