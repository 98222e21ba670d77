"""Neural sparse coding: Arora, Ge, Ma & Moitra, *Simple, Efficient, and Neural Algorithms for Sparse Coding*
(COLT 2015), Algorithm 2 (the "neural" update), on a dictionary A whose columns are the atoms.

Decode (encode, in autoencoder terms): x = threshold_{C/2}(A^T y), keeping entries with |.| >= C/2.
Update:                                A <- A - eta * mean_batch((A x - y) sgn(x)^T), then unit-norm columns.
It trains by this rule, not by backpropagation: ``training_step`` applies it directly and no optimiser is used. The
reconstruction A x is linear; its mean squared error is reported as the loss, though the rule does not minimise it.

y is the image less the training images' mean (``centre``, set where other families start their output bias, and
added back to A x). Measured on the embedded 4,000 digits, 40 epochs: on raw images A^T y is positive for most atoms
and most fire (C = 1: 50 of 196 a sample, curly noise as filters; atoms started from images: every one fires and
A x runs to MSE 5-700); on centred images with C = 2, 13 fire a sample, and the atoms in use become clean pen
strokes and digit parts while the unused ones stay noise, as seed 003 describes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import param
from ..registry import register_model
from .base import AEConfig, Autoencoder, Capabilities, StepContext


@dataclass(frozen=True)
class NeuralSparseCodingConfig(AEConfig):
    code_size: int = param(196, min=1, max=4096, step=1, help="atoms in the dictionary A (columns)")
    threshold: float = param(2.0, min=0.0, max=20.0, step=0.05,
                             help="C: a unit is active when |A^T y| >= C/2")
    eta: float = param(0.05, min=1e-4, max=10.0, log=True, help="step size of the dictionary update")


def hard_threshold(z: torch.Tensor, t: float) -> torch.Tensor:
    """Keep the entries with |z| >= t, zero the others."""
    return z * (z.abs() >= t)


def arora_update(a: torch.Tensor, y: torch.Tensor, code: torch.Tensor, eta: float) -> torch.Tensor:
    """One step of Algorithm 2: A - eta * mean_i (A x_i - y_i) sgn(x_i)^T, columns renormalised.
    a: (D, K), y: (B, D), code: (B, K) -> (D, K)."""
    residual = code @ a.t() - y  # (B, D): A x - y per sample
    step = residual.t() @ torch.sign(code) / len(y)  # (D, K)
    new = a - eta * step
    return new / new.norm(dim=0, keepdim=True).clamp_min(1e-12)


@register_model("neural-sparse-coding", NeuralSparseCodingConfig,
                "Neural sparse coding (Arora et al. 2015): thresholded A^T y, trained by its own update rule")
class NeuralSparseCoding(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, filters=True)
    output_kind = "linear"
    unused_settings = dict.fromkeys(("lr", "lr_schedule"), "not for this model: its update rule has its own "
                                                             "step size, eta, under Model hyperparameters")

    def __init__(self, config: NeuralSparseCodingConfig):
        super().__init__(config)
        atoms = F.normalize(torch.randn(config.input_dim, config.code_size), dim=0)
        self.register_buffer("dictionary", atoms)  # (D, K), unit-norm atoms
        self.register_buffer("centre", torch.zeros(config.input_dim))  # (D,): the training images' mean

    def output_bias(self) -> torch.Tensor:
        return self.centre

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if "centre" not in state_dict:  # a run saved before images were centred
            state_dict = {**state_dict, "centre": torch.zeros_like(self.centre)}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.centre) @ self.dictionary  # A^T y, (B, D) -> (B, K)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return hard_threshold(self.unit_activations(x), self.config.threshold / 2)

    def encoder_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """A's columns of the units past the threshold, the others zero: (B, K, D)."""
        a = self.unit_activations(x)
        return (a.abs() >= self.config.threshold / 2)[:, :, None] * self.dictionary.t()

    def unit_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)  # after the threshold: the sparse code

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return code @ self.dictionary.t() + self.centre  # A x, (B, K) -> (B, D), the mean added back

    def configure_optimizers(self, settings, device: torch.device) -> list:
        return []  # the update rule has its own step size, ``eta``

    @torch.no_grad()
    def training_step(self, x: torch.Tensor, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        code = self.encode(x)
        loss = (self.decode(code) - x).pow(2).mean()
        self.dictionary.copy_(arora_update(self.dictionary, x - self.centre, code, self.config.eta))
        return {"reconstruction": loss}

    def first_layer_weights(self) -> torch.Tensor:
        return self.dictionary.t()
