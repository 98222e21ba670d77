"""Datasets: the embedded ones, IDX parsing, checksums, the download path (from file:// URLs) and offline errors."""
import gzip
import hashlib
import struct

import numpy as np
import pytest

from aecore import data
from aecore.data import (ChecksumError, DatasetUnavailable, IDXFile, IDXFormatError, IDXSource, fetch_idx,
                         load_dataset, parse_idx)
from conftest import shared_mnist_dir


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_source(folder, n=7):
    """Four small IDX files in MNIST's layout, and a source describing them."""
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (n, 28, 28)), "train_labels": rng.integers(0, 10, n),
              "test_images": rng.integers(0, 256, (3, 28, 28)), "test_labels": rng.integers(0, 10, 3)}
    files = {}
    folder.mkdir(parents=True, exist_ok=True)
    for role, arr in arrays.items():
        name = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
                "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}[role]
        raw = idx_bytes(arr)
        packed = gzip.compress(raw, mtime=0)
        (folder / name).write_bytes(packed)
        files[role] = IDXFile(name, hashlib.md5(packed).hexdigest(), hashlib.md5(raw).hexdigest())
    return IDXSource("toy", (folder.as_uri() + "/",), files), arrays


@pytest.mark.parametrize("name,n_train,n_test,shape", [("mnist-5k", 4000, 1000, (28, 28)),
                                                        ("digits", 1438, 359, (8, 8))])
def test_embedded_datasets(name, n_train, n_test, shape):
    ds = load_dataset(name)
    assert ds.x_train.shape == (n_train, shape[0] * shape[1]) and ds.x_test.shape[0] == n_test
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.image_shape == shape and len(ds.class_names) == 10
    # stratified: every class in the test split in its share
    assert np.bincount(ds.y_test, minlength=10).min() >= n_test // 10 - 2
    again = load_dataset(name)  # deterministic split
    np.testing.assert_array_equal(ds.y_train, again.y_train)


def test_parse_idx_round_trip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(arr)), arr)


def test_parse_idx_rejects_truncated_and_bad_magic():
    raw = idx_bytes(np.zeros((4, 5, 5)))
    with pytest.raises(IDXFormatError, match="truncated"):
        parse_idx(raw[:-3])
    with pytest.raises(IDXFormatError, match="magic"):
        parse_idx(b"\x01\x02" + raw[2:])


def test_local_folder_is_read_and_checked(tmp_path):
    source, arrays = write_source(tmp_path / "data" / "toy")
    images = fetch_idx(source, "train_images", data_dir=tmp_path / "data", download=False)
    np.testing.assert_array_equal(images, arrays["train_images"])
    # an uncompressed copy of the same content passes through its content checksum
    raw_path = tmp_path / "data" / "toy" / "t10k-labels-idx1-ubyte"
    raw_path.write_bytes(gzip.decompress((tmp_path / "data" / "toy" / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    (tmp_path / "data" / "toy" / "t10k-labels-idx1-ubyte.gz").unlink()
    np.testing.assert_array_equal(fetch_idx(source, "test_labels", data_dir=tmp_path / "data", download=False),
                                  arrays["test_labels"])


def test_checksum_mismatch_raises(tmp_path):
    source, _ = write_source(tmp_path / "toy")
    path = tmp_path / "toy" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[-1] ^= 0xFF  # a flipped label byte: still valid IDX, wrong data
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ChecksumError, match="checksum"):
        fetch_idx(source, "train_labels", data_dir=tmp_path, download=False)


def test_a_decompression_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    source, _ = write_source(tmp_path / "toy")
    path = tmp_path / "toy" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\0" * 50_000))  # wrong checksum, and 50 kB unpacked from 100 bytes
    monkeypatch.setattr(data, "MAX_IDX_BYTES", 10_000)  # (the real cap, 200 MB, scaled down with the bomb)
    read = []
    real_read = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, n=-1: read.append(n) or real_read(self, n))
    with pytest.raises(IDXFormatError, match="decompresses to more than"):
        fetch_idx(source, "train_labels", data_dir=tmp_path, download=False)
    assert read and all(0 < n <= 10_001 for n in read)  # never "read it all"


def test_a_checked_file_is_kept_decoded_until_the_file_changes(tmp_path, monkeypatch):
    """A server's first MNIST page decompressed and checksummed 55 MB each time: 0.46 s of the 1.15 s a t-SNE opened
    by a link spent loading MNIST. The checked array is kept decoded, keyed to the file as it was checked."""
    import os
    source, arrays = write_source(tmp_path / "toy")
    first = fetch_idx(source, "train_labels", data_dir=tmp_path, download=False)
    kept = list((tmp_path / "cache" / "decoded").glob("train-labels-idx1-ubyte-*.npy"))
    assert len(kept) == 1
    checked = []
    real_verify = data.verify_file
    monkeypatch.setattr(data, "verify_file", lambda *a: checked.append(a) or real_verify(*a))
    again = fetch_idx(source, "train_labels", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(again, arrays["train_labels"])
    assert checked == []  # from the decoded copy, not decompressed and checked again
    # the file replaced by a bad one of the same size and times: checked again, and refused
    path = tmp_path / "toy" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[-1] ^= 0xFF
    bad = gzip.compress(bytes(raw), mtime=0)
    times = path.stat()
    path.write_bytes(bad)
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))  # what a touch can restore; the change time it cannot
    with pytest.raises(ChecksumError, match="checksum"):
        fetch_idx(source, "train_labels", data_dir=tmp_path, download=False)
    assert len(checked) == 1
    # a good file in its place again (new times): decoded once more, and the copy of the file as it was removed
    path.write_bytes(gzip.compress(idx_bytes(arrays["train_labels"]), mtime=0))
    fetch_idx(source, "train_labels", data_dir=tmp_path, download=False)
    (now,) = (tmp_path / "cache" / "decoded").glob("train-labels-idx1-ubyte-*.npy")
    assert now not in kept and len(checked) == 2
    # a damaged decoded copy is passed by: the file is checked and decoded again
    fetch_idx(source, "test_images", data_dir=tmp_path, download=False)
    (copy,) = (tmp_path / "cache" / "decoded").glob("t10k-images-idx3-ubyte-*.npy")
    copy.write_bytes(copy.read_bytes()[:200])
    checked.clear()
    np.testing.assert_array_equal(fetch_idx(source, "test_images", data_dir=tmp_path, download=False),
                                  arrays["test_images"])
    assert len(checked) == 1
    # a copy whose header claims 10^12 bytes is passed by too, without allocating them
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }".ljust(117) + "\n"
    copy.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64)
    np.testing.assert_array_equal(fetch_idx(source, "test_images", data_dir=tmp_path, download=False),
                                  arrays["test_images"])
    assert len(checked) == 2


def test_truncated_file_raises_clearly(tmp_path):
    source, _ = write_source(tmp_path / "toy")
    path = tmp_path / "toy" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(data.DatasetError):
        fetch_idx(source, "train_images", data_dir=tmp_path, download=False)


def test_download_verifies_and_caches(tmp_path, monkeypatch):
    source, arrays = write_source(tmp_path / "mirror")
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))
    got = fetch_idx(source, "test_images")
    np.testing.assert_array_equal(got, arrays["test_images"])
    assert (tmp_path / "cache" / "toy" / "t10k-images-idx3-ubyte.gz").exists()
    # the cached copy is used next time, even with the mirror gone
    (tmp_path / "mirror" / "t10k-images-idx3-ubyte.gz").unlink()
    np.testing.assert_array_equal(fetch_idx(source, "test_images"), arrays["test_images"])


def test_corrupt_download_is_rejected_and_not_cached(tmp_path, monkeypatch):
    source, _ = write_source(tmp_path / "mirror")
    (tmp_path / "mirror" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01garbage"))
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetUnavailable, match="checksum"):
        fetch_idx(source, "train_labels")
    assert not list((tmp_path / "cache" / "toy").glob("*"))


@pytest.mark.parametrize("cut", [TimeoutError("timed out"), KeyboardInterrupt()])
def test_a_download_cut_off_leaves_no_partial_file(tmp_path, monkeypatch, cut):
    """A download that times out halfway, or is stopped with Ctrl-C, left its partial file in the cache for good."""
    import io
    import urllib.request
    source, _ = write_source(tmp_path / "mirror")
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))

    class HalfThenCut(io.BytesIO):
        def read(self, n=-1):
            if self.tell():
                raise cut
            return super().read(8)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: HalfThenCut(b"\0" * 64))
    with pytest.raises(type(cut) if isinstance(cut, KeyboardInterrupt) else DatasetUnavailable):
        fetch_idx(source, "train_labels")
    assert list((tmp_path / "cache" / "toy").iterdir()) == []


def test_what_a_killed_write_left_in_the_cache_is_removed_later(tmp_path, monkeypatch):
    """Temporary files of a download or a decoded copy whose process was killed (kill -9) are removed by the next
    write to the folder once older than any write takes; younger ones (a write under way) stay."""
    import os
    import time
    source, _ = write_source(tmp_path / "mirror")
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))
    folders = [tmp_path / "cache" / "toy", tmp_path / "cache" / "decoded"]
    old = time.time() - data.STALE_AFTER - 60
    for folder in folders:
        folder.mkdir(parents=True)
        for name, age in (("dead", old), ("live", time.time())):
            path = folder / (f".t10k-images-idx3-ubyte.gz.{name}.tmp" if folder.name == "toy" else f"{name}.tmp")
            path.write_bytes(b"\0" * 100)
            os.utime(path, (age, age))
    fetch_idx(source, "test_images")  # downloads into the first folder
    fetch_idx(source, "test_images")  # reads the download, and keeps it decoded in the second
    for folder in folders:
        assert sorted(p.name for p in folder.glob("*.tmp") if "dead" in p.name) == []
        assert len([p for p in folder.glob("*.tmp") if "live" in p.name]) == 1


def test_offline_message_says_where_to_put_files(tmp_path, monkeypatch):
    source = IDXSource("toy", ("http://127.0.0.1:9/",), write_source(tmp_path / "elsewhere")[0].files)
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetUnavailable) as e:
        fetch_idx(source, "train_images")
    assert "AECORE_DATA_DIR" in str(e.value) and str(tmp_path / "cache" / "toy") in str(e.value)


@pytest.mark.skipif(shared_mnist_dir() is None, reason="../shared/data is absent")
def test_full_mnist_from_data_dir(monkeypatch):
    monkeypatch.setenv("AECORE_DATA_DIR", str(shared_mnist_dir()))
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    # each pixel is its byte / 255 in float32, exactly (the conversion is torch's, for speed: the same floats)
    raw = fetch_idx(data.dataset_info("mnist").idx, "test_images", download=False).reshape(10000, -1)
    assert set(np.unique(raw).tolist()) == set(range(256))
    np.testing.assert_array_equal(ds.x_test, raw.astype(np.float32) / np.float32(255.0))
