"""One rank of the runs in tests/test_distributed.py (started by ``mlx-snn launch``).

``python distributed_worker.py MODE OUT [ARGS]``; every rank writes what it saw to
``OUT/rank<r>.npz`` (or, for ``example``, runs an example script, whose rank 0 writes ``OUT``):

- ``step``: one SGD step of a small spiking net on this rank's shard of a fixed batch, the
  BatchNorm running statistics after one step of a net with BatchNorm, ``all_sum``, ``shard``
  and ``check_same`` as the ranks see them;
- ``example NAME ARGS``: examples/NAME.py straight to the end in ``OUT/a``, then stopped
  after one epoch and resumed in ``OUT/b`` (ARGS: the example's options), then with one image;
- ``fail``: rank 1 exits with status 3 while rank 0 waits in an all-reduce.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from example_scripts import load_example
from mlx.utils import tree_flatten

import mlx_snn as snn
from mlx_snn import distributed as dist

T, GLOBAL_BATCH, FEATURES, CLASSES = 4, 8, 6, 3


def spiking_net() -> nn.Module:
    mx.random.seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 5), snn.LIF(beta=0.8), nn.Linear(5, CLASSES))


def batchnorm_net() -> nn.Module:
    mx.random.seed(1)
    return nn.Sequential(nn.Linear(FEATURES, 5), nn.BatchNorm(5), nn.Linear(5, CLASSES))


def global_batch() -> tuple[mx.array, mx.array]:
    """Inputs ``[T, 8, 6]`` and labels ``[8]``, the same on every rank."""
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1.5, (T, GLOBAL_BATCH, FEATURES)).astype(np.float32)
    return mx.array(x), mx.array(rng.integers(0, CLASSES, GLOBAL_BATCH).astype(np.int32))


def loss_fn(model: nn.Module, x: mx.array, y: mx.array) -> mx.array:
    """Cross-entropy of the time-averaged outputs, a mean over the batch."""
    return nn.losses.cross_entropy(model(x).mean(axis=0), y, reduction="mean")


def sgd_step(model: nn.Module, x: mx.array, y: mx.array, lr: float = 0.5) -> None:
    """One SGD step on ``(x, y)``, gradients and BatchNorm statistics averaged over the ranks
    (the examples' train step)."""
    grads = nn.value_and_grad(model, loss_fn)(model, x, y)[1]
    grads, stats = dist.all_mean((grads, dist.running_stats(model)))
    model.update(stats)
    optim.SGD(learning_rate=lr).update(model, grads)
    mx.eval(model.parameters())


def step(out: Path) -> None:
    x, y = global_batch()
    mine = mx.array(dist.shard(np.arange(GLOBAL_BATCH)))
    saved = {"shard": np.array(mine), "shard11": np.array(dist.shard(range(11)))}
    for name, make in (("spiking", spiking_net), ("bn", batchnorm_net)):
        model = make()
        model.train()
        sgd_step(model, x[:, mine], y[mine])
        saved.update({f"{name}.{k}": np.array(v) for k, v in tree_flatten(model.parameters())})
    saved["sums"] = dist.all_sum([dist.rank() + 1, 0.25])
    saved["int_sum"] = dist.all_sum(np.array([dist.rank(), 5]))
    dist.check_same([1.0, 2.0], "a constant")
    try:
        dist.check_same([float(dist.rank())], "the rank")
        saved["check_same_error"] = np.array("")
    except RuntimeError as err:
        saved["check_same_error"] = np.array(str(err))
    dist.barrier()
    np.savez(out / f"rank{dist.rank()}.npz", **saved)


def run_example(name: str, out: Path, args: list[str]) -> None:
    example = load_example(name)
    for folder, extra in (("a", []), ("b", ["--stop-after", "1"]), ("b", ["--resume"])):
        assert example.main([*args, "--out", str(out / folder), "--quiet", *extra]) == 0
    try:  # fewer images than ranks
        example.main([*args, "--out", str(out / "c"), "--quiet", "--limit", "1"])
    except SystemExit as stop:
        (out / f"too_few{dist.rank()}.txt").write_text(str(stop))


def fail() -> None:
    dist.barrier()  # both ranks are connected
    if dist.rank() == 1:
        sys.exit(3)
    mx.eval(mx.distributed.all_sum(mx.ones(4)))  # rank 1 never joins this one


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    dist.init()
    if mode == "step":
        step(folder)
    elif mode == "example":
        run_example(sys.argv[3], folder, sys.argv[4:])
    elif mode == "fail":
        fail()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
