"""snn.data.dvs_gesture: a synthetic DVSGesture tree in tonic's layout, read through tonic.

The frames are compared for exact equality with an independent numpy binning of the same
``.npy`` files (read with ``np.load``, not through tonic): per bin ``k`` an interval test
``k*D <= (t - t_min)*T < (k+1)*D`` (the last bin closed), ``np.add.at`` counts, log1p in
float32. Tests that need tonic are skipped where it is not installed; the error raised without
tonic is tested everywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlx_snn as snn
from mlx_snn.data import frame_cache

needs_tonic = pytest.mark.skipif(
    importlib.util.find_spec("tonic") is None,
    reason='tonic is not installed (pip install "mlx-snn[dvs]")',
)


def reference_frames(path: Path, num_bins: int, size: int) -> np.ndarray:
    """Independent binning of one tonic ``.npy`` recording (x, y, p, t in ms)."""
    raw = np.load(path)
    k = 128 // size
    x, y = raw[:, 0].astype(np.int64) // k, raw[:, 1].astype(np.int64) // k
    p = raw[:, 2].astype(np.int64)
    t = (raw[:, 3] * 1000).astype(np.int64)  # tonic's ms -> us
    counts = np.zeros((num_bins, size, size, 2), np.int64)
    if len(t):
        rel, duration = t - t.min(), t.max() - t.min()
        for b in range(num_bins):
            if duration == 0:
                inside = np.full(len(t), b == 0)
            else:
                inside = b * duration <= rel * num_bins
                if b < num_bins - 1:
                    inside &= rel * num_bins < (b + 1) * duration
            np.add.at(counts, (b, y[inside], x[inside], p[inside]), 1)
    return np.log1p(counts.astype(np.float32))


def write_recording(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(rows, dtype=np.float64).reshape(-1, 4))


@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory) -> Path:
    """110 + 110 synthetic recordings, plus edge cases in session user90_edge (train)."""
    root = tmp_path_factory.mktemp("dvs")
    snn.data.synthetic_dvs_gesture(root, num_events=400, seed=1)
    edge = root / "DVSGesture" / "ibmGestureTrain" / "user90_edge"
    rng = np.random.default_rng(5)
    n = 3001
    # a duration (in us) that no bin count divides, events at the sensor's edges
    write_recording(
        edge / "0.npy",
        np.column_stack(
            [
                rng.integers(0, 128, n),
                rng.integers(0, 128, n),
                rng.integers(0, 2, n),
                np.sort(rng.integers(3, 1000, n)),
            ]
        ),
    )
    write_recording(edge / "1.npy", [[0, 0, 0, 7], [127, 127, 1, 7], [5, 6, 1, 7]])  # one instant
    write_recording(edge / "2.npy", [])  # no events
    write_recording(edge / "3.npy", [[1, 2, 1, 0]] * 70000 + [[3, 4, 0, 1]])  # 70000 > 2**16
    return root


def load(root, split="train", warn=False, **kwargs):
    with warnings.catch_warnings():
        if not warn:
            warnings.filterwarnings("ignore", message=".*recordings; tonic's")
        return snn.data.dvs_gesture(split, root, **kwargs)


def test_import_mlx_snn_needs_neither_tonic_nor_matplotlib():
    code = (
        "import sys; sys.modules['tonic'] = None; import mlx_snn; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; "
        "print(mlx_snn.data.dvs_gesture.__name__, mlx_snn.viz.spike_raster.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["dvs_gesture", "spike_raster"]


def test_without_tonic_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tonic", None)
    with pytest.raises(ImportError, match=r'pip install "mlx-snn\[dvs\]"'):
        snn.data.dvs_gesture("train", tmp_path)
    events = np.zeros(1, dtype=[("x", "i2"), ("y", "i2"), ("p", "?"), ("t", "i8")])
    with pytest.raises(ImportError, match=r"mlx-snn\[dvs\]"):
        snn.data.event_counts(events)


@needs_tonic
def test_the_synthetic_tree_passes_tonics_own_check(dvs_root, monkeypatch):
    import tonic

    def no_download(self):
        raise AssertionError("tonic tried to download")

    monkeypatch.setattr(tonic.datasets.DVSGesture, "download", no_download)
    assert len(tonic.datasets.DVSGesture(str(dvs_root), train=True)) == 114
    assert len(tonic.datasets.DVSGesture(str(dvs_root), train=False)) == 110


@needs_tonic
@pytest.mark.parametrize("num_bins, size", [(16, 64), (5, 32), (1, 128), (7, 1)])
def test_frames_equal_an_independent_numpy_binning(dvs_root, tmp_path, num_bins, size):
    ds = load(dvs_root, num_bins=num_bins, size=size, cache=tmp_path)
    edge = [i for i, p in enumerate(ds.paths) if p.parent.name == "user90_edge"]
    assert len(edge) == 4
    for i in [*edge, 0, 1, 57, len(ds) - 1]:
        frames, label = ds[i]
        assert frames.dtype == np.float32
        assert frames.shape == (num_bins, size, size, 2)
        np.testing.assert_array_equal(frames, reference_frames(ds.paths[i], num_bins, size))
        assert label == int(ds.paths[i].stem)
    counts = ds.counts(edge[3])
    assert counts.dtype == np.uint32 and counts.max() >= 70000  # kept exact above 2**16


@needs_tonic
def test_shapes_labels_and_order(dvs_root):
    ds = load(dvs_root, cache=False)
    test = load(dvs_root, "test", cache=False)
    assert (len(ds), len(test)) == (114, 110)
    assert ds.frame_shape == (16, 64, 64, 2)
    assert ds.labels.dtype == np.int32 and set(ds.labels.tolist()) == set(range(11))
    assert ds.classes[10] == "Other gestures" and len(ds.classes) == 11
    # ordered by (user, lighting, label) whatever the file system's order
    keys = list(zip(ds.users.tolist(), ds.lighting, ds.labels.tolist(), strict=True))
    assert keys == sorted(keys)
    assert test.users.min() == 24
    frames, label = test[-1]
    assert frames.shape == (16, 64, 64, 2) and 0 <= label <= 10
    assert np.all(frames >= 0) and frames.max() > 0


@needs_tonic
def test_a_partial_split_warns(dvs_root):
    with pytest.warns(UserWarning, match=r"holds 110 recordings; tonic's test split has 264"):
        load(dvs_root, "test", warn=True, cache=False)


@needs_tonic
def test_second_load_reads_the_cache_not_the_events(dvs_root, tmp_path, monkeypatch):
    first = load(dvs_root, "test", cache=tmp_path)
    expected = [first[i][0] for i in range(len(first))]
    assert first.cache_stats == snn.data.dvs.CacheStats(hits=0, built=110, rebuilt=0)
    second = load(dvs_root, "test", cache=tmp_path)
    assert second.cache_dir == first.cache_dir
    assert first.cache_dir.name.startswith("T16_S64_")

    def no_events(i):
        raise AssertionError("read the events although the cache holds the frames")

    monkeypatch.setattr(second, "events", no_events)
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(second[i][0], want)
    assert second.cache_stats == snn.data.dvs.CacheStats(hits=110, built=0, rebuilt=0)
    other = load(dvs_root, "test", num_bins=8, cache=tmp_path)
    assert other.cache_dir != first.cache_dir  # keyed by the preprocessing parameters


def _truncate(data: bytes) -> bytes:
    return data[: len(data) - 100]


def _flip_payload_byte(data: bytes) -> bytes:
    return data[:-10] + bytes([data[-10] ^ 1]) + data[-9:]


def _bad_header(data: bytes) -> bytes:
    return data[:12] + b"{not json" + data[21:]


@needs_tonic
@pytest.mark.parametrize(
    "corrupt",
    [_truncate, _flip_payload_byte, _bad_header, lambda d: b"", lambda d: d + b"\0"],
    ids=["truncated", "flipped-bit", "bad-header", "empty", "trailing-byte"],
)
def test_a_corrupt_cache_entry_is_rebuilt_never_used(dvs_root, tmp_path, corrupt):
    ds = load(dvs_root, cache=tmp_path)
    i = 5
    want = ds[i][0]
    entry = ds.cache_dir / "train" / ds.paths[i].parent.name / f"{ds.paths[i].stem}.frames"
    entry.write_bytes(corrupt(entry.read_bytes()))
    fresh = load(dvs_root, cache=tmp_path)
    with pytest.warns(UserWarning, match="was corrupt"):
        got = fresh[i][0]
    np.testing.assert_array_equal(got, want)
    assert fresh.cache_stats.rebuilt == 1
    np.testing.assert_array_equal(fresh[i][0], want)  # the rewritten entry is sound
    assert fresh.cache_stats.hits == 1


@needs_tonic
def test_an_entry_is_rebuilt_silently_when_its_recording_changes(dvs_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(dvs_root / "DVSGesture" / "ibmGestureTest", root / "ibmGestureTest")
    ds = load(root, "test", cache=tmp_path / "cache")
    before = ds[0][0]
    path = ds.paths[0]
    write_recording(path, [[10, 10, 1, 0], [20, 20, 0, 50]])
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = ds[0][0]
    np.testing.assert_array_equal(after, reference_frames(path, 16, 64))
    assert not np.array_equal(after, before)
    assert ds.cache_stats.built == 2 and ds.cache_stats.rebuilt == 0


def test_cache_writes_are_atomic(tmp_path, monkeypatch):
    entry = tmp_path / "a" / "0.frames"
    frame_cache.write_entry(entry, np.arange(6, dtype=np.uint16).reshape(2, 3), {"k": 1})

    def interrupted(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(frame_cache.os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        frame_cache.write_entry(entry, np.zeros((2, 3), np.uint16), {"k": 1})
    assert sorted(p.name for p in entry.parent.iterdir()) == ["0.frames"]  # no temp file left
    array, status = frame_cache.read_entry(entry, {"k": 1})
    assert status is None and array.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert frame_cache.read_entry(entry, {"k": 2}) == (None, frame_cache.STALE)
    assert frame_cache.read_entry(tmp_path / "none", {"k": 1}) == (None, frame_cache.MISSING)


@needs_tonic
def test_missing_data_says_where_it_looked_and_how_to_provide_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        snn.data.dvs_gesture("test", tmp_path)
    message = str(info.value)
    for part in (
        "download=False",
        f"{tmp_path / 'DVSGesture' / 'ibmGestureTest'}/",
        f"{tmp_path / 'ibmGestureTest'}.tar.gz",
        "figshare",
        "download=True",
    ):
        assert part in message, part
    (tmp_path / "DvsGesture.tar.gz").touch()
    with pytest.raises(FileNotFoundError, match="IBM's original AEDAT release"):
        snn.data.dvs_gesture("test", tmp_path)


@needs_tonic
def test_a_failed_download_is_reported_with_the_same_help(tmp_path, monkeypatch):
    import tonic

    def offline(self):
        raise OSError("no route to host")

    monkeypatch.setattr(tonic.datasets.DVSGesture, "download", offline)
    with pytest.raises(FileNotFoundError, match=r"tonic's download failed.*no route to host"):
        snn.data.dvs_gesture("train", tmp_path, download=True)


@needs_tonic
def test_an_extracted_folder_copied_into_data_dir_is_used_as_is(dvs_root, tmp_path, monkeypatch):
    import tonic

    def no_download(self):
        raise AssertionError("tonic tried to download")

    monkeypatch.setattr(tonic.datasets.DVSGesture, "download", no_download)
    session = dvs_root / "DVSGesture" / "ibmGestureTest" / "user24_fluorescent"
    shutil.copytree(session, tmp_path / "ibmGestureTest" / session.name)  # 11 recordings
    ds = load(tmp_path, "test", cache=False)
    assert len(ds) == 11 and ds.folder == tmp_path / "ibmGestureTest"
    np.testing.assert_array_equal(ds[3][0], reference_frames(session / "3.npy", 16, 64))


@needs_tonic
def test_an_archive_is_checked_then_extracted(dvs_root, tmp_path, monkeypatch):
    import tonic

    archive = tmp_path / "DVSGesture" / "ibmGestureTest.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(dvs_root / "DVSGesture" / "ibmGestureTest", arcname="ibmGestureTest")
    with pytest.raises(ValueError, match=r"md5 .* expected .*Delete it"):
        load(tmp_path, "test", cache=False)
    assert sorted(p.name for p in archive.parent.iterdir()) == ["ibmGestureTest.tar.gz"]
    md5 = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()
    monkeypatch.setattr(tonic.datasets.DVSGesture, "test_md5", md5)
    ds = load(tmp_path, "test", cache=False)
    assert len(ds) == 110
    names = sorted(p.name for p in archive.parent.iterdir())
    assert names == ["ibmGestureTest", "ibmGestureTest.tar.gz"]  # no temporary folder left
    i = 17
    np.testing.assert_array_equal(ds[i][0], reference_frames(ds.paths[i], 16, 64))


@needs_tonic
@pytest.mark.parametrize(
    "bad, match",
    [
        ("notasession/0.npy", "sessions named like user01_fluorescent"),
        ("user01_led/11.npy", r"named by their label, 0\.npy \.\. 10\.npy"),
        ("user01_led/sub/0.npy", "no folders"),
    ],
)
def test_a_folder_not_in_tonics_layout_is_refused(tmp_path, bad, match):
    write_recording(tmp_path / "ibmGestureTrain" / "user01_led" / "0.npy", [[1, 1, 1, 1]])
    write_recording(tmp_path / "ibmGestureTrain" / bad, [[1, 1, 1, 1]])
    with pytest.raises(ValueError, match=match):
        load(tmp_path)


@needs_tonic
@pytest.mark.parametrize(
    "rows, match",
    [
        (np.zeros(8), "cannot read it as a DVSGesture recording"),
        ([[128, 1, 1, 1]], r"x must lie in 0\.\.127"),
        ([[1, -1, 1, 1]], r"y must lie in 0\.\.127"),
    ],
)
def test_a_bad_recording_is_named_when_read(tmp_path, rows, match):
    path = tmp_path / "ibmGestureTrain" / "user01_led" / "4.npy"
    path.parent.mkdir(parents=True)
    np.save(path, np.asarray(rows, dtype=np.float64))
    ds = load(tmp_path, cache=False)
    with pytest.raises(ValueError, match=match) as info:
        ds[0]
    assert str(path) in str(info.value)


@needs_tonic
def test_event_counts_of_a_structured_array(dvs_root):
    path = dvs_root / "DVSGesture" / "ibmGestureTrain" / "user90_edge" / "0.npy"
    raw = np.load(path)
    events = np.zeros(len(raw), dtype=[("x", "i2"), ("y", "i2"), ("p", "?"), ("t", "i8")])
    events["x"], events["y"], events["p"] = raw[:, 0], raw[:, 1], raw[:, 2]
    events["t"] = (raw[:, 3] * 1000).astype(np.int64)
    frames = snn.data.event_frames(events, 16, 64)
    np.testing.assert_array_equal(frames, reference_frames(path, 16, 64))
    assert snn.data.event_counts(events, 16, 64).sum() == len(raw)  # no event dropped
    with pytest.raises(TypeError, match="structured array"):
        snn.data.event_counts(raw)
    with pytest.raises(ValueError, match="lacks the fields"):
        snn.data.event_counts(np.zeros(2, dtype=[("x", "i2")]))


@needs_tonic
def test_bad_arguments_are_named(dvs_root):
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'; got 'val'"):
        snn.data.dvs_gesture("val", dvs_root)
    with pytest.raises(ValueError, match=r"size must divide the sensor's 128 pixels.*got 48"):
        snn.data.dvs_gesture("train", dvs_root, size=48)
    with pytest.raises(ValueError, match="num_bins must be >= 1; got 0"):
        snn.data.dvs_gesture("train", dvs_root, num_bins=0)
    with pytest.raises(TypeError, match="cache must be a bool or a folder; got int"):
        snn.data.dvs_gesture("train", dvs_root, cache=3)
    with pytest.raises(TypeError, match="download must be a bool"):
        snn.data.dvs_gesture("train", dvs_root, download="yes")
    ds = load(dvs_root, cache=False)
    with pytest.raises(IndexError, match="index 114 is out of range for 114 samples"):
        ds[114]
    with pytest.raises(TypeError, match="index must be an int"):
        ds[1.0]
