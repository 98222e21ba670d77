"""Arrays for views: image mosaics and scatter rasters (UI-free numpy)."""
from __future__ import annotations

import math

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] to uint8."""
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so small digits stay crisp in the browser."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def image_tiles(images: np.ndarray, image_shape: tuple[int, int], scale: int = 3) -> list[np.ndarray]:
    """(N, H*W) pixels in [0, 1] -> N uint8 images of (H*scale, W*scale)."""
    return [upscale(to_uint8(img.reshape(image_shape)), scale) for img in images]


def mosaic(images: np.ndarray, image_shape: tuple[int, int], ncols: int | None = None, pad: int = 1,
           scale: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile (N, H*W) images in [0, 1] into one uint8 picture, ``ncols`` per row, separated by ``pad`` pixels."""
    n = len(images)
    h, w = image_shape
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = \
            img.reshape(h, w)
    return upscale(to_uint8(out), scale)


def mark_grid_point(picture: np.ndarray, box: tuple[float, float, float, float], n: int,
                    image_shape: tuple[int, int], point: tuple[float, float], pad: int = 1, scale: int = 2,
                    color: tuple[int, int, int] = (255, 50, 30)) -> np.ndarray:
    """A ring on a :func:`mosaic` of an n x n decoder grid over ``box`` = (x0, x1, y0, y1) (rows from y1 at the top,
    as :func:`aecore.latent.decoder_grid` lays them out) at the code ``point``, clipped to the grid: where a 2-D
    code's levers sit on its manifold. Returns an RGB (H, W, 3) uint8 copy."""
    x0, x1, y0, y1 = box
    h, w = image_shape
    fx = np.clip((point[0] - x0) / (x1 - x0), 0, 1) if x1 > x0 else 0.5
    fy = np.clip((y1 - point[1]) / (y1 - y0), 0, 1) if y1 > y0 else 0.5
    cx = (pad + w / 2 + fx * (n - 1) * (w + pad)) * scale  # tile i's centre sits at pad + w/2 + i (w + pad)
    cy = (pad + h / 2 + fy * (n - 1) * (h + pad)) * scale
    rgb = np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else picture.copy()
    yy, xx = np.ogrid[:rgb.shape[0], :rgb.shape[1]]
    dist = np.hypot(yy + 0.5 - cy, xx + 0.5 - cx)
    radius = 0.6 * max(h, w) * scale
    rgb[(dist > radius - 3.5 * max(scale, 1)) & (dist <= radius)] = color  # ~3 px wide where a page shrinks it
    return rgb


# the classes' colours, in the raster and the interactive chart alike: D3's category10: ten colours that stay apart on white, none pale (Streamlit's light blue and light grey, digits 1
# and 9, nearly vanished on a projector)
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                "#17becf")


def scatter_raster(xy: np.ndarray, classes: np.ndarray, width: int = 900, height: int = 560, radius: float = 2.0,
                   colors: tuple[str, ...] = CLASS_COLORS, pad: int = 8) -> np.ndarray:
    """Points ``xy`` (N, 2) drawn as discs on a white (height, width, 3) uint8 canvas, coloured by ``classes`` (ints
    indexing ``colors``, cycling), each axis stretched to fill the canvas less ``pad`` pixels (centred if it has no
    spread), y upwards. Classes are drawn in order, later over earlier, as Plotly draws one trace per class: a
    picture of a layout that costs the browser no more than any image, where redrawing a chart of thousands of points
    takes it a core for a second."""
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    xy, classes = np.asarray(xy, dtype=np.float64), np.asarray(classes)
    if len(xy) == 0:
        return canvas
    lo, hi = xy.min(0), xy.max(0)
    frac = np.where(hi > lo, (xy - lo) / np.where(hi > lo, hi - lo, 1.0), 0.5)  # an axis with no spread: centred
    col = np.rint(pad + frac[:, 0] * (width - 1 - 2 * pad)).astype(np.int64)
    row = np.rint(height - 1 - pad - frac[:, 1] * (height - 1 - 2 * pad)).astype(np.int64)
    r = int(math.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = dx * dx + dy * dy <= radius * radius + 0.5
    dy, dx = dy[disc], dx[disc]
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colors], dtype=np.uint8)
    order = np.argsort(classes, kind="stable")
    rows = np.clip(row[order, None] + dy[None, :], 0, height - 1).ravel()
    cols = np.clip(col[order, None] + dx[None, :], 0, width - 1).ravel()
    canvas[rows, cols] = np.repeat(rgb[classes[order] % len(rgb)], len(dy), axis=0)
    return canvas


def normalize_filters(weights: np.ndarray, per_tile: bool) -> np.ndarray:
    """Filters (N, ...) mapped to [0, 1] for display: each tile stretched to its own min..max (``per_tile``), or all
    tiles on one symmetric scale around 0 so that their strengths can be compared (0 shows as mid-grey)."""
    w = weights.reshape(len(weights), -1).astype(np.float32)
    if per_tile:
        lo, hi = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
        return ((w - lo) / np.maximum(hi - lo, 1e-12)).reshape(weights.shape)
    scale = max(float(np.abs(w).max()), 1e-12)
    return (0.5 + 0.5 * w / scale).reshape(weights.shape)


def digit_from_drawing(pixels: np.ndarray | None, image_shape: tuple[int, int]) -> np.ndarray:
    """A drawing (H, W) or (H, W, channels) uint8, light strokes on dark, as MNIST prepares its digits: the strokes'
    bounding box scaled to fit 20/28 of the image, placed so their centre of mass is at the centre. Returns (D,)
    in [0, 1]; a blank or missing drawing gives a blank image."""
    from PIL import Image
    h, w = image_shape
    if pixels is None or np.asarray(pixels).size == 0:
        return np.zeros(h * w, np.float32)
    gray = np.asarray(pixels, dtype=np.float32)
    gray = (gray[..., :3].mean(-1) * (gray[..., 3] / 255.0 if gray.shape[-1] == 4 else 1.0)
            if gray.ndim == 3 else gray) / 255.0
    rows, cols = np.nonzero(gray > 0.05)
    if len(rows) == 0:
        return np.zeros(h * w, np.float32)
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box = max(1, round(min(h, w) * 20 / 28))
    f = box / max(crop.shape)
    size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS),
                       dtype=np.float32) / 255.0
    out = np.zeros((h, w), np.float32)
    total = small.sum()
    cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(1) / total if total > 0
              else (small.shape[0] / 2, small.shape[1] / 2))
    top, left = int(round(h / 2 - cy)), int(round(w / 2 - cx))
    top, left = min(max(top, 0), h - small.shape[0]), min(max(left, 0), w - small.shape[1])
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(out, 0.0, 1.0).ravel()
