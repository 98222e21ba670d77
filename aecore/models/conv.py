"""Convolutional autoencoder: conv + max-pool stages down to a dense code, and a decoder that mirrors them with
either transposed convolutions or max-unpooling (seed 004's "unpooling": each value goes back to the position the
pooling took it from, zeros elsewhere, then a convolution).

Decoding a code that did not come from an image (a grid over code space, say) has no pooling positions to return
to; the unpooling decoder then puts each value at the top-left of its window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError, param
from ..registry import register_model
from .base import AEConfig, Autoencoder, Capabilities, ModelOutput
from ..losses import reconstruction_loss


@dataclass(frozen=True)
class ConvConfig(AEConfig):
    channels: tuple[int, ...] = param((16, 32), min=1, max=256,
                                      help="channels of each conv + 2x2 max-pool stage, comma-separated")
    kernel: int = param(3, min=1, max=9, step=2, help="convolution kernel size (odd)")
    code_size: int = param(32, min=1, max=1024, step=1, help="units in the dense code layer")
    decoder: str = param("transposed", choices=("transposed", "unpool"),
                         help="upsampling in the decoder: transposed convolutions, or max-unpooling with the "
                              "encoder's pooling positions")

    def validate(self) -> None:
        if len(self.input_shape) != 2:
            raise ConfigError("the convolutional autoencoder needs 2-D images")
        if not self.channels:
            raise ConfigError("give at least one conv stage (channels)")
        if self.kernel % 2 == 0:
            raise ConfigError(f"kernel must be odd, got {self.kernel}")
        factor = 2 ** len(self.channels)
        h, w = self.input_shape
        if h % factor or w % factor:
            most = min(int(math.log2(h & -h)), int(math.log2(w & -w)))
            raise ConfigError(f"{h}x{w} images can be halved by 2x2 pooling at most {most} time(s), so use at most "
                              f"{most} conv stage(s); got {len(self.channels)}")


def _top_left_indices(shape: tuple[int, ...], out_hw: tuple[int, int], device) -> torch.Tensor:
    """Max-unpool indices that put every pooled value at the top-left of its 2x2 window."""
    n, c, h, w = shape
    rows = torch.arange(h, device=device).mul(2)[:, None] * out_hw[1]
    cols = torch.arange(w, device=device).mul(2)[None, :]
    return (rows + cols).expand(n, c, h, w)


@register_model("conv", ConvConfig, "Convolutional autoencoder (conv + max-pool; transposed-conv or unpooling decoder)",
                presets={"two stages, transposed": {}, "two stages, unpooling": {"decoder": "unpool"}})
class ConvAutoencoder(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, filters=True)

    def __init__(self, config: ConvConfig):
        super().__init__(config)
        h, w = config.input_shape
        chans = [1, *config.channels]
        k = config.kernel
        self.enc_convs = nn.ModuleList(nn.Conv2d(i, o, k, padding=k // 2) for i, o in zip(chans[:-1], chans[1:]))
        factor = 2 ** len(config.channels)
        self.feature_shape = (chans[-1], h // factor, w // factor)
        flat = math.prod(self.feature_shape)
        self.to_code = nn.Linear(flat, config.code_size)
        self.from_code = nn.Linear(config.code_size, flat)
        if config.decoder == "transposed":
            self.dec_convs = nn.ModuleList(nn.ConvTranspose2d(o, i, 2, stride=2)
                                           for i, o in reversed(list(zip(chans[:-1], chans[1:]))))
        else:
            self.dec_convs = nn.ModuleList(nn.Conv2d(o, i, k, padding=k // 2)
                                           for i, o in reversed(list(zip(chans[:-1], chans[1:]))))

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        h = x.view(len(x), 1, *self.config.input_shape)
        switches = []  # (indices, pre-pool size) per stage, for unpooling
        for conv in self.enc_convs:
            h = F.relu(conv(h))
            size = h.shape[-2:]
            h, idx = F.max_pool2d(h, 2, return_indices=True)
            switches.append((idx, size))
        return self.to_code(h.flatten(1)), switches  # (B, C*h*w) -> (B, K)

    def _decode(self, code: torch.Tensor, switches: list | None) -> torch.Tensor:
        h = F.relu(self.from_code(code)).view(len(code), *self.feature_shape)
        for i, conv in enumerate(self.dec_convs):
            if self.config.decoder == "transposed":
                h = conv(h)
            else:
                if switches is not None:
                    idx, size = switches[-1 - i]
                else:
                    size = (h.shape[-2] * 2, h.shape[-1] * 2)
                    idx = _top_left_indices(h.shape, size, h.device)
                h = conv(F.max_unpool2d(h, idx, 2, output_size=size))
            if i < len(self.dec_convs) - 1:
                h = F.relu(h)
        return h.flatten(1)  # logits, (B, D)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)[0]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self._decode(code, None)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        code, switches = self._encode(x)
        recon = self._decode(code, switches)
        return self.output({"reconstruction": reconstruction_loss(recon, x, self.output_kind)}, recon=recon, code=code)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(x).recon)

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Each first-layer channel's strongest response anywhere in the image, (B, D) -> (B, C1)."""
        h = F.relu(self.enc_convs[0](x.view(len(x), 1, *self.config.input_shape)))
        return h.amax(dim=(2, 3))

    def output_bias(self) -> torch.Tensor:
        return self.dec_convs[-1].bias  # (1,): one grey channel

    def first_layer_weights(self) -> torch.Tensor:
        return self.enc_convs[0].weight[:, 0]  # (C1, k, k)
