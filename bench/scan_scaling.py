"""Sequential vs parallel-in-time: fwd+bwd time and peak memory vs T (issue 4's benchmark).

Usage: python bench/scan_scaling.py [--quick] [--reps N] [--out DIR]
T in {16, 64, 256, 1024, 4096} at two widths, B*N = 1024 (B=16, N=64) and
B*N = 65536 (B=64, N=1024); --quick stops at T=1024. Two tables in one run:
  LIF: snn.LIF (step loop, custom VJP; the baseline) vs snn.ParallelLIF;
  AMOS: functional.amos(method="sequential") (the baseline) vs method="parallel".
Each parallel result is checked against its sequential baseline (spikes and input
gradient) before timing. A cell whose steps, extrapolated linearly in T, would
exceed the per-cell budget is skipped and says so. Writes
bench/results/scan_scaling-cpu-<host>.json/.md and a PNG per table (time vs T).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lif_impls as li
from bench.amos_layer import amos_impl
from bench.runner import Scaling, run_row

NAME = "scan_scaling"
TITLE = "scan scaling"
LIF_TITLE = "LIF: step loop vs ParallelLIF, fwd+bwd vs T (CPU)"
AMOS_TITLE = "AMOS: sequential vs parallel, fwd+bwd vs T (CPU)"
WIDTHS = ((16, 64), (64, 1024))
COLUMNS = ["step loop", "parallel"]


def _table(title, builders, Ts, reps, budget) -> list[dict]:
    records = []
    for B, N in WIDTHS:
        scaling = Scaling()
        for T in Ts:
            x, w = li.inputs(T, B, N)
            row = run_row(
                title,
                f"B*N={B * N} (B={B}, N={N}), T={T}",
                {col: (lambda b=b, x=x, w=w: b(x, w)) for col, b in builders.items()},
                references={"immediate": "step loop", "amos": "step loop"},
                guard=li.guard,
                reps=reps if T < 1024 else max(2, reps // 2),
                params={"T": T, "B": B, "N": N, "width": B * N},
                budget_s=budget,
                **scaling.estimates(T),
            )
            records += row
            scaling.add(T, row)
    return records


def run(quick: bool = False, reps: int | None = None) -> dict:
    Ts = (16, 64, 256, 1024) if quick else (16, 64, 256, 1024, 4096)
    n, budget = reps or (3 if quick else 5), 15.0 if quick else 150.0
    lif = {"step loop": li.ours, "parallel": lambda x, w: li.ours(x, w, variant="parallel")}
    amos = {
        "step loop": lambda x, w: amos_impl(x, w, "sequential"),
        "parallel": lambda x, w: amos_impl(x, w, "parallel"),
    }
    records = _table(LIF_TITLE, lif, Ts, n, budget) + _table(AMOS_TITLE, amos, Ts, n, budget)
    return {
        "records": records,
        "columns": COLUMNS,
        "plots": {
            "lif": {"workload": LIF_TITLE, "group": "width"},
            "amos": {"workload": AMOS_TITLE, "group": "width"},
        },
    }


def main(argv: list[str] | None = None) -> Path:
    from bench.suite import parser, write

    args = parser(prog="python bench/scan_scaling.py", workloads=False).parse_args(argv)
    out = run(quick=args.quick, reps=args.reps)
    columns = {LIF_TITLE: COLUMNS, AMOS_TITLE: COLUMNS}
    name = NAME + ("-quick" if args.quick else "")
    return write(name, out["records"], columns, args.quick, args.out, out["plots"], args.note)


if __name__ == "__main__":
    main()
