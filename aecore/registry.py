"""The model registry, in the manner of timm's ``create_model`` / ``list_models``.

A model family registers itself with :func:`register_model` in its own module under ``aecore/models/``; the UI and
the CLI read names, configs and presets from here and never spell a model name themselves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import functools
import itertools
import math

import torch

from .config import ConfigError, check_ranges, coerce

MAX_WEIGHTS = 50_000_000  # parameters and buffers of one model: 200 MB of float32, far past what trains on a CPU


@dataclass(frozen=True)
class ModelSpec:
    """Everything the app needs to know about a registered model family."""

    name: str
    builder: Callable[..., Any]
    config_cls: type
    summary: str
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_defaults: dict[str, Any] = field(default_factory=dict)  # TrainSettings fields this family starts from
    min_steps: int = 0  # optimiser steps it needs to show what it learns, whatever the dataset's size

    def epochs_for(self, epochs: int, train_size: int | None, batch_size: int) -> int:
        """``epochs``, or more where they are fewer than :attr:`min_steps` on ``train_size`` images (unknown:
        as given), within the 500 that training allows."""
        if not self.min_steps or not train_size:
            return epochs
        return max(epochs, min(500, math.ceil(self.min_steps / steps(1, train_size, batch_size))))

    @property
    def capabilities(self):
        """What the family can do (:class:`aecore.models.base.Capabilities`), declared on its class."""
        return self.builder.capabilities


def steps(epochs: int, train_size: int, batch_size: int) -> int:
    """Optimiser steps of ``epochs`` over ``train_size`` images in batches of ``batch_size`` (the last one short)."""
    return epochs * math.ceil(train_size / batch_size)


_REGISTRY: dict[str, ModelSpec] = {}
DEFAULT_MODEL = "stacked"  # what the Train page offers first: the seed recipe
DEFAULT_MODELS = {"image": DEFAULT_MODEL, "text": "sentence-vae"}  # and first for each modality


def register_model(name: str, config_cls: type, summary: str, presets: dict[str, dict[str, Any]] | None = None,
                   train_defaults: dict[str, Any] | None = None, min_steps: int = 0):
    """Class decorator: register a model family built as ``cls(config)``; ``train_defaults`` are the training
    settings it starts from where they differ from :class:`aecore.training.TrainSettings`' (a GAN's learning rate);
    ``min_steps`` the steps it needs, which a small dataset's epochs fall short of (a GAN's samples)."""

    def wrap(cls):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, cls, config_cls, summary, dict(presets or {}),
                                    dict(train_defaults or {}), min_steps)
        cls.registry_name = name
        return cls

    return wrap


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the package registers every family)


def list_models(modality: str | None = None, **needs: bool) -> list[str]:
    """Names of the registered models, sorted; with arguments, only those whose capabilities serve them
    (``list_models(samples=True)``, ``list_models(modality="text")``)."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if not s.capabilities.lacks(modality, **needs))


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; an unknown name raises ``KeyError`` listing the valid ones."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_config(name: str, **overrides: Any) -> Any:
    """A validated config for model ``name``: defaults with ``overrides`` applied (strings are converted), and
    the model it builds within MAX_WEIGHTS."""
    spec, config = model_spec(name), describe_config(name, **overrides)
    n = _weight_count(spec, config)
    if n is not None and n > MAX_WEIGHTS:
        raise ConfigError(f"{name} with these settings has {n:,} weights, more than the {MAX_WEIGHTS:,} this tool "
                          f"builds (about {MAX_WEIGHTS * 4 >> 20} MB); use fewer or narrower layers")
    return config


def describe_config(name: str, **overrides: Any) -> Any:
    """:func:`make_config` without counting the weights, for a config that names a model but does not build it
    (a recipe): the count builds the model on the meta device, where some families' starts (spectral norm, an
    embedding) imported torch._dynamo, 0.55-0.78 s of the Home page's first run."""
    spec = model_spec(name)
    config = spec.config_cls(**coerce(spec.config_cls, overrides))
    check_ranges(config)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def _weight_count(spec: ModelSpec, config: Any) -> int | None:
    """How many weights ``config`` builds, counted on PyTorch's meta device (shapes only, nothing allocated);
    ``None`` for a family whose constructor computes with its tensors, which the meta device cannot. Remembered
    per config: the GAN's count takes 270 ms (spectral norm's start runs in Python on the meta device), and the
    Train page's live view rebuilt the model it draws from at each publication, starving the training thread."""
    try:
        hash(config)
    except TypeError:
        return _count_on_meta(spec.builder, config)
    return _remembered_count(spec.builder, config)


class _ShapesOnly(torch.overrides.TorchFunctionMode):
    """Shapes only, for counting on the meta device. Weight initialisers (``torch.nn.init``) and in-place random
    fills leave meta tensors as they are; ``F.normalize``, ``torch.mv``, ``torch.vdot``, division by a scalar,
    ``torch.eye`` and random draws (``randn``, ``rand``, ``randint``) give empty tensors of their results' shapes.
    Their meta kernels are written in Python. The first of a process imported torch._dynamo, 1.3-2.1 s in the thread
    that counted (k-sparse's Gaussian start, the sentence models' embeddings, the GAN's spectral norm, sparse
    coding's unit-norm atoms, PCA's identity), or sympy, 0.5 s (the GAN's noise, the dictionary's draw).
    A number read from a meta tensor is 0: the denoising family draws its noise seed at construction, so its count
    failed and its sizes went unchecked (``hidden`` of twenty 4096s was built, 2.6 GB)."""

    FILLS = {torch.Tensor.normal_, torch.Tensor.exponential_, torch.Tensor.log_normal_, torch.Tensor.cauchy_,
             torch.Tensor.geometric_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensor = args[0] if args else kwargs.get("tensor", kwargs.get("input"))  # torch.nn.init passes it by name
        if getattr(tensor, "is_meta", False):
            if func in self.FILLS or getattr(func, "__module__", None) == "torch.nn.init":
                return tensor
            if func is torch.nn.functional.normalize:
                return tensor.new_empty(tensor.shape)  # not empty_like: on meta it imports sympy (0.58 s)
            if func is torch.mv:  # spectral norm's power iterations and its sigma
                return torch.empty(tensor.shape[0], dtype=tensor.dtype, device="meta")
            if func is torch.vdot:
                return torch.empty((), dtype=tensor.dtype, device="meta")
            if func in (torch.Tensor.div, torch.Tensor.__truediv__) and getattr(args[1], "ndim", None) == 0:
                return tensor.new_empty(tensor.shape)  # spectral norm's W / sigma
            if func in (torch.Tensor.item, torch.Tensor.__int__, torch.Tensor.__index__, torch.Tensor.__float__):
                return 0  # a value drawn at construction (the denoising family's noise seed)
        if torch.get_default_device().type == "meta" and "out" not in kwargs:
            if func is torch.eye:
                n, m = (list(args) + [None])[:2]
                m = kwargs.get("m", m)
                return torch.empty(n, n if m is None else m, dtype=kwargs.get("dtype"), device=kwargs.get("device"))
            if func in (torch.randn, torch.rand, torch.randint):  # their meta kernels import sympy (0.57 s)
                if func is torch.randint:
                    size, dtype = kwargs.get("size", args[-1] if args else ()), kwargs.get("dtype") or torch.int64
                else:
                    size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
                    size, dtype = kwargs.get("size", size), kwargs.get("dtype")
                return torch.empty(tuple(size), dtype=dtype, device=kwargs.get("device"))
        return func(*args, **kwargs)


def _count_on_meta(builder: Callable, config: Any) -> int | None:
    try:
        with torch.device("meta"), _ShapesOnly():
            model = builder(config)
    except (RuntimeError, NotImplementedError):
        return None
    return sum(t.numel() for t in itertools.chain(model.parameters(), model.buffers()))


_remembered_count = functools.lru_cache(maxsize=256)(_count_on_meta)


def create_model(name: str, **config: Any):
    """Build model ``name`` from keyword hyperparameters; invalid values raise :class:`ConfigError`."""
    return model_spec(name).builder(make_config(name, **config))


__all__ = ["ModelSpec", "register_model", "list_models", "model_spec", "make_config", "describe_config",
           "create_model", "ConfigError", "DEFAULT_MODEL", "DEFAULT_MODELS"]
