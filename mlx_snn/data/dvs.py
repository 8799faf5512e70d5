r"""DVS128-Gesture through tonic: find (or fetch) the recordings, bin them as the TAC paper does,
and keep the binned frames in a checksummed on-disk cache.

The paper's preprocessing (Collapse-or-Preserve, Appendix F) of one recording of ``N`` events
``(x_i, y_i, p_i, t_i)`` on the 128 x 128 sensor, for ``T`` bins and an ``S x S`` output
(``k = 128 / S``):

.. math::

    b_i = \min\Big(\Big\lfloor \frac{(t_i - t_{\min})\,T}{t_{\max} - t_{\min}}
    \Big\rfloor,\ T - 1\Big),\qquad
    c[b, y, x, p] = \#\{i : b_i = b,\ \lfloor y_i / k \rfloor = y,\
    \lfloor x_i / k \rfloor = x,\ p_i = p\},\qquad
    \text{frames} = \log(1 + c)

(all events in bin 0 when ``t_max = t_min``). Frames are ``[T, S, S, 2]``, channels-last,
float32; channel 0 is polarity 0 (OFF), channel 1 polarity 1 (ON).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_choice, check_int
from . import frame_cache

__all__ = [
    "DVSGestureFrames",
    "default_dvs_dir",
    "dvs_gesture",
    "event_counts",
    "event_frames",
]

SENSOR_SIZE = 128
NUM_CLASSES = 11
SPLIT_FOLDERS = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}
# recordings in tonic's copy of each split (tonic issue #270: 1077 + 264 = 1341)
FULL_SPLIT_SIZES = {"train": 1077, "test": 264}
INSTALL_HINT = 'pip install "mlx-snn[dvs]"'
CACHE_FORMAT = 1

_SESSION = re.compile(r"user(\d+)_(.+)")
_RECORDING = re.compile(r"(\d+)\.npy")


def _tonic():
    """Import tonic (an optional dependency) or say how to install it."""
    try:
        import tonic
    except ImportError as err:
        raise ImportError(
            "mlx_snn.data.dvs_gesture reads DVS128-Gesture through tonic, which is not "
            f"installed: {INSTALL_HINT}"
        ) from err
    return tonic


def default_dvs_dir() -> Path:
    """tonic's ``save_to`` folder by default: ``$MLX_SNN_DATA/dvs_gesture``, else
    ``~/.cache/mlx_snn/dvs_gesture``."""
    root = os.environ.get("MLX_SNN_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "mlx_snn"
    return base / "dvs_gesture"


def _check_shape_args(num_bins: int, size: int) -> None:
    check_int("num_bins", num_bins, minimum=1)
    check_int("size", size, minimum=1)
    if SENSOR_SIZE % size:
        raise ValueError(
            f"size must divide the sensor's {SENSOR_SIZE} pixels (1, 2, 4, ..., 128) so that "
            f"pixels merge by integer division; got {size}"
        )


def _check_events(events: np.ndarray, name: str) -> None:
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(
            f"{name} must be a numpy structured array with fields x, y, p, t (tonic's event "
            f"format); got {type(events).__name__}"
        )
    missing = [f for f in ("x", "y", "p", "t") if f not in events.dtype.names]
    if missing:
        raise ValueError(f"{name} lacks the fields {missing}; it has {events.dtype.names}")
    if events.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional [N]; got shape {events.shape}")
    for axis in ("x", "y"):
        if events.size and (events[axis].min() < 0 or events[axis].max() >= SENSOR_SIZE):
            raise ValueError(
                f"{name}: {axis} must lie in 0..{SENSOR_SIZE - 1} (the DVS128 sensor); found "
                f"{events[axis].min()}..{events[axis].max()}"
            )
    if events.size and not np.isin(events["p"], (0, 1)).all():
        raise ValueError(f"{name}: polarity p must be 0 or 1; found {np.unique(events['p'])}")


def event_counts(events: np.ndarray, num_bins: int = 16, size: int = 64) -> np.ndarray:
    """Event counts per time bin, pixel and polarity: ``uint32 [num_bins, size, size, 2]``.

    ``events`` is one recording at the sensor's 128 x 128 resolution in tonic's format, a
    structured array ``[N]`` with fields ``x``, ``y``, ``p`` (0/1 or bool) and ``t`` (any
    integer unit). Implements ``c`` of the module docstring:

    - tonic's ``transforms.Downsample(spatial_factor=size / 128)`` merges pixels. It computes
      exactly ``floor(x * size / 128)``: the factor is a power of two, so the product is exact
      and its cast back to the integer field truncates.
    - The time bins are computed here, in exact integer arithmetic, and counted with one
      ``np.bincount`` (no loop over events). tonic's ``ToFrame(n_time_bins=T)`` is not the
      paper's binning: its windows are ``(t_max - t_min) // T`` long from ``t_min``, half-open,
      so it drops the events of the last ``(t_max - t_min) % T`` time units and at ``t_max``
      (at least the last event of every recording), and it counts into int16.

    Raises:
        TypeError: ``events`` is not a structured array.
        ValueError: missing fields; ``x``/``y`` outside ``0..127``; ``p`` not 0/1; bad
            ``num_bins``/``size``.
        ImportError: tonic is not installed.
    """
    _check_shape_args(num_bins, size)
    _check_events(events, "events")
    events = _tonic().transforms.Downsample(spatial_factor=size / SENSOR_SIZE)(events)
    return _bin(events, num_bins, size)


def _bin(events: np.ndarray, num_bins: int, size: int) -> np.ndarray:
    """Counts of already downsampled events (see :func:`event_counts`)."""
    shape = (num_bins, size, size, 2)
    if events.size == 0:
        return np.zeros(shape, np.uint32)
    t = events["t"].astype(np.int64)
    t0 = t.min()
    duration = int(t.max() - t0)
    if duration > 0:
        bins = np.minimum((t - t0) * num_bins // duration, num_bins - 1)
    else:
        bins = np.zeros_like(t)
    flat = ((bins * size + events["y"]) * size + events["x"]) * 2 + events["p"].astype(np.int64)
    counts = np.bincount(flat, minlength=num_bins * size * size * 2)
    return counts.astype(np.uint32).reshape(shape)


def event_frames(events: np.ndarray, num_bins: int = 16, size: int = 64) -> np.ndarray:
    """The paper's input frames of one recording: ``log(1 + counts)``, float32
    ``[num_bins, size, size, 2]`` (:func:`event_counts`; the log is taken here in float32, as
    tonic has no such transform)."""
    return np.log1p(event_counts(events, num_bins, size), dtype=np.float32)


@dataclass
class CacheStats:
    """What the frame cache did since the dataset was made: entries read (``hits``), made for
    the first time or after the source changed (``built``), and rebuilt because they were
    corrupt (``rebuilt``)."""

    hits: int = 0
    built: int = 0
    rebuilt: int = 0


class DVSGestureFrames:
    """One split of DVS128-Gesture as binned frames (made by :func:`dvs_gesture`).

    ``dataset[i]`` is ``(frames, label)``: float32 ``[num_bins, size, size, 2]`` and an int in
    ``0..10``. Recordings are ordered by (user, lighting, label), whatever order the file
    system lists them in. Batches: ``mlx_snn.data.FrameLoader(dataset, batch_size, ...)``.

    Attributes:
        split (str): ``"train"`` or ``"test"``, as given.
        num_bins (int): time bins ``T``, as given.
        size (int): frame height and width, as given.
        folder (Path): the folder of the split's recordings (``.../ibmGestureTrain``).
        paths (list[Path]): one ``.npy`` recording per sample.
        labels (np.ndarray): int32 ``[N]`` class indices.
        users (np.ndarray): int32 ``[N]`` user numbers; ``lighting`` (list[str]) the
            lighting condition of each sample.
        cache_dir (Path | None): where binned frames are kept (``None``: no cache).
        cache_stats (CacheStats): hits and (re)builds so far.
        classes (list[str]): tonic's class names.
    """

    def __init__(self, tonic_dataset, split: str, num_bins: int, size: int, cache_dir):
        self._tonic = tonic_dataset
        self.split, self.num_bins, self.size = split, num_bins, size
        self.folder = Path(tonic_dataset.location_on_system) / SPLIT_FOLDERS[split]
        self.classes = list(tonic_dataset.classes)
        order = sorted(
            range(len(tonic_dataset.data)),
            key=lambda j: (
                tonic_dataset.users[j],
                tonic_dataset.lighting[j],
                tonic_dataset.targets[j],
            ),
        )
        self._order = order
        self.paths = [Path(tonic_dataset.data[j]) for j in order]
        self.labels = np.array([tonic_dataset.targets[j] for j in order], dtype=np.int32)
        self.users = np.array([tonic_dataset.users[j] for j in order], dtype=np.int32)
        self.lighting = [tonic_dataset.lighting[j] for j in order]
        self.cache_dir = cache_dir
        self.cache_stats = CacheStats()
        self._stats_lock = threading.Lock()
        self._params = {
            "format": CACHE_FORMAT,
            "sensor": SENSOR_SIZE,
            "num_bins": num_bins,
            "size": size,
            "binning": "floor((t - tmin) * T / (tmax - tmin)), last event in bin T-1",
            "pixels": "floor(x * size / sensor)",
            "counts": "per (bin, y, x, polarity)",
        }

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """``(num_bins, size, size, 2)``, the shape of every sample's frames."""
        return (self.num_bins, self.size, self.size, 2)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"DVSGestureFrames(split={self.split!r}, samples={len(self)}, "
            f"frame_shape={self.frame_shape}, folder='{self.folder}', cache_dir="
            f"{str(self.cache_dir) if self.cache_dir else None!r})"
        )

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.log1p(self.counts(i), dtype=np.float32), int(self.labels[i])

    def _index(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"index must be an int; got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} samples")
        return int(i) % len(self)

    def events(self, i: int) -> np.ndarray:
        """The raw events of sample ``i`` as tonic reads them (x, y, p, t in microseconds)."""
        i = self._index(i)
        path = self.paths[i]
        try:
            events, _ = self._tonic[self._order[i]]
        except (ValueError, IndexError, TypeError, OSError, EOFError) as err:
            raise ValueError(
                f"{path}: cannot read it as a DVSGesture recording (an (N, 4) array of x, y, "
                f"polarity, t in ms, as tonic stores them): {err}"
            ) from err
        _check_events(events, str(path))
        return events

    def counts(self, i: int) -> np.ndarray:
        """Event counts of sample ``i``: uint32 ``[num_bins, size, size, 2]``, from the cache
        when it holds a sound entry for this recording, else binned and stored."""
        i = self._index(i)
        if self.cache_dir is None:
            return self._bin_sample(i)
        source = self.paths[i]
        entry = self.cache_dir / self.split / source.parent.name / f"{source.stem}.frames"
        stat = source.stat()
        meta = {"params": self._params, "source": [stat.st_size, stat.st_mtime_ns]}
        cached, status = frame_cache.read_entry(entry, meta)
        if cached is not None:
            self._count("hits")
            return cached.astype(np.uint32)
        counts = self._bin_sample(i)
        if status not in (frame_cache.MISSING, frame_cache.STALE):
            warnings.warn(
                f"frame cache entry {entry} was corrupt ({status}); rebuilt it from {source}",
                stacklevel=2,
            )
        self._count("built" if status in (frame_cache.MISSING, frame_cache.STALE) else "rebuilt")
        small = counts.astype(np.uint16) if counts.max(initial=0) < 2**16 else counts
        try:
            frame_cache.write_entry(entry, small, meta)
        except OSError as err:
            warnings.warn(f"cannot write the frame cache entry {entry}: {err}", stacklevel=2)
        return counts

    def _bin_sample(self, i: int) -> np.ndarray:
        downsample = _tonic().transforms.Downsample(spatial_factor=self.size / SENSOR_SIZE)
        return _bin(downsample(self.events(i)), self.num_bins, self.size)

    def _count(self, field: str) -> None:
        with self._stats_lock:
            setattr(self.cache_stats, field, getattr(self.cache_stats, field) + 1)


def dvs_gesture(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    num_bins: int = 16,
    size: int = 64,
    cache: bool | str | os.PathLike = True,
    *,
    download: bool = False,
) -> DVSGestureFrames:
    """DVS128-Gesture (11 classes) as the TAC paper's frames, read through ``tonic``.

    Needs the optional extra: ``pip install "mlx-snn[dvs]"``. Returns a
    :class:`DVSGestureFrames` whose items are ``(frames float32 [num_bins, size, size, 2],
    label)``; batch it with :class:`mlx_snn.data.FrameLoader` (``[T, B, H, W, C]``).

    **Where the data comes from.** ``data_dir`` (default :func:`default_dvs_dir`) is what tonic
    calls ``save_to``: ``tonic.datasets.DVSGesture(data_dir)`` keeps the recordings in
    ``data_dir/DVSGesture/ibmGestureTrain/`` (``ibmGestureTest/`` for ``"test"``), one folder per
    session (``user01_fluorescent``) of ``<label>.npy`` files. Looked for, in this order:

    1. the extracted folder ``ibmGestureTrain/`` in ``data_dir/DVSGesture/`` or ``data_dir/``
       (a copy you already have: put it in either place);
    2. tonic's archive ``ibmGestureTrain.tar.gz`` in either place: its md5 is checked against
       tonic's, then it is extracted next to itself (to a temporary folder, then renamed, so an
       interrupted extraction leaves nothing that looks complete);
    3. with ``download=True``, tonic's own download into ``data_dir/DVSGesture/`` (it has failed
       for users, hence 1 and 2).

    The folder is checked before tonic reads it (session folders named ``user<N>_<lighting>``,
    recordings named ``0.npy`` .. ``10.npy``; a split holding fewer recordings than tonic's copy,
    1077 train / 264 test, gives a warning), and each recording when it is binned (an ``(N, 4)``
    array, ``x``/``y`` in ``0..127``, polarity 0/1). IBM's original AEDAT release
    (``DvsGesture.tar.gz``) is not read: tonic reads its own preprocessed copy.

    **Preprocessing** (module docstring): tonic reads each recording (and converts its
    millisecond timestamps to microseconds) and merges pixels (``Downsample``); the equal-duration
    time bins, the counting (one ``np.bincount``) and ``log(1 + count)`` are done here, because
    tonic's ``ToFrame`` drops the end of each recording (see :func:`event_counts`).

    **Cache.** With ``cache=True`` (folder ``default_dvs_dir()/frames``) or ``cache=<folder>``
    the counts of each recording are stored on first use under
    ``<folder>/T<num_bins>_S<size>_<key>/<split>/<session>/<label>.frames``, ``key`` a hash of
    the preprocessing parameters, so later epochs read frames, not events. Each entry holds a
    sha256 of its data and the size and mtime of its source recording, and is written atomically
    (:mod:`mlx_snn.data.frame_cache`); a corrupt entry is rebuilt (with a warning), never used,
    and an entry whose source changed is rebuilt silently. tonic's ``DiskCachedDataset`` is not
    used: it keys entries by index only, with no checksum and no atomic write.
    ``cache=False`` bins on every access.

    Accuracy on the real dataset was not measured by this project (no copy on its machines); the
    paper reports 96.30% (baseline), 95.13% (TAC-TP g=2) and 91.3% (TAC g=2).

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: tonic's ``save_to`` folder (see above); ``None`` for :func:`default_dvs_dir`.
        num_bins: time bins ``T`` per recording (the paper: 16).
        size: output height and width; must divide 128 (the paper: 64).
        cache: ``True`` (default folder), a folder, or ``False``.
        download: let tonic download a split that is not found.

    Raises:
        ImportError: tonic is not installed (the message says ``pip install "mlx-snn[dvs]"``).
        FileNotFoundError: the split is not found (and not downloaded); the message lists the
            places looked in and how to provide the files.
        ValueError: bad arguments, an archive with the wrong md5, a folder not in tonic's
            layout, a recording that is not an event array.
    """
    check_choice("split", split, SPLIT_FOLDERS)
    _check_shape_args(num_bins, size)
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool; got {type(download).__name__}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path or None; got {type(data_dir).__name__}")
    if not isinstance(cache, (bool, str, os.PathLike)):
        raise TypeError(f"cache must be a bool or a folder; got {type(cache).__name__}")
    tonic = _tonic()
    data_dir = Path(data_dir).expanduser() if data_dir is not None else default_dvs_dir()
    base = _find_split(tonic, data_dir, split, download)
    _check_tree(base / SPLIT_FOLDERS[split])
    dataset = _tonic_split(tonic, base, split)
    cache_dir = None
    if cache is not False:
        root = default_dvs_dir() / "frames" if cache is True else Path(cache).expanduser()
        cache_dir = _cache_folder(root, num_bins, size)
    frames = DVSGestureFrames(dataset, split, num_bins, size, cache_dir)
    if len(frames) < FULL_SPLIT_SIZES[split]:
        warnings.warn(
            f"{frames.folder} holds {len(frames)} recordings; tonic's {split} split has "
            f"{FULL_SPLIT_SIZES[split]}. An interrupted copy or extraction? (Fine for a subset.)",
            stacklevel=2,
        )
    return frames


def _cache_folder(root: Path, num_bins: int, size: int) -> Path:
    params = {"format": CACHE_FORMAT, "sensor": SENSOR_SIZE, "num_bins": num_bins, "size": size}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return root / f"T{num_bins}_S{size}_{key}"


def _has_recordings(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*/*.npy"))


def _find_split(tonic, data_dir: Path, split: str, download: bool) -> Path:
    """The folder holding the split's extracted folder (extracting or downloading it first)."""
    name = SPLIT_FOLDERS[split]
    places = [data_dir / "DVSGesture", data_dir]
    for base in places:
        if _has_recordings(base / name):
            return base
    for base in places:
        if (base / f"{name}.tar.gz").is_file():
            _extract(tonic, base / f"{name}.tar.gz", split)
            return base
    if download:
        try:
            tonic.datasets.DVSGesture(save_to=str(data_dir), train=split == "train")
        except Exception as err:  # tonic raises whatever urllib or its md5 check raises
            raise FileNotFoundError(
                _missing(tonic, data_dir, split, f"tonic's download failed: {err!r}")
            ) from err
        if _has_recordings(places[0] / name):
            return places[0]
        raise FileNotFoundError(_missing(tonic, data_dir, split, "tonic's download left none"))
    raise FileNotFoundError(_missing(tonic, data_dir, split, "download=False"))


def _missing(tonic, data_dir: Path, split: str, reason: str) -> str:
    name = SPLIT_FOLDERS[split]
    cls = tonic.datasets.DVSGesture
    url = cls.train_url if split == "train" else cls.test_url
    looked = ", ".join(
        f"{base / name}/ and {base / name}.tar.gz" for base in (data_dir / "DVSGesture", data_dir)
    )
    original = ""
    if (data_dir / "DvsGesture.tar.gz").exists() or (data_dir / "DvsGesture").is_dir():
        original = (
            f" {data_dir} holds IBM's original AEDAT release (DvsGesture), which tonic does not "
            "read; tonic uses its own preprocessed copy."
        )
    return (
        f"DVS128-Gesture {split} recordings not found ({reason}). Looked for {looked}.{original} "
        f"Put tonic's archive {name}.tar.gz (from {url}) or the folder {name}/ extracted from it "
        f"in {data_dir / 'DVSGesture'}, pass data_dir= the folder that holds them, or pass "
        "download=True to let tonic fetch them."
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(tonic, archive: Path, split: str) -> None:
    """Check ``archive`` against tonic's md5 and extract its split folder next to it."""
    cls = tonic.datasets.DVSGesture
    want = cls.train_md5 if split == "train" else cls.test_md5
    got = _md5(archive)
    if got != want:
        raise ValueError(
            f"{archive}: md5 {got}, expected {want} (tonic's copy of the {split} split); the file "
            "is truncated, corrupt or another archive. Delete it and copy or download it again."
        )
    name = SPLIT_FOLDERS[split]
    target = archive.parent / name
    if target.exists() and any(target.iterdir()):
        raise ValueError(
            f"{target} exists but holds no recordings; remove it so that {archive.name} can be "
            "extracted there"
        )
    try:
        tmp = Path(tempfile.mkdtemp(dir=archive.parent, prefix=f".{name}.extract-"))
    except OSError as err:
        raise OSError(
            f"cannot extract {archive} next to itself ({err}); extract it into a folder you can "
            "write and pass data_dir= that folder"
        ) from err
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python without PEP 706 filters: the archive's md5 was checked above
                tar.extractall(tmp)
        found = [p for p in (tmp / name, tmp / "DVSGesture" / name) if p.is_dir()]
        if not found:
            raise ValueError(f"{archive}: the archive holds no folder {name}/")
        if target.exists():
            target.rmdir()
        os.replace(found[0], target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_tree(folder: Path) -> None:
    """Raise unless ``folder`` is in tonic's layout (tonic would fail on it less clearly)."""
    for session in sorted(folder.iterdir()):
        if not session.is_dir():
            continue
        if not _SESSION.fullmatch(session.name):
            raise ValueError(
                f"{session}: folders in {folder} must be sessions named like "
                "user01_fluorescent (user<number>_<lighting>: tonic reads the user from it)"
            )
        for item in session.iterdir():
            if item.is_dir():
                raise ValueError(f"{item}: a session folder holds .npy recordings, no folders")
            match = _RECORDING.fullmatch(item.name)
            if item.suffix == ".npy" and (match is None or int(match[1]) >= NUM_CLASSES):
                raise ValueError(
                    f"{item}: recordings must be named by their label, 0.npy .. "
                    f"{NUM_CLASSES - 1}.npy"
                )


def _tonic_split(tonic, base: Path, split: str):
    """tonic's DVSGesture over the recordings found in ``base`` (never downloads)."""

    class FoundDVSGesture(tonic.datasets.DVSGesture):
        # tonic places its folder at save_to/<class name> and downloads when its check fails
        # (it wants the archive beside >= 100 recordings); the recordings are already found in
        # `base`, so the location is pinned there and the check passes.
        location_on_system = property(lambda self: str(base), lambda self, value: None)

        def _check_exists(self):
            return True

    return FoundDVSGesture(save_to=str(base), train=split == "train")
