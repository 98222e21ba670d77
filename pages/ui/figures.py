"""Figures and formatting the pages share: image rows, cost curves, filter mosaics, durations."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st


def fmt_seconds(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# Scatter charts of up to this many points are drawn as SVG, larger ones with WebGL: in headless Chromium on 2 cores
# a change of the Latent page's 2,000 points took 0.67 s to the page idle with WebGL (it made a new GL context
# each time) and 0.31 s with SVG; WebGL keeps 70,000 points responsive.
SVG_POINTS = 5000
TILE_MIN_WIDTH = 56  # px: a caption such as "#178 · 9" fits under a tile this wide (MNIST at scale 2)
# presenter mode: a projector's digits, and its larger type ("#8496·0" wrapped under 56 px tiles at 1280x720)
TILE_MIN_WIDTH_PRESENTING = 84


def png_url(img: np.ndarray, level: int = 1) -> str:
    """A uint8 image as a PNG ``data:`` URL, which ``st.image`` sends inside the page's own message. Given an
    array, it stores a JPEG (lossy) that the browser fetches after the page is drawn: a Reconstructions change put
    its 24 tiles on screen 0.29-0.36 s after the click, its page idle at under 0.1 s. ``level`` 1: half level 6's
    time, sizes within 20 %; 0 for pictures that hardly compress (a 100-filter mosaic: 85 KB in 2.0 ms against
    70 KB in 5.2 ms)."""
    return _data_url(img, "PNG", compress_level=level)


def jpeg_url(img: np.ndarray, quality: int = 90) -> str:
    """A uint8 image as a JPEG ``data:`` URL (as ``st.image`` encodes an array, but sent inside the message): for
    a many-coloured picture redrawn often, a 900x560 scatter of 70,000 points encodes in 1.7 ms against 14 ms as
    a PNG."""
    return _data_url(img, "JPEG", quality=quality)


def _data_url(img: np.ndarray, fmt: str, **options) -> str:
    import base64
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def scale_for(shape: tuple[int, int], px: int) -> int:
    """The whole enlargement that draws an image of ``shape`` about ``px`` pixels wide: a scale fixed for MNIST's 28
    pixels drew 12-pixel images at 24 px and 64-pixel ones at 128."""
    return max(1, round(px / shape[1]))


def tile_caption(label: str, class_name: str) -> str:
    """A tile's caption naming an image and its class: "#8496·0" (no spaces, it fits under a 56-px tile; "#8496 · 0"
    wrapped), but "#54 pullover" where the class is a word, which the browser then breaks at the space (it broke
    "#54·pullover" inside the words, as "#54·pull" / "over")."""
    return f"{label}·{class_name}" if len(class_name) <= 2 else f"{label} {class_name}"


def images(pixels: np.ndarray, shape: tuple[int, int], captions: list[str] | None = None,
           width: int = TILE_MIN_WIDTH) -> None:
    """A row of images in [0, 1], enlarged without blur, every tile the same width whatever its caption (8x8 digits
    at scale 2 were narrower than their captions, and each tile took its caption's width). ``width``: about the
    tiles' width in pixels, in whole multiples of the images' size: a scale fixed for MNIST's 28 pixels drew an
    upload's 64-pixel images at 128 px (Reconstructions' 12 in two rows, Filters' 3x3 grid as 2 + 1) and an 8x8
    digit's large decode on Generate as small as the others."""
    urls, px = tile_urls(pixels, shape, width)
    st.image(urls, caption=captions, width=px)


def tile_urls(pixels: np.ndarray, shape: tuple[int, int], width: int = TILE_MIN_WIDTH) -> tuple[list[str], int]:
    """What :func:`images` draws: each tile as a PNG ``data:`` URL, and the tiles' width in pixels."""
    from aecore.viz import image_tiles
    from . import presenting
    least = TILE_MIN_WIDTH_PRESENTING if presenting() else TILE_MIN_WIDTH
    scale = max(scale_for(shape, width), -(-least // shape[1]))
    return [png_url(t) for t in image_tiles(pixels, shape, scale=scale)], shape[1] * scale


def warm_up() -> None:
    """Import what the first live view draws (Plotly imports its figure classes on first use)."""
    history = [{"step": i, "epoch": i / 2, "bce": 1.0, "kl": 0.5, "beta": 1.0} for i in range(3)]
    go.Figure(cost_figure(history, [{"epoch": 1, "val_bce": 1.0, "val_kl": 0.5}], stats={"beta": "β"})).to_json()
    go.Figure(go.Histogram(x=[0.0, 1.0])).to_json()


def cost_figure(history: list[dict], epoch_rows: list[dict], units: dict[str, str] | None = None,
                height: int = 320, stats: dict[str, str] | None = None,
                reference: tuple[str, list[dict]] | None = None, legend: bool = True) -> dict | go.Figure:
    """The cost curves: running means while training (solid) and the test value per epoch (dotted). One loss term
    fills the chart; several get one panel each, on its own y scale, so a term that starts at 4.7 (a KL penalty) or
    a spike to 45,000 (a diverging run) cannot flatten the others. ``stats`` (name -> label), values logged beside
    the losses (a KL weight, D's accuracy), go dashed in a panel of their own at the bottom. ``reference`` (name,
    epoch rows): another run's test values, drawn grey under each term it shares, for a tweak to be judged against.
    ``legend=False``: none, for a narrow chart whose page says what the lines are; kept where two logged values
    share a panel, which only the legend tells apart.

    A figure as a dict, its panels laid out as ``make_subplots(shared_xaxes=True)`` lays them: built through
    ``make_subplots`` and ``add_scatter``, a VAE's three panels took 42-55 ms of the script to Streamlit's JSON at
    every redraw of the live view (the GIL held, beside the training thread), and 9-15 ms so."""
    units, stats = units or {}, stats or {}
    keys = [k for k in (history[-1] if history else {}) if k not in ("step", "epoch", "phase")]
    terms = [k for k in keys if k not in stats] or [""]
    shown_stats = [k for k in keys if k in stats]
    rows = len(terms) + bool(shown_stats)
    # one logged value's panel named by it (a VAE's "KL weight β in force" sat under "logged values")
    unit_sep = " " if legend else "<br>"  # a narrow chart's titles in two lines: "reconstruction (BCE per p" was cut
    titles = [f"{t}{unit_sep}({units[t]})" if t in units else t for t in terms] + (
        [stats[shown_stats[0]] if len(shown_stats) == 1 else "logged values"] if shown_stats else [])
    axis = lambda row: "" if row == 1 else str(row)  # noqa: E731 - Plotly's names: x, x2, x3...
    data = []

    def add(row: int, **trace) -> None:
        data.append(dict(type="scatter", xaxis=f"x{axis(row)}", yaxis=f"y{axis(row)}", **trace))
    epochs = [h["epoch"] for h in history]
    for row, term in enumerate(terms, start=1):
        if not term:
            continue
        color = _PALETTE[(row - 1) % len(_PALETTE)]
        add(row, x=epochs, y=[h.get(term) for h in history], mode="lines", name=f"{term}, train",
            line=dict(color=color), legendgroup=term)
        ref = [(r["epoch"], r[f"val_{term}"]) for r in (reference[1] if reference else []) if f"val_{term}" in r]
        if ref:
            add(row, x=[v[0] for v in ref], y=[v[1] for v in ref], mode="lines+markers", name=reference[0],
                line=dict(color="#adb5bd", dash="dot"), marker=dict(size=4), legendgroup="reference",
                showlegend=row == 1)
        val = [(r["epoch"], r[f"val_{term}"]) for r in epoch_rows if f"val_{term}" in r]
        if val:
            add(row, x=[v[0] for v in val], y=[v[1] for v in val], mode="lines+markers", name=f"{term}, test",
                line=dict(color=color, dash="dot"), legendgroup=term)
    for i, key in enumerate(shown_stats):
        add(rows, x=epochs, y=[h.get(key) for h in history], mode="lines", name=stats[key],
            line=dict(dash="dash", width=1.5, color=["#868e96", "#495057", "#adb5bd"][i % 3]))
    panel = max(110, height - 90) if rows == 1 else 130
    layout = dict(height=panel * rows + 90, margin=dict(l=10, r=10, t=50, b=10),
                  showlegend=legend or len(shown_stats) > 1,
                  legend=dict(orientation="h", yanchor="bottom", y=1.0 + 24 / (panel * rows), x=0))
    spacing = 0.12 if rows > 1 else 0.0
    tall = (1.0 - spacing * (rows - 1)) / rows  # each panel's share of the height, top to bottom
    for row in range(1, rows + 1):
        top = 1.0 - (row - 1) * (tall + spacing)
        layout[f"xaxis{axis(row)}"] = dict(anchor=f"y{axis(row)}", domain=[0.0, 1.0], **(
            dict(title=dict(text="epoch")) if row == rows else dict(matches=f"x{axis(rows)}", showticklabels=False)))
        layout[f"yaxis{axis(row)}"] = dict(anchor=f"x{axis(row)}", domain=[max(0.0, top - tall), top])
    if rows == 1:
        unit = units.get(terms[0], "")
        layout["yaxis"]["title"] = dict(text=f"loss ({unit})" if unit else "loss")
    else:
        layout["annotations"] = [dict(text=title, x=0.5, xanchor="center", xref="paper", y=layout[
            f"yaxis{axis(row)}"]["domain"][1], yanchor="bottom", yref="paper", showarrow=False, font=dict(size=13))
            for row, title in enumerate(titles, start=1)]
    # Streamlit refuses a dict without traces (Plotly's "empty data list"): the chart waiting for a curve goes whole
    return dict(data=data, layout=layout) if data else go.Figure(dict(data=data, layout=layout))


_PALETTE = ["#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#1098ad"]


def filter_images(weights: np.ndarray, input_shape: tuple, per_tile: bool, n: int, order: np.ndarray,
                  ncols: int | None = None, scale: int | None = None) -> np.ndarray:
    """A uint8 mosaic of the first ``n`` filters in ``order``: dense weights are shown as images, conv kernels as
    they are (enlarged more)."""
    from aecore.viz import mosaic, normalize_filters
    w = weights[order[:n]]
    tile = tuple(w.shape[1:]) if w.ndim == 3 else tuple(input_shape)
    tiles = normalize_filters(w.reshape(len(w), -1), per_tile)
    scale = scale or max(1, 84 // max(tile))
    return mosaic(tiles, tile, ncols=ncols, scale=scale, pad_value=1.0)


def metrics_row(metrics: dict[str, float], labels: dict[str, str], container=None,
                previous: dict[str, float] | None = None) -> None:
    """One ``st.metric`` per metric a run's record holds, labelled as its family labels them; with ``previous``
    (another run's metrics), each one's change from it (grey: for some metrics lower is better, for others not)."""
    shown = [k for k in labels if isinstance(metrics.get(k), (int, float))]
    if not shown:
        return
    previous = previous or {}
    for col, key in zip((container or st).columns(len(shown)), shown):
        before = previous.get(key)
        both = isinstance(before, (int, float)) and math.isfinite(before) and math.isfinite(metrics[key])
        delta = f"{metrics[key] - before:+.3g}" if both else None
        col.metric(labels[key], f"{metrics[key]:.4g}", delta=delta, delta_color="off")
