"""k-sparse autoencoder (Makhzani & Frey, *k-Sparse Autoencoders*, ICLR 2014).

z = W x + b; only the k largest units of z are kept (the rest set to 0) and x_hat = W^T z + b', trained on the
squared error as in the paper (a sigmoid output with cross-entropy is an option). Gradients flow through the kept
units only. For downstream use (features) the alpha*k largest units are kept, as in the paper.

Sparsity schedule (the paper's): training starts with k_start units kept and lowers k linearly to k over the first
``k_schedule`` share of the steps (the paper: 100 to 25 over the first half of the epochs), so that every unit gets
gradient early on. The Train page plots the dead units (no place in the top k for ``dead_after`` images) as they
die; AuxK (``aux_k``, Gao et al. 2024), not the paper's, keeps them alive.

The optimiser matters most (bench/README, papers.py; 1000 units, k 25, full MNIST, logistic regression on the
features): the paper's SGD with momentum, its small Gaussian start (``init_std`` 0.01) and lr 0.01 on the error summed
over pixels gave 1.62-1.68 % test error in 20 epochs (1.52-1.62 % with AuxK), where Adam gave 2.15-2.28 % with a
lower reconstruction error. Under SGD the start matters too: from Xavier's uniform start over half of the units died.

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
from ..optim import sgd
from .base import AEConfig, Autoencoder, Capabilities, StepContext


AUX_WEIGHT = 1 / 32  # Gao et al. 2024's weight of the AuxK term


def top_k_mask(z: torch.Tensor, k: int) -> torch.Tensor:
    """1 at the ``k`` largest entries of each row, 0 elsewhere: (B, K) -> (B, K)."""
    if k >= z.shape[1]:
        return torch.ones_like(z)
    return torch.zeros_like(z).scatter(1, z.topk(k, dim=1).indices, 1.0)


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """Zero all but the ``k`` largest entries of each row: (B, K) -> (B, K)."""
    return z if k >= z.shape[1] else z * top_k_mask(z, k)


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
    optimizer: str = param("adam", choices=("adam", "sgd"),
                           help="adam; or sgd: SGD with momentum as in the paper, its learning rate on the error "
                                "summed over the pixels (the paper: 0.01)")
    momentum: float = param(0.9, min=0.0, max=0.99, step=0.01, when={"optimizer": "sgd"},
                            help="sgd: momentum (the paper: 0.9)")
    init_std: float = param(0.0, min=0.0, max=0.1, step=0.005, format="%.3f",
                            help="the weights start Gaussian with this deviation (the paper: 0.01); 0: Xavier's "
                                 "uniform start")
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
                presets={"Makhzani & Frey MNIST (1000 units, k 25)": {"optimizer": "sgd", "init_std": 0.01},
                         "196 units, k 20 (for filters)": {"code_size": 196, "k": 20}})
class KSparseAutoencoder(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, filters=True)
    stat_labels = {"dead_units": "dead units"}  # no place in the top k for dead_after images

    def __init__(self, config: KSparseConfig):
        super().__init__(config)
        self.output_kind = "logits" if config.output == "sigmoid" else "linear"
        d, k = config.input_dim, config.code_size
        self.encoder = nn.Linear(d, k)
        if config.init_std > 0:
            nn.init.normal_(self.encoder.weight, 0.0, config.init_std)
        else:
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

    def configure_optimizers(self, settings, device: torch.device) -> list:
        if self.config.optimizer != "sgd":
            return super().configure_optimizers(settings, device)
        self.seed_noise(settings.seed, device)
        # the paper's SGD steps on the squared error summed over pixels, ours is their mean: lr x pixels is its step
        return [sgd(self.parameters(), settings.lr * self.config.input_dim, device, momentum=self.config.momentum)]

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
        squared error. On full MNIST (1000 units, k 25) with aux_k 100 no unit died; the features' test error fell
        from 2.15 % to 1.84 % with Adam and from 1.68 % to 1.62 % with the paper's SGD (bench/README)."""
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

    def encoder_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """The kept units' rows of W, the others' zero: (B, D) -> (B, K, D)."""
        return top_k_mask(self.encoder(x), self.config.k)[:, :, None] * self.encoder.weight

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return keep_top_k(self.encoder(x), round(self.config.alpha * self.config.k))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        w = self.encoder.weight.t() if self.decoder_weight is None else self.decoder_weight  # (D, K)
        return F.linear(code, w, self.decoder_bias)  # (B, K) -> (B, D)

    def output_bias(self) -> torch.Tensor:
        return self.decoder_bias

    def first_layer_weights(self) -> torch.Tensor:
        return self.encoder.weight
