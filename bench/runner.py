"""Run one table row: guard each implementation against the reference, then time it.

An implementation is an :class:`Impl` (``step`` runs one synchronised step,
``outputs`` returns numpy arrays for the guard) or a ``str`` saying why it is
unavailable, which becomes a ``skipped`` cell.
"""

from __future__ import annotations

import gc
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.harness import measure, record


@dataclass
class Impl:
    step: Callable[[], None]
    outputs: Callable[[], tuple[np.ndarray, ...]]
    memory: str  # "mlx" | "rss" | "torch_cuda"
    reference: str = "immediate"  # which of our conventions the guard compares with
    note: str = ""
    compare_grad: bool = True  # False where the peer's surrogate is defined differently


Guard = Callable[[Impl, Impl], tuple[bool, str]]


def run_row(
    workload: str,
    row: str,
    impls: dict[str, Callable[[], Impl | str]],
    *,
    references: dict[str, str | Callable[[], Impl | str]] | None = None,
    guard: Guard | None = None,
    reps: int = 5,
    warmup: int = 1,
    params: dict | None = None,
    budget_s: float | None = None,
    estimates: dict[str, float] | None = None,
    mem_estimates: dict[str, float] | None = None,
    mem_budget_bytes: float | None = None,
) -> list[dict]:
    """Build, guard and time every implementation of one row; return its records.

    ``impls`` maps a column name to a zero-argument builder (built lazily so that a
    skipped cell allocates nothing). ``references`` maps a convention name
    (``impl.reference``) to the column holding our implementation of it, or to a
    builder of an untimed reference; each other implementation is guarded against it
    with ``guard``. ``estimates``
    (column -> seconds per step, e.g. extrapolated from a shorter T) skips a cell
    whose ``(reps + warmup)`` steps would exceed ``budget_s``; ``mem_estimates``
    (column -> peak bytes) skips a cell that would exceed ``mem_budget_bytes``.
    """
    references = references or {}
    built: dict[str, Impl] = {}
    records = []
    for col, build in impls.items():
        est = (estimates or {}).get(col)
        if budget_s is not None and est is not None and est * (reps + warmup) > budget_s:
            note = f"est. {est * (reps + warmup):.0f} s > budget {budget_s:.0f} s"
            records.append(record(workload, row, col, status="skipped", note=note, params=params))
            continue
        mem = (mem_estimates or {}).get(col)
        if mem_budget_bytes is not None and mem is not None and mem > mem_budget_bytes:
            note = f"est. peak {mem / 2**30:.1f} GiB > {mem_budget_bytes / 2**30:.1f} GiB free"
            records.append(record(workload, row, col, status="skipped", note=note, params=params))
            continue
        try:
            impl = build()
        except Exception as exc:
            records.append(_error(workload, row, col, exc, params))
            continue
        if isinstance(impl, str):
            records.append(record(workload, row, col, status="skipped", note=impl, params=params))
            continue
        status, note = "ok", impl.note
        ref_col = references.get(impl.reference)
        try:
            if guard is not None and ref_col is not None and ref_col != col:
                if callable(ref_col):
                    ref = ref_col()
                    ref = None if isinstance(ref, str) else ref
                else:
                    ref = built.get(ref_col)
                if ref is None:
                    note = _join(note, f"not compared: our {impl.reference} reference unavailable")
                else:
                    ok, why = guard(impl, ref)
                    status = "ok" if ok else "mismatch"
                    note = _join(note, why)
            start = time.perf_counter()
            timing = measure(impl.step, memory=impl.memory, reps=reps, warmup=warmup)
            timing["wall_s"] = time.perf_counter() - start
        except Exception as exc:
            records.append(_error(workload, row, col, exc, params))
            continue
        built[col] = impl
        records.append(
            record(workload, row, col, status=status, note=note, timing=timing, params=params)
        )
    built.clear()
    gc.collect()
    _clear_mlx_cache()
    return records


def _clear_mlx_cache() -> None:
    """Hand MLX's cached buffers back (the raised CPU cache would keep GiBs between rows)."""
    import mlx.core as mx

    mx.clear_cache()


def _join(a: str, b: str) -> str:
    return "; ".join(p for p in (a, b) if p)


def _error(workload, row, col, exc, params) -> dict:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return record(workload, row, col, status="error", note=last[:200], params=params)


class Scaling:
    """Time and memory estimates from the last timed cells of each column: time grows
    as the power of size measured between the last two sizes (at least linear, at
    most cubic; linear from one size), memory linearly."""

    def __init__(self):
        self.last: dict[str, tuple[float, float, int | None]] = {}
        self.before: dict[str, tuple[float, float]] = {}

    def add(self, size: float, records: list[dict]) -> None:
        for r in records:
            if "min_s" in r:
                if r["col"] in self.last:
                    self.before[r["col"]] = self.last[r["col"]][:2]
                self.last[r["col"]] = (size, r["min_s"], r.get("peak_bytes"))

    def estimates(self, size: float) -> dict:
        """Keyword arguments for :func:`run_row` at ``size`` (with the free-memory budget)."""
        mem = {c: p * size / s for c, (s, _, p) in self.last.items() if p and s > 0}
        times = {c: (s, t) for c, (s, t, _) in self.last.items()}
        return {
            "estimates": extrapolate(times, size, self.before),
            "mem_estimates": mem,
            "mem_budget_bytes": free_memory_budget(),
        }


def free_memory_budget(fraction: float = 0.5) -> float | None:
    """``fraction`` of the host's MemAvailable (Linux), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return fraction * int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def extrapolate(
    last: dict[str, tuple[float, float]],
    size: float,
    before: dict[str, tuple[float, float]] | None = None,
) -> dict[str, float]:
    """Column -> seconds at ``size`` from ``last[col] = (size, seconds)``: linear in size,
    or, where ``before[col]`` holds an earlier ``(size, seconds)``, with the exponent
    measured between the two (clamped to ``[1, 3]``: a peer whose step grows faster
    than linearly in T, e.g. quadratically, is then skipped before it runs for hours)."""
    out = {}
    for col, (prev, sec) in last.items():
        if prev <= 0:
            continue
        power = 1.0
        if before and col in before:
            s0, t0 = before[col]
            if 0 < s0 < prev and t0 > 0 and sec > 0:
                power = min(3.0, max(1.0, math.log(sec / t0) / math.log(prev / s0)))
        out[col] = sec * (size / prev) ** power
    return out
