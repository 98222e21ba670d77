"""A user's own images as a dataset: a zip of PNG/JPEG files (labels from their folders' names, optional) or an
``.npz`` of arrays, made grayscale, square and one size, in [0, 1] with strokes bright on a dark ground as in MNIST.
Untrusted input: sizes, counts and decoded pixels are bounded before anything is decoded, an ``.npz`` is read with
``allow_pickle=False``, and nothing is written or unpickled. Saved datasets are ``.npz`` files in a folder
(``AECORE_DATASETS_DIR``, else ``datasets/`` in the user data folder) and are listed with the built-in ones."""
from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import data as data_mod
from .data import Dataset, DatasetError, DatasetInfo

MAX_UPLOAD_BYTES = 100 << 20  # the uploaded file itself
MAX_UNPACKED_BYTES = 400 << 20  # what its members add up to once decompressed (a zip bomb's claim is read first)
MAX_IMAGES = 20_000
MAX_IMAGE_PIXELS = 4096 * 4096  # one decoded image (a decompression bomb is a small PNG of a huge image)
MAX_CLASS_NAME = 60  # characters of a class name given in an .npz
MIN_IMAGES = 10
SIDES = (8, 12, 16, 20, 24, 28, 32, 48, 64)  # the square sizes a dataset can be made at
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PREFIX = "upload-"  # every uploaded dataset's name starts so, so it never shadows a built-in one
DATASETS_DIR_ENV = "AECORE_DATASETS_DIR"
_SAFE = re.compile(r"[^a-z0-9-]+")


def datasets_dir() -> Path:
    import platformdirs
    return Path(os.environ.get(DATASETS_DIR_ENV) or Path(platformdirs.user_data_dir("aecore")) / "datasets")


def _zip_members(data: bytes, what: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The zip's files, their count and claimed sizes checked before any is decompressed."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise DatasetError(f"{what} is not a readable zip file ({e})") from e
    if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise DatasetError(f"{what} unpacks to more than {MAX_UNPACKED_BYTES >> 20} MB")
    return zf, infos


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with zf.open(info) as f:
            content = f.read(info.file_size + 1)  # a header that lies about the size cannot make us read more
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as e:
        raise DatasetError(f"{info.filename} in the zip is damaged ({e})") from e
    if len(content) != info.file_size:
        raise DatasetError(f"{info.filename} in the zip is not the size its header says")
    return content


def _to_square(img, side: int) -> np.ndarray:
    """A PIL image as a (side, side) float array in [0, 1]: transparency over white, grayscale, padded to a
    square with its own border colour, then resized."""
    from PIL import Image
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        ground = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(ground, rgba)
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return _resize(gray, side)


def _resize(gray: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image
    h, w = gray.shape
    if h != w:  # pad the short side with the border's median, so the content keeps its proportions
        border = np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))
        n = max(h, w)
        square = np.full((n, n), border, dtype=np.float32)
        square[(n - h) // 2:(n - h) // 2 + h, (n - w) // 2:(n - w) // 2 + w] = gray
        gray = square
    if gray.shape[0] != side:
        gray = np.asarray(Image.fromarray(gray, mode="F").resize((side, side), Image.Resampling.BOX))
    return np.clip(gray, 0.0, 1.0)


def images_from_zip(data: bytes, side: int = 28, skipped: list[str] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(N, side*side) images, (N,) labels and class names from a zip of PNG/JPEG files; a file's label is its
    folder's name (one class, "unlabelled", when no file is in a folder). Other files are skipped. A picture that
    cannot be read (damaged, not an image, too many pixels) refuses the zip, or, given a ``skipped`` list, is left
    out and named there as "file: why", so one bad file among thousands does not lose the rest."""
    from PIL import Image, UnidentifiedImageError
    zf, infos = _zip_members(data, "the zip")
    if any(i.filename.startswith("/") or ".." in i.filename.split("/") for i in infos):
        raise DatasetError("the zip holds paths that leave its folder (absolute, or with '..')")
    pictures = [i for i in infos if i.filename.lower().endswith(IMAGE_SUFFIXES)  # not hidden files, not macOS's
                and not any(part.startswith((".", "__MACOSX")) for part in i.filename.split("/"))]
    if len(pictures) > MAX_IMAGES:
        raise DatasetError(f"the zip holds {len(pictures):,} images; at most {MAX_IMAGES:,} are read")
    if len(pictures) < MIN_IMAGES:
        raise DatasetError(f"the zip holds {len(pictures)} PNG or JPEG files; at least {MIN_IMAGES} are needed")
    images, folders, left_out = [], [], []
    for info in sorted(pictures, key=lambda i: i.filename):
        try:
            raw = _read_member(zf, info)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(raw))  # reads the header only
                if img.size[0] * img.size[1] > MAX_IMAGE_PIXELS:
                    raise DatasetError(f"{info.filename} is {img.size[0]}x{img.size[1]} pixels; at most "
                                       f"{MAX_IMAGE_PIXELS:,} pixels an image are decoded")
                images.append(_to_square(img, side))
        except (DatasetError, UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as e:
            # PIL's own message names an io.BytesIO object, which tells a user nothing
            if isinstance(e, DatasetError):
                why = str(e)
            elif isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
                why = f"{info.filename} has more pixels than PIL decodes safely"
            else:
                why = f"{info.filename} is not a readable PNG or JPEG" + (
                    "" if isinstance(e, UnidentifiedImageError) else f" ({e})")
            if skipped is None:
                raise DatasetError(why) from e
            left_out.append(why)
            continue
        folders.append(info.filename.rsplit("/", 2)[-2] if "/" in info.filename else "")
    if skipped is not None:
        skipped.extend(left_out)
    if len(images) < MIN_IMAGES:
        raise DatasetError(f"only {len(images)} of the {len(pictures)} PNG or JPEG files could be read (first "
                           f"left out: {left_out[0]}); at least {MIN_IMAGES} are needed")
    names = tuple(sorted(set(folders)))
    if names == ("",):
        names = ("unlabelled",)
        labels = np.zeros(len(images), dtype=np.int64)
    else:
        names = tuple(n or "(top level)" for n in names)
        index = {n: i for i, n in enumerate(sorted(set(folders)))}
        labels = np.array([index[f] for f in folders], dtype=np.int64)
    return np.stack(images).reshape(len(images), -1), labels, names


def images_from_npz(data: bytes, side: int = 28) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The same from an ``.npz``: images under ``x`` or ``images`` ((N, H, W), (N, H, W, C) or (N, H*W) of a
    square), optional labels under ``y`` or ``labels`` (whole numbers, or class names); read with
    ``allow_pickle=False``."""
    _zip_members(data, "the .npz file")  # an .npz is a zip: its claimed sizes are bounded first
    try:
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
        keys = set(arrays.files)
        key = next((k for k in ("x", "images") if k in keys), None)
        if key is None:
            raise DatasetError(f"the .npz file has no array named 'x' or 'images' (it has {sorted(keys)[:8]})")
        x = arrays[key]
        ykey = next((k for k in ("y", "labels") if k in keys), None)
        y = arrays[ykey] if ykey else None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:  # object arrays refused: no pickle
        raise DatasetError(f"the .npz file cannot be read safely ({e})") from e
    if x.dtype.kind not in "uif":
        raise DatasetError(f"the images must be numbers, not {x.dtype}")
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        x = x[..., :3].mean(axis=-1) if x.shape[-1] >= 3 else x[..., 0]
    elif x.ndim == 2:
        d = int(round(np.sqrt(x.shape[1]))) if x.shape[1] else 0
        if d * d != x.shape[1] or d == 0:
            raise DatasetError(f"flat images of {x.shape[1]} values are not square; give (N, H, W) arrays")
        x = x.reshape(len(x), d, d)
    if x.ndim != 3 or 0 in x.shape:
        raise DatasetError(f"the images' array has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, H*W)")
    n, h, w = x.shape
    if n > MAX_IMAGES or h * w > MAX_IMAGE_PIXELS:
        raise DatasetError(f"{n:,} images of {h}x{w}: at most {MAX_IMAGES:,} images of {MAX_IMAGE_PIXELS:,} pixels")
    if n < MIN_IMAGES:
        raise DatasetError(f"{n} images; at least {MIN_IMAGES} are needed")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError("the images hold NaN or infinite values")
    if x.min() < 0 or x.max() > 255:
        raise DatasetError(f"pixel values run from {x.min():g} to {x.max():g}; expected 0-1 or 0-255")
    if x.max() > 1:
        x = x / 255.0
    images = np.stack([_resize(img, side) for img in x]).reshape(n, -1)
    if y is None:
        return images, np.zeros(n, dtype=np.int64), ("unlabelled",)
    why = f"labels must be {n} whole numbers from 0 to 999, or {n} class names (got shape {y.shape}, {y.dtype})"
    if y.shape != (n,):
        raise DatasetError(why)
    if y.dtype.kind in "US":  # class names, as a folder of pictures gives them ("cat", "dog")
        names = np.char.strip(y.astype(str))
        classes = np.unique(names)
        if len(classes) > 1000 or min(map(len, classes)) == 0 or max(map(len, classes)) > MAX_CLASS_NAME:
            raise DatasetError(f"class names must be 1 to {MAX_CLASS_NAME} characters, at most 1,000 of them")
        return images, np.searchsorted(classes, names).astype(np.int64), tuple(str(c) for c in classes)
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)  # 3.0: whole numbers saved as floats
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= 1000:
        raise DatasetError(why)
    classes = np.unique(y)
    return images, np.searchsorted(classes, y).astype(np.int64), tuple(str(c) for c in classes)


def _bright_strokes(x: np.ndarray, side: int) -> np.ndarray:
    """Invert images whose ground is light (the images' borders are mostly bright), as MNIST's strokes are white
    on black and the models' output bias starts from the mean image."""
    frames = x.reshape(len(x), side, side)
    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    return 1.0 - x if np.median(border) > 0.5 else x


def dataset_from_upload(data: bytes, filename: str, title: str = "", side: int = 28,
                        invert: str = "auto", skipped: list[str] | None = None) -> Dataset:
    """A :class:`Dataset` from an uploaded ``.zip`` of images or ``.npz`` file, split 5:1 into train and test,
    stratified by class. ``invert``: "auto" (light grounds become dark), "yes" or "no". ``skipped``: see
    :func:`images_from_zip`."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise DatasetError(f"the file is {len(data) / 2**20:.0f} MB; at most {MAX_UPLOAD_BYTES >> 20} MB")
    if side not in SIDES:
        raise DatasetError(f"the image size must be one of {SIDES}")
    suffix = Path(filename).suffix.lower()
    if suffix == ".zip":
        x, y, names = images_from_zip(data, side, skipped)
    elif suffix == ".npz":
        x, y, names = images_from_npz(data, side)
    else:
        raise DatasetError(f"{filename!r}: upload a .zip of PNG/JPEG images or an .npz file")
    if invert == "auto":
        x = _bright_strokes(x, side)
    elif invert == "yes":
        x = 1.0 - x
    slug = _SAFE.sub("-", (title or Path(filename).stem).lower()).strip("-")[:40] or "images"
    name = f"{PREFIX}{slug}-{hashlib.md5(data, usedforsecurity=False).hexdigest()[:6]}"  # same file, same name
    return data_mod.split_dataset(name, x.astype(np.float32), y, max(1, len(x) // 6), (side, side), names)


def save_dataset(dataset: Dataset, title: str, folder: Path | None = None) -> Path:
    """Keep an uploaded dataset for later sessions (written to a temporary file, then renamed)."""
    folder = folder or datasets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dataset.name}.npz"
    data_mod.remove_stale_temporaries(folder, ".*.tmp.npz")
    tmp = folder / f".{dataset.name}.{secrets.token_hex(4)}.tmp.npz"
    try:
        np.savez_compressed(tmp, x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test,
                            y_test=dataset.y_test, class_names=np.array(dataset.class_names, dtype=str),
                            image_shape=np.array(dataset.image_shape), title=np.array(title[:80]))
        tmp.replace(path)
    except OSError as e:
        raise DatasetError(f"the dataset could not be saved ({e})") from e
    finally:
        tmp.unlink(missing_ok=True)
    return path


def delete_saved_dataset(name: str, folder: Path | None = None) -> None:
    """Remove the saved upload ``name`` (one :func:`saved_datasets` lists); a name that is not one, or that would
    reach outside the folder, is refused. Runs trained on it stay; no page can show them without it."""
    folder = folder or datasets_dir()
    path = folder / f"{name}.npz"
    if not re.fullmatch(rf"{PREFIX}[a-z0-9-]+", name) or not path.is_file():
        raise DatasetError(f"there is no saved dataset {name!r}")
    try:
        path.unlink()
    except OSError as e:
        raise DatasetError(f"{name} could not be deleted ({e})") from e


def _load_saved(info: DatasetInfo) -> Dataset:
    path = datasets_dir() / f"{info.name}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            shape = tuple(int(v) for v in f["image_shape"])
            return Dataset(info.name, f["x_train"].astype(np.float32), f["y_train"].astype(np.int64),
                           f["x_test"].astype(np.float32), f["y_test"].astype(np.int64),
                           tuple(str(c) for c in f["class_names"]), shape)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DatasetError(f"the saved dataset {info.name} cannot be read ({e})") from e


def saved_datasets() -> list[DatasetInfo]:
    """The uploaded datasets saved in :func:`datasets_dir`, newest first."""
    folder = datasets_dir()
    try:
        paths = sorted(folder.glob(f"{PREFIX}*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    infos = []
    for path in paths:
        title, size = path.stem, None
        try:
            with np.load(path, allow_pickle=False) as f:
                title = str(f["title"]) or title
            size = _rows(path, "y_train.npy")
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass  # listed under its file name; loading it says what is wrong
        infos.append(DatasetInfo(path.stem, f"{title} (uploaded)", f"Your images, saved as {path.name}.", True,
                                 _load_saved, train_size=size))
    return infos


def _rows(path: Path, member: str) -> int:
    """The first dimension of an array in an ``.npz``, from its header alone (the listing runs at every page)."""
    with zipfile.ZipFile(path) as z, z.open(member) as m:
        version = np.lib.format.read_magic(m)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape = read(m)[0]
    if not shape:
        raise ValueError(f"{member} holds no rows")
    return int(shape[0])


data_mod.DISCOVERERS.append(saved_datasets)
