"""k-sparse autoencoder (Makhzani & Frey, *k-Sparse Autoencoders*, ICLR 2014).

z = W x + b; only the k largest units of z are kept (the rest set to 0) and x_hat = W^T z + b', trained on the
squared error as in the paper (a sigmoid output with cross-entropy is an option). Gradients flow through the kept
units only. For downstream use (features) the alpha*k largest units are kept, as in the paper.

Sparsity schedule (the paper's): training starts with k_start units kept and lowers k linearly to k over the first
``k_schedule`` share of the steps (the paper: 100 to 25 over the first half of the epochs), so that every unit gets
gradient early on. It does not keep them all alive here: after 40 epochs on full MNIST (Adam, cosine) 663 of 1000
units ever win the top 25, and 672 when k starts at 1000; the schedule with that training took the features' test
error (logistic regression) from 2.93% to 2.15% (bench/README, papers.py). The Train page plots the dead units
(no place in the top k for ``dead_after`` images) as they die; AuxK (``aux_k``, Gao et al. 2024), not the
paper's, keeps them alive.

On full MNIST (1000 units, k 25, 5 epochs, the same logistic regression on both) the paper's linear output gave
features with 2.2% test error, against 3.0% with the sigmoid/cross-entropy output.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError, param
from ..registry import register_model
from ..losses import reconstruction_loss
from .base import AEConfig, Autoencoder, Capabilities, StepContext


AUX_WEIGHT = 1 / 32  # Gao et al. 2024's weight of the AuxK term


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """Zero all but the ``k`` largest entries of each row: (B, K) -> (B, K)."""
    if k >= z.shape[1]:
        return z
    idx = z.topk(k, dim=1).indices
    mask = torch.zeros_like(z).scatter(1, idx, 1.0)
    return z * mask


@dataclass(frozen=True)
class KSparseConfig(AEConfig):
    code_size: int = param(1000, min=2, max=4096, step=1, help="units in the code layer")
    k: int = param(25, min=1, max=4096, step=1, help="units kept per sample while training")
    k_start: int = param(100, min=1, max=4096, step=1,
                         help="units kept at the start of training (at most the code's size); k falls linearly "
                              "from here to k (no schedule when k_start <= k)", before=1)
    k_schedule: float = param(0.5, min=0.0, max=1.0, step=0.05,
                              help="share of the training steps over which k falls from k_start to k (the paper: "
                                   "the first half)")
    alpha: float = param(3.0, min=1.0, max=10.0, step=0.5, help="alpha*k units are kept when encoding features")
    aux_k: int = param(0, min=0, max=4096, step=1,
                       help="AuxK (Gao et al. 2024): the aux_k largest dead units also rebuild what the top k left "
                            "unexplained, weighted 1/32, which keeps units alive; 0: off (the paper's setting)")
    dead_after: int = param(60_000, min=1, max=10_000_000, step=100,
                            help="training images without a place in the top k after which a unit counts as dead")
    tied: bool = param(True, help="decoder uses the encoder's weights transposed (the paper's setting)")
    output: str = param("linear", choices=("linear", "sigmoid"),
                        help="linear output and squared error (the paper's), or sigmoid output and cross-entropy")

    def validate(self) -> None:
        if self.k > self.code_size:
            raise ConfigError(f"k = {self.k} is larger than the code ({self.code_size} units): lower k or widen "
                              f"the code")
        if self.aux_k and self.output != "linear":
            raise ConfigError("aux_k rebuilds the residual of a linear output: pick output = linear or aux_k = 0")
        if round(self.alpha * self.k) > self.code_size:
            raise ConfigError(f"alpha*k = {round(self.alpha * self.k)} exceeds the code ({self.code_size} units): "
                              f"lower alpha or k")


@register_model("k-sparse", KSparseConfig, "k-sparse autoencoder: keep the k largest code units (linear, tied)",
                presets={"Makhzani & Frey MNIST (1000 units, k 25)": {},
                         "196 units, k 20 (for filters)": {"code_size": 196, "k": 20}})
class KSparseAutoencoder(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, filters=True)
    stat_labels = {"dead_units": "dead units"}  # no place in the top k for dead_after images

    def __init__(self, config: KSparseConfig):
        super().__init__(config)
        self.output_kind = "logits" if config.output == "sigmoid" else "linear"
        d, k = config.input_dim, config.code_size
        self.encoder = nn.Linear(d, k)
        nn.init.xavier_uniform_(self.encoder.weight)
        nn.init.zeros_(self.encoder.bias)
        self.decoder_bias = nn.Parameter(torch.zeros(d))
        self.decoder_weight = None if config.tied else nn.Parameter(self.encoder.weight.detach().t().clone())
        # training images since each unit last had a place in the top k (not saved with the weights)
        self.register_buffer("images_since_win", torch.zeros(k), persistent=False)

    def scheduled_k(self, step: int, total_steps: int) -> int:
        """The k in force at training ``step`` of ``total_steps``: k_start falling linearly to k."""
        c = self.config
        start, span = min(c.k_start, c.code_size), c.k_schedule * total_steps
        if start <= c.k or span <= 0 or step >= span:
            return c.k
        return round(start + (c.k - start) * step / span)

    def training_step(self, x: torch.Tensor, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        (opt,) = optimizers
        z = self.encoder(x)
        code = keep_top_k(z, self.scheduled_k(ctx.step, ctx.total_steps))
        recon = self.decode(code)
        rec = reconstruction_loss(recon, x, self.output_kind)
        with torch.no_grad():
            self.images_since_win.add_(len(x)).masked_fill_((code != 0).any(0), 0.0)
            dead = self.images_since_win > self.config.dead_after
        loss = rec
        if self.config.aux_k and bool(dead.any()):
            loss = rec + AUX_WEIGHT * self.aux_loss(z, dead, (x - recon).detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"reconstruction": rec.detach(), "dead_units": dead.sum().float()}

    def aux_loss(self, z: torch.Tensor, dead: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """AuxK (Gao et al., *Scaling and evaluating sparse autoencoders*, 2024): the ``aux_k`` largest responses
        of the ``dead`` units rebuild the ``residual`` x - x_hat through the decoder's weights (no bias); their mean
        squared error. Without it a third of the 1000 units had no place in the top 25 after the paper's recipe on
        full MNIST; with aux_k 100 none, and the features' test error fell from 2.15 % to 1.84 % (bench/README)."""
        idx = z.masked_fill(~dead, float("-inf")).topk(min(self.config.aux_k, int(dead.sum())), dim=1).indices
        aux = torch.zeros_like(z).scatter(1, idx, z.gather(1, idx))
        w = self.encoder.weight.t() if self.decoder_weight is None else self.decoder_weight  # (D, K)
        return F.mse_loss(F.linear(aux, w), residual)

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, D) -> (B, K), before the top-k: what activation maximisation climbs

    def unit_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)  # after the top-k: at most k units are non-zero

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return keep_top_k(self.encoder(x), self.config.k)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return keep_top_k(self.encoder(x), round(self.config.alpha * self.config.k))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        w = self.encoder.weight.t() if self.decoder_weight is None else self.decoder_weight  # (D, K)
        return F.linear(code, w, self.decoder_bias)  # (B, K) -> (B, D)

    def output_bias(self) -> torch.Tensor:
        return self.decoder_bias

    def first_layer_weights(self) -> torch.Tensor:
        return self.encoder.weight
