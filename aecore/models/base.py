"""The contract every model family follows: what it can do (:class:`Capabilities`), what its ``forward`` returns
(:class:`ModelOutput`), what a training step is told (:class:`StepContext`), and the base classes :class:`Model`
(any family) and :class:`Autoencoder` (families that encode and reconstruct images)."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn as nn

from ..config import ConfigError, param
from ..losses import reconstruction_loss, to_pixels
from ..optim import adam


@dataclass(frozen=True)
class Capabilities:
    """What a family can do; pages and the CLI read this from the registry and never test a class or a name."""

    reconstructs: bool = False  # maps an input to a reconstruction of it
    encodes: bool = False  # maps an input to a code vector
    samples: bool = False  # draws new data from a prior or noise
    posterior: bool = False  # its code is a distribution q(z|x)
    filters: bool = False  # first-layer filters and per-unit activations
    modality: str = "image"  # "image" or "text"

    _NAMES = {"reconstructs": "does not reconstruct its input", "encodes": "has no encoder",
              "samples": "cannot sample", "posterior": "has no posterior", "filters": "has no per-unit first-layer filters"}

    def lacks(self, modality: str | None = None, **needs: bool) -> list[str]:
        """Why a model with these capabilities cannot serve ``needs`` (``reconstructs=True``, ...) on data of
        ``modality``: one short reason each, empty when it can."""
        reasons = [self._NAMES[k] for k, wanted in needs.items() if wanted and not getattr(self, k)]
        if modality is not None and modality != self.modality:
            reasons.insert(0, f"works on {self.modality}, not {modality}")
        return reasons


class StepContext(NamedTuple):
    """Where a training step stands, for families that schedule something by step (KL warm-up, D:G ratios).
    A NamedTuple: one is made every step, and a frozen dataclass costs 5x longer to build."""

    step: int  # global step, counted from 0
    epoch: int  # counted from 0
    total_steps: int
    steps_per_epoch: int


@dataclass
class ModelOutput:
    """What every model's ``forward`` returns.

    ``losses``: named, already weighted terms whose sum is minimised; ``units`` names each term's unit ("BCE per
    pixel", "nats per image", ...). ``recon``: (B, D) logits when the model's ``output_kind`` is ``"logits"``, else
    pixel values, where the family reconstructs; ``code``: (B, K) where it encodes; ``posterior``: a
    ``torch.distributions.Distribution`` q(z|x) where it has one.
    """

    losses: dict[str, torch.Tensor]
    recon: torch.Tensor | None = None
    code: torch.Tensor | None = None
    posterior: Any = None
    units: dict[str, str] = field(default_factory=dict)

    @property
    def loss(self) -> torch.Tensor:
        return sum(self.losses.values())


AEOutput = ModelOutput  # the name the autoencoder families grew up with


MAX_PIXELS = 1 << 20  # an image of at most 1024 x 1024


@dataclass(frozen=True)
class AEConfig:
    """Fields every image family has. ``input_shape`` comes from the dataset, not from a slider."""

    input_shape: tuple[int, ...] = param((28, 28), ui=False, min=1, max=4096, help="image shape, taken from the dataset")

    def __post_init__(self) -> None:
        # checked before any layer is built: a damaged run asking for 100,000 x 100,000 images must not allocate
        if math.prod(self.input_shape) > MAX_PIXELS:
            raise ConfigError(f"input_shape {tuple(self.input_shape)} has more than {MAX_PIXELS:,} pixels")

    @property
    def input_dim(self) -> int:
        return math.prod(self.input_shape)

    def validate(self) -> None:
        """Raise ``ConfigError`` for a combination of values that cannot work (ranges are checked already)."""


class Model(nn.Module):
    """Base class of every family. ``forward(batch)`` returns a :class:`ModelOutput`; ``training_step`` is what the
    one training loop calls. A family with its own learning rule (a closed form, a GAN's two optimisers, a
    Hebbian-style update) overrides ``training_step`` and ``configure_optimizers``, or sets ``closed_form`` and
    implements ``fit_closed_form``."""

    registry_name: str = ""
    capabilities = Capabilities()
    closed_form: bool = False
    snapshot_kind = "filters"  # what :meth:`epoch_snapshot` holds: "filters" or "samples"
    metric_labels: dict[str, str] = {}  # metric name -> label, the headline first (see :meth:`evaluate`)
    # values a training step reports beside its loss terms (a GAN's D accuracy, the KL weight in force): logged and
    # plotted, never added to the loss; name -> label
    stat_labels: dict[str, str] = {}
    # training settings the family does not use, each with why (a rule with its own step size has no use for
    # ``lr``): the Train page greys them out, where moving them did nothing
    unused_settings: dict[str, str] = {}

    def __init__(self, config: Any):
        super().__init__()
        self.config = config

    def loss_units(self) -> dict[str, str]:
        """The unit of each loss term (a term not named here is a weighted penalty)."""
        return {}

    def output(self, losses: dict[str, torch.Tensor], **parts: Any) -> ModelOutput:
        """A :class:`ModelOutput` with this family's units filled in."""
        return ModelOutput(losses, units=self.loss_units(), **parts)

    # --- training hooks -----------------------------------------------------------------------------------------
    def configure_optimizers(self, settings: Any, device: torch.device) -> list:
        """Adam over all parameters at ``settings.lr`` (the fused kernel where the device has one)."""
        self.seed_noise(settings.seed, device)
        return [adam(self.parameters(), settings.lr, device)]

    _noise: torch.Generator | None = None  # the training thread's own random draws (z, word dropout, fakes)

    def seed_noise(self, seed: int, device: torch.device) -> None:
        """Start the training thread's generator at ``seed``, so a run's draws repeat with its seed."""
        self._noise = torch.Generator(device).manual_seed(seed)

    def noise(self, device: torch.device) -> torch.Generator:
        """The generator for random draws on ``device``: the training thread's while training, else a fresh one
        seeded 0, so evaluation draws the same every time."""
        gen = self._noise if self.training else None
        return gen if gen is not None and gen.device == device else torch.Generator(device).manual_seed(0)

    def training_step(self, batch: Any, optimizers: list, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One update on ``batch``; returns the detached loss terms."""
        (opt,) = optimizers
        out = self(batch)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        return {k: v.detach() for k, v in out.losses.items()}

    def fit_closed_form(self, x: torch.Tensor) -> None:
        """Fit in one shot on the whole training set (families with ``closed_form = True``)."""
        raise NotImplementedError

    @classmethod
    def supports_greedy(cls) -> bool:
        """Whether :meth:`greedy_stages` gives stages (the Train page greys the Greedy toggle out otherwise)."""
        return cls.greedy_stages is not Model.greedy_stages

    @classmethod
    def settings_unused(cls) -> dict[str, str]:
        """The training settings this family does not use, each with why: its own :attr:`unused_settings`, the
        greedy ones without :meth:`greedy_stages`, the output bias's start without :meth:`output_bias` or images.
        The Train page greys them out: a GAN's Greedy toggle and a recurrent model's output bias did nothing."""
        out = {}
        if not cls.supports_greedy():
            out.update(dict.fromkeys(("greedy", "greedy_epochs", "finetune"),
                                     "not for this model: it has no greedy layer-wise pretraining"))
        if cls.output_bias is Model.output_bias or cls.capabilities.modality != "image":
            out["output_bias_from_data"] = "not for this model: it has no output bias to start at the pixels' mean"
        return {**out, **cls.unused_settings}

    def greedy_stages(self) -> list[tuple[nn.Module, nn.Module]]:
        """(encoder layer, mirrored decoder layer) pairs, outermost first, for greedy layer-wise pretraining: each
        is trained as a shallow autoencoder on the codes of the layers before it."""
        return []

    def end_epoch(self, epoch: int) -> None:
        """Called after each training epoch (counted from 1), in the training thread."""

    def epoch_snapshot(self) -> np.ndarray | None:
        """What the page's epoch scrubber shows of this epoch, kept small (float16): first-layer filters by
        default, a GAN's samples from fixed noise."""
        weights = self.first_layer_weights()
        return None if weights is None else weights.detach().to("cpu", torch.float16).numpy().copy()

    def artifacts(self) -> dict[str, Any]:
        """Named things to save with the run beside its weights (see :meth:`aecore.store.RunStore.save`)."""
        return {}

    def output_bias(self) -> torch.Tensor | None:
        """The bias added last to an image output: (D,) or (1,); ``None`` where there is none. Training starts it
        at the data's mean (``TrainSettings.output_bias_from_data``)."""
        return None

    # --- what the views and the job read ------------------------------------------------------------------------
    def preview(self, batch: Any) -> Any:
        """What the live view shows for the fixed probe ``batch`` (reconstructions, samples, decoded text), or
        ``None``. Called in eval mode under ``no_grad``."""
        return None

    def evaluate(self, data: Any, device: torch.device | None = None) -> dict[str, float]:
        """Test metrics on dataset ``data`` (keys as in :attr:`metric_labels`); none by default."""
        return {}

    # --- sampling (families whose capabilities say ``samples``) -------------------------------------------------
    def prepare_sampling(self, data: Any) -> None:
        """Whatever :meth:`sample` needs from the training data (a plain autoencoder fits its code density)."""

    def prior_latents(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` latent vectors (codes, noise) drawn with ``gen`` (a CPU generator) from what the family samples
        from, on the model's device: (n, K)."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    def decode_pixels(self, z: torch.Tensor) -> torch.Tensor:
        """Latent vectors to pixels in [0, 1]: (n, K) -> (n, D)."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    @torch.no_grad()
    def sample(self, n: int, gen: torch.Generator, chunk: int = 256) -> torch.Tensor:
        """``n`` new samples drawn with ``gen``: (n, D) pixels in [0, 1]; the latents drawn at once (the same seed
        gives the same samples), decoded ``chunk`` at a time (the DCGAN's 1,000 in 56 ms instead of 91 ms)."""
        z = self.prior_latents(n, gen)
        return torch.cat([self.decode_pixels(z[i:i + chunk]) for i in range(0, n, chunk)]) if n > chunk else \
            self.decode_pixels(z)

    def diagnose(self, history: list[dict], samples: np.ndarray, reference: np.ndarray,
                 labels: np.ndarray | None = None, n_classes: int = 10) -> list[str]:
        """What has gone wrong in training, judged from the loss ``history``, ``samples`` (N, D), real images
        ``reference`` and a classifier's ``labels`` of the samples (of ``n_classes``); one sentence each, none by
        default."""
        return []

    def first_layer_weights(self) -> torch.Tensor | None:
        """First-layer filters: (units, D) for dense layers, (channels, kh, kw) for convolutions."""
        return None

    def collapse(self, probe: Any) -> str:
        """Why the model looks collapsed on the probe batch (one short clause), or "" (never, by default)."""
        return ""

    def unit_activations(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, units) first-layer activations, differentiable in ``x``; ``None`` where units have no filter."""
        return None

    def unit_outputs(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, units) what the first-layer units pass on, after any selection among them (k-sparse's top k, a
        threshold): what sparsity is measured on. The activations themselves unless a family selects."""
        return self.unit_activations(x)


class Autoencoder(Model):
    """Families that encode flat (B, D) images in [0, 1] and reconstruct them: subclasses implement ``encode`` and
    ``decode`` and may add penalty terms; the loss, preview and test metrics are shared."""

    capabilities = Capabilities(reconstructs=True, encodes=True, samples=True)
    output_kind: str = "logits"
    metric_labels = {"bce": "test BCE", "mse": "MSE / pixel", "sse_per_image": "squared error / image"}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encoder_jacobian(self, x: torch.Tensor) -> torch.Tensor | None:
        """Per-sample Jacobians of :meth:`encode`, (B, D) -> (B, K, D), where the family has them in closed form;
        None where they must come from autograd (``analysis``)."""
        return None

    def penalties(self, x: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra named loss terms (sparsity, contraction, ...); none by default."""
        return {}

    def loss_units(self) -> dict[str, str]:
        return {"reconstruction": "BCE per pixel" if self.output_kind == "logits" else "MSE per pixel"}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        code = self.encode(x)  # (B, D) -> (B, K)
        recon = self.decode(code)  # (B, K) -> (B, D)
        losses = {"reconstruction": reconstruction_loss(recon, x, self.output_kind)}
        losses.update(self.penalties(x, code))
        return self.output(losses, recon=recon, code=code)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions in pixel space [0, 1], (B, D) -> (B, D)."""
        return to_pixels(self.decode(self.encode(x)), self.output_kind)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Codes for downstream use (probes, retrieval, projections): the code, unless a family says otherwise."""
        return self.encode(x)

    @property
    def code_size(self) -> int:
        return int(self.config.code_size)

    def preview(self, batch: torch.Tensor) -> np.ndarray:
        return self.reconstruct(batch).cpu().numpy()

    @torch.no_grad()
    def collapse(self, probe: torch.Tensor) -> str:
        """Reconstructions whose spread over the probe images is under 5% of the images' own: nearly one image
        for every input (healthy runs measured 20-100% after an epoch; the collapsed ones 0-4%)."""
        was_training = self.training
        self.eval()
        recon = self.reconstruct(probe)
        self.train(was_training)
        spread = float(recon.std(0).mean() / probe.std(0).mean().clamp_min(1e-12))
        return f"its reconstructions are nearly one image for every input (their spread is {spread:.1%} of the " \
               f"inputs')" if spread < 0.05 else ""

    @torch.no_grad()
    def prepare_sampling(self, data: Any) -> None:
        """Fit a Gaussian (mean, full covariance) to the codes of the training images, once per model: a plain
        autoencoder has no prior, so its samples decode codes drawn from this fit (seed 004)."""
        if getattr(self, "_code_density", None) is not None:
            return
        device = next(itertools.chain(self.parameters(), self.buffers())).device
        x = torch.as_tensor(data.x_train)
        was_training = self.training
        self.eval()
        # the moments in one pass, chunk by chunk: holding all codes (60,000 x 1000 in float64 for a k-sparse run
        # on full MNIST) and torch.cov's centred copy took 1.25 GB of the server's memory at its peak
        total, outer, n = None, None, 0
        for i in range(0, len(x), 4096):
            codes = self.encode(x[i:i + 4096].to(device)).double()
            total = codes.sum(0) if total is None else total + codes.sum(0)
            outer = codes.T @ codes if outer is None else outer + codes.T @ codes
            n += len(codes)
        self.train(was_training)
        mean = total / n
        cov = (outer - n * torch.outer(mean, mean)) / max(n - 1, 1)
        cov = (cov + cov.T) / 2
        cov = cov + 1e-6 * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(len(mean), dtype=cov.dtype,
                                                                                 device=cov.device)
        self._code_density = (mean, torch.linalg.cholesky(cov))

    def prior_latents(self, n: int, gen: torch.Generator) -> torch.Tensor:
        if getattr(self, "_code_density", None) is None:
            raise RuntimeError("call prepare_sampling(dataset) first: samples decode codes drawn from a Gaussian "
                               "fitted to the training codes")
        mean, chol = self._code_density
        eps = torch.randn(n, len(mean), generator=gen, dtype=torch.float64).to(mean.device)
        return (mean + eps @ chol.T).float()

    def decode_pixels(self, z: torch.Tensor) -> torch.Tensor:
        return to_pixels(self.decode(z), self.output_kind)

    def evaluate(self, data: Any, device: torch.device | None = None) -> dict[str, float]:
        """Mean BCE per pixel, MSE per pixel and squared error per image on the test images."""
        from ..metrics import evaluate
        return evaluate(self, data.x_test, device=device)
