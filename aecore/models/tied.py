"""Autoencoder with tied weights: each decoder layer uses its mirror encoder layer's weight matrix transposed
(``W_{N-L+1} = W_L^T``) with a bias of its own, which halves the number of weights (seed 002)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import register_model
from .base import Autoencoder, Capabilities
from .blocks import MLP, activation, mirrored_stages
from .stacked import StackedConfig


class TransposedLinear(nn.Module):
    """``y = x @ W + b`` with ``W`` the (out, in) weight of ``tied_to``: (B, out) -> (B, in)."""

    def __init__(self, tied_to: nn.Linear):
        super().__init__()
        self.tied_to = [tied_to]  # a list, so the shared layer is not registered (and saved) twice
        self.bias = nn.Parameter(torch.zeros(tied_to.in_features))

    @property
    def weight(self) -> torch.Tensor:
        return self.tied_to[0].weight.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


@register_model("tied", StackedConfig, "Stacked autoencoder whose decoder reuses the encoder weights transposed")
class TiedAutoencoder(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, filters=True)

    def __init__(self, config: StackedConfig):
        super().__init__(config)
        self.encoder = MLP([config.input_dim, *config.hidden, config.code_size], config.activation,
                           config.code_activation)
        self.decoder_layers = nn.ModuleList(TransposedLinear(l) for l in reversed(self.encoder.layers))
        names = [config.activation] * len(config.hidden) + ["linear"]  # logits out
        self.decoder_acts = nn.ModuleList(activation(n) for n in names)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def encoder_jacobian(self, x: torch.Tensor) -> torch.Tensor | None:
        return self.encoder.jacobian(x) if type(self).encode is TiedAutoencoder.encode else None

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = code
        for layer, act in zip(self.decoder_layers, self.decoder_acts):
            h = act(layer(h))
        return h

    def greedy_stages(self) -> list[tuple[nn.Module, nn.Module]]:
        return mirrored_stages(self.encoder.layers, self.encoder.acts, self.decoder_layers, self.decoder_acts)

    def output_bias(self) -> torch.Tensor:
        return self.decoder_layers[-1].bias

    def first_layer_weights(self) -> torch.Tensor:
        return self.encoder.layers[0].weight

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.acts[0](self.encoder.layers[0](x))
