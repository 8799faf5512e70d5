"""One checksummed array per file, written atomically: the on-disk cache of binned event frames.

File layout (little-endian)::

    b"MLXSNNF1"                     8 bytes, format tag
    header length n                 4 bytes, uint32
    header                          n bytes, UTF-8 JSON: {"meta": ..., "dtype": "uint16",
                                    "shape": [T, H, W, C], "sha256": hex digest of the payload}
    payload                         the array's bytes, C order

``meta`` is what the reader expects to find (the preprocessing parameters and the identity of
the source recording); an entry whose ``meta`` differs is *stale*. An entry that cannot be
parsed, is shorter or longer than its header says, or whose payload does not hash to its
``sha256`` is *corrupt*. Either way the caller rebuilds it; a bad entry is never returned.

Writes go to a temporary file in the same folder, then ``os.replace`` moves it over the entry,
so a reader sees the old entry or the complete new one, never a partial file. The data is not
fsynced: a file cut short by a power loss fails its checksum and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

MAGIC = b"MLXSNNF1"
_LENGTH = struct.Struct("<I")
DTYPES = ("uint8", "uint16", "uint32", "float32")

# read_entry's status when it returns no array
MISSING, STALE = "missing", "stale"


def write_entry(path: Path, array: np.ndarray, meta: dict) -> None:
    """Write ``array`` with ``meta`` to ``path`` atomically (see the module docstring)."""
    array = np.ascontiguousarray(array)
    if array.dtype.name not in DTYPES:
        raise TypeError(f"array must have one of the dtypes {DTYPES}; got {array.dtype}")
    payload = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    header = json.dumps(
        {
            "meta": meta,
            "dtype": array.dtype.name,
            "shape": list(array.shape),
            "sha256": hashlib.sha256(payload).hexdigest(),
        },
        sort_keys=True,
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + _LENGTH.pack(len(header)) + header + payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_entry(path: Path, meta: dict) -> tuple[np.ndarray | None, str | None]:
    """Return ``(array, None)`` for a sound entry made with ``meta``, else ``(None, status)``.

    ``status`` is :data:`MISSING`, :data:`STALE` (made for other ``meta``) or, for a corrupt
    entry, a sentence saying what is wrong with it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, MISSING
    head = len(MAGIC) + _LENGTH.size
    if len(data) < head or data[: len(MAGIC)] != MAGIC:
        return None, f"it does not start with the tag {MAGIC!r} ({len(data)} bytes)"
    (n,) = _LENGTH.unpack_from(data, len(MAGIC))
    try:
        header = json.loads(data[head : head + n])
        dtype = np.dtype(header["dtype"]).newbyteorder("<")
        shape = tuple(int(d) for d in header["shape"])
        digest = header["sha256"]
        if header["dtype"] not in DTYPES:
            raise ValueError(f"dtype {header['dtype']!r}")
    except (ValueError, KeyError, TypeError) as err:
        return None, f"its header cannot be read ({err})"
    if header["meta"] != meta:
        return None, STALE
    payload = data[head + n :]
    want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(payload) != want:
        return None, f"its payload holds {len(payload)} bytes; the header says {want}"
    if hashlib.sha256(payload).hexdigest() != digest:
        return None, "its payload does not match its sha256 checksum"
    return np.frombuffer(payload, dtype=dtype).reshape(shape), None
