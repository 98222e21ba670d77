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


TILE_MIN_WIDTH = 56  # px: a caption such as "#178 · 9" fits under a tile this wide (MNIST at scale 2)


def images(pixels: np.ndarray, shape: tuple[int, int], captions: list[str] | None = None, scale: int = 2) -> None:
    """A row of images in [0, 1], enlarged without blur, every tile the same width whatever its caption (8x8 digits
    at scale 2 were narrower than their captions, and each tile took its caption's width)."""
    from aecore.viz import image_tiles
    scale = max(scale, -(-TILE_MIN_WIDTH // shape[1]))
    st.image(image_tiles(pixels, shape, scale=scale), caption=captions, width=shape[1] * scale)


def cost_figure(history: list[dict], epoch_rows: list[dict], units: dict[str, str] | None = None,
                height: int = 320, stats: dict[str, str] | None = None) -> go.Figure:
    """One line per loss term: running means while training (solid) and the test value per epoch (dotted); each
    term's unit in its legend entry, and on the axis when all share one. ``stats`` (name -> label), values logged
    beside the losses (a KL weight, D's accuracy), go dashed on a second axis at the right."""
    units, stats = units or {}, stats or {}
    fig = go.Figure()
    keys = [k for k in (history[-1] if history else {}) if k not in ("step", "epoch", "phase")]
    terms = [k for k in keys if k not in stats]
    for i, key in enumerate(k for k in keys if k in stats):
        fig.add_scatter(x=[h["epoch"] for h in history], y=[h.get(key) for h in history], mode="lines",
                        name=stats[key], yaxis="y2", line=dict(dash="dash", width=1.5,
                                                               color=["#868e96", "#495057", "#adb5bd"][i % 3]))
    palette = ["#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#f59f00", "#1098ad"]
    for i, term in enumerate(terms):
        color = palette[i % len(palette)]
        name = f"{term} ({units[term]})" if term in units and len(terms) > 1 else term
        fig.add_scatter(x=[h["epoch"] for h in history], y=[h.get(term) for h in history], mode="lines",
                        name=f"{name}, train", line=dict(color=color))
        val = [(r["epoch"], r[f"val_{term}"]) for r in epoch_rows if f"val_{term}" in r]
        if val:
            fig.add_scatter(x=[v[0] for v in val], y=[v[1] for v in val], mode="lines+markers",
                            name=f"{name}, test", line=dict(color=color, dash="dot"))
    shown = {units.get(t, "") for t in terms}
    axis = f"loss ({shown.pop()})" if len(shown) == 1 and "" not in shown else "loss"
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50 if stats else 30, b=10), xaxis_title="epoch",
                      yaxis_title=axis, legend=dict(orientation="h", yanchor="bottom", y=1.02), title=None)
    if any(k in stats for k in keys):
        fig.update_layout(yaxis2=dict(overlaying="y", side="right", showgrid=False, rangemode="tozero",
                                      title=", ".join(stats[k] for k in keys if k in stats)))
    return fig


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


def metrics_row(metrics: dict[str, float], labels: dict[str, str], container=None) -> None:
    """One ``st.metric`` per metric a run's record holds, labelled as its family labels them."""
    shown = [k for k in labels if isinstance(metrics.get(k), (int, float))]
    if not shown:
        return
    for col, key in zip((container or st).columns(len(shown)), shown):
        col.metric(labels[key], f"{metrics[key]:.4g}")
