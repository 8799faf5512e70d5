"""Data-parallel training over several processes, Macs or GPUs, on MLX's distributed engine.

Nothing here communicates by itself: the collectives are ``mx.distributed``'s (the ``ring``
backend over TCP between processes or Macs, ``mpi``, ``nccl`` on CUDA, ``jaccl`` over
Thunderbolt RDMA) and the processes are started by MLX's launcher, ``mlx.launch``::

    mlx.launch -n 2 python examples/mnist.py ...        # two processes on this machine
    mlx.launch --hostfile hosts.json --python "$(which python)" examples/mnist.py ...
    mlx-snn launch -n 2 python examples/mnist.py ...    # mlx.launch, with an exit status

Every rank runs the same script. Data parallelism, step by step: rank ``r`` of ``N`` takes its
:func:`shard` of each global batch, computes gradients on it, and :func:`all_mean` replaces
them by their mean over the ranks before the optimizer step, so all ranks apply the same
update and keep the same weights. With equal shards and a loss that is a mean over samples
that update is the one a single process would make on the concatenated batch (up to the
order of the float additions). BatchNorm normalises with each rank's own batch (as PyTorch's
DDP without SyncBatchNorm); its running statistics (:func:`running_stats`) are averaged with
the gradients so that the ranks stay identical. Metrics are summed with :func:`all_sum`.
Only rank 0 (:func:`is_main`) writes checkpoints, logs and progress bars.

Run without a launcher, every function here sees a group of one process and changes nothing
(:func:`shard` returns every item, :func:`all_mean` and :func:`all_sum` their input): the
same script trains on one process exactly as before.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path, tree_unflatten

from ._checks import check_choice

__all__ = [
    "all_mean",
    "all_sum",
    "barrier",
    "check_same",
    "init",
    "is_main",
    "launch",
    "rank",
    "running_stats",
    "scaled_lr",
    "shard",
    "size",
]

Items = TypeVar("Items", bound=Sequence)


def init(backend: str = "any") -> mx.distributed.Group:
    """The group of all processes of this run: ``mx.distributed.init``'s global group.

    Started by ``mlx.launch`` (``MLX_RANK`` is set), the group is initialised strictly: a
    backend that cannot connect raises instead of leaving each rank to train alone (and
    overwrite the others' checkpoints). Started without a launcher, or by ``mlx.launch -n 1``,
    it is a group of one process. MLX keeps the group; later calls return it at no cost.

    Args:
        backend (str): ``"any"`` (MLX's choice), ``"ring"``, ``"mpi"``, ``"nccl"`` or
            ``"jaccl"``. Default ``"any"``.

    Raises:
        RuntimeError: launched, but the backend failed to connect the ranks.
    """
    if "MLX_RANK" not in os.environ:
        return mx.distributed.init(strict=False, backend=backend)
    hostfile = os.environ.get("MLX_HOSTFILE", "")
    if os.path.isfile(hostfile) and not Path(hostfile).read_text().strip():
        # mlx.launch -n 1 hands the ring backend an empty hostfile, which MLX cannot parse
        del os.environ["MLX_HOSTFILE"]
        try:
            return mx.distributed.init(strict=False, backend=backend)
        finally:
            os.environ["MLX_HOSTFILE"] = hostfile
    return mx.distributed.init(strict=True, backend=backend)


def rank(group: mx.distributed.Group | None = None) -> int:
    """This process's rank, ``0 .. size() - 1`` (0 without a launcher)."""
    return (group or init()).rank()


def size(group: mx.distributed.Group | None = None) -> int:
    """Number of processes ``N`` in the run (1 without a launcher)."""
    return (group or init()).size()


def is_main(group: mx.distributed.Group | None = None) -> bool:
    """True on rank 0: the one process that writes checkpoints, logs and progress bars."""
    return rank(group) == 0


def shard(
    items: Items, *, drop_remainder: bool = False, group: mx.distributed.Group | None = None
) -> Items:
    """This rank's share of ``items``: every ``N``-th item from the ``rank``-th, ``items[r::N]``.

    The shards of the ``N`` ranks are disjoint and together hold every item. When ``len(items)``
    is not a multiple of ``N`` the remainder goes to the first ranks: ranks
    ``0 .. len % N - 1`` hold one item more than the others. With ``drop_remainder=True`` the
    last ``len % N`` items are left out instead, so that every shard has ``len // N`` items
    (training: every rank then runs the same number of equal batches; with a new shuffle each
    epoch, different items are left out each epoch).

    Striding (rather than cutting ``items`` into ``N`` blocks) keeps each global batch
    together: cut into batches of ``B``, batch ``i`` of rank ``r``'s shard is rank ``r``'s
    share of batch ``i`` of size ``B * N`` of ``items``.

    Args:
        items: a list, tuple, ``range`` or 1-D numpy array (e.g. an epoch's sample order).
        drop_remainder (bool): leave out the last ``len(items) % N`` items. Default ``False``.
        group: the group to shard over; default :func:`init`'s.

    Returns:
        ``items[r::N]`` (or ``items[: len - len % N][r::N]``), of the type of ``items``.

    Raises:
        TypeError: ``items`` has no length or cannot be sliced.
    """
    if not (hasattr(items, "__len__") and hasattr(items, "__getitem__")):
        raise TypeError(
            f"items must be a sliceable sequence (list, range, numpy array); "
            f"got {type(items).__name__}"
        )
    if not isinstance(drop_remainder, bool):
        raise TypeError(f"drop_remainder must be a bool; got {type(drop_remainder).__name__}")
    n, r = size(group), rank(group)
    if drop_remainder:
        items = items[: len(items) - len(items) % n]
    return items[r::n]


def all_mean(tree: Any, group: mx.distributed.Group | None = None) -> Any:
    """The mean over the ranks of every array in ``tree`` (gradients, running statistics).

    Small arrays are concatenated into few all-reduces by MLX's
    ``mlx.nn.utils.average_gradients``; with one process ``tree`` is returned as it is.
    Lazy, like every MLX operation: nothing is sent before the result is evaluated. Every
    rank must call it with a tree of the same structure, shapes and dtypes.
    """
    g = group or init()
    flat = tree_flatten(tree)
    if g.size() == 1 or not flat:
        return tree
    # a list in and out: average_gradients re-nests what it is given by the keys' dots
    means = nn.utils.average_gradients([v for _, v in flat], g)
    means = dict(zip((k for k, _ in flat), means, strict=True))
    return tree_map_with_path(lambda path, _: means[path], tree)


def running_stats(model: nn.Module) -> dict:
    """The BatchNorm running means and variances of ``model``, as a tree for ``model.update``.

    Average them across ranks together with the gradients (one all-reduce)::

        grads, stats = distributed.all_mean((grads, distributed.running_stats(model)))
        model.update(stats)

    With every rank's running statistics updated from an equal-size batch, the mean of the
    running means is the running mean of the global batches' means; the running variance
    becomes the mean of the ranks' variances (the spread between the ranks' batch means is
    not in it, as in frameworks that average BatchNorm buffers).
    """
    stats = [
        (k, v)
        for k, v in tree_flatten(model.parameters())
        if k.rsplit(".", 1)[-1] in ("running_mean", "running_var")
    ]
    return tree_unflatten(stats) if stats else {}


def all_sum(
    values: float | Sequence[float] | np.ndarray, group: mx.distributed.Group | None = None
) -> np.ndarray:
    """The sum over the ranks of ``values`` (metrics: loss sums, correct counts, a confusion
    matrix), as a numpy array on every rank.

    Over several ranks integers (and booleans) are summed as int32, exactly, and other
    numbers as float32; one process gets ``np.asarray(values)`` back as it is. A
    synchronisation point: every rank must call it, with values of the same shape.
    """
    x = np.asarray(values)
    g = group or init()
    if g.size() == 1:
        return x
    exact = np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_
    x = x.astype(np.int32 if exact else np.float32)
    return np.array(mx.distributed.all_sum(mx.array(x), group=g))


def barrier(group: mx.distributed.Group | None = None) -> None:
    """Return when every rank has reached this call (e.g. rank 0 has written a checkpoint)."""
    g = group or init()
    if g.size() > 1:
        mx.eval(mx.distributed.all_sum(mx.array(1.0), group=g))


def check_same(values: Sequence[float], what: str, group: mx.distributed.Group | None = None):
    """Raise ``RuntimeError`` unless every rank passes the same ``values`` (float32).

    For example the position and a checksum of the weights after loading a checkpoint: a
    host that read an older copy would otherwise train a different model in silence.
    """
    g = group or init()
    if g.size() == 1:
        return
    x = mx.array(np.asarray(values, dtype=np.float32))
    low, high = mx.distributed.all_min(x, group=g), mx.distributed.all_max(x, group=g)
    if not mx.array_equal(low, high).item():
        raise RuntimeError(
            f"{what} differs between the ranks (rank {g.rank()}: {np.array(x).tolist()}; "
            f"smallest {np.array(low).tolist()}, largest {np.array(high).tolist()})"
        )


def launch(argv: Sequence[str]) -> int:
    """Run ``mlx.launch`` with ``argv`` and return a non-zero status when a rank failed.

    ``mlx.launch`` (MLX 0.32) stops the other ranks when one fails, but then exits with
    status 0, so scripts and CI cannot see the failure. This runs MLX's own launcher
    unchanged, records the exit status of each rank it started, and returns the status of the
    rank that failed first (1 when the only failures are ranks killed by a signal), else 0;
    130 after Ctrl-C.
    The backends whose ranks ``mlx.launch`` starts itself are covered (ring, nccl, jaccl);
    with ``--backend mpi`` it hands over to ``mpirun``, whose status it drops (call
    ``mpirun`` directly there).
    Needs MLX >= 0.30.1 (``mlx._distributed_utils``, which this patches for the call).

    ``mlx-snn launch ARGS`` on the command line.
    """
    try:
        from mlx._distributed_utils import launch as mlx_launch
    except ImportError as err:
        raise ImportError(
            "mlx-snn launch needs MLX >= 0.30.1 (mlx._distributed_utils); "
            "upgrade MLX or call mlx.launch directly"
        ) from err
    statuses: dict[int, tuple[int, bool]] = {}
    base = mlx_launch.RemoteProcess

    class Recorded(base):
        """MLX's process wrapper, noting the exit status that MLX's launcher reads once."""

        def __init__(self, rank, *args, **kwargs):
            super().__init__(rank, *args, **kwargs)
            self.rank = rank

        @property
        def exit_status(self):
            code, killed = super().exit_status
            if code is not None:
                statuses[self.rank] = (code, bool(killed))
            return code, killed

    saved_argv = sys.argv
    sys.argv = ["mlx.launch", *argv]
    mlx_launch.RemoteProcess = Recorded
    try:
        mlx_launch.main()
    except KeyboardInterrupt:  # Ctrl-C reached the ranks too: they save, stop and exit 130
        return 130
    finally:
        mlx_launch.RemoteProcess = base
        sys.argv = saved_argv
    for code, _ in statuses.values():  # in the order the ranks ended
        if code > 0:
            return code
    return 1 if any(code != 0 or killed for code, killed in statuses.values()) else 0


def scaled_lr(lr: float, rule: str = "sqrt", group: mx.distributed.Group | None = None) -> float:
    """The learning rate for a global batch ``N`` times the per-rank batch.

    ``"sqrt"``: ``lr * sqrt(N)``, the square-root rule for Adam and other adaptive optimizers
    (Malladi et al., 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms";
    the examples' rule). ``"linear"``: ``lr * N``, the rule for SGD (Goyal et al., 2017,
    "Accurate, Large Minibatch SGD"). ``"none"``: ``lr``. On one process every rule gives
    ``lr``, so a script that scales its learning rate this way runs unchanged there.

    Raises:
        ValueError: an unknown ``rule``.
    """
    factor = {"sqrt": math.sqrt, "linear": float, "none": lambda n: 1.0}
    return lr * factor[check_choice("rule", rule, factor)](size(group))
