"""Reader for the IDX format of MNIST (optionally gzipped), with strict checks."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse decompressed IDX bytes into an array; raise ``ValueError`` if malformed."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name}: not an IDX file (bad magic number {raw[:4].hex()})")
    code, ndim = raw[2], raw[3]
    if code not in _DTYPES or ndim == 0:
        raise ValueError(f"{name}: unsupported IDX type 0x{code:02x} / {ndim} dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[code])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{name}: size {len(raw)} bytes does not match its header "
            f"(shape {shape} needs {expected} bytes); the file is truncated or corrupt"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def read_idx_bytes(path: str | Path) -> bytes:
    """Return the decompressed bytes of an IDX file (``.gz`` or raw)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    return decompress(path.read_bytes(), str(path))


def decompress(data: bytes, name: str = "IDX data") -> bytes:
    """Gunzip ``data`` if it starts with the gzip magic; raise ``ValueError`` if it is corrupt."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{name}: corrupt or truncated gzip data ({err})") from err
    return data


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array."""
    return parse_idx(read_idx_bytes(path), str(path))
