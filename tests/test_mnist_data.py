"""snn.data.mnist: finding, verifying, downloading and parsing the MNIST IDX files.

Small IDX files are written by the tests themselves (gzipped and raw) with a checksum table
monkeypatched in; the shared real MNIST (``mnist_dir`` fixture) pins shapes, dtypes and the first
labels. No network: every download goes through a monkeypatched ``urlopen``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import urllib.error
import urllib.request

import numpy as np
import pytest

from mlx_snn import data
from mlx_snn.data import mnist_files

N = 5
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
LABELS = RNG.integers(0, 10, size=N, dtype=np.uint8)


def idx_bytes(arr: np.ndarray, magic: bytes | None = None) -> bytes:
    head = magic or bytes([0, 0, 8, arr.ndim])
    return head + b"".join(n.to_bytes(4, "big") for n in arr.shape) + arr.tobytes()


def write_split(folder, split="train", gz=True, images=IMAGES, labels=LABELS, table=None):
    """Write one split's two files; fill ``table`` with their decompressed sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    img_name, lbl_name = mnist_files.SPLIT_FILES[split]
    for name, arr in ((img_name, images), (lbl_name, labels)):
        raw = idx_bytes(arr)
        if table is not None:
            table[name] = hashlib.sha256(raw).hexdigest()
        path = folder / (f"{name}.gz" if gz else name)
        path.write_bytes(gzip.compress(raw) if gz else raw)


@pytest.fixture
def table(monkeypatch):
    """A checksum table for MNIST that the tests fill in with their own files' sums."""
    sums: dict[str, str] = {}
    patched = dataclasses.replace(mnist_files.DATASETS["mnist"], sha256=sums)
    monkeypatch.setitem(mnist_files.DATASETS, "mnist", patched)
    return sums


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip_of_small_idx_files(tmp_path, table, gz):
    write_split(tmp_path, "test", gz=gz, table=table)
    x, y = data.mnist("test", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(x, IMAGES)
    np.testing.assert_array_equal(y, LABELS)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert not x.flags.writeable and not y.flags.writeable


def test_cache_dir_from_environment(tmp_path, table, monkeypatch):
    monkeypatch.setenv("MLX_SNN_DATA", str(tmp_path))
    assert data.default_data_dir() == tmp_path / "mnist"
    assert data.default_data_dir("fashion") == tmp_path / "fashion"
    write_split(tmp_path / "mnist", "train", table=table)
    x, _ = data.mnist("train", download=False)
    np.testing.assert_array_equal(x, IMAGES)


def test_wrong_checksum_is_rejected(tmp_path, table):
    write_split(tmp_path, "train", table=table)
    table["train-images-idx3-ubyte"] = "0" * 64
    with pytest.raises(ValueError, match=r"sha256 of the decompressed bytes .* expected 0000"):
        data.mnist("train", data_dir=tmp_path)


def test_synthetic_files_fail_the_real_checksum(tmp_path):
    write_split(tmp_path, "test")  # the real MNIST table: these bytes cannot match it
    with pytest.raises(ValueError, match="corrupt or not the original MNIST"):
        data.mnist("test", data_dir=tmp_path, download=False)


def test_truncated_files_are_rejected(tmp_path, table):
    write_split(tmp_path, "train", gz=False, table=table)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        data.mnist("train", data_dir=tmp_path)
    gz_path = tmp_path / "train-images-idx3-ubyte.gz"  # found before the raw file
    gz_path.write_bytes(gzip.compress(idx_bytes(IMAGES))[:-20])
    with pytest.raises(ValueError, match="corrupt or truncated gzip data"):
        data.mnist("train", data_dir=tmp_path)


def test_corrupt_gzip_is_rejected(tmp_path, table):
    write_split(tmp_path, "train", table=table)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[12] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="corrupt or truncated gzip data"):
        data.mnist("train", data_dir=tmp_path)


def test_wrong_magic_is_rejected(tmp_path, table):
    write_split(tmp_path, "test", table=table)
    # a labels file where the images file should be: valid IDX, wrong magic
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(LABELS)))
    with pytest.raises(ValueError, match=r"wrong magic number 0x00000801 .* expected 0x00000803"):
        data.mnist("test", data_dir=tmp_path)


def test_image_label_count_mismatch_is_rejected(tmp_path, table):
    write_split(tmp_path, "test", labels=LABELS[:-1], table=table)
    with pytest.raises(ValueError, match=r"holds 5 images but .* holds 4 labels"):
        data.mnist("test", data_dir=tmp_path)


def test_bad_labels_and_image_size_are_rejected(tmp_path, table):
    write_split(tmp_path, "test", labels=np.full(N, 10, np.uint8), table=table)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.9"):
        data.mnist("test", data_dir=tmp_path)
    write_split(tmp_path / "b", "test", images=IMAGES[:, :27], table=table)
    with pytest.raises(ValueError, match=r"images must be \[N, 28, 28\]"):
        data.mnist("test", data_dir=tmp_path / "b")


def test_missing_file_offline_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False") as err:
        data.mnist("train", data_dir=tmp_path, download=False)
    assert str(tmp_path) in str(err.value) and "train-images-idx3-ubyte.gz" in str(err.value)


def test_failed_download_names_the_folder_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_SNN_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download failed") as err:
        data.mnist("test", download=True)
    message = str(err.value)
    assert str(tmp_path / "mnist") in message and "network disabled" in message
    assert list((tmp_path / "mnist").iterdir()) == []


def _serve(monkeypatch, payloads: dict[str, bytes], seen: list[str]):
    def urlopen(url, timeout=None):
        seen.append(url)
        return io.BytesIO(payloads[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def test_download_is_verified_then_moved_into_place(tmp_path, table, monkeypatch):
    payloads = {}
    for name, arr in zip(mnist_files.SPLIT_FILES["test"], (IMAGES, LABELS), strict=True):
        raw = idx_bytes(arr)
        table[name] = hashlib.sha256(raw).hexdigest()
        payloads[f"{name}.gz"] = gzip.compress(raw)
    seen: list[str] = []
    _serve(monkeypatch, payloads, seen)
    x, _ = data.mnist("test", data_dir=tmp_path / "new")
    np.testing.assert_array_equal(x, IMAGES)
    assert seen[0].startswith(mnist_files.DATASETS["mnist"].mirrors[0])
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_corrupt_download_tries_every_mirror_and_keeps_nothing(tmp_path, table, monkeypatch):
    table["t10k-images-idx3-ubyte"] = "1" * 64
    seen: list[str] = []
    _serve(monkeypatch, {"t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(IMAGES))}, seen)
    with pytest.raises(FileNotFoundError, match=r"download failed: .*sha256") as err:
        data.mnist("test", data_dir=tmp_path)
    assert len(seen) == len(mnist_files.DATASETS["mnist"].mirrors)
    assert str(tmp_path) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_fashion_download_checks_the_published_md5(tmp_path, monkeypatch):
    payloads = {f"{n}.gz": gzip.compress(idx_bytes(LABELS)) for n in mnist_files.FASHION_GZ_MD5}
    _serve(monkeypatch, payloads, [])
    with pytest.raises(FileNotFoundError, match=r"md5 .* expected bef4ecab"):
        data.mnist("test", data_dir=tmp_path, dataset="fashion")


def test_fashion_files_on_disk_are_checked_for_structure(tmp_path):
    write_split(tmp_path, "train")
    _, y = data.mnist("train", data_dir=tmp_path, dataset="fashion", download=False)
    np.testing.assert_array_equal(y, LABELS)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(IMAGES)))
    with pytest.raises(ValueError, match="wrong magic number"):
        data.mnist("train", data_dir=tmp_path, dataset="fashion")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"split": "val"}, ValueError, "split must be one of 'train', 'test'; got 'val'"),
        ({"dataset": "cifar"}, ValueError, "dataset must be one of 'mnist', 'fashion'"),
        ({"download": "yes"}, TypeError, "download must be a bool"),
        ({"data_dir": 3}, TypeError, "data_dir must be a path or None"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.mnist(**kwargs)


def test_real_mnist_shapes_dtypes_and_first_labels(mnist_dir):
    x, y = data.mnist("train", data_dir=mnist_dir, download=False)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and y.dtype == np.uint8
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert int(x.max()) == 255 and set(np.unique(y)) == set(range(10))
    xt, yt = data.mnist("test", data_dir=mnist_dir, download=False)
    assert xt.shape == (10000, 28, 28) and yt[:5].tolist() == [7, 2, 1, 0, 4]
    bx, by = data.bundled_mnist("test")  # the bundled subset is the first 2000 test images
    np.testing.assert_array_equal(xt[:2000], bx)
    np.testing.assert_array_equal(yt[:2000], by)
    assert data.mnist("test", data_dir=mnist_dir)[0] is xt  # parsed once, then cached
