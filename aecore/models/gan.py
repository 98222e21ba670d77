"""Generative adversarial network (Goodfellow et al., NeurIPS 2014) in two shapes: DCGAN-style (Radford et al.,
ICLR 2016: strided convolutions, batch norm in G, LeakyReLU in D, Adam with beta1 = 0.5) and fully connected.
Non-saturating loss by default; WGAN-GP (Gulrajani et al. 2017) as an option. Its own training step, as in
pytorch/examples' dcgan: D on real, D on detached fakes, then G, each with its own optimiser.

D judges packs of samples (PacGAN) and is spectrally normalised (SN-GAN) by default. On full MNIST, with DCGAN's batch
norm in D the 9s were 15.6-16.2 % of the samples in two seeds; with spectral norm, 16 epochs at DCGAN's lr 2e-4 put
every class within 5-15 % in three seeds of three. Spectral norm lets D take a larger rate (SN-GAN trained at up to
1e-3): at 4e-4 to 6e-4, 10 epochs reach the classifier distance of 2e-4's 16, and every class within 5-15 % in 6 runs
of 9 (bench/README). The 9s were the class over 15 %, by the classifier and by the label of each sample's nearest
training image alike; a small weight of feature matching (Salimans et al. 2016) in G's loss brought them under.
Without batch norm, D judges real and fake images in one pass. Training starts from ``precision=auto``: bfloat16
products where the CPU has them, 1.3x faster a step.

Live it reports D's and G's losses and D's accuracy on real and on fake; each epoch it keeps the samples of a fixed
noise batch (the page's epoch scrubber) and the generator's weights (so a collapsed run can be rolled back).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError, param
from ..registry import register_model
from .base import AEConfig, Capabilities, Model, StepContext

FIXED_NOISE = 64  # samples in the live grid and in each epoch's snapshot
MAX_CHECKPOINTS = 8  # generator weights kept per run (thinned like the snapshots)


@contextlib.contextmanager
def _no_weight_grads(module: nn.Module):
    """Gradients flow through ``module`` to its input, but none are computed for its own parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@dataclass(frozen=True)
class GANConfig(AEConfig):
    architecture: str = param("dcgan", choices=("dcgan", "mlp"),
                              help="dcgan: transposed convolutions with batch norm; mlp: fully connected")
    noise_size: int = param(64, min=1, max=256, step=1, help="dimensions of the noise z ~ N(0, I)")
    width: int = param(32, min=8, max=256, step=8,
                       help="dcgan: channels of the widest stage of D and G's last stage (doubled next to it); "
                            "mlp: units of the smaller hidden layer (the other has twice as many)")
    loss: str = param("non-saturating", choices=("non-saturating", "wgan-gp"),
                      help="non-saturating: G maximises log D(G(z)); wgan-gp: a critic with a gradient penalty")
    gp_weight: float = param(10.0, min=0.0, max=100.0, step=0.5, when={"loss": "wgan-gp"},
                             help="wgan-gp: weight λ of the gradient penalty")
    critic_steps: int = param(1, min=1, max=10, step=1, help="D updates per G update (5 is usual for wgan-gp)")
    pack: int = param(4, min=1, max=8, step=1, before=1,
                      help="PacGAN (Lin et al. 2018): D judges packs of this many samples at once, all real or all "
                           "fake, which penalises a generator that gives some classes too much or too little mass")
    d_norm: str = param("spectral", choices=("spectral", "batch", "none"), before="batch",
                        help="D's normalisation: spectral norm on every layer (Miyato et al. 2018), which bounds "
                             "how fast D can change; batch norm (DCGAN's, dcgan only: never in a wgan-gp critic); "
                             "or none")
    feature_matching: float = param(0.03, min=0.0, max=0.3, step=0.01, before=0.0, when={"loss": "non-saturating"},
                                    help="feature matching (Salimans et al. 2016): G's loss also counts this times "
                                         "the squared distance between the means of D's last hidden layer over "
                                         "real and over fake images, which pulls G towards the data's mix of "
                                         "classes (non-saturating loss only); 0: off")

    def validate(self) -> None:
        if self.architecture == "dcgan" and (len(self.input_shape) != 2 or any(s % 4 for s in self.input_shape)):
            raise ConfigError("the DCGAN shape needs 2-D images whose sides divide by 4; pick the mlp architecture")


class _ConvGenerator(nn.Module):
    def __init__(self, c: GANConfig):
        super().__init__()
        w, (h, wd) = c.width, c.input_shape
        self.base = (2 * w, h // 4, wd // 4)
        self.fc = nn.Sequential(nn.Linear(c.noise_size, math.prod(self.base), bias=False),
                                nn.BatchNorm1d(math.prod(self.base)), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                nn.ConvTranspose2d(w, 1, 4, 2, 1))  # (2w, h/4, w/4) -> (1, h, w)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(z).view(len(z), *self.base)).flatten(1)  # logits (B, D)


class _ConvDiscriminator(nn.Module):
    def __init__(self, c: GANConfig):
        super().__init__()
        w, (h, wd) = c.width, c.input_shape
        self.shape = tuple(c.input_shape)
        batch_norm = c.loss == "non-saturating" and c.d_norm == "batch"  # no batch norm in a critic
        sn = _norm(c)
        self.pack = c.pack
        self.net = nn.Sequential(sn(nn.Conv2d(c.pack, w, 4, 2, 1)), nn.LeakyReLU(0.2),
                                 sn(nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False)),
                                 nn.BatchNorm2d(2 * w) if batch_norm else nn.Identity(), nn.LeakyReLU(0.2),
                                 nn.Flatten(), sn(nn.Linear(2 * w * (h // 4) * (wd // 4), 1)))

    def forward(self, x: torch.Tensor, features: bool = False):
        """One logit / score a pack; with ``features``, also D's last hidden layer (a row a pack)."""
        h = self.net[:-1](packs(x, self.pack).view(-1, self.pack, *self.shape))
        score = self.net[-1](h).squeeze(1)
        return (score, h) if features else score


def _norm(c: GANConfig):
    """What wraps each of D's layers: spectral normalisation, or nothing."""
    return nn.utils.parametrizations.spectral_norm if c.d_norm == "spectral" else (lambda m: m)


class _MLPDiscriminator(nn.Sequential):
    def __init__(self, c: GANConfig):
        w, d, sn = c.width, c.input_dim, _norm(c)
        super().__init__(_Pack(c.pack), sn(nn.Linear(c.pack * d, 8 * w)), nn.LeakyReLU(0.2),
                         sn(nn.Linear(8 * w, 4 * w)), nn.LeakyReLU(0.2), sn(nn.Linear(4 * w, 1)), nn.Flatten(0))
        self.pack = c.pack

    def forward(self, x: torch.Tensor, features: bool = False):
        *body, last, flat = self  # a slice of a Sequential subclass would call this __init__
        for m in body:
            x = m(x)
        score = flat(last(x))
        return (score, x) if features else score


def _mlp_nets(c: GANConfig) -> tuple[nn.Module, nn.Module]:
    w, d = c.width, c.input_dim
    gen = nn.Sequential(nn.Linear(c.noise_size, 4 * w), nn.LeakyReLU(0.2), nn.Linear(4 * w, 8 * w),
                        nn.LeakyReLU(0.2), nn.Linear(8 * w, d))
    return gen, _MLPDiscriminator(c)


def packs(x: torch.Tensor, pack: int) -> torch.Tensor:
    """(B, D) -> (B // pack, pack * D): consecutive samples side by side, a pack each; a batch's remainder is left
    out, and a batch smaller than one pack is repeated to fill it (so D never sees an empty batch)."""
    if len(x) < pack:
        x = x.repeat(math.ceil(pack / max(len(x), 1)), 1)
    n = len(x) // pack
    return x[:n * pack].reshape(n, -1)


class _Pack(nn.Module):
    def __init__(self, pack: int):
        super().__init__()
        self.pack = pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return packs(x, self.pack)


def gradient_penalty(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017, eq. 3): mean (||grad_x D(x_hat)|| - 1)^2 at random points x_hat
    on the lines between real and fake samples."""
    t = torch.rand(len(real), 1, generator=gen, device=real.device)
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)
    grad = packs(grad, getattr(disc, "pack", 1))  # D's input is a pack of samples: the norm is over the pack
    return (grad.norm(dim=1) - 1).pow(2).mean()


@register_model("gan", GANConfig, "GAN (Goodfellow et al. 2014), DCGAN or MLP; non-saturating or WGAN-GP",
                presets={"DCGAN (width 32)": {}, "DCGAN, batch norm in D (Radford et al.)": {"d_norm": "batch"},
                         "MLP GAN": {"architecture": "mlp", "width": 64},
                         "WGAN-GP (DCGAN, 5 critic steps)": {"loss": "wgan-gp", "critic_steps": 5, "d_norm": "none"}},
                # lr 5e-4 (1, 2, 5: on the Train page's scale): 10 epochs of full MNIST score as 2e-4's 16 (15,000
                # steps) did; on the embedded 4,000 digits, 6e-4's 120 epochs scored as 2e-4's 240
                train_defaults={"batch_size": 64, "lr": 5e-4, "epochs": 5, "precision": "auto"},
                min_steps=9_000)
class GAN(Model):
    capabilities = Capabilities(samples=True)
    # listed by its samples' scores (the job adds them): a D loss says who is winning, not how good the samples are
    metric_labels = {"classifier_frechet": "classifier Fréchet", "confident_share": "confident ≥ 0.9",
                     "d_loss": "test D loss", "g_loss": "test G loss"}

    def __init__(self, config: GANConfig):
        super().__init__(config)
        if config.architecture == "dcgan":
            self.generator, self.discriminator = _ConvGenerator(config), _ConvDiscriminator(config)
        else:
            self.generator, self.discriminator = _mlp_nets(config)
        self.register_buffer("fixed_noise", torch.randn(FIXED_NOISE, config.noise_size))
        self.stat_labels = ({"d_real_acc": "D accuracy on real", "d_fake_acc": "D accuracy on fake"}
                            if config.loss == "non-saturating" else {"wasserstein": "critic's Wasserstein estimate"})
        # the weight in force: not measured with a wgan-gp critic (unnormalised, its features unbounded)
        self.fm_weight = config.feature_matching if config.loss == "non-saturating" else 0.0
        self._last_g: torch.Tensor | None = None
        self._joint_d = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.discriminator.modules())
        self.checkpoints: dict[int, dict[str, torch.Tensor]] = {}  # epoch -> generator weights

    def loss_units(self) -> dict[str, str]:
        unit = "nats (BCE)" if self.config.loss == "non-saturating" else "critic score"
        return {"d_loss": unit, "g_loss": unit}

    snapshot_kind = "samples"

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] from noise: (B, noise) -> (B, D)."""
        return torch.sigmoid(self.generator(z))

    def _d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "non-saturating":  # -log D(x) - log(1 - D(G(z))), on logits
            return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return d_fake.mean() - d_real.mean()

    def _g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-d_fake).mean() if self.config.loss == "non-saturating" else -d_fake.mean()

    def forward(self, x: torch.Tensor):
        """D's and G's losses on real images ``x`` and as many fakes (fixed draws outside training)."""
        gen = torch.Generator(x.device).manual_seed(len(x))
        fake = self.generate(torch.randn(len(x), self.config.noise_size, generator=gen, device=x.device))
        d_fake = self.discriminator(fake)
        return self.output({"d_loss": self._d_loss(self.discriminator(x), d_fake), "g_loss": self._g_loss(d_fake)})

    # --- training -------------------------------------------------------------------------------------------------
    def configure_optimizers(self, settings: Any, device: torch.device) -> list:
        from ..optim import adam
        self.seed_noise(settings.seed, device)
        # oneDNN's convolutions run faster on weights in channels-last order: 6-14 % of a float32 step (2 Zen 3 cores)
        self.to(memory_format=torch.channels_last)
        return [adam(self.discriminator.parameters(), settings.lr, device, betas=(0.5, 0.999)),
                adam(self.generator.parameters(), settings.lr, device, betas=(0.5, 0.999))]

    def training_step(self, real: torch.Tensor, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        opt_d, opt_g = optimizers
        c = self.config
        # at least two fakes: G's batch norm cannot train on one sample (a batch size of 1, or a last batch of 1)
        z = torch.randn(max(len(real), 2), c.noise_size, generator=self._noise, device=real.device)
        fake = self.generate(z)
        disc = self.discriminator
        if self._joint_d and len(fake) == len(real) and len(real) % c.pack == 0:  # one pass of D: 8 % faster a step
            d_both, h = disc(torch.cat([real, fake.detach()]), features=True)
            d_real, d_fake, h_real = d_both[:len(d_both) // 2], d_both[len(d_both) // 2:], h[:len(h) // 2]
        else:  # two passes: batch norm in D keeps real and fake statistics apart (DCGAN), or the halves differ
            (d_real, h_real), d_fake = disc(real, features=True), disc(fake.detach())  # D on real, on fakes
        d_loss = self._d_loss(d_real, d_fake)
        if c.loss == "wgan-gp" and c.gp_weight > 0:
            d_loss = d_loss + c.gp_weight * gradient_penalty(disc, real, fake.detach(), self._noise)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if self._last_g is None or ctx.step % c.critic_steps == 0:  # then G, through the updated D
            with _no_weight_grads(disc):  # D's would be thrown away at its next step: 5 % of a step
                d_fake_g, h_fake = disc(fake, features=True)
                g_loss = self._g_loss(d_fake_g)
                # g_loss stays the GAN's own, as reported; the gap (5-150 on MNIST) is left off the curves, where it
                # flattened D's accuracies sharing their panel
                total = g_loss
                if self.fm_weight > 0:  # against D's real features before its step: one forward pass fewer
                    total = g_loss + self.fm_weight * (h_fake.float().mean(0)
                                                       - h_real.detach().float().mean(0)).pow(2).sum()
                opt_g.zero_grad(set_to_none=True)
                total.backward()
            opt_g.step()
            self._last_g = g_loss.detach()
        out = {"d_loss": d_loss.detach(), "g_loss": self._last_g}
        if c.loss == "non-saturating":
            out.update(d_real_acc=(d_real > 0).float().mean().detach(), d_fake_acc=(d_fake < 0).float().mean().detach())
        else:
            out["wasserstein"] = (d_real.mean() - d_fake.mean()).detach()
        return out

    def end_epoch(self, epoch: int) -> None:
        from ..training import thin
        self.checkpoints[epoch] = {k: v.detach().to("cpu", copy=True) for k, v in self.generator.state_dict().items()}
        thin(self.checkpoints, MAX_CHECKPOINTS)

    def artifacts(self) -> dict[str, Any]:
        """The generator's weights after each kept epoch (``checkpoints``), for :meth:`RunStore.rollback`."""
        return {"checkpoints": {f"epoch_{e}.generator.{k}": v for e, sd in self.checkpoints.items()
                                for k, v in sd.items()}} if self.checkpoints else {}

    # --- what views read ------------------------------------------------------------------------------------------
    def prior_latents(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.config.noise_size, generator=gen).to(self.fixed_noise.device)

    def decode_pixels(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate(z)

    def diagnose(self, history: list[dict], samples: np.ndarray, reference: np.ndarray,
                 labels: np.ndarray | None = None, n_classes: int = 10) -> list[str]:
        return diagnose(history, samples, reference, labels, n_classes)

    @torch.no_grad()
    def preview(self, batch: Any) -> np.ndarray:
        return self.generate(self.fixed_noise).cpu().numpy()

    def epoch_snapshot(self) -> np.ndarray:
        was_training = self.training
        self.eval()
        with torch.no_grad():
            samples = self.generate(self.fixed_noise).to("cpu", torch.float16).numpy().copy()
        self.train(was_training)
        return samples

    @torch.no_grad()
    def evaluate(self, data: Any, device: torch.device | None = None) -> dict[str, float]:
        was_training = self.training
        self.eval()
        x = torch.as_tensor(data.x_test)
        device = device or self.fixed_noise.device
        sums = {"d_loss": 0.0, "g_loss": 0.0}
        for i in range(0, len(x), 2048):
            xb = x[i:i + 2048].to(device)
            for k, v in self(xb).losses.items():
                sums[k] += float(v) * len(xb)
        self.train(was_training)
        return {k: v / len(x) for k, v in sums.items()}



def diagnose(history: list[dict], samples: np.ndarray, reference: np.ndarray,
             labels: np.ndarray | None = None, n_classes: int = 10) -> list[str]:
    """What has gone wrong with a GAN, in words (empty when nothing has): D's loss near 0 over the last log points
    (the generator gets no gradient), samples nearly identical to each other (their mean pairwise distance under
    a third of real images'), or most samples in one class (``labels``: a classifier's labels of the samples, of
    ``n_classes``): the other classes hold under 5/9 of the share a uniform spread gives them, which for 10 classes
    is one class over half (for 2 classes, over 72 %: 57 % of one of two was called a collapse)."""
    problems = []
    recent = [h["d_loss"] for h in history[-5:] if "d_loss" in h]
    if recent and all(math.isfinite(v) and 0 <= v < 1e-3 for v in recent):
        problems.append("divergence: D's loss is at 0, so the generator no longer gets a useful gradient")
    if any(not math.isfinite(h.get("d_loss", 0.0)) for h in history[-5:]):
        problems.append("divergence: the losses are not finite")
    spread = _mean_pairwise_distance(samples)
    real = _mean_pairwise_distance(reference)
    if real > 0 and spread < real / 3:
        problems.append(f"mode collapse: the samples are nearly identical (mean distance between two samples "
                        f"{spread:.2f}, between two real images {real:.2f})")
    if labels is not None and len(labels):
        counts = np.bincount(labels, minlength=n_classes)
        top = int(counts.argmax())
        if 1 - counts[top] / len(labels) < 5 / 9 * (n_classes - 1) / n_classes:
            problems.append(f"mode collapse: {counts[top] / len(labels):.0%} of the samples are classified as "
                            f"class {top}")
    return problems


def _mean_pairwise_distance(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)[:256]
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    n = len(x)
    return float(np.sqrt(d2).sum() / max(n * (n - 1), 1))
