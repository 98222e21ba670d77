"""Filter mosaics as plain images in the page, a tile under the pointer outlined and named, a click on it sent back
as its unit (a Streamlit v2 component: inline JavaScript, no iframe, no build step). A Plotly chart of the same two
mosaics cost the browser 0.1-0.2 s of drawing at every change of order (bench/README)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from .figures import png_url

_CSS = """
.mosaics { display: flex; gap: 4%; align-items: flex-start; }
figure { flex: 1 1 0; margin: 0; min-width: 0; display: flex; flex-direction: column; align-items: center; }
figcaption { font-weight: 600; line-height: 1.6; margin-bottom: 4px; max-width: 100%; white-space: nowrap;
             overflow: hidden; text-overflow: ellipsis; }
.wrap { position: relative; cursor: pointer; align-self: stretch; margin: 0 auto; }
img { display: block; width: 100%; height: auto; image-rendering: pixelated; }
.box { position: absolute; z-index: 1; border: 2px solid #4c6ef5; box-sizing: border-box; pointer-events: none;
       display: none; }
.tip { position: absolute; z-index: 2; pointer-events: none; display: none; background: rgba(33, 37, 41, .85);
       color: #fff; font-size: 13px; padding: 1px 6px; border-radius: 3px; white-space: nowrap; }
"""

# Run whenever Streamlit renders the component: the figures are rebuilt from the data (two images; nothing kept).
_JS = """
export default function ({ data, parentElement, setTriggerValue }) {
  let root = parentElement.querySelector(".mosaics");
  if (!root) {
    root = document.createElement("div");
    root.className = "mosaics";
    parentElement.appendChild(root);
  }
  const figures = data.panels.map((panel) => {
    const fig = document.createElement("figure");
    const cap = document.createElement("figcaption");
    cap.textContent = panel.title;
    const wrap = document.createElement("div");
    wrap.className = "wrap";
    wrap.style.width = `min(100%, ${data.height * panel.aspect}px)`;  // at most data.height px high
    const img = document.createElement("img");
    img.src = panel.src;
    img.alt = panel.title;
    const box = document.createElement("div");
    box.className = "box";
    const tip = document.createElement("div");
    tip.className = "tip";
    wrap.append(img, box, tip);
    fig.append(cap, wrap);
    // the tile under the pointer: [index in the order, left, top, width, height] in displayed pixels, or null
    const at = (e) => {
      const r = img.getBoundingClientRect(), k = r.width / img.naturalWidth, [sy, sx] = data.step;
      const col = Math.floor(((e.clientX - r.left) / k - data.pad) / sx);
      const row = Math.floor(((e.clientY - r.top) / k - data.pad) / sy);
      const i = row * data.ncols + col;
      if (col < 0 || col >= data.ncols || row < 0 || i >= data.units.length) return null;
      return [i, (data.pad + col * sx) * k, (data.pad + row * sy) * k, (sx - data.pad) * k, (sy - data.pad) * k];
    };
    wrap.onmousemove = (e) => {
      const t = at(e);
      box.style.display = tip.style.display = t ? "block" : "none";
      if (!t) return;
      Object.assign(box.style, { left: t[1] + "px", top: t[2] + "px", width: t[3] + "px", height: t[4] + "px" });
      tip.textContent = data.labels[t[0]];
      const left = Math.max(0, Math.min(t[1], wrap.clientWidth - tip.offsetWidth));  // within the mosaic
      Object.assign(tip.style, { left: left + "px", top: Math.max(0, t[2] - 22) + "px" });
    };
    wrap.onmouseleave = () => { box.style.display = tip.style.display = "none"; };
    wrap.onclick = (e) => {
      const t = at(e);
      if (t) setTriggerValue("unit", data.units[t[0]]);
    };
    return fig;
  });
  root.replaceChildren(...figures);
}
"""

_mosaics = st.components.v2.component("aecore_filter_mosaics", css=_CSS, js=_JS)


def clickable_mosaics(panels: list[tuple[str, np.ndarray]], units: np.ndarray, labels: list[str], ncols: int,
                      step: tuple[int, int], pad: int, height: int, key: str) -> int | None:
    """Mosaics ``(title, uint8 image)`` side by side, each holding the tiles of ``units`` in rows of ``ncols``, a
    tile every ``step`` (rows, columns) pixels of its image after a first ``pad`` pixels, as
    :func:`aecore.viz.mosaic` lays them out; drawn at most ``height`` px high, a tile's label shown under the pointer.
    Returns the unit of a tile clicked in this run (else None)."""
    shown = [int(u) for u in units]
    result = _mosaics(key=key, data={"panels": [{"title": t, "src": png_url(img, level=0),
                                                 "aspect": img.shape[1] / img.shape[0]} for t, img in panels],
                                     "units": shown, "labels": list(labels), "ncols": int(ncols),
                                     "step": [int(s) for s in step], "pad": int(pad), "height": int(height)},
                      on_unit_change=lambda: None)  # the event is returned only with a callback
    unit = getattr(result, "unit", None)
    # what the browser sent: only a unit of a tile shown counts (a crafted message may send anything)
    return unit if type(unit) is int and unit in shown else None
