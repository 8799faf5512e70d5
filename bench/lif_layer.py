"""Workload 1: LIF layer training step (fwd+bwd), ours against every peer, on CPU.

Usage: python bench/lif_layer.py [--quick] [--reps N] [--out DIR]
Shapes: T=25, B=128, N=4096 (MNIST-like) and T=256, B=16, N=1024 (long); --quick
shrinks B. Every peer's spikes and input gradient are checked against ours under
the same convention before timing (bench/lif_impls.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lif_impls as li
from bench.runner import run_row

NAME = "lif_layer"
TITLE = "1. LIF layer fwd+bwd (CPU)"
OURS, DELAYED = "ours snn.LIF", "ours (delayed reset)"
COLUMNS = [
    OURS,
    DELAYED,
    "ours mx.compile",
    "ours ParallelLIF",
    "plain MLX loop",
    "mlx-snn 0.5.0",
    "snnTorch",
    "SpikingJelly",
]


def lif_columns(x, w, device: str = "cpu", include: tuple[str, ...] = tuple(COLUMNS)) -> dict:
    builders = {
        OURS: lambda: li.ours(x, w),
        DELAYED: lambda: li.ours(x, w, reset_timing="delayed"),
        "ours mx.compile": lambda: li.ours(x, w, variant="compiled"),
        "ours ParallelLIF": lambda: li.ours(x, w, variant="parallel"),
        "plain MLX loop": lambda: li.plain_mlx_loop(x, w),
        "mlx-snn 0.5.0": lambda: li.mlxsnn(x, w),
        "snnTorch": lambda: li.snntorch(x, w, device),
        "SpikingJelly": lambda: li.spikingjelly(x, w, device),
    }
    return {k: v for k, v in builders.items() if k in include}


def run(quick: bool = False, reps: int | None = None) -> dict:
    shapes = [(25, 16, 4096), (256, 4, 1024)] if quick else [(25, 128, 4096), (256, 16, 1024)]
    records = []
    for T, B, N in shapes:
        x, w = li.inputs(T, B, N)
        records += run_row(
            TITLE,
            f"T={T}, B={B}, N={N}",
            lif_columns(x, w),
            references={"immediate": OURS, "delayed": DELAYED},
            guard=li.guard,
            reps=reps or (3 if quick else 5),
            params={"T": T, "B": B, "N": N, "dtype": "float32"},
        )
    return {"records": records, "columns": COLUMNS}


if __name__ == "__main__":
    from bench.suite import standalone

    standalone(sys.modules[__name__])
