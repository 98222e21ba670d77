"""Arrays for views: image mosaics (UI-free numpy)."""
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


def normalize_filters(weights: np.ndarray, per_tile: bool) -> np.ndarray:
    """Filters (N, ...) mapped to [0, 1] for display: each tile stretched to its own min..max (``per_tile``), or all
    tiles on one symmetric scale around 0 so that their strengths can be compared (0 shows as mid-grey)."""
    w = weights.reshape(len(weights), -1).astype(np.float32)
    if per_tile:
        lo, hi = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
        return ((w - lo) / np.maximum(hi - lo, 1e-12)).reshape(weights.shape)
    scale = max(float(np.abs(w).max()), 1e-12)
    return (0.5 + 0.5 * w / scale).reshape(weights.shape)
