"""Workload 1: LIF layer training step (fwd+bwd), ours against every peer, on CPU.

Usage: python bench/lif_layer.py [--quick] [--reps N] [--out DIR]
Shapes: T=25, B=128, N=4096 (MNIST-like) and T=256, B=16, N=1024 (long); --quick
shrinks B. Every peer's spikes and input gradient are checked against ours under
the same convention before timing (bench/lif_impls.py). Each column runs in its
own process with its library's default thread settings, and the columns are
timed in interleaved rounds (bench/isolated.py); ``run(isolated=False)`` runs
them all in this process instead, one after the other (bench/runner.py).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lif_impls as li
from bench.isolated import Spec, run_row_isolated
from bench.runner import run_row

NAME = "lif_layer"
TITLE = "1. LIF layer fwd+bwd (CPU)"
OURS, DELAYED = "ours snn.LIF", "ours (delayed reset)"
LIST_LOOP = "MLX loop, grad w.r.t. list"
COLUMNS = [
    OURS,
    DELAYED,
    "ours mx.compile",
    "ours ParallelLIF",
    LIST_LOOP,
    "plain MLX loop",
    "mlx-snn 0.5.0",
    "snnTorch",
    "SpikingJelly",
]
# column -> (builder in bench/lif_impls.py, keyword arguments)
BUILDERS = {
    OURS: ("ours", {}),
    DELAYED: ("ours", {"reset_timing": "delayed"}),
    "ours mx.compile": ("ours", {"variant": "compiled"}),
    "ours ParallelLIF": ("ours", {"variant": "parallel"}),
    LIST_LOOP: ("mlx_list_loop", {}),
    "plain MLX loop": ("plain_mlx_loop", {}),
    "mlx-snn 0.5.0": ("mlxsnn", {}),
    "snnTorch": ("snntorch", {}),
    "SpikingJelly": ("spikingjelly", {}),
}


def lif_columns(x, w, device: str = "cpu", include: tuple[str, ...] = tuple(COLUMNS)) -> dict:
    """In-process builders of the columns in ``include`` for inputs ``x, w``."""
    out = {}
    for col in include:
        name, kwargs = BUILDERS[col]
        fn = getattr(li, name)
        if "device" in inspect.signature(fn).parameters:
            kwargs = {**kwargs, "device": device}
        out[col] = lambda fn=fn, kwargs=kwargs: fn(x, w, **kwargs)
    return out


def lif_specs(T: int, B: int, N: int, include: tuple[str, ...] = tuple(COLUMNS)) -> dict:
    """The columns in ``include`` as :class:`bench.isolated.Spec` (each in its own process)."""
    return {
        col: Spec("bench.lif_impls", BUILDERS[col][0], (T, B, N), BUILDERS[col][1])
        for col in include
    }


def lif_row(T, B, N, include=tuple(COLUMNS), isolated=True, **kwargs) -> list[dict]:
    """One row of LIF columns; ``kwargs`` go to the row runner."""
    refs = {"immediate": OURS, "delayed": DELAYED}
    if DELAYED not in include:
        refs["delayed"] = Spec("bench.lif_impls", "ours", (T, B, N), {"reset_timing": "delayed"})
    params = {"T": T, "B": B, "N": N, "dtype": "float32"}
    if isolated:
        return run_row_isolated(
            TITLE if "title" not in kwargs else kwargs.pop("title"),
            f"T={T}, B={B}, N={N}",
            lif_specs(T, B, N, include),
            references=refs,
            guard=li.guard,
            params=params,
            **kwargs,
        )
    x, w = li.inputs(T, B, N)
    if isinstance(refs["delayed"], Spec):
        refs["delayed"] = lambda: li.ours(x, w, reset_timing="delayed")
    return run_row(
        kwargs.pop("title", TITLE),
        f"T={T}, B={B}, N={N}",
        lif_columns(x, w, include=include),
        references=refs,
        guard=li.guard,
        params=params,
        **kwargs,
    )


def run(quick: bool = False, reps: int | None = None, isolated: bool = True) -> dict:
    shapes = [(25, 16, 4096), (256, 4, 1024)] if quick else [(25, 128, 4096), (256, 16, 1024)]
    records = []
    for T, B, N in shapes:
        records += lif_row(T, B, N, isolated=isolated, reps=reps or (3 if quick else 15))
    return {"records": records, "columns": COLUMNS}


if __name__ == "__main__":
    from bench.suite import standalone

    standalone(sys.modules[__name__])
