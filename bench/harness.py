"""Timing, machine description, result files and tables shared by the benchmarks.

Protocol (../shared/design/bench.md): warm up, then time ``reps`` calls with the
synchronisation inside the timed region; report median and min; compare
implementations only by ratios of medians measured in the same process.
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


def time_fn(fn: Callable[[], object], reps: int = 7, warmup: int = 2) -> dict:
    """Call ``fn`` ``warmup`` times, then time ``reps`` calls; ``fn`` must synchronise."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


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


def result_path(name: str, kind: str = "cpu") -> Path:
    host = socket.gethostname().split(".")[0] or "host"
    return RESULTS / f"{name}-{kind}-{host}.json"


def save(name: str, payload: dict, kind: str = "cpu") -> Path:
    """Write ``payload`` (plus the machine description) as JSON; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = result_path(name, kind)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """Render a markdown table (numbers as given: format them before)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
