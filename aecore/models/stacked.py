"""Stacked (deep) fully connected autoencoder.

The default is the seed recipe (784-100-30, GELU, sigmoid/BCE output); the "Hinton & Salakhutdinov" preset is the
784-1000-500-250-30 net of *Reducing the Dimensionality of Data with Neural Networks* (Science, 2006), with a linear
code layer as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import ConfigError, param
from ..registry import register_model
from .base import AEConfig, Autoencoder, Capabilities, StepContext
from .blocks import ACTIVATIONS, MLP, DenseStep, mirrored_stages


@dataclass(frozen=True)
class StackedConfig(AEConfig):
    hidden: tuple[int, ...] = param((100,), min=1, max=4096,
                                    help="hidden layer sizes from the input inwards, comma-separated; the decoder mirrors them")
    code_size: int = param(30, min=1, max=1024, step=1, help="units in the code (bottleneck) layer")
    activation: str = param("gelu", choices=ACTIVATIONS[:-1], help="activation of the hidden layers")
    code_activation: str = param("gelu", choices=ACTIVATIONS, help="activation of the code layer")

    def validate(self) -> None:
        if not self.hidden and self.code_activation == "linear" and self.activation == "linear":
            raise ConfigError("a single linear layer is PCA: pick the 'pca' model instead")


HINTON_PRESET = {"hidden": (1000, 500, 250), "code_size": 30, "activation": "gelu", "code_activation": "linear"}


@register_model("stacked", StackedConfig, "Stacked fully connected autoencoder (seed recipe 784-100-30 GELU)",
                presets={"seed recipe (784-100-30)": {},
                         "Hinton & Salakhutdinov (784-1000-500-250-30)": HINTON_PRESET})
class StackedAutoencoder(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, filters=True)

    def __init__(self, config: StackedConfig):
        super().__init__(config)
        sizes = [config.input_dim, *config.hidden, config.code_size]
        self.encoder = MLP(sizes, config.activation, config.code_activation)
        self.decoder = MLP(sizes[::-1], config.activation, "linear")  # logits out
        self._dense_step: DenseStep | bool | None = None  # decided at the first step

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)

    def encoder_jacobian(self, x: torch.Tensor) -> torch.Tensor | None:
        return self.encoder.jacobian(x) if type(self).encode is StackedAutoencoder.encode else None

    def training_step(self, x: torch.Tensor, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        step = self._dense_step
        if step is None:  # first step: the tape-free step, or False where a subclass changes the loss
            step = self._dense_step = self._plain_loss() and DenseStep(
                [*self.encoder.layers, *self.decoder.layers], self._act_names(), self.output_kind)
        if not step or torch.is_autocast_enabled(x.device.type):  # mixed precision: autograd's casts
            return super().training_step(x, optimizers, ctx)
        return {"reconstruction": step(x, optimizers[0])}

    def _act_names(self) -> list[str]:
        c, n = self.config, len(self.config.hidden)
        return [c.activation] * n + [c.code_activation] + [c.activation] * n + ["linear"]

    @classmethod
    def _plain_loss(cls) -> bool:
        """True unless a subclass changes what the loss is (then it trains through autograd)."""
        return all(getattr(cls, m) is getattr(StackedAutoencoder, m)
                   for m in ("encode", "decode", "forward", "penalties"))

    @classmethod
    def supports_greedy(cls) -> bool:
        return cls._plain_loss()

    def greedy_stages(self) -> list[tuple[nn.Module, nn.Module]]:
        if not self._plain_loss():  # the stages would train without the family's own terms
            return []
        return mirrored_stages(self.encoder.layers, self.encoder.acts, self.decoder.layers, self.decoder.acts)

    def dense_weights(self) -> list[torch.Tensor]:
        """The weight matrices of every layer (what weight decay acts on)."""
        return [layer.weight for layer in (*self.encoder.layers, *self.decoder.layers)]

    def output_bias(self) -> torch.Tensor:
        return self.decoder.layers[-1].bias

    def first_layer_weights(self) -> torch.Tensor:
        return self.encoder.layers[0].weight

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.acts[0](self.encoder.layers[0](x))
