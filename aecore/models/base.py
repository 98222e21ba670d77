"""The one output contract and the base class every autoencoder family derives from."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..config import param
from ..losses import reconstruction_loss, to_pixels
from ..optim import adam


@dataclass(frozen=True)
class AEConfig:
    """Fields every family has. ``input_shape`` comes from the dataset, not from a slider."""

    input_shape: tuple[int, ...] = param((28, 28), ui=False, help="image shape, taken from the dataset")

    @property
    def input_dim(self) -> int:
        return math.prod(self.input_shape)

    def validate(self) -> None:
        """Raise ``ConfigError`` for a combination of values that cannot work (ranges are checked already)."""


@dataclass
class AEOutput:
    """What every autoencoder's ``forward`` returns.

    ``recon``: (B, D) logits when the model's ``output_kind`` is ``"logits"`` (BCE), else pixel values;
    ``code``: (B, K); ``losses``: named, already weighted terms whose sum is minimised.
    """

    recon: torch.Tensor
    code: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def loss(self) -> torch.Tensor:
        return sum(self.losses.values())


class Autoencoder(nn.Module):
    """Base class: subclasses implement ``encode`` and ``decode``, and may add penalty terms.

    Inputs are flat (B, D) tensors in [0, 1]. ``training_step`` is what the shared loop calls; the default is one
    backprop step on the sum of the loss terms. A family with its own learning rule (a closed form, a GAN's two
    optimisers, a Hebbian-style update) overrides it, or sets ``closed_form`` and implements ``fit_closed_form``.
    """

    registry_name: str = ""
    output_kind: str = "logits"
    closed_form: bool = False

    def __init__(self, config: AEConfig):
        super().__init__()
        self.config = config

    # --- the contract -------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def penalties(self, x: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra named loss terms (sparsity, contraction, KL, ...); none by default."""
        return {}

    def forward(self, x: torch.Tensor) -> AEOutput:
        code = self.encode(x)  # (B, D) -> (B, K)
        recon = self.decode(code)  # (B, K) -> (B, D)
        losses = {"reconstruction": reconstruction_loss(recon, x, self.output_kind)}
        losses.update(self.penalties(x, code))
        return AEOutput(recon, code, losses)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions in pixel space [0, 1], (B, D) -> (B, D)."""
        return to_pixels(self.decode(self.encode(x)), self.output_kind)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Codes for downstream use (probes, retrieval, projections): the code, unless a family says otherwise."""
        return self.encode(x)

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, units) activations of the first layer's units, differentiable in ``x`` (for top-activating samples
        and activation maximisation); ``None`` where units have no single filter."""
        return None

    @property
    def code_size(self) -> int:
        return int(self.config.code_size)

    # --- training hooks -----------------------------------------------------------------------------------------
    def configure_optimizers(self, lr: float, device: torch.device) -> list[torch.optim.Optimizer]:
        """Adam over all parameters (the fused kernel where the device has one)."""
        return [adam(self.parameters(), lr, device)]

    def training_step(self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        """One update on batch ``x``; returns the detached loss terms."""
        (opt,) = optimizers
        out = self(x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        return {k: v.detach() for k, v in out.losses.items()}

    def fit_closed_form(self, x: torch.Tensor) -> None:
        """Fit in one shot on the whole training set (families with ``closed_form = True``)."""
        raise NotImplementedError

    @classmethod
    def supports_greedy(cls) -> bool:
        """Whether :meth:`greedy_stages` gives stages (the Train page shows the Greedy toggle only then)."""
        return cls.greedy_stages is not Autoencoder.greedy_stages

    def greedy_stages(self) -> list[tuple[nn.Module, nn.Module]]:
        """(encoder layer, mirrored decoder layer) pairs, outermost first, for greedy layer-wise pretraining.

        Each pair is trained as a shallow autoencoder on the codes of the layers before it. An empty list means the
        family does not support greedy pretraining.
        """
        return []

    def output_bias(self) -> torch.Tensor | None:
        """The bias added last to the reconstruction: (D,), one per pixel, or (1,), one for a single-channel
        image; ``None`` where there is none. Training starts it at the data's mean
        (``TrainSettings.output_bias_from_data``)."""
        return None

    def first_layer_weights(self) -> torch.Tensor | None:
        """First-layer filters for the mosaic: (units, D) for dense layers, (channels, kh, kw) for convolutions;
        ``None`` where that makes no sense."""
        return None
