"""Variational autoencoder (Kingma & Welling, *Auto-Encoding Variational Bayes*, ICLR 2014): a Gaussian encoder
q(z|x) = N(mu, diag sigma^2) sampled by the reparameterisation trick, a Bernoulli decoder p(x|z) and the prior
N(0, I). Levers on the KL term: its weight beta (Higgins et al. 2017), a warm-up from 0, linear (Bowman et al. 2016)
or cyclical (Fu et al. 2019), and free bits (Kingma et al. 2016). The defaults are pytorch/examples' vae/main.py
(784-400-20 ReLU, Adam 1e-3, batch 128), so its published test loss can be compared.

Losses are in nats per image: ``reconstruction`` (BCE summed over pixels) and ``kl`` (the KL itself, unweighted),
so on test data they add up to the negative ELBO; training minimises reconstruction + beta_t * KL (with free bits,
each dimension's batch-mean KL counts at least ``free_bits``), and reports beta_t as the stat ``beta``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError, param
from ..losses import anneal_weight, bernoulli_log_likelihood, gaussian_kl
from ..registry import register_model
from .base import AEConfig, Autoencoder, Capabilities, StepContext
from .blocks import MLP


def _kept_grad(p: torch.Tensor) -> torch.Tensor:
    """p's gradient, kept from step to step (made on the first)."""
    if p.grad is None or p.grad.shape != p.shape or p.grad.dtype != p.dtype:
        p.grad = torch.empty_like(p)
    return p.grad


ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: unit u is active if Var_x(E_q[z_u]) > 0.01


@dataclass(frozen=True)
class VAEConfig(AEConfig):
    architecture: str = param("mlp", choices=("mlp", "conv"),
                              help="mlp: fully connected; conv: stride-2 convolutions down, transposed ones up")
    hidden: tuple[int, ...] = param((400,), min=1, max=4096, when={"architecture": "mlp"},
                                    help="mlp: hidden layer sizes from the input inwards; the decoder mirrors them")
    channels: tuple[int, ...] = param((32, 64), min=1, max=256, when={"architecture": "conv"},
                                      help="conv: channels of each stride-2 stage; the decoder mirrors them")
    latent_size: int = param(20, min=1, max=256, step=1, help="dimensions of z")
    beta: float = param(1.0, min=0.0, max=10.0, step=0.05, help="weight of the KL term (beta-VAE); 1 is the ELBO")
    warmup_steps: int = param(0, min=0, max=100_000, step=100,
                              help="steps over which the KL weight ramps from 0 to beta (0: no warm-up)")
    warmup_schedule: str = param("linear", choices=("linear", "cyclical"),
                                 help="linear: one ramp; cyclical: ramp over the first half of every "
                                      "warmup_steps-long cycle, hold for the second (Fu et al. 2019)")
    free_bits: float = param(0.0, min=0.0, max=2.0, step=0.05,
                             help="nats per dimension (batch mean) below which a dimension's KL is not penalised "
                                  "(Kingma et al. 2016); keeps dimensions from collapsing to the prior")

    @property
    def code_size(self) -> int:
        return self.latent_size

    def validate(self) -> None:
        if self.architecture == "conv":
            if len(self.input_shape) != 2 or not self.channels:
                raise ConfigError("the conv VAE needs 2-D images and at least one conv stage")
            factor = 2 ** len(self.channels)
            if any(s % factor for s in self.input_shape):
                raise ConfigError(f"{'x'.join(map(str, self.input_shape))} images cannot be halved "
                                  f"{len(self.channels)} times; use fewer conv stages")


class _ConvEncoder(nn.Module):
    def __init__(self, channels: tuple[int, ...], shape: tuple[int, int], out: int):
        super().__init__()
        ins = (1, *channels[:-1])
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 4, 2, 1) for i, o in zip(ins, channels))
        self.shape = shape
        h, w = (s // 2 ** len(channels) for s in shape)
        self.head = nn.Linear(channels[-1] * h * w, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(len(x), 1, *self.shape)
        for conv in self.convs:
            h = torch.relu(conv(h))  # halves height and width
        return self.head(h.flatten(1))


class _ConvDecoder(nn.Module):
    def __init__(self, channels: tuple[int, ...], shape: tuple[int, int], latent: int):
        super().__init__()
        self.base = (channels[-1], *(s // 2 ** len(channels) for s in shape))
        self.fc = nn.Linear(latent, math.prod(self.base))
        outs = (*channels[::-1][1:], 1)
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(channels[::-1], outs))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(len(z), *self.base)
        for i, deconv in enumerate(self.deconvs):
            h = deconv(h)  # doubles height and width
            if i < len(self.deconvs) - 1:
                h = torch.relu(h)
        return h.flatten(1)  # logits, (B, D)


@register_model("vae", VAEConfig, "Variational autoencoder (Kingma & Welling 2014): beta, KL warm-up, free bits",
                presets={"pytorch/examples (784-400-20)": {},
                         "2-D latent (whole manifold as a grid)": {"latent_size": 2, "hidden": (512, 256)},
                         "beta-VAE (beta 4, 10 dims)": {"beta": 4.0, "latent_size": 10},
                         "convolutional": {"architecture": "conv"},
                         "cyclical warm-up with free bits": {"warmup_steps": 2000, "warmup_schedule": "cyclical",
                                                             "free_bits": 0.1}},
                train_defaults={"batch_size": 128, "epochs": 10, "lr": 1e-3, "precision": "auto"},
                # 10 epochs of full MNIST; 10 of the embedded 4,000 digits (320 steps) left the samples a blur
                min_steps=4_500)
class VAE(Autoencoder):
    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True, posterior=True, filters=True)
    stat_labels = {"beta": "KL weight β in force"}
    metric_labels = {"elbo_loss": "test −ELBO (nats / image)", "nll_iw": "importance-weighted NLL (nats / image)",
                     "active_units": "active units", "bce": "test BCE / pixel (decoding the mean)",
                     "mse": "MSE / pixel", "sse_per_image": "squared error / image"}

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        k, shape = config.latent_size, tuple(config.input_shape)
        if config.architecture == "conv":
            self.encoder = _ConvEncoder(config.channels, shape, 2 * k)
            self.decoder = _ConvDecoder(config.channels, shape, k)
        else:
            sizes = [config.input_dim, *config.hidden]
            self.encoder = nn.Sequential(MLP(sizes, "relu", "relu"), nn.Linear(sizes[-1], 2 * k))
            self.decoder = MLP([k, *config.hidden[::-1], config.input_dim], "relu", "linear")

    # --- the model --------------------------------------------------------------------------------------------------
    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x): (B, D) -> two (B, K)."""
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)  # exp(logvar) stays finite in float32

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean, the code the views and probes use."""
        return self.posterior_params(x)[0]

    def encoder_jacobian(self, x: torch.Tensor) -> torch.Tensor | None:
        """The posterior mean's Jacobian, (B, K, D): the mean's rows of the last layer times the MLP's."""
        if self.config.architecture == "conv":
            return None
        mlp, head = self.encoder
        return head.weight[:self.config.latent_size] @ mlp.jacobian(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).float()

    def _eps(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.noise(like.device), device=like.device)

    def _terms(self, x: torch.Tensor):
        mu, logvar = self.posterior_params(x)
        z = mu + (0.5 * logvar).exp() * self._eps(mu)  # reparameterisation: z ~ q(z|x), differentiable in mu, sigma
        logits = self.decode(z)
        return mu, logvar, logits, -bernoulli_log_likelihood(logits, x).mean(), gaussian_kl(mu, logvar)

    def forward(self, x: torch.Tensor):
        mu, logvar, logits, rec, kl_dims = self._terms(x)
        posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        return self.output({"reconstruction": rec, "kl": kl_dims.sum(1).mean()}, recon=logits, code=mu,
                           posterior=posterior)

    def loss_units(self) -> dict[str, str]:
        return {"reconstruction": "nats per image", "kl": "nats per image"}

    # --- training -------------------------------------------------------------------------------------------------
    def kl_weight(self, step: int) -> float:
        """beta_t at global step ``step``: beta, ramped from 0 over ``warmup_steps`` once or in every cycle."""
        return self.config.beta * anneal_weight(step, self.config.warmup_steps, self.config.warmup_schedule)

    def training_step(self, x: torch.Tensor, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        (opt,) = optimizers
        if self.config.architecture == "mlp":
            return self._tape_free_step(x, opt, self.kl_weight(ctx.step))
        _, _, _, rec, kl_dims = self._terms(x)
        kl_mean = kl_dims.mean(0)  # (K,): each dimension's KL, batch mean
        penalised = kl_mean.clamp_min(self.config.free_bits).sum() if self.config.free_bits > 0 else kl_mean.sum()
        beta = self.kl_weight(ctx.step)
        loss = rec + beta * penalised
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"reconstruction": rec.detach(), "kl": kl_mean.sum().detach(),
                "beta": torch.tensor(beta, device=rec.device)}

    @torch.no_grad()
    def _tape_free_step(self, x: torch.Tensor, opt: torch.optim.Optimizer, beta: float) -> dict[str, torch.Tensor]:
        """The MLP's step with its gradients written out, as autograd would compute them under the job's autocast
        (products in its dtype, the rest in float32; tests/test_generative.py checks them against autograd). On 2
        cores in bfloat16 it is 1.07-1.17x faster than the same step through autograd, whose per-op bookkeeping
        weighs on layers this small, and takes the 50-epoch recipe to 1.46-2.42x the plain loop, median 2.04x
        (bench/README)."""
        enc, dec = [*self.encoder[0].layers, self.encoder[1]], list(self.decoder.layers)
        on = torch.is_autocast_enabled(x.device.type)
        dt = torch.get_autocast_dtype(x.device.type) if on else self.encoder[1].weight.dtype
        B, K = x.shape[0], self.config.latent_size

        weights = {id(layer): self._cast(layer.weight, dt) for layer in enc + dec}

        def forward(layers, a):  # ReLU between the layers, none after the last
            inputs = []
            for i, layer in enumerate(layers):
                inputs.append(a)
                a = torch.addmm(layer.bias.to(dt), a, weights[id(layer)].t())
                if i < len(layers) - 1:
                    a = a.relu_()
            return a.float(), inputs

        def backward(layers, inputs, g, input_grad=True):  # g: dL/d(the last layer's output), in dt
            for i in reversed(range(len(layers))):
                gw, gb = _kept_grad(layers[i].weight), _kept_grad(layers[i].bias)
                if gw.dtype == dt:  # float32: straight into .grad, a copy less (3 % of a step on 2 Zen 3 cores)
                    torch.mm(g.t(), inputs[i], out=gw)
                    torch.sum(g, 0, out=gb)
                else:
                    gw.copy_(g.t() @ inputs[i])
                    gb.copy_(g.sum(0))
                if i > 0 or input_grad:
                    g = g @ weights[id(layers[i])]
                if i > 0:  # ReLU's gradient, from its output (this layer's input); one pass, 7x faster than a mask
                    g = torch.ops.aten.threshold_backward(g, inputs[i], 0)
            return g

        out, enc_in = forward(enc, x.to(dt))
        mu, raw = out[:, :K], out[:, K:]
        logvar = raw.clamp(-30.0, 20.0)
        sd = (0.5 * logvar).exp()
        eps = self._eps(mu)
        z = torch.addcmul(mu, sd, eps)
        logits, dec_in = forward(dec, z.to(dt))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / B
        var = sd * sd
        kl_mean = gaussian_kl(mu, logvar).mean(0)
        # d(beta * sum_d max(kl_d, free_bits)) / d kl_dims[b, d] = beta / B where dimension d counts
        w = torch.full_like(kl_mean, beta / B)
        if self.config.free_bits > 0:
            w = w * (kl_mean >= self.config.free_bits)
        dz = backward(dec, dec_in, torch.sigmoid(logits).sub_(x).div_(B).to(dt)).float()  # d rec / d logits
        dmu = dz + w * mu
        dlogvar = (dz * eps * 0.5 * sd + 0.5 * w * (var - 1.0)) * ((raw >= -30.0) & (raw <= 20.0))
        backward(enc, enc_in, torch.cat([dmu, dlogvar], 1).to(dt), input_grad=False)
        opt.step()
        return {"reconstruction": rec, "kl": kl_mean.sum(), "beta": torch.tensor(beta, device=rec.device)}

    def _cast(self, w: torch.Tensor, dt: torch.dtype) -> torch.Tensor:
        """``w`` in ``dt``, written into memory kept from step to step (9 % of an epoch against a new tensor)."""
        if w.dtype == dt:
            return w
        casts = self.__dict__.setdefault("_casts", {})
        buf = casts.get(id(w))
        if buf is None or buf.dtype != dt or buf.shape != w.shape or buf.device != w.device:
            buf = casts[id(w)] = torch.empty_like(w, dtype=dt)
        return buf.copy_(w)

    # --- sampling, filters ------------------------------------------------------------------------------------------
    def prepare_sampling(self, data: Any) -> None:
        """Nothing to fit: samples come from the prior."""

    def prior_latents(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.config.latent_size, generator=gen).to(next(self.parameters()).device)  # N(0, I)

    def first_layer_weights(self) -> torch.Tensor:
        first = self.encoder.convs[0] if self.config.architecture == "conv" else self.encoder[0].layers[0]
        return first.weight[:, 0] if first.weight.dim() == 4 else first.weight

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.architecture == "conv":
            h = torch.relu(self.encoder.convs[0](x.view(len(x), 1, *self.config.input_shape)))
            return h.amax(dim=(2, 3))
        return torch.relu(self.encoder[0].layers[0](x))

    def output_bias(self) -> torch.Tensor:
        return self.decoder.deconvs[-1].bias if self.config.architecture == "conv" else self.decoder.layers[-1].bias

    # --- evaluation -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k | x) for k draws z_k ~ q(z|x): (B, D) -> (B, k). Their mean is the ELBO; the
        log of their mean exp is the importance-weighted bound (Burda et al. 2016), tighter as k grows."""
        mu, logvar = self.posterior_params(x)
        std = (0.5 * logvar).exp()
        eps = torch.randn(k, *mu.shape, generator=gen).to(mu.device)  # (k, B, K)
        z = mu + std * eps
        log_px_z = bernoulli_log_likelihood(self.decode(z.flatten(0, 1)).view(k, len(x), -1), x.expand(k, -1, -1))
        log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
        log_qz = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(-1)
        return (log_px_z + log_pz - log_qz).T

    @torch.no_grad()
    def evaluate(self, data: Any, device: torch.device | None = None, iw_samples: int = 0,
                 progress=None) -> dict[str, Any]:
        """On the test images: ``elbo_loss`` (BCE summed over pixels + KL, one draw of z each, nats per image),
        ``kl_per_dim``, ``active_units``, the autoencoder metrics of the decoded posterior mean, and with
        ``iw_samples`` = K > 0 ``nll_iw``, the K-sample importance-weighted estimate of -log p(x)."""
        was_training = self.training
        self.eval()
        device = device or next(self.parameters()).device
        x = torch.as_tensor(data.x_test)
        gen = torch.Generator().manual_seed(0)
        rec, kl, mus, nll = 0.0, 0.0, [], 0.0
        chunk = 1024
        for i in range(0, len(x), chunk):
            xb = x[i:i + chunk].to(device)
            mu, logvar, _, r, kl_dims = self._terms(xb)
            rec += float(r) * len(xb)
            kl = kl + kl_dims.sum(0).double().cpu()
            mus.append(mu.cpu())
        step = max(1, 20_000 // max(iw_samples, 1))  # images per batch of k decodes each
        for i in range(0, len(x) if iw_samples else 0, step):
            xb = x[i:i + step].to(device)
            lw = self.log_weights(xb, iw_samples, gen)
            nll -= float((torch.logsumexp(lw, 1) - math.log(iw_samples)).sum())
            if progress is not None:
                progress(min(1.0, (i + step) / len(x)))
        self.train(was_training)
        n = len(x)
        kl_per_dim = (kl / n).tolist()
        out = {"elbo_loss": rec / n + sum(kl_per_dim), "active_units": active_units(torch.cat(mus).numpy()),
               "kl_per_dim": kl_per_dim}
        if iw_samples:
            out["nll_iw"] = nll / n
            out["iw_samples"] = iw_samples
        return {**out, **super().evaluate(data, device)}

    def posterior_stats(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Per dimension over images ``x``: the mean and spread of the posterior means, the mean posterior std and
        the mean KL (what the levers' ranges and the 'carries no information' marks come from)."""
        with torch.no_grad():
            mu, logvar = self.posterior_params(torch.as_tensor(x).to(next(self.parameters()).device))
            kl = gaussian_kl(mu, logvar).mean(0)
        mu, std = mu.cpu().numpy(), (0.5 * logvar).exp().cpu().numpy()
        return {"mean": mu.mean(0), "spread": mu.std(0), "std": std.mean(0), "kl": kl.cpu().numpy()}


def active_units(posterior_means: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """How many latent dimensions vary with the input: Var over images of E_q[z_u] > ``threshold`` (Burda et al.
    2016, section 5.2). (N, K) -> count."""
    return int((posterior_means.var(axis=0) > threshold).sum())
