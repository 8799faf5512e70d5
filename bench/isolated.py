"""A table row whose columns each run in their own process, timed in interleaved rounds.

:func:`run_row_isolated` is :func:`bench.runner.run_row` for columns given as
:class:`Spec` (a builder in a module, with keyword arguments) instead of
in-process builders. Each column runs in a fresh ``python -m bench.cell``
process, so a torch peer runs the way its users run it (its own process, its
default threads, no MLX work or MLX buffer cache beside it) and ours runs without
torch's threads beside it. The processes stay up for the whole row: after the
correctness guard and the memory measurement every column runs one step in
turn, ``reps`` rounds, so a change of machine load hits every column alike; the
cell reports the median and minimum of its rounds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.harness import record

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Spec:
    """A column: ``module.builder(*module.inputs(*inputs_args), **kwargs)``."""

    module: str
    builder: str
    inputs_args: tuple
    kwargs: dict = field(default_factory=dict)
    inputs: str = "inputs"

    def to_json(self) -> str:
        return json.dumps(
            {
                "module": self.module,
                "builder": self.builder,
                "inputs": [self.inputs, list(self.inputs_args)],
                "kwargs": self.kwargs,
            }
        )


class Cell:
    """One column's process; :meth:`ask` sends a command and returns the reply."""

    def __init__(self, spec: Spec):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.cell", spec.to_json()],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            return {"error": f"process exited with code {self.proc.returncode}"}
        return json.loads(line)

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def outputs(self) -> tuple[np.ndarray, ...]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "out.npz"
            self.ask(cmd="outputs", path=str(path))
            with np.load(path) as data:
                return tuple(data[f"arr_{i}"] for i in range(len(data.files)))

    @property
    def reference(self) -> str:
        return self.info.get("reference", "immediate")

    @property
    def compare_grad(self) -> bool:
        return self.info.get("compare_grad", True)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def run_row_isolated(
    workload: str,
    row: str,
    specs: dict[str, Spec],
    *,
    references: dict[str, str | Spec] | None = None,
    guard=None,
    reps: int = 5,
    warmup: int = 1,
    params: dict | None = None,
    budget_s: float | None = None,
    estimates: dict[str, float] | None = None,
    mem_estimates: dict[str, float] | None = None,
    mem_budget_bytes: float | None = None,
) -> list[dict]:
    """Like :func:`bench.runner.run_row`, each column in its own process (module docstring).

    ``references`` maps a convention to the column holding our implementation of
    it, or to a :class:`Spec` of an untimed reference.
    """
    references = references or {}
    notes: dict[str, str] = {}
    status: dict[str, str] = {}
    cells: dict[str, Cell] = {}
    records: dict[str, dict] = {}
    try:
        for col, spec in specs.items():
            est = (estimates or {}).get(col)
            mem = (mem_estimates or {}).get(col)
            if budget_s is not None and est is not None and est * (reps + warmup) > budget_s:
                note = f"est. {est * (reps + warmup):.0f} s > budget {budget_s:.0f} s"
            elif mem_budget_bytes is not None and mem is not None and mem > mem_budget_bytes:
                note = f"est. peak {mem / 2**30:.1f} GiB > {mem_budget_bytes / 2**30:.1f} GiB free"
            else:
                cell = Cell(spec)
                if "ready" in cell.info:
                    cells[col] = cell
                    notes[col], status[col] = cell.info.get("note", ""), "ok"
                    continue
                cell.close()
                if "error" in cell.info:
                    records[col] = record(
                        workload, row, col, status="error", note=cell.info["error"], params=params
                    )
                    continue
                note = cell.info["skipped"]
            records[col] = record(workload, row, col, status="skipped", note=note, params=params)
        _guard_all(cells, references, guard, notes, status)
        timings = _time_all(cells, reps, warmup, workload, row, params, records)
        for col, timing in timings.items():
            records[col] = record(
                workload,
                row,
                col,
                status=status[col],
                note=notes[col],
                timing=timing,
                params=params,
            )
    finally:
        for cell in cells.values():
            cell.close()
    return [records[col] for col in specs if col in records]


def _guard_all(cells, references, guard, notes, status) -> None:
    if guard is None:
        return
    for col, cell in cells.items():
        ref = references.get(cell.reference)
        if ref is None or ref == col:
            continue
        own = None
        if isinstance(ref, Spec):
            own = Cell(ref)
            ref_cell = own if "ready" in own.info else None
        else:
            ref_cell = cells.get(ref)
        try:
            if ref_cell is None:
                why = f"not compared: our {cell.reference} reference unavailable"
                notes[col] = _join(notes[col], why)
                continue
            ok, why = guard(cell, ref_cell)
            status[col] = "ok" if ok else "mismatch"
            notes[col] = _join(notes[col], why)
        finally:
            if own is not None:
                own.close()


# Each cell warms up (after its memory step) for at least WARMUP_S seconds of steps
# (at least ``warmup - 1`` steps, at most WARMUP_STEPS): with one warm-up step, our
# T=16 LIF cell's first timed steps were 2-4x its later ones (thread start-up, buffer
# cache), which moved its median by 2.5x between runs of bench/lif_scaling.py.
WARMUP_S = 1.0
WARMUP_STEPS = 20
# In each round a short cell (warm-up steps under LEAD_BELOW_S) runs one untimed
# step right before its timed one, so that the timed step follows a step of its
# own, as in training, not the previous column's: torch's OpenMP threads spin for a
# while after a parallel region (libgomp's default wait policy), and on 2 cores
# that delayed the next column's thread wake-ups (our T=16 LIF cell: timed steps
# from 2.1 to 10.8 ms right after SpikingJelly's, 2.1-3.8 ms with
# OMP_WAIT_POLICY=passive); a pause instead made every MLX column slower (idle
# cores wake slowly in this VM).
LEAD_BELOW_S = 0.25


def _time_all(cells, reps, warmup, workload, row, params, records) -> dict[str, dict]:
    """Peak memory and warm-up per cell, then ``reps`` interleaved rounds of one step."""
    mem, times, lead = {}, {col: [] for col in cells}, {}

    def failed(col, err):
        records[col] = record(workload, row, col, status="error", note=str(err), params=params)
        cells.pop(col).close()
        times.pop(col)

    for col, cell in list(cells.items()):
        try:
            mem[col] = cell.ask(cmd="memory")
            spent, n = 0.0, 0
            while n < warmup - 1 or (spent < WARMUP_S and n < WARMUP_STEPS):
                spent += sum(cell.ask(cmd="time", reps=1)["times_s"])
                n += 1
            lead[col] = spent / n < LEAD_BELOW_S  # n >= 1: WARMUP_S > 0
        except RuntimeError as err:
            failed(col, err)
    for _ in range(reps):
        for col, cell in list(cells.items()):
            try:
                times[col] += cell.ask(cmd="time", reps=2 if lead[col] else 1)["times_s"][-1:]
            except RuntimeError as err:
                failed(col, err)
    return {
        col: {
            "median_s": statistics.median(t),
            "min_s": min(t),
            "times_s": t,
            **mem[col],
            "process": "own",
        }
        for col, t in times.items()
    }
