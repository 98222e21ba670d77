"""Controls built from a config dataclass's field metadata: a new hyperparameter appears without UI code."""
from __future__ import annotations

import math

import streamlit as st

from aecore import ConfigError, param_specs
from aecore.config import parse_sizes

from . import plain, share


# field names read out in labels: "Lr schedule" and "Kl anneal" read as typos
_WORDS = {"lr": "learning rate", "kl": "KL", "l1": "L1", "l2": "L2", "gp": "GP", "d": "D", "init": "initial",
          "std": "deviation"}
_NAMES = {"aux_k": "AuxK"}


def _words(name: str) -> str:
    return _NAMES.get(name) or " ".join(_WORDS.get(w, w) for w in name.split("_"))


def _label(name: str) -> str:
    text = _words(name)
    return text[:1].upper() + text[1:]


def _log_grid(lo: float, hi: float, default: float, integer: bool) -> list:
    if integer:
        grid = [2 ** k for k in range(int(math.log2(max(lo, 1))), int(math.log2(hi)) + 1)]
    else:
        grid = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi]
    return sorted(set(grid) | {default})


def _sizes_parser(spec):
    def parse(raw: str) -> str:
        sizes = parse_sizes(raw)  # ConfigError is a ValueError: the link's value is ignored with a notice
        if any((spec.min is not None and v < spec.min) or (spec.max is not None and v > spec.max) for v in sizes):
            raise ValueError(f"sizes outside {spec.min:g}–{spec.max:g}")
        return raw
    return parse


def state_values(config_cls: type, key_prefix: str) -> tuple[dict, list[str]]:
    """(values, errors) of ``config_cls``'s controls as session state holds them: what :func:`config_controls`
    returns once drawn, and what a button's callback reads before the script draws them."""
    values, errors = {}, []
    for spec in param_specs(config_cls):
        if not spec.ui:
            continue
        value = st.session_state.get(f"{key_prefix}.{spec.name}", spec.default)
        if spec.kind == "sizes":
            try:
                value = parse_sizes(value) if isinstance(value, str) else tuple(value)
            except ConfigError as e:
                if unused_because(config_cls, spec, key_prefix):  # greyed out: the user cannot mend it, nor need to
                    value = spec.default
                else:
                    errors.append(str(e))
                    continue
        values[spec.name] = value
    return values, errors


def config_controls(config_cls: type, key_prefix: str, disabled: bool = False,
                    unavailable: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    """One control per UI field of ``config_cls``; returns (values, errors) as :func:`state_values` reads them.
    Values come from an opened share link, session state (a preset writes there, and they survive a visit to
    another page) or the dataclass; each is published to the share link under its field's name. ``unavailable``:
    fields greyed out whatever their values, each with the reason shown in its help."""
    for spec in param_specs(config_cls):
        if not spec.ui:
            continue
        key = f"{key_prefix}.{spec.name}"
        unused = (unavailable or {}).get(spec.name) or unused_because(config_cls, spec, key_prefix)
        help_text = plain("; ".join(t for t in (spec.help, unused) if t)) or None
        common = dict(key=key, help=help_text, disabled=disabled or bool(unused))
        label = _label(spec.name)
        if spec.kind == "bool":
            share.widget(spec.name, st.toggle, label, value=spec.default, **common)
        elif spec.kind == "choice":
            share.widget(spec.name, st.selectbox, label, list(spec.choices), value=spec.default, **common)
        elif spec.kind == "sizes":
            share.widget(spec.name, st.text_input, label, value=",".join(map(str, spec.default)),
                         parse=_sizes_parser(spec), **common)
        elif spec.log:
            grid = _log_grid(spec.min, spec.max, spec.default, spec.kind == "int")
            st.session_state.setdefault(key, spec.default)
            if st.session_state[key] not in grid:
                st.session_state[key] = min(grid, key=lambda g: abs(math.log(g) - math.log(st.session_state[key])))
            share.widget(spec.name, st.select_slider, label, grid, format_func=lambda v: f"{v:g}",
                         value=spec.default, **common)
        elif spec.kind == "int" and spec.max is not None and spec.max - spec.min <= 1000:
            share.widget(spec.name, st.slider, label, min_value=int(spec.min), max_value=int(spec.max),
                         step=int(spec.step or 1), value=spec.default, **common)
        elif spec.kind == "int":
            share.widget(spec.name, st.number_input, label, min_value=int(spec.min or 0),
                         max_value=int(spec.max) if spec.max else None, step=int(spec.step or 1),
                         value=spec.default, **common)
        else:
            share.widget(spec.name, st.slider, label, min_value=float(spec.min), max_value=float(spec.max),
                         step=spec.step, format=spec.format, value=float(spec.default), **common)
    return state_values(config_cls, key_prefix)


def unused_because(config_cls: type, spec, key_prefix: str) -> str:
    """Why ``spec``'s field is not in use with the values the form holds now ("used only when architecture is
    conv"), or "" when it is in use."""
    defaults = {s.name: s.default for s in param_specs(config_cls)}
    for name, values in spec.when:
        if st.session_state.get(f"{key_prefix}.{name}", defaults[name]) not in values:
            shown = " or ".join(("on" if v else "off") if isinstance(v, bool) else str(v) for v in values)
            return f"used only when {_words(name)} is {shown}"
    return ""


def apply_train_defaults(key_prefix: str, settings_cls: type, defaults: dict, models: list[str]) -> None:
    """Set the training controls a family starts from (a GAN's learning rate, a VAE's batch size); the fields
    that some other family of ``models`` sets go back to their plain defaults first."""
    from aecore import model_spec
    named = {k for m in models for k in model_spec(m).train_defaults}
    for spec in param_specs(settings_cls):
        if spec.name in named or spec.name in defaults:
            st.session_state[f"{key_prefix}.{spec.name}"] = defaults.get(spec.name, spec.default)


def apply_preset(key_prefix: str, config_cls: type, preset: dict) -> None:
    """Write a preset into the controls' session state (defaults for the fields it does not name)."""
    for spec in param_specs(config_cls):
        if spec.ui:
            value = preset.get(spec.name, spec.default)
            st.session_state[f"{key_prefix}.{spec.name}"] = ",".join(map(str, value)) if spec.kind == "sizes" \
                else value
