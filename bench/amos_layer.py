"""Workload 3: AMOS (at-most-one-spike, PTTFS) layer fwd+bwd, parallel vs sequential, on CPU.

Usage: python bench/amos_layer.py [--quick] [--reps N] [--out DIR]
``snn.functional.amos(x, tau=2, threshold=1, surrogate="atan", method=...)`` with
method "sequential" (step loop, the baseline) and "parallel" (scan + first-spike
search + second-fake-spike backward), T in {8, 64, 256, 1024}, B=32, N=1024
(--quick: B=8, N=256). The parallel spikes and input gradient are checked against
the sequential ones before timing. No peer library has an AMOS neuron.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lif_impls as li
from bench.runner import Scaling, run_row

NAME = "amos_layer"
TITLE = "3. AMOS layer fwd+bwd, parallel vs sequential (CPU)"
SEQ, PAR = "ours sequential", "ours parallel"
COLUMNS = [SEQ, PAR]


def amos_impl(x, w, method: str):
    import mlx_snn as snn

    amos = getattr(snn.functional, "amos", None)
    if amos is None:
        return "snn.functional.amos is not in this tree yet"

    def run(x_):
        return amos(x_, tau=2.0, threshold=1.0, surrogate="atan", method=method)[0]

    return li._mlx_impl(run, x, w, "amos")


def run(quick: bool = False, reps: int | None = None) -> dict:
    B, N = (8, 256) if quick else (32, 1024)
    records, scaling = [], Scaling()
    for T in (8, 64, 256, 1024):
        x, w = li.inputs(T, B, N)
        row = run_row(
            TITLE,
            f"T={T}, B={B}, N={N}",
            {
                SEQ: lambda x=x, w=w: amos_impl(x, w, "sequential"),
                PAR: lambda x=x, w=w: amos_impl(x, w, "parallel"),
            },
            references={"amos": SEQ},
            guard=li.guard,
            reps=reps or (3 if quick else 5),
            params={"T": T, "B": B, "N": N, "tau": 2.0, "threshold": 1.0},
            budget_s=30.0 if quick else 180.0,
            **scaling.estimates(T),
        )
        records += row
        scaling.add(T, row)
    return {"records": records, "columns": COLUMNS, "plot": {"workload": TITLE}}


if __name__ == "__main__":
    from bench.suite import standalone

    standalone(sys.modules[__name__])
