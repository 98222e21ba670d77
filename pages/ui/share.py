"""Share links and settings that survive: a page's controls live in the query string (``st.query_params``) and in
session state. A control made with :func:`widget` takes its value from a link that was just opened (checked
against the control's own options or range; a bad value is ignored with a notice), publishes its value to the
query string on every run, and keeps it for the session when the user goes to another page and comes back.

A link applies once, when its page is entered (a fresh session, a reload, a switch from another page); values that
no control took yet wait until the page shows those controls."""
from __future__ import annotations

import math
from typing import Any, Callable

import streamlit as st

PENDING = "ae.share.pending"  # the opened link's values not yet applied, param -> text
KEPT = "ae.share.kept"  # widget keys whose values outlive their page
PAGE = "ae.share.page"  # the page of the last run: a link applies when a page is entered
PUBLISHED = "ae.share.published"  # the params this run wrote (until the next run begins: the last run's)
KEPT_VALUES = "ae.share.kept_values"  # the kept controls' last values, as their widgets last drew them
MAX_VALUE_CHARS = 2000  # a longer value is hostile or broken: ignored
EMBED = ("embed", "embed_options")  # Streamlit's own


def restore_kept(page: str, keys: tuple[str, ...] = ()) -> None:
    """Before anything else on a run of ``page``: when the page has just been entered, put back the kept controls'
    values (and ``keys``, kept from now on too) that Streamlit dropped. A fragment's rerun (a control inside one,
    such as Filters' ordering, or a ``run_every`` poll, such as the Train page's live view) drops every widget
    value outside the fragment (Streamlit issue 10805), so the next page opened with the dataset, the run and
    every kept control at their defaults: every time after Filters' ordering was changed, and 4 of 4 times from
    the Train page while it trained."""
    kept = st.session_state.setdefault(KEPT, set())
    kept.update(keys)
    if st.session_state.get(PAGE) == page:
        return
    for key, value in st.session_state.get(KEPT_VALUES, {}).items():
        if key in kept and key not in st.session_state:
            st.session_state[key] = value


def begin(page: str) -> None:
    """First thing on every run of ``page``: take the values of a link just opened, drop from the query string what
    the page no longer shows, and carry the kept controls' values over from the page the user came from."""
    params = {k: st.query_params[k] for k in st.query_params if k not in EMBED}
    # a link is opened when a page is entered: a fresh session, a reload, a switch to another page. Comparing the
    # address with what the session last wrote was not enough: a rerun the browser asks for carries its address,
    # which can lag behind the server's writes, and 3 of 8 sessions training at once took an old run from it
    opened = st.session_state.get(PAGE) != page
    st.session_state[PAGE] = page
    # a link's values that no control has taken yet (the page stopped early: its run was still to be trained)
    # wait, and stay in the link, until the page shows those controls or the user goes to another page
    pending = dict(params) if opened else st.session_state.get(PENDING) or {}
    st.session_state[PENDING] = pending
    # Every write to the query string is a message the browser answers with a history.pushState: writing all
    # of a page's controls on every run cost the browser 70 ms a control change (Filters, profiled in Chromium).
    # So a run writes only what changed, and drops what the last run did not write: a control no longer shown.
    last = st.session_state.get(PUBLISHED, set())
    st.session_state[PUBLISHED] = set()
    for k in params:
        if k not in pending and k not in last:
            del st.query_params[k]
    for k, v in pending.items():
        publish(k, v)
    for key in st.session_state.setdefault(KEPT, set()):
        if key in st.session_state:  # Streamlit's documented way to keep a widget's value across pages
            st.session_state[key] = st.session_state[key]


def notice(param: str, raw: str, why: str) -> None:
    shown = (raw if len(raw) <= 40 else raw[:40] + "…").replace("`", "'")  # in backticks: no markdown of its own
    st.toast(f"The link's **{param}** = `{shown}` was ignored ({why}); the default is used.",
             icon=":material/link_off:")


def take(param: str) -> str | None:
    """The opened link's raw value of ``param`` (once), or None; an over-long value is refused with a notice."""
    pending = st.session_state.get(PENDING) or {}
    if param not in pending:
        return None
    raw = pending.pop(param)
    if len(raw) > MAX_VALUE_CHARS:
        notice(param, raw, f"over {MAX_VALUE_CHARS} characters")
        return None
    return raw


def publish(param: str, value: Any) -> None:
    """Write ``param`` to the query string, where it is not there already."""
    text = format_value(value)
    st.session_state.setdefault(PUBLISHED, set()).add(param)
    if st.query_params.get(param) != text:
        st.query_params[param] = text


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return "" if value is None else str(value)


# --- parsers: raw text -> a value the widget accepts, or ValueError saying why ------------------------------------
def _one_of(options: list) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        for option in options:
            if format_value(option) == raw:
                return option
        raise ValueError("not one of the choices here")
    return parse


class PartlyValid(ValueError):
    """Some of a list's values are valid: ``value`` keeps them, the message names the rest."""

    def __init__(self, value: list, why: str):
        super().__init__(why)
        self.value = value


def _many_of(options: list) -> Callable[[str], list]:
    """A link's list, its unknown parts left out: one deleted run in ``runs`` cost the link every other run."""
    one = _one_of(options)

    def parse(raw: str) -> list:
        picked, unknown = [], []
        for part in filter(None, raw.split(",")):
            try:
                picked.append(one(part))
            except ValueError:
                unknown.append(part)
        if unknown and picked:
            names = ", ".join("`" + u[:40].replace("`", "'") + "`" for u in unknown[:3]) + \
                (" …" if len(unknown) > 3 else "")
            raise PartlyValid(picked, f"{names} not here")
        if unknown:
            raise ValueError("not one of the choices here")
        return picked
    return parse


def _number(lo: float | None, hi: float | None, integer: bool) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("not a number") from None  # Python's own words quoted the text back in a code's terms
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        if integer:
            if value != int(value):
                raise ValueError("not a whole number")
            value = int(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"outside {format_value(lo)}–{format_value(hi)}")
        return value
    return parse


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("not 1 or 0")


def _text(max_chars: int | None) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if max_chars is not None and len(raw) > max_chars:
            raise ValueError(f"over {max_chars} characters")
        return raw
    return parse


def parser_for(fn: Callable, options: list | None, kw: dict) -> Callable[[str], Any]:
    name = getattr(fn, "__name__", "")
    if name == "multiselect":
        many, most = _many_of(options or []), kw.get("max_selections")

        def parse(raw: str) -> list:
            try:
                picked = many(raw)
            except PartlyValid as e:
                picked = e.value
                if most is None or len(picked) <= most:
                    raise
            if most is not None and len(picked) > most:
                raise ValueError(f"more than {most}")
            return picked
        return parse
    if options is not None:
        return _one_of(list(options))
    if name in ("toggle", "checkbox"):
        return _flag
    if name == "text_input":
        return _text(kw.get("max_chars"))
    lo, hi = kw.get("min_value"), kw.get("max_value")
    numbers = (lo, hi, kw.get("value", 0), kw.get("step", 1))
    integer = all(isinstance(v, int) and not isinstance(v, bool) for v in numbers if v is not None)
    return _number(lo, hi, integer)


def widget(param: str, fn: Callable, label: str, options: list | None = None, *, key: str, value: Any = None,
           keep: bool = True, parse: Callable[[str], Any] | None = None, **kw: Any) -> Any:
    """``fn(label, [options,] key=key, **kw)`` (an ``st`` or column widget function), its value taken from an
    opened link where that is valid, else from session state, else ``value``; the value is published as ``param``
    and, with ``keep``, survives a visit to another page. Pass ranges as ``min_value``/``max_value``."""
    raw = take(param)
    if raw is not None:
        try:
            st.session_state[key] = (parse or parser_for(fn, options, {**kw, "value": value}))(raw)
        except PartlyValid as e:
            st.session_state[key] = e.value
            st.toast(f"The link's **{param}**: {e}; the rest are used.", icon=":material/link_off:")
        except (ValueError, TypeError) as e:
            notice(param, raw, str(e))
    if getattr(fn, "__name__", "") == "segmented_control" and key in st.session_state and \
            st.session_state[key] is None:  # the chosen segment clicked again: it stays, as a tab does
        st.session_state[key] = st.session_state.get(KEPT_VALUES, {}).get(key, value)
    if options is not None and key in st.session_state:  # a kept value the options no longer hold
        current = st.session_state[key]
        valid = all(v in options for v in current) if isinstance(current, list) else current in options
        if not valid:
            del st.session_state[key]
    lo, hi = kw.get("min_value"), kw.get("max_value")
    current = st.session_state.get(key)
    if isinstance(current, (int, float)) and not isinstance(current, bool) and \
            ((lo is not None and current < lo) or (hi is not None and current > hi)):  # kept from another dataset
        st.session_state[key] = min(max(current, lo if lo is not None else current), hi if hi is not None else current)
    if key not in st.session_state and value is not None:
        st.session_state[key] = value
    result = fn(label, options, key=key, **kw) if options is not None else fn(label, key=key, **kw)
    if keep:
        st.session_state.setdefault(KEPT, set()).add(key)
        remember(key)
    publish(param, result)
    return result


def remember(key: str) -> None:
    """Note the kept widget ``key``'s value as drawn now, for :func:`restore_kept` (taken when the run began, it
    missed what a link set during the run: the dataset came back as the default)."""
    if key in st.session_state:
        st.session_state.setdefault(KEPT_VALUES, {})[key] = st.session_state[key]
