"""mlx_snn.distributed: data parallel on MLX's distributed engine, two ranks on loopback.

The launched tests start ``mlx-snn launch --backend ring -n 2`` (MLX's launcher and ring
backend over TCP on 127.0.0.1, ports found free at test time) with tests/distributed_worker.py
and read back what each rank wrote; every launch has a bounded timeout, so a hang fails the
test instead of stopping the suite. The rest runs in this process, where the group is this
process alone (no launcher).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from conftest import assert_close
from mlx.utils import tree_flatten

from mlx_snn import distributed as dist

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
LAUNCH_TIMEOUT = 240  # seconds; a launch that hangs fails here


class FakeGroup:
    """Rank ``r`` of ``n``, for :func:`dist.shard` without processes."""

    def __init__(self, r: int, n: int):
        self.r, self.n = r, n

    def rank(self) -> int:
        return self.r

    def size(self) -> int:
        return self.n


def free_port_pair() -> int:
    """A loopback port ``p`` with ``p + 1`` free too (the ring backend's two ranks)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        a, b = socket.socket(), socket.socket()
        try:
            a.bind(("127.0.0.1", port))
            b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
        finally:
            a.close()
            b.close()
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


def launch(*args: str) -> subprocess.CompletedProcess:
    """``mlx-snn launch --backend ring -n 2`` of the worker with ``args``."""
    cmd = [sys.executable, "-m", "mlx_snn.cli", "launch", "--backend", "ring", "-n", "2"]
    cmd += ["-p", str(free_port_pair()), sys.executable, str(WORKER), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_")}
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
    )


@pytest.fixture(scope="module")
def step_ranks(tmp_path_factory) -> list[dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("step")
    done = launch("step", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return [dict(np.load(out / f"rank{r}.npz")) for r in (0, 1)]


def load_worker():
    sys.path.insert(0, str(WORKER.parent))
    try:
        import distributed_worker
    finally:
        sys.path.remove(str(WORKER.parent))
    return distributed_worker


def params(model: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": np.array(v) for k, v in tree_flatten(model.parameters())}


def test_one_step_on_two_ranks_equals_one_process_on_the_concatenated_batch(step_ranks):
    worker = load_worker()
    rank0, rank1 = step_ranks
    assert np.array_equal(np.sort(np.concatenate([rank0["shard"], rank1["shard"]])), range(8))
    model = worker.spiking_net()
    before = params(model, "spiking")
    worker.sgd_step(model, *worker.global_batch())  # one process: the whole batch of 8
    expected = params(model, "spiking")
    assert max(np.abs(expected[k] - before[k]).max() for k in expected) > 1e-2  # it moved
    for key, value in expected.items():
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)  # bit for bit
        # fp32: the ranks add two half-batch means, one process sums the batch in one go
        assert_close(rank0[key], value, rtol=1e-5, name=key)


def test_batchnorm_statistics_are_averaged_so_the_ranks_stay_identical(step_ranks):
    worker = load_worker()
    rank0, rank1 = step_ranks
    x, _ = worker.global_batch()
    alone = []
    for shard in (rank0["shard"], rank1["shard"]):  # each rank's update, without averaging
        model = worker.batchnorm_net()
        model.train()
        model(x[:, mx.array(shard)])
        alone.append(params(model, "bn"))
    for stat in ("bn.layers.1.running_mean", "bn.layers.1.running_var"):
        np.testing.assert_array_equal(rank0[stat], rank1[stat], err_msg=stat)
        assert_close(rank0[stat], (alone[0][stat] + alone[1][stat]) / 2, rtol=1e-6, name=stat)
    for key in rank0:
        if key.startswith("bn."):
            np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)


def test_metrics_shards_and_checks_across_two_ranks(step_ranks):
    for r, ranks in enumerate(step_ranks):
        np.testing.assert_array_equal(ranks["sums"], [3.0, 0.5])
        assert ranks["int_sum"].dtype == np.int32 and ranks["int_sum"].tolist() == [1, 10]
        assert ranks["shard11"].tolist() == list(range(11))[r::2]
        assert "the rank differs between the ranks" in str(ranks["check_same_error"])


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("length", [0, 1, 7, 12, 13])
def test_shards_are_disjoint_and_cover_the_items(n, length):
    items = np.arange(100, 100 + length)
    shards = [dist.shard(items, group=FakeGroup(r, n)) for r in range(n)]
    together = np.concatenate(shards)
    assert sorted(together.tolist()) == items.tolist()  # covering, each item once
    sizes = [len(s) for s in shards]
    assert sizes == [length // n + (r < length % n) for r in range(n)]  # remainder: first ranks
    dropped = [dist.shard(items, drop_remainder=True, group=FakeGroup(r, n)) for r in range(n)]
    assert {len(s) for s in dropped} == {length // n}
    kept = np.concatenate(dropped)
    assert len(set(kept.tolist())) == len(kept) and set(kept.tolist()) <= set(items.tolist())
    assert set(items.tolist()) - set(kept.tolist()) == set(items[length - length % n :].tolist())


def test_a_rank_batch_is_its_share_of_the_global_batch():
    order, batch, n = np.random.default_rng(0).permutation(50), 4, 3
    for r in range(n):
        mine = dist.shard(order, drop_remainder=True, group=FakeGroup(r, n))
        for i in range(len(mine) // batch):
            global_batch = order[i * batch * n : (i + 1) * batch * n]
            assert mine[i * batch : (i + 1) * batch].tolist() == global_batch[r::n].tolist()


def test_shard_keeps_the_type_and_rejects_what_it_cannot_slice():
    assert dist.shard(range(5), group=FakeGroup(1, 2)) == range(1, 5, 2)
    assert dist.shard([1, 2, 3], group=FakeGroup(0, 2)) == [1, 3]
    with pytest.raises(TypeError, match="items must be a sliceable sequence"):
        dist.shard(5)
    with pytest.raises(TypeError, match="drop_remainder must be a bool"):
        dist.shard([1], drop_remainder=1)


def test_without_a_launcher_everything_is_a_group_of_one():
    assert (dist.size(), dist.rank(), dist.is_main()) == (1, 0, True)
    grads = {"w": mx.ones((2, 3)), "b": [mx.zeros(3)]}
    assert dist.all_mean(grads) is grads
    np.testing.assert_array_equal(dist.all_sum([1.5, 2]), [1.5, 2.0])
    assert dist.all_sum(7).item() == 7
    dist.barrier()
    dist.check_same([1.0, 2.0], "anything")
    assert dist.shard([4, 5, 6]) == [4, 5, 6]


def test_init_under_a_one_process_launch_is_a_group_of_one(monkeypatch, tmp_path):
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text("\n")  # what mlx.launch -n 1 hands the ring backend
    monkeypatch.setenv("MLX_RANK", "0")
    monkeypatch.setenv("MLX_HOSTFILE", str(hostfile))
    assert dist.init().size() == 1
    assert dist.size() == 1 and os.environ["MLX_HOSTFILE"] == str(hostfile)  # again, unchanged


def test_running_stats_are_the_batchnorm_running_means_and_variances():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm(3), nn.Conv2d(1, 2, 3), nn.BatchNorm(2))
    stats = dict(tree_flatten(dist.running_stats(model)))
    expected = [f"layers.{i}.running_{s}" for i in (1, 3) for s in ("mean", "var")]
    assert sorted(stats) == sorted(expected)
    assert dist.running_stats(nn.Linear(2, 2)) == {}


def test_scaled_lr_rules_on_one_process_and_bad_rules():
    for rule in ("sqrt", "linear", "none"):
        assert dist.scaled_lr(1e-3, rule) == 1e-3
    assert dist.scaled_lr(1e-3, "linear", group=FakeGroup(0, 4)) == pytest.approx(4e-3)
    assert dist.scaled_lr(1e-3, group=FakeGroup(0, 4)) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="rule must be one of 'sqrt', 'linear', 'none'"):
        dist.scaled_lr(1e-3, "cubic")


def test_a_failing_rank_makes_the_launcher_exit_non_zero(tmp_path):
    done = launch("fail", str(tmp_path))  # rank 0 waits in an all-reduce rank 1 never joins
    # the status of the first rank seen to fail: rank 1's 3, or rank 0's 1 when its lost
    # connection ended it while rank 1 was still shutting down (MLX's mlx.launch says 0)
    assert done.returncode in (1, 3), done.stdout + done.stderr


TINY = {  # 17 training images: 8 per rank (one left out), batches of 4, 2 steps per epoch
    "mnist": ["--mode", "tactp", "--group", "2", "--num-steps", "2", "--epochs", "2"],
    "ttfs_mnist": ["--hidden", "16", "--time-steps", "1,2", "--epochs-per-stage", "1"],
}


@pytest.mark.parametrize("name", list(TINY))
def test_an_example_resumed_under_two_ranks_equals_the_uninterrupted_run(name, mnist_dir, tmp_path):
    tiny = ["--data-dir", str(mnist_dir), *TINY[name]]
    tiny += ["--limit", "17", "--test-limit", "9", "--batch-size", "4"]
    done = launch("example", str(tmp_path), name, *tiny)
    assert done.returncode == 0, done.stdout + done.stderr
    a, b = (mx.load(str(tmp_path / f / "checkpoint.safetensors")) for f in "ab")
    assert sorted(a) == sorted(b) and any("running_mean" in k for k in a)
    for key in a:
        np.testing.assert_array_equal(np.array(a[key]), np.array(b[key]), err_msg=key)
    metrics = [json.loads((tmp_path / f / "metrics.json").read_text()) for f in "ab"]
    assert metrics[0]["config"]["ranks"] == 2 and metrics[0]["global_batch_size"] == 8
    assert metrics[0]["steps_per_epoch"] == 2  # 16 of the 17 samples: 8 per rank, batches of 4
    assert metrics[0]["test_samples"] == 9  # the whole test set, split between the ranks
    for h_a, h_b in zip(metrics[0]["history"], metrics[1]["history"], strict=True):
        for field in ("train_loss", "train_acc", "test_acc"):
            assert h_a[field] == h_b[field], field
    assert metrics[0].get("final") == metrics[1].get("final")  # ttfs: the threshold sweep
    for r in (0, 1):
        too_few = (tmp_path / f"too_few{r}.txt").read_text()
        assert too_few.startswith("1 ") and too_few.endswith("cannot be shared by 2 ranks")
