"""Two toy families that exercise the spine's generality: one that only samples (no encoder, no reconstruction)
and one on token sequences. Registered only inside the ``toys`` fixture, so other tests see the real registry."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from aecore import Capabilities, Model, TextDataset, param
from aecore.data import DatasetInfo
from aecore.models.base import AEConfig


@dataclass(frozen=True)
class SamplerConfig(AEConfig):
    noise_size: int = param(4, min=1, max=64, step=1, help="noise dimensions")


class ToySampler(Model):
    """A linear generator trained to match the batch's pixel means: samples, nothing else."""

    capabilities = Capabilities(samples=True)
    metric_labels = {"moment_error": "moment error"}

    def __init__(self, config: SamplerConfig):
        super().__init__(config)
        self.generator = nn.Linear(config.noise_size, config.input_dim)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.config.noise_size, generator=gen).to(self.generator.weight.device)
        return torch.sigmoid(self.generator(z))

    def loss_units(self) -> dict[str, str]:
        return {"moment": "squared error of pixel means"}

    def forward(self, x: torch.Tensor):
        fake = self.sample(len(x), torch.Generator().manual_seed(len(x)))
        return self.output({"moment": (fake.mean(0) - x.mean(0)).pow(2).mean()})

    def preview(self, batch) -> np.ndarray:
        return self.sample(len(batch), torch.Generator().manual_seed(0)).cpu().numpy()

    def evaluate(self, data, device=None) -> dict[str, float]:
        with torch.no_grad():
            return {"moment_error": float(self(torch.as_tensor(data.x_test)).losses["moment"])}


@dataclass(frozen=True)
class UnigramConfig:
    vocab_size: int = param(10, ui=False)
    max_len: int = param(8, ui=False)
    smoothing: float = param(0.0, min=0.0, max=1.0, step=0.1, help="unused; a slider for the page")


class ToyUnigram(Model):
    """A unigram language model over padded, length-masked token sequences."""

    capabilities = Capabilities(samples=True, modality="text")
    metric_labels = {"nll": "NLL (nats / sentence)"}

    def __init__(self, config: UnigramConfig):
        super().__init__(config)
        self.logits = nn.Parameter(torch.zeros(config.vocab_size))

    def loss_units(self) -> dict[str, str]:
        return {"nll": "nats per sentence"}

    def forward(self, batch):
        mask = torch.arange(batch.tokens.shape[1], device=batch.tokens.device) < batch.lengths[:, None]
        logp = F.log_softmax(self.logits, 0)[batch.tokens]  # (B, T)
        return self.output({"nll": -(logp * mask).sum(1).mean()})

    def preview(self, batch) -> np.ndarray:
        return self.logits.topk(3).indices.repeat(len(batch), 1).cpu().numpy()

    def evaluate(self, data, device=None) -> dict[str, float]:
        with torch.no_grad():
            return {"nll": float(self(data.batches("test").take(torch.arange(len(data.test_tokens)))).losses["nll"])}


SENTENCES = ["the cat sat", "the dog ran", "a cat ran", "the bird sat", "a dog sat", "the cat ran"] * 5


def toy_text() -> TextDataset:
    return TextDataset.from_sentences("toy-text", SENTENCES[:24], SENTENCES[24:], max_len=6)


@pytest.fixture
def toys(monkeypatch):
    """Register both toys, and the toy text corpus as a dataset, for the length of one test."""
    from aecore import data, registry
    from aecore.registry import ModelSpec
    registry._ensure_loaded()
    for name, cls, cfg in (("toy-sampler", ToySampler, SamplerConfig), ("toy-unigram", ToyUnigram, UnigramConfig)):
        monkeypatch.setitem(registry._REGISTRY, name, ModelSpec(name, cls, cfg, f"toy: {name}"))
        monkeypatch.setattr(cls, "registry_name", name)
    monkeypatch.setitem(data._DATASETS, "toy-text", DatasetInfo("toy-text", "Toy sentences", "30 sentences", True,
                                                                lambda info: toy_text(), modality="text"))
    yield
