"""Typed hyperparameter configs whose field metadata drives the UI.

Every model family declares a frozen dataclass of hyperparameters. Each field is made with :func:`param`, which
stores what a control needs (range, step, log scale, choices, help) in ``dataclasses.field(metadata=...)``, so the
Train page builds its sliders from the dataclass alone and a new hyperparameter needs no UI code.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A hyperparameter value, or a combination of them, that cannot work. The message says why."""


@dataclass(frozen=True)
class ParamSpec:
    """What a UI control needs to know about one config field."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice" | "sizes"
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple = ()
    ui: bool = True
    format: str | None = None
    before: Any = None
    when: tuple = ()  # ((field, (values...)), ...): the field is in use only while each named field has one of them


def param(default: Any, *, help: str = "", min: float | None = None, max: float | None = None,
          step: float | None = None, log: bool = False, choices: tuple = (), ui: bool = True,
          format: str | None = None, before: Any = None, when: dict[str, Any] | None = None) -> Any:
    """A dataclass field with UI metadata. Tuples of ints are edited as layer sizes ("1000,500,250").

    ``ui=False`` marks a field the app sets itself (such as the input shape, taken from the dataset); ``format`` is
    a printf-style display format for a slider. ``before`` is the value that runs saved before the field existed
    were trained with, where that differs from ``default`` (see :func:`as_saved`). ``when`` names the earlier
    fields this one depends on, each with the value or tuple of values under which it is used (a VAE's ``channels``
    only with ``architecture`` conv): the form greys it out otherwise.
    """
    conditions = tuple((k, v if isinstance(v, tuple) else (v,)) for k, v in (when or {}).items())
    meta = {"help": help, "min": min, "max": max, "step": step, "log": log, "choices": tuple(choices), "ui": ui,
            "format": format, "before": before, "when": conditions}
    return dataclasses.field(default=default, metadata={"aecore": meta})


def _kind(tp: Any, meta: dict) -> str:
    if meta["choices"]:
        return "choice"
    origin = typing.get_origin(tp) or tp
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if tp is float:
        return "float"
    if origin is tuple:
        return "sizes"
    raise TypeError(f"unsupported config field type {tp!r}")


def param_specs(config_cls: type) -> list[ParamSpec]:
    """The UI description of every field of ``config_cls``, in declaration order."""
    return list(_specs(config_cls))


@functools.cache  # get_type_hints evaluates every annotation's text: 7 ms a run of the Filters page
def _specs(config_cls: type) -> tuple[ParamSpec, ...]:
    hints = typing.get_type_hints(config_cls)
    specs = []
    for f in dataclasses.fields(config_cls):
        meta = f.metadata.get("aecore", {"help": "", "min": None, "max": None, "step": None, "log": False,
                                         "choices": (), "ui": True, "format": None, "before": None,
                                         "when": ()})
        spec = ParamSpec(name=f.name, kind=_kind(hints[f.name], meta), default=f.default, **meta)
        earlier = {s.name: s for s in specs}
        for name, values in spec.when:  # a typo would grey a field out for good
            if name not in earlier or (earlier[name].choices and set(values) - set(earlier[name].choices)):
                raise TypeError(f"{config_cls.__name__}.{f.name}: 'when' names {name} = {values}, which is not an "
                                f"earlier field with those values")
        specs.append(spec)
    return tuple(specs)


def as_saved(config_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """A saved config's ``values`` with the fields it predates set to what it was trained with: a run is saved with
    every field, so a missing one with a ``before`` value was added later (a GAN saved before PacGAN packs was
    trained with pack 1, though new ones default to 4)."""
    missing = {s.name: s.before for s in param_specs(config_cls) if s.before is not None and s.name not in values}
    return {**values, **missing}


def parse_sizes(text: str | tuple | list) -> tuple[int, ...]:
    """Layer sizes from ``"1000,500,250"`` (or ``"1000 500 250"``) or a sequence; an empty string gives ``()``.
    Spaces separate sizes too: they were dropped, and "100 50" became one layer of 10,050 units."""
    if isinstance(text, (tuple, list)):
        return tuple(int(v) for v in text)
    parts = [p for p in re.split(r"[,\s]+", str(text)) if p]
    try:
        return tuple(int(p) for p in parts)
    except ValueError as e:
        raise ConfigError(f"layer sizes must be comma-separated integers, got {text!r}") from e


_BOOLS = {**dict.fromkeys(("1", "true", "yes", "on"), True), **dict.fromkeys(("0", "false", "no", "off"), False)}


def coerce(config_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Convert strings (from the CLI's ``--set key=value``) and lists (from JSON) to each field's type."""
    specs = {s.name: s for s in param_specs(config_cls)}
    unknown = set(values) - set(specs)
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; valid: {sorted(specs)}")
    out = {}
    for name, value in values.items():
        spec = specs[name]
        try:
            if spec.kind == "sizes":
                out[name] = parse_sizes(value)
            elif spec.kind == "bool":
                out[name] = value if isinstance(value, bool) else _BOOLS[str(value).lower()]
            elif spec.kind == "int":
                out[name] = int(value)
            elif spec.kind == "float":
                out[name] = float(value)
            else:
                out[name] = type(spec.default)(value)
        except (TypeError, ValueError, KeyError) as e:  # KeyError: a bool that is neither yes nor no
            raise ConfigError(f"{name}: cannot read {value!r} as {spec.kind}") from e
    return out


def check_ranges(config: Any) -> None:
    """Raise :class:`ConfigError` for a value outside its declared range or choices."""
    for spec in param_specs(type(config)):
        value = getattr(config, spec.name)
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"{spec.name} must be one of {list(spec.choices)}, got {value!r}")
        values = value if spec.kind == "sizes" else (value,) if spec.kind in ("int", "float") else ()
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{spec.name} must be a finite number, got {v}")
            if spec.min is not None and v < spec.min:
                raise ConfigError(f"{spec.name} must be at least {_number(spec.min)}, got {_number(v)}")
            if spec.max is not None and v > spec.max:
                raise ConfigError(f"{spec.name} must be at most {_number(spec.max)}, got {_number(v)}")


def _number(v: float) -> str:
    """Whole numbers in full (a seed's bound read 2.14748e+09), the others as %g."""
    return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e21 else f"{v:g}"


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
