"""Workload 2: LIF fwd+bwd time vs sequence length T at fixed B·N, ours and peers, on CPU.

Usage: python bench/lif_scaling.py [--quick] [--reps N] [--out DIR]
T in {16, 64, 256, 1024, 4096} with B=16, N=1024 (--quick: T up to 1024, B=4, N=256).
Columns: our step loop (snn.LIF), snn.ParallelLIF (parallel scans), mlx-snn 0.5.0,
snnTorch, SpikingJelly. A cell whose steps, extrapolated linearly in T from the
previous T, would exceed the per-cell budget is skipped and says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lif_impls as li
from bench.lif_layer import OURS, lif_columns
from bench.runner import Scaling, run_row

NAME = "lif_scaling"
TITLE = "2. LIF fwd+bwd vs T, fixed B·N (CPU)"
COLUMNS = [OURS, "ours ParallelLIF", "mlx-snn 0.5.0", "snnTorch", "SpikingJelly"]


def run(quick: bool = False, reps: int | None = None) -> dict:
    Ts = [16, 64, 256, 1024] if quick else [16, 64, 256, 1024, 4096]
    B, N = (4, 256) if quick else (16, 1024)
    budget = 20.0 if quick else 120.0
    records, scaling = [], Scaling()
    for T in Ts:
        x, w = li.inputs(T, B, N)
        n = reps or (3 if quick else 5)
        row = run_row(
            TITLE,
            f"T={T}, B={B}, N={N}",
            lif_columns(x, w, include=tuple(COLUMNS)),
            references={
                "immediate": OURS,
                "delayed": lambda x=x, w=w: li.ours(x, w, reset_timing="delayed"),
            },
            guard=li.guard,
            reps=n if T < 1024 else max(2, n // 2),
            params={"T": T, "B": B, "N": N, "dtype": "float32"},
            budget_s=budget,
            **scaling.estimates(T),
        )
        records += row
        scaling.add(T, row)
    return {"records": records, "columns": COLUMNS, "plot": {"workload": TITLE}}


if __name__ == "__main__":
    from bench.suite import standalone

    standalone(sys.modules[__name__])
