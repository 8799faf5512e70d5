"""bench/isolated.py: columns in their own processes, guarded and timed in rounds.

Tiny shapes, values only (no timing assertions); a few seconds (one process per column).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import lif_impls as li  # noqa: E402
from bench.isolated import Spec, run_row_isolated  # noqa: E402


def test_isolated_row_guards_times_and_reports_errors():
    shape = (4, 2, 8)
    recs = run_row_isolated(
        "W",
        "r",
        {
            "ours": Spec("bench.lif_impls", "ours", shape),
            "list loop": Spec("bench.lif_impls", "mlx_list_loop", shape),
            "wrong": Spec("bench.lif_impls", "ours", shape, {"reset_timing": "delayed"}),
            "boom": Spec("bench.lif_impls", "no_such_builder", shape),
        },
        references={"immediate": "ours", "delayed": Spec("bench.lif_impls", "ours", shape)},
        guard=li.guard,
        reps=2,
    )
    by = {r["col"]: r for r in recs}
    assert by["ours"]["status"] == "ok" and len(by["ours"]["times_s"]) == 2
    assert by["ours"]["process"] == "own"
    assert by["list loop"]["status"] == "ok", by["list loop"]["note"]
    # the delayed reset compared with an immediate-reset reference must not pass
    assert by["wrong"]["status"] == "mismatch"
    assert by["boom"]["status"] == "error" and "no_such_builder" in by["boom"]["note"]
