"""MNIST and Fashion-MNIST from their IDX files: found, downloaded if missing, verified, parsed."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from .._checks import check_choice
from . import mnist_files
from .idx import decompress, parse_idx

__all__ = ["default_data_dir", "mnist"]

# parsed arrays by (file, mtime, size, expected checksum): a second call costs nothing
_CACHE: dict[tuple, np.ndarray] = {}


def default_data_dir(dataset: str = "mnist") -> Path:
    """The cache folder of ``dataset``: ``$MLX_SNN_DATA/<dataset>``, else
    ``~/.cache/mlx_snn/<dataset>``."""
    check_choice("dataset", dataset, mnist_files.DATASETS)
    root = os.environ.get("MLX_SNN_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "mlx_snn"
    return base / dataset


def mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    dataset: str = "mnist",
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST as ``(images [N, 28, 28] uint8, labels [N] uint8)``.

    ``N`` is 60000 for ``"train"`` and 10000 for ``"test"``; pixel values are 0-255 (use
    ``images.astype(np.float32) / 255`` for ``[0, 1]``). The arrays are read-only: they are
    shared with an in-process cache, so a second call is free (``.copy()`` to modify them).

    The files are the four original IDX files, gzipped (``train-images-idx3-ubyte.gz``, ...) or
    not (``train-images-idx3-ubyte``), in ``data_dir`` or, when it is ``None``, in the cache
    folder :func:`default_data_dir` (``$MLX_SNN_DATA/<dataset>`` or
    ``~/.cache/mlx_snn/<dataset>``). Missing files are downloaded into that same folder when
    ``download`` is true: each goes to a temporary file, is verified, then moved into place.

    Verification: MNIST files must match the sha256 of their decompressed bytes. For
    Fashion-MNIST only the md5 of the published ``.gz`` files is known (its README), so a
    download is checked against that, and a file already on disk is checked for its structure
    only. Every file is checked for its IDX magic number (``0x00000803`` images of 28×28 uint8,
    ``0x00000801`` uint8 labels below 10), a size that matches its header, and image and label
    counts that agree.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: folder holding the files; ``None`` for the cache folder.
        download: fetch missing files (needs the internet).
        dataset: ``"mnist"`` or ``"fashion"`` (Fashion-MNIST: same names and layout).

    Raises:
        ValueError: bad ``split``/``dataset``; a corrupt, truncated, wrong-checksum,
            wrong-magic or count-mismatched file (never a partial dataset).
        FileNotFoundError: a file is missing and could not be downloaded; the message names
            the folder to put it in.
    """
    check_choice("split", split, mnist_files.SPLIT_FILES)
    check_choice("dataset", dataset, mnist_files.DATASETS)
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool; got {type(download).__name__}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path or None; got {type(data_dir).__name__}")
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir(dataset)
    image_file, label_file = mnist_files.SPLIT_FILES[split]
    images = _load(folder, image_file, dataset, download)
    labels = _load(folder, label_file, dataset, download)
    if len(images) != len(labels):
        raise ValueError(
            f"{folder}: {image_file} holds {len(images)} images but {label_file} holds "
            f"{len(labels)} labels; the files do not belong together"
        )
    return images, labels


def _locate(folder: Path, base: str) -> Path | None:
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def _load(folder: Path, base: str, dataset: str, download: bool) -> np.ndarray:
    path = _locate(folder, base)
    if path is None:
        if not download:
            raise FileNotFoundError(_missing(folder, base, dataset, "download=False"))
        path = _download(folder, base, dataset)
    info = mnist_files.DATASETS[dataset]
    expected = info.sha256[base] if info.sha256 else None
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, base, expected)
    if key not in _CACHE:
        _CACHE[key] = _verify(path.read_bytes(), str(path), base, dataset)
    return _CACHE[key]


def _verify(data: bytes, name: str, base: str, dataset: str) -> np.ndarray:
    """Decompress, check structure and checksum, return the read-only array."""
    raw = decompress(data, name)
    is_images = "-images-" in base
    want_magic, want = (
        (b"\x00\x00\x08\x03", "[N, 28, 28]") if is_images else (b"\x00\x00\x08\x01", "[N]")
    )
    if raw[:4] != want_magic:
        raise ValueError(
            f"{name}: wrong magic number 0x{raw[:4].hex()} for {base}; expected "
            f"0x{want_magic.hex()} (uint8 {want}); the file is not {base} or is corrupt"
        )
    arr = parse_idx(raw, name)
    if is_images and arr.shape[1:] != (28, 28):
        raise ValueError(f"{name}: images must be [N, 28, 28]; the header says {arr.shape}")
    info = mnist_files.DATASETS[dataset]
    if info.sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != info.sha256[base]:
            raise ValueError(
                f"{name}: sha256 of the decompressed bytes is {digest}, expected "
                f"{info.sha256[base]}; the file is corrupt or not the original {info.title} "
                f"{base}. Delete it (download=True fetches a fresh copy) or replace it."
            )
    if not is_images and arr.size and int(arr.max()) > 9:
        raise ValueError(f"{name}: labels must lie in 0..9; found {int(arr.max())}")
    arr.flags.writeable = False
    return arr


def _missing(folder: Path, base: str, dataset: str, reason: str) -> str:
    info = mnist_files.DATASETS[dataset]
    names = sorted(f"{b}.gz" for pair in mnist_files.SPLIT_FILES.values() for b in pair)
    return (
        f"{info.title} file {base}.gz (or uncompressed {base}) not found in {folder} "
        f"({reason}). Put the {info.title} IDX files ({', '.join(names)}) in {folder}, "
        f"e.g. downloaded from {info.mirrors[0]}, or pass data_dir= a folder that holds them."
    )


def _fetch(url: str, out) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:
        shutil.copyfileobj(response, out)


def _download(folder: Path, base: str, dataset: str) -> Path:
    """Download ``base.gz`` into ``folder`` through a verified temporary file."""
    info = mnist_files.DATASETS[dataset]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FileNotFoundError(
            _missing(folder, base, dataset, f"cannot create it: {err}")
        ) from err
    errors = []
    for mirror in info.mirrors:
        url = f"{mirror}{base}.gz"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out)
            data = Path(tmp).read_bytes()
            if info.gz_md5 is not None:
                digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
                if digest != info.gz_md5[base]:
                    raise ValueError(f"md5 {digest} of the download, expected {info.gz_md5[base]}")
            _verify(data, url, base, dataset)
            final = folder / f"{base}.gz"
            os.replace(tmp, final)
            return final
        except (OSError, ValueError) as err:
            errors.append(f"{url}: {err}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise FileNotFoundError(
        _missing(folder, base, dataset, "download failed: " + "; ".join(errors))
    )
