"""Shuffled, seeded, time-major batches of a frame dataset, read ahead by a background thread."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator, Sequence

import mlx.core as mx
import numpy as np

from .._checks import check_int

__all__ = ["FrameLoader"]

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class FrameLoader:
    """Batches ``(frames [T, B, ...], labels [B])`` of ``mx.array`` from a frame dataset.

    ``dataset`` is any object with ``len(dataset)`` and ``dataset[i] -> (frames, label)``,
    ``frames`` a numpy array ``[T, ...]`` (e.g. ``[T, H, W, C]``) of the same shape for every
    sample, such as :func:`mlx_snn.data.dvs_gesture`'s. Samples are stacked on axis 1, giving
    time-major float32 batches ``[T, B, H, W, C]`` and int32 labels ``[B]``.

    ``loader.epoch(e)`` visits the samples in the order ``loader.order(e)``: a permutation drawn
    from ``numpy.random.default_rng([seed, e])`` when ``shuffle``, else their order in
    ``indices``. It depends on ``(seed, e)`` only, so an interrupted run resumed at epoch ``e``
    sees the same batches as one that never stopped. A thread reads and stacks the next
    ``prefetch`` batches while the caller trains on the current one (numpy and file reads
    release the GIL); the numpy batch becomes an ``mx.array`` in the caller's thread, so no
    MLX call runs in the background. An error in the thread is raised by the iterator;
    leaving the loop early (``break``, an exception) stops the thread.

    Args:
        dataset: the samples (see above).
        batch_size (int): samples per batch ``B``. Default 16.
        shuffle (bool): new order every epoch (see above). Default ``True``.
        seed (int): seed of the orders. Default 0.
        drop_last (bool): skip a last batch smaller than ``batch_size``. Default ``False``.
        prefetch (int): batches read ahead; 0 reads in the caller's thread. Default 2.
        indices (sequence of int or None): the samples to use (e.g. a subset); default all.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 16,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        prefetch: int = 2,
        indices: Sequence[int] | None = None,
    ):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                "dataset must support len() and [i] -> (frames, label); "
                f"got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.prefetch = check_int("prefetch", prefetch, minimum=0)
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool; got {type(flag).__name__}")
        self.shuffle, self.drop_last = shuffle, drop_last
        n = len(dataset)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        bad = self.indices.ndim != 1 or (
            self.indices.size > 0 and (self.indices.min() < 0 or self.indices.max() >= n)
        )
        if bad:
            raise ValueError(
                f"indices must be a 1-D sequence of sample numbers in 0..{n - 1}; got "
                f"{self.indices.tolist() if self.indices.size <= 8 else self.indices.shape}"
            )

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int = 0) -> np.ndarray:
        """The sample numbers visited in ``epoch``, in order."""
        check_int("epoch", epoch, minimum=0)
        if not self.shuffle:
            return self.indices.copy()
        return np.random.default_rng([self.seed, epoch]).permutation(self.indices)

    def _collate(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        items = [self.dataset[int(i)] for i in batch]
        frames = np.stack([np.asarray(f, dtype=np.float32) for f, _ in items], axis=1)
        return frames, np.array([label for _, label in items], dtype=np.int32)

    def epoch(self, epoch: int = 0) -> Iterator[tuple[mx.array, mx.array]]:
        """Iterate over the batches of ``epoch``: ``(frames [T, B, ...], labels [B])``."""
        order = self.order(epoch)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = batches[: len(self)]
        if self.prefetch == 0:
            return (self._to_mx(self._collate(b)) for b in batches)
        return self._prefetched(batches)

    @staticmethod
    def _to_mx(item: tuple[np.ndarray, np.ndarray]) -> tuple[mx.array, mx.array]:
        return mx.array(item[0]), mx.array(item[1])

    def _prefetched(self, batches: list[np.ndarray]) -> Iterator[tuple[mx.array, mx.array]]:
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for batch in batches:
                    if not put(self._collate(batch)):
                        return
                put(_DONE)
            except BaseException as err:  # handed to the consumer, which raises it
                put(_Failure(err))

        worker = threading.Thread(target=produce, name="mlx_snn-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield self._to_mx(item)
        finally:
            stop.set()
            worker.join()
