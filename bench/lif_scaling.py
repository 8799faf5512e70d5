"""Workload 2: LIF fwd+bwd time vs sequence length T at fixed B·N, ours and peers, on CPU.

Usage: python bench/lif_scaling.py [--quick] [--reps N] [--out DIR]
T in {16, 64, 256, 1024, 4096} with B=16, N=1024 (--quick: T up to 1024, B=4, N=256).
Columns: our step loop (snn.LIF), snn.ParallelLIF (parallel scans), the plain MLX
loop differentiated w.r.t. a list of per-step inputs, mlx-snn 0.5.0, snnTorch,
SpikingJelly; each in its own process, timed in interleaved rounds
(bench/isolated.py). A cell whose steps, extrapolated in T from the
previous two T (bench/runner.py Scaling), would exceed the per-cell budget is skipped and says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lif_layer import LIST_LOOP, OURS, lif_row
from bench.runner import Scaling

NAME = "lif_scaling"
TITLE = "2. LIF fwd+bwd vs T, fixed B·N (CPU)"
COLUMNS = [OURS, "ours ParallelLIF", LIST_LOOP, "mlx-snn 0.5.0", "snnTorch", "SpikingJelly"]


def run(quick: bool = False, reps: int | None = None, isolated: bool = True) -> dict:
    Ts = [16, 64, 256, 1024] if quick else [16, 64, 256, 1024, 4096]
    B, N = (4, 256) if quick else (16, 1024)
    budget = 20.0 if quick else 120.0
    records, scaling = [], Scaling()
    for T in Ts:
        n = reps or (3 if quick else 9)
        row = lif_row(
            T,
            B,
            N,
            include=tuple(COLUMNS),
            isolated=isolated,
            title=TITLE,
            reps=n if T < 1024 else max(2, n // 2),
            budget_s=budget,
            **scaling.estimates(T),
        )
        records += row
        scaling.add(T, row)
    return {"records": records, "columns": COLUMNS, "plot": {"workload": TITLE}}


if __name__ == "__main__":
    from bench.suite import standalone

    standalone(sys.modules[__name__])
