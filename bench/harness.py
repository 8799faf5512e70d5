"""Timing, memory, machine description, result records, files and tables shared by the benchmarks.

Protocol (../shared/design/bench.md): warm up, then time ``reps`` calls with the
synchronisation inside the timed region; report median and min; compare
implementations only by ratios of medians measured in the same process.

A *record* (:func:`record`) is one cell of a results table: ``workload`` (the
table), ``row`` (the case, e.g. a shape), ``col`` (the implementation),
``status`` (one of :data:`STATUSES`), an optional timing and peak-memory figure,
and a free-text ``note``. The first column of a row that has a timing is the
row's baseline: every other cell shows its median over the baseline's.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STATUSES = ("ok", "mismatch", "skipped", "error")
SCHEMA_VERSION = 1


def time_fn(fn: Callable[[], object], reps: int = 7, warmup: int = 2) -> dict:
    """Call ``fn`` ``warmup`` times, then time ``reps`` calls; ``fn`` must synchronise.

    Also records ``peak_memory_bytes``: MLX's allocator peak over these calls, reset
    before the first (``mx.get_peak_memory``: the case's whole footprint, its inputs
    included; 0 for a case that allocates nothing through MLX, e.g. a torch peer).
    """
    import mlx.core as mx

    if reps < 1 or warmup < 0:
        raise ValueError(f"reps must be >= 1 and warmup >= 0; got reps={reps}, warmup={warmup}")
    mx.reset_peak_memory()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "peak_memory_bytes": int(mx.get_peak_memory()),
    }


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _malloc_trim() -> None:
    """Return glibc's free heap pages to the OS so the next call's allocations show in RSS."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_peak_delta(fn: Callable[[], object]) -> tuple[int | None, str]:
    """Resident-set high-water mark reached while ``fn`` runs, above the RSS before it.

    Linux only (resets the high-water mark through ``/proc/self/clear_refs``). The
    allocator may reuse pages it already holds, so this is a lower bound on what
    the call allocates. Returns ``(bytes or None, method name)``.
    """
    _malloc_trim()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        fn()
        return None, "unavailable"
    before = _proc_status_kib("VmRSS")
    fn()
    peak = _proc_status_kib("VmHWM")
    if before is None or peak is None:
        return None, "unavailable"
    return max(0, peak - before) * 1024, "rss_hwm_delta"


def mlx_peak_delta(fn: Callable[[], object]) -> tuple[int, str]:
    """MLX allocator peak while ``fn`` runs, above the memory active before it."""
    import mlx.core as mx

    before = mx.get_active_memory()
    mx.reset_peak_memory()
    fn()
    return max(0, mx.get_peak_memory() - before), "mlx_peak_delta"


def torch_cuda_peak_delta(fn: Callable[[], object]) -> tuple[int, str]:
    """``torch.cuda.max_memory_allocated`` while ``fn`` runs, above the memory before it."""
    import torch

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return max(0, torch.cuda.max_memory_allocated() - before), "torch_cuda_peak_delta"


MEMORY = {"mlx": mlx_peak_delta, "rss": rss_peak_delta, "torch_cuda": torch_cuda_peak_delta}


def measure(fn: Callable[[], object], *, memory: str, reps: int, warmup: int) -> dict:
    """Peak memory of one call (measured first), then :func:`time_fn`.

    ``memory``: ``"mlx"`` | ``"rss"`` | ``"torch_cuda"`` (see :data:`MEMORY`).
    """
    if memory not in MEMORY:
        raise ValueError(f"memory must be one of {sorted(MEMORY)}; got {memory!r}")
    peak, method = MEMORY[memory](fn)
    timing = time_fn(fn, reps=reps, warmup=max(0, warmup - 1))
    return {**timing, "peak_bytes": peak, "memory_method": method}


def record(
    workload: str,
    row: str,
    col: str,
    *,
    status: str = "ok",
    note: str = "",
    timing: dict | None = None,
    params: dict | None = None,
) -> dict:
    """One table cell (see the module docstring); validated by :func:`validate_record`."""
    rec = {
        "workload": workload,
        "row": row,
        "col": col,
        "status": status,
        "note": note,
        "params": dict(params or {}),
    }
    if timing is not None:
        rec.update(timing)
    validate_record(rec)
    return rec


def validate_record(rec: dict) -> None:
    """Raise ``ValueError`` when ``rec`` does not follow the record schema."""
    for key in ("workload", "row", "col", "status", "note"):
        if not isinstance(rec.get(key), str):
            raise ValueError(f"record field {key!r} must be a str; got {rec.get(key)!r}")
    if rec["status"] not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}; got {rec['status']!r}")
    if not isinstance(rec.get("params", {}), dict):
        raise ValueError(f"record field 'params' must be a dict; got {rec.get('params')!r}")
    timed = "median_s" in rec
    if timed:
        for key in ("median_s", "min_s"):
            if not isinstance(rec.get(key), (int, float)) or rec[key] < 0:
                raise ValueError(
                    f"record field {key!r} must be a number >= 0; got {rec.get(key)!r}"
                )
        peak = rec.get("peak_bytes")
        if peak is not None and (not isinstance(peak, int) or peak < 0):
            raise ValueError(f"record field 'peak_bytes' must be an int >= 0 or None; got {peak!r}")
    if rec["status"] in ("ok", "mismatch") and not timed:
        raise ValueError(f"a record with status {rec['status']!r} needs a timing (median_s)")
    if rec["status"] in ("skipped", "error") and not rec["note"]:
        raise ValueError(f"a record with status {rec['status']!r} needs a note saying why")


def validate_results(payload: dict) -> None:
    """Raise ``ValueError`` when a results file payload does not follow the schema."""
    if payload.get("schema") != SCHEMA_VERSION:
        raise ValueError(
            f"results 'schema' must be {SCHEMA_VERSION}; got {payload.get('schema')!r}"
        )
    if not isinstance(payload.get("machine"), dict):
        raise ValueError("results need a 'machine' dict")
    if not isinstance(payload.get("records"), list):
        raise ValueError("results need a 'records' list")
    for rec in payload["records"]:
        validate_record(rec)


def machine() -> dict:
    """Where the numbers were taken."""
    import mlx.core as mx

    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mlx": getattr(mx, "__version__", "unknown"),
        "mlx_device": str(mx.default_device()),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        import mlx_snn

        info["mlx_snn"] = mlx_snn.__version__
        from mlx_snn import _runtime

        info["mlx_cpu_cache_raised"] = _runtime.cache_limit_raised
    except ImportError:
        pass
    return info


def host() -> str:
    return socket.gethostname().split(".")[0] or "host"


def result_path(name: str, kind: str = "cpu", out: Path | None = None) -> Path:
    """``<out>/<name>-<kind>-<host>.json`` (``<kind>-<host>.json`` when ``name`` is empty)."""
    stem = f"{name}-{kind}-{host()}" if name else f"{kind}-{host()}"
    return Path(out or RESULTS) / f"{stem}.json"


def save(name: str, payload: dict, kind: str = "cpu", out: Path | None = None) -> Path:
    """Write ``payload`` (plus the machine description) as JSON; return the path.

    When the payload has a ``table`` string it is also written next to the JSON as ``.md``.
    """
    path = result_path(name, kind, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {"machine": machine(), **payload}
    path.write_text(json.dumps(full, indent=2) + "\n")
    if isinstance(payload.get("table"), str):
        path.with_suffix(".md").write_text(payload["table"] + "\n")
    return path


def shown(path: Path) -> str:
    """``path`` as printed by the benchmarks: relative to the repository root when inside it.

    Printed lines end up in committed ``.md`` files; they must not carry this machine's paths.
    """
    try:
        return str(Path(path).resolve().relative_to(RESULTS.parents[1]))
    except ValueError:
        return str(path)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """Render a markdown table (numbers as given: format them before)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_time(seconds: float) -> str:
    """``0.0123`` -> ``"12.3 ms"``; seconds from 1 s up."""
    return f"{seconds:.2f} s" if seconds >= 0.9995 else f"{seconds * 1e3:.3g} ms"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _cell(rec: dict | None, base: dict | None) -> str:
    if rec is None:
        return "—"
    if rec["status"] in ("skipped", "error"):
        return f"{rec['status']}: {rec['note']}"
    text = fmt_time(rec["median_s"])
    if base is not None and base is not rec and base["median_s"] > 0:
        text += f" ({rec['median_s'] / base['median_s']:.2f}x)"
    if rec.get("peak_bytes") is not None:
        text += f", {fmt_bytes(rec['peak_bytes'])}"
    if rec["status"] == "mismatch":
        text += f" MISMATCH: {rec['note']}"
    elif rec["note"]:
        text += f" [{rec['note']}]"
    return text


def comparison_table(records: list[dict], columns: list[str] | None = None) -> str:
    """Markdown table of ``records``: one line per ``row``, one column per ``col``.

    Cells read ``median (ratio to the row's baseline, x), extra peak memory``; the
    baseline is the first timed cell of the row in column order. A ratio above 1
    means slower than the baseline. Skipped/failed cells show their note.
    """
    cols = list(columns or [])
    rows: list[str] = []
    cells: dict[tuple[str, str], dict] = {}
    for rec in records:
        validate_record(rec)
        if rec["col"] not in cols:
            cols.append(rec["col"])
        if rec["row"] not in rows:
            rows.append(rec["row"])
        cells[(rec["row"], rec["col"])] = rec
    body = []
    for row in rows:
        timed = [
            cells[(row, c)] for c in cols if (row, c) in cells and "median_s" in cells[(row, c)]
        ]
        base = timed[0] if timed else None
        body.append([row, *(_cell(cells.get((row, c)), base) for c in cols)])
    return markdown_table(["case", *cols], body)


def tables_by_workload(records: list[dict], columns: dict[str, list[str]] | None = None) -> str:
    """One :func:`comparison_table` per workload, each under a ``###`` heading."""
    names: list[str] = []
    for rec in records:
        if rec["workload"] not in names:
            names.append(rec["workload"])
    parts = []
    for name in names:
        recs = [r for r in records if r["workload"] == name]
        parts.append(f"### {name}\n\n" + comparison_table(recs, (columns or {}).get(name)))
    return "\n\n".join(parts)
