"""Denoising autoencoder (Vincent et al. 2008; seed 002): the input is corrupted while training only, and the
target is the clean input. Noise: Gaussian (sigma), masking (p), dropout (p) or salt-and-pepper (p); see
``aecore.noise``."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..losses import reconstruction_loss
from ..noise import DROPOUT_HELP, LEVEL_HELP, NOISE_KINDS, corrupt
from ..registry import register_model
from .base import ModelOutput
from .stacked import StackedAutoencoder, StackedConfig


@dataclass(frozen=True)
class DenoisingConfig(StackedConfig):
    # dropout, as seed 002's Keras Dropout(0.5): masking 0.5 leaves clean test images twice as bright as any the
    # encoder saw, and reconstructs them worse than its noisy training inputs (full MNIST, 3 epochs: clean test BCE
    # 0.191 against 0.102 with the kept pixels scaled by 2, 0.090 without noise; each denoises its own noise
    # equally well, 18.0 and 18.1 dB; bench/README)
    noise: str = param("dropout", choices=NOISE_KINDS,
                       help=f"corruption applied to training inputs; {DROPOUT_HELP}")
    noise_level: float = param(0.5, min=0.0, max=1.0, step=0.05, help=LEVEL_HELP)


@register_model("denoising", DenoisingConfig, "Denoising autoencoder: reconstruct clean inputs from corrupted ones",
                presets={"seed (dropout 0.5)": {},
                         "masking 0.25 (Vincent et al.)": {"noise": "masking", "noise_level": 0.25},
                         "Gaussian sigma 0.3": {"noise": "gaussian", "noise_level": 0.3},
                         "salt-and-pepper 0.2": {"noise": "salt-pepper", "noise_level": 0.2}})
class DenoisingAutoencoder(StackedAutoencoder):
    def __init__(self, config: DenoisingConfig):
        super().__init__(config)
        self._noise_seed = int(torch.randint(2**62, ()))  # drawn from the seeded init RNG: repeatable runs
        self._generator: torch.Generator | None = None

    def _noise_generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device).manual_seed(self._noise_seed)
        return self._generator

    def forward(self, x: torch.Tensor) -> ModelOutput:
        noisy = x
        if self.training:
            noisy = corrupt(x, self.config.noise, self.config.noise_level, self._noise_generator(x.device))
        code = self.encode(noisy)
        recon = self.decode(code)
        return self.output({"reconstruction": reconstruction_loss(recon, x, self.output_kind)}, recon=recon, code=code)
