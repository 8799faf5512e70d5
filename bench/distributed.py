"""Data-parallel training speed: samples/s of the MNIST network's train step on 1 and N ranks.

Usage: python bench/distributed.py [--quick] [--ranks 1 2] [--batch 32] [--reps 5] [--out DIR]

Each case runs the train step of ``examples/mnist.py`` (``snn.models.mnist_convnet``, baseline
mode, T=25, Poisson-like random frames, cross-entropy on spike counts, bias-corrected Adam;
gradients and BatchNorm statistics averaged with ``mlx_snn.distributed.all_mean``) with a
per-rank batch ``--batch``, so the global batch is ``batch * ranks``. One rank runs as a plain
process, more under ``mlx-snn launch --backend ring -n N`` on 127.0.0.1 (TCP over loopback).
Reported: rank 0's median step time, samples/s = ``batch * ranks / median``, the speed-up over
one rank, and, on N > 1 ranks, the time of the all-reduce alone: ``all_mean`` of an array tree
the size of the network's gradients plus its BatchNorm statistics (225,418 float32 values,
0.86 MiB), as the step sends it.

What to expect: N ranks on one machine share its cores. MLX's CPU backend already spreads a
step's convolutions and matrix products over the cores, so on a small machine (2 cores here)
two ranks mostly take turns on the same cores and samples/s barely moves, or drops by the
all-reduce's cost. The gain comes from more devices: several Macs, several GPUs.

``--quick``: T=4, per-rank batch 4, 3 reps. Writes ``distributed-cpu-<host>.json`` (``.md``
beside it; ``distributed_quick-...`` with ``--quick``) to ``--out`` (default bench/results).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import fmt_time, markdown_table, record, save, time_fn
from mlx_snn import distributed as dist

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = "distributed"
LAUNCH_TIMEOUT = 600


def free_ports(count: int) -> int:
    """A loopback port ``p`` with ``p .. p + count - 1`` free (the ring backend's ranks)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        socks = [socket.socket() for _ in range(count)]
        try:
            for i, s in enumerate(socks):
                s.bind(("127.0.0.1", port + i))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def worker(args: argparse.Namespace) -> None:
    """One rank: time the train step and the all-reduce; rank 0 writes ``args.worker``."""
    dist.init()
    mx.random.seed(0)
    model = snn.models.mnist_convnet(mode="baseline", num_steps=args.num_steps)
    optimizer = optim.Adam(learning_rate=dist.scaled_lr(1e-3), bias_correction=True)
    rng = np.random.default_rng([0, dist.rank()])
    shape = (args.num_steps, args.batch, 28, 28, 1)
    frames = mx.array((rng.random(shape) < 0.3).astype(np.float32))
    labels = mx.array(rng.integers(0, 10, args.batch).astype(np.int32))

    def loss_fn(x, y):
        return snn.loss.ce_count(model(x), y)

    grad_fn = nn.value_and_grad(model, loss_fn)

    def step():
        loss, grads = grad_fn(frames, labels)
        grads, stats = dist.all_mean((grads, dist.running_stats(model)))
        model.update(stats)
        optimizer.update(model, grads)
        mx.eval(loss, model.state, optimizer.state)

    timing = time_fn(step, reps=args.reps, warmup=2)
    payload = {"ranks": dist.size(), "step": timing}
    tree = (model.trainable_parameters(), dist.running_stats(model))
    payload["values"] = sum(v.size for _, v in tree_flatten(tree))
    if dist.size() > 1:
        fake = tree_map(lambda v: mx.random.normal(v.shape), tree)
        mx.eval(fake)
        payload["all_reduce"] = time_fn(lambda: mx.eval(dist.all_mean(fake)), reps=20, warmup=3)
    dist.barrier()
    if dist.is_main():
        Path(args.worker).write_text(json.dumps(payload))


def run_case(ranks: int, args: argparse.Namespace) -> dict:
    """Start the ranks of one case; return rank 0's report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(report)]
        cmd += ["--batch", str(args.batch), "--reps", str(args.reps)]
        cmd += ["--num-steps", str(args.num_steps)]
        if ranks > 1:
            launch = [sys.executable, "-m", "mlx_snn.cli", "launch", "--backend", "ring"]
            cmd = [*launch, "-n", str(ranks), "-p", str(free_ports(ranks)), *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_")}
        done = subprocess.run(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, timeout=LAUNCH_TIMEOUT
        )
        if done.returncode != 0:
            raise RuntimeError(f"{ranks} rank(s): exit status {done.returncode}")
        return json.loads(report.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="T=4, batch 4, 3 reps")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="cases (default 1 2)")
    p.add_argument("--batch", type=int, default=None, help="per-rank batch (default 32)")
    p.add_argument("--reps", type=int, default=None, help="timed steps (default 5)")
    p.add_argument("--num-steps", type=int, default=None, help="time steps T (default 25)")
    p.add_argument("--out", type=Path, default=None, help="results folder")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name, full, quick in (("batch", 32, 4), ("reps", 5, 3), ("num_steps", 25, 4)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.worker:
        worker(args)
        return 0

    reports = {n: run_case(n, args) for n in args.ranks}
    base = reports[min(reports)]
    base_rate = base["ranks"] * args.batch / base["step"]["median_s"]
    records, rows = [], []
    for n, rep in reports.items():
        rate = n * args.batch / rep["step"]["median_s"]
        params = {"ranks": n, "batch_per_rank": args.batch, "num_steps": args.num_steps}
        params.update(samples_per_s=rate, speedup=rate / base_rate, values=rep["values"])
        records.append(record(WORKLOAD, "train step", f"{n} rank(s)", timing=rep["step"],
                              params=params))  # fmt: skip
        reduce = rep.get("all_reduce")
        if reduce is not None:
            records.append(record(WORKLOAD, "all-reduce", f"{n} rank(s)", timing=reduce,
                                  params={"ranks": n, "values": rep["values"]}))  # fmt: skip
        rows.append([
            n, n * args.batch, fmt_time(rep["step"]["median_s"]), f"{rate:.1f}",
            f"{rate / base_rate:.2f}x", fmt_time(reduce["median_s"]) if reduce else "-",
        ])  # fmt: skip
    note = (
        f"{os.cpu_count()} CPU cores shared by all ranks: MLX's CPU backend already uses them "
        "within one step, so ranks on one machine compete for the same cores"
    )
    header = ["ranks", "global batch", "step (median)", "samples/s", "vs 1 rank", "all-reduce"]
    table = markdown_table(header, rows) + f"\n\nT={args.num_steps}, per-rank batch "
    table += f"{args.batch}, {base['values']} values all-reduced per step. {note}."
    print(table)
    name = "distributed_quick" if args.quick else "distributed"
    payload = {"schema": 1, "records": records, "table": table, "note": note}
    print(f"wrote {save(name, payload, out=args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
