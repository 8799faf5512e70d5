"""snn.data.FrameLoader: seeded orders, time-major batches, the prefetch thread."""

from __future__ import annotations

import threading

import mlx.core as mx
import numpy as np
import pytest

import mlx_snn as snn


class Frames:
    """Sample i: frames [3, 2, 2, 1] filled with i, label i % 11."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at, self.reads = n, fail_at, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads.append(i)
        if i == self.fail_at:
            raise ValueError(f"sample {i} is broken")
        return np.full((3, 2, 2, 1), i, np.float32), i % 11


def collect(loader, epoch=0):
    return [(np.array(x), np.array(y)) for x, y in loader.epoch(epoch)]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_batches_are_time_major_and_cover_every_sample_once(prefetch):
    loader = snn.data.FrameLoader(Frames(10), 4, seed=3, prefetch=prefetch)
    batches = list(loader.epoch(1))
    assert len(batches) == len(loader) == 3
    x, y = batches[0]
    assert isinstance(x, mx.array) and x.dtype == mx.float32 and x.shape == (3, 4, 2, 2, 1)
    assert y.dtype == mx.int32 and y.shape == (4,)
    assert batches[-1][0].shape == (3, 2, 2, 2, 1)
    seen = np.concatenate([np.array(x)[0, :, 0, 0, 0] for x, _ in batches]).astype(int)
    assert sorted(seen.tolist()) == list(range(10))
    assert seen.tolist() == loader.order(1).tolist()
    for x, y in batches:
        ids = np.array(x)[0, :, 0, 0, 0].astype(int)
        assert np.array(y).tolist() == (ids % 11).tolist()
        assert np.all(np.array(x) == ids[None, :, None, None, None])


def test_the_order_depends_only_on_seed_and_epoch():
    a = snn.data.FrameLoader(Frames(50), 8, seed=7)
    b = snn.data.FrameLoader(Frames(50), 8, seed=7)
    list(a.epoch(0))  # iterating earlier epochs changes nothing
    assert a.order(3).tolist() == b.order(3).tolist()
    assert a.order(3).tolist() != a.order(4).tolist()
    assert a.order(3).tolist() != snn.data.FrameLoader(Frames(50), 8, seed=8).order(3).tolist()
    fixed = snn.data.FrameLoader(Frames(5), 2, shuffle=False)
    assert fixed.order(9).tolist() == [0, 1, 2, 3, 4]


def test_prefetching_gives_the_same_batches():
    eager = collect(snn.data.FrameLoader(Frames(13), 4, seed=1, prefetch=0), 2)
    ahead = collect(snn.data.FrameLoader(Frames(13), 4, seed=1, prefetch=3), 2)
    for (xa, ya), (xb, yb) in zip(eager, ahead, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_indices_and_drop_last():
    loader = snn.data.FrameLoader(Frames(20), 3, indices=range(5, 12), drop_last=True)
    assert len(loader) == 2
    ids = [np.array(x)[0, :, 0, 0, 0].astype(int) for x, _ in loader.epoch(0)]
    assert [len(i) for i in ids] == [3, 3]
    assert set(np.concatenate(ids).tolist()) <= set(range(5, 12))


def test_an_error_in_the_thread_is_raised_by_the_iterator():
    loader = snn.data.FrameLoader(Frames(8, fail_at=5), 2, shuffle=False)
    with pytest.raises(ValueError, match="sample 5 is broken"):
        collect(loader)


def test_leaving_the_loop_early_stops_the_thread():
    before = threading.active_count()
    data = Frames(400)
    batches = snn.data.FrameLoader(data, 2, prefetch=2).epoch(0)
    next(batches)
    batches.close()
    assert threading.active_count() == before
    assert len(data.reads) <= 2 * 4  # read ahead at most a few batches, not the epoch


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="batch_size must be >= 1; got 0"):
        snn.data.FrameLoader(Frames(3), 0)
    with pytest.raises(TypeError, match="dataset must support len"):
        snn.data.FrameLoader(object())
    with pytest.raises(ValueError, match=r"indices must be .* in 0\.\.2; got \[0, 3\]"):
        snn.data.FrameLoader(Frames(3), indices=[0, 3])
    with pytest.raises(TypeError, match="shuffle must be a bool"):
        snn.data.FrameLoader(Frames(3), shuffle=1)
    with pytest.raises(ValueError, match="epoch must be >= 0; got -1"):
        snn.data.FrameLoader(Frames(3)).epoch(-1)
