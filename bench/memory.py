"""Training memory and step time against T: plain BPTT, checkpointed BPTT and truncated BPTT.

Usage: python bench/memory.py [--quick] [--models mlp convnet] [--dtypes float32 bfloat16]
                              [--steps 64 256 1024 4096] [--chunk 64] [--limit-gib 8]
                              [--max-alloc-gib 5] [--max-seconds 120] [--no-times]

One gradient computation (forward + backward, no optimizer update) per cell of
- ``mlp``: Linear-LIF stacks 784-1024-1024-10 with B=32 (rate-coded input, 20% spikes);
- ``convnet``: ``snn.models.mnist_convnet()`` (baseline mode, BatchNorm in training
  mode) with B=32 on 28x28 frames;
each in float32 and bfloat16 (model and input cast with ``set_dtype`` / ``astype``),
and three ways to train over T steps (``mlx_snn.training``):
- ``plain``: ``nn.value_and_grad`` through the whole sequence;
- ``checkpoint``: ``run_chunked(..., chunk, checkpoint=True)``: the same gradients,
  chunks recomputed in the backward pass;
- ``tbptt``: ``tbptt(..., chunk)``: one backward pass per chunk, gradients summed.
The loss is cross-entropy on the output spike counts (per chunk for ``tbptt``).

Peak memory is MLX's allocator peak (``mx.get_peak_memory``, reset before the case,
the MLX buffer cache emptied) over the first call: the whole footprint of the step,
model parameters and input included (optimizer state is not: it is small here).
Peak memory grows linearly in T (plain BPTT: all activations; checkpointed and
truncated BPTT past one chunk: only the input, the outputs and one state per chunk),
so each (model, dtype, mode) gets a least-squares line ``peak = a + b*T`` through the
T it measured (for the chunked modes, through ``T >= chunk``); a cell whose predicted
peak exceeds ``--max-alloc-gib`` (default 5 GiB: the machine these ran on is shared)
or whose predicted time exceeds ``--max-seconds`` is not run and shows the line's
value marked "est.". The last columns are that line's slope and the largest T whose
predicted peak fits in ``--limit-gib`` (default 8 GiB).
Step times (median of ``--reps``, one warm-up) are measured only where the cell ran;
``--no-times`` skips them (memory only: one call per cell). With times, a last table
times the LIF layer alone (``--lif-shape``, forward + backward) in float32, bfloat16
and float16: where MLX computes bfloat16 natively (Apple GPUs) it should be faster
than float32; MLX's x86 CPU backend has no bfloat16 arithmetic (it converts), so there
it is not.

``--quick``: B=4, mlp 784-128-128-10, T in {16, 64}, chunk 16, float32 only, no
times: a smoke run. ``--merge A.json B.json`` measures nothing and rebuilds the table
from the records of earlier runs (e.g. the models measured in separate processes).
Writes bench/results/memory-cpu-<host>.json (memory_quick-... with --quick) and the
markdown table next to it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import fmt_bytes, fmt_time, markdown_table, save, time_fn
from mlx_snn.training import Stateful, run_chunked, tbptt

MODES = ("plain", "checkpoint", "tbptt")
DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16}
GIB = 2**30


def build(model: str, dtype: mx.Dtype, hidden: int) -> tuple[nn.Module, tuple[int, ...]]:
    """The network (a stateful ``net(x, state)`` module) and one frame's shape."""
    mx.random.seed(0)
    if model == "mlp":
        layers = []
        for a, b in ((784, hidden), (hidden, hidden), (hidden, 10)):
            layers += [nn.Linear(a, b), snn.LIF(beta=0.9, algorithm="loop")]
        net, frame = Stateful(*layers), (784,)
    else:
        net, frame = Stateful(snn.models.mnist_convnet()), (28, 28, 1)
    net.set_dtype(dtype)
    net.train()
    mx.eval(net.parameters())
    return net, frame


def make_step(net, mode: str, x: mx.array, labels: mx.array, chunk: int):
    """One synchronised gradient computation of ``mode``."""

    def loss(y):
        return snn.loss.ce_count(y, labels)

    if mode == "tbptt":

        def step():
            res = tbptt(net, loss, x, chunk)
            mx.eval(res.loss, res.grads)

        return step
    grad_fn = nn.value_and_grad(
        net,
        lambda: loss(
            run_chunked(
                net, x, chunk if mode == "checkpoint" else None, checkpoint=mode != "plain"
            )[0]
        ),
    )

    def step():
        # the model's state too, as a training loop does (BatchNorm statistics)
        mx.eval(grad_fn(), net.parameters())

    return step


def measure(net, frame, mode, T, batch, dtype, chunk, reps, times) -> dict:
    gc.collect()
    mx.clear_cache()
    x = mx.random.bernoulli(0.2, (T, batch, *frame), key=mx.random.key(T)).astype(dtype)
    labels = mx.array(np.arange(batch) % 10, dtype=mx.int32)
    mx.eval(x)
    step = make_step(net, mode, x, labels, chunk)
    mx.reset_peak_memory()
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    out = {"peak_bytes": int(mx.get_peak_memory()), "first_call_s": first}
    if times:
        timing = time_fn(step, reps=reps, warmup=0)
        out.update(median_s=timing["median_s"], min_s=timing["min_s"])
    del step, x
    gc.collect()
    mx.clear_cache()
    return out


def fit_line(points: dict[int, float]) -> tuple[float, float] | None:
    """Least-squares ``a + b*T`` through ``{T: value}`` (None with fewer than 2 points)."""
    if len(points) < 2:
        return None
    t = np.array(sorted(points), dtype=np.float64)
    v = np.array([points[k] for k in sorted(points)], dtype=np.float64)
    b, a = np.polyfit(t, v, 1)
    return float(a), float(max(b, 0.0))


def largest_t(line, limit_bytes: float) -> str:
    if line is None:
        return "n/a"
    a, b = line
    if a >= limit_bytes:
        return "none"
    if b <= 0:
        return "unbounded"
    t = int((limit_bytes - a) / b)
    return f"{t:,}" if t < 10**9 else f"> {10**9:,}"


def estimate(mode: str, peaks: dict[int, float], T: int, chunk: int) -> float | None:
    """Predicted peak at ``T`` from the measured ``peaks``, or None.

    Up to one chunk every mode holds all its activations (a line through the
    measured ``T <= chunk``); plain BPTT keeps growing that way. Past one chunk the
    chunked modes grow only by the input, the outputs and one state per chunk: a line
    through the measured ``T >= chunk`` (with one such point, that point's value)."""
    if mode == "plain" or T <= chunk:
        small = peaks if mode == "plain" else {t: v for t, v in peaks.items() if t <= chunk}
        line = fit_line(small)
        return None if line is None else line[0] + line[1] * T
    line = fit_line({t: v for t, v in peaks.items() if t >= chunk})
    if line is not None:
        return line[0] + line[1] * T
    beyond = [v for t, v in peaks.items() if t >= chunk]
    return max(beyond) if beyond else estimate(mode, peaks, chunk, chunk)


def growth_line(mode: str, peaks: dict[int, float], chunk: int):
    """The line that extrapolates to long sequences (see :func:`estimate`)."""
    return fit_line(peaks if mode == "plain" else {t: v for t, v in peaks.items() if t >= chunk})


def run_cells(args, model: str, dtype_name: str, records: list[dict]) -> None:
    """Measure one (model, dtype): every mode over the fit and table steps in budget."""
    dtype = DTYPES[dtype_name]
    net, frame = build(model, dtype, args.hidden)
    for mode in args.modes:
        peaks, seconds = {}, {}
        for T in sorted(set(args.fit_steps) | set(args.steps)):
            est_peak = estimate(mode, peaks, T, args.chunk) or 0.0
            t_line = fit_line(seconds)
            est_s = t_line[0] + t_line[1] * T if t_line else 0.0
            if len(peaks) >= 2 and (
                est_peak > args.max_alloc_gib * GIB or est_s > args.max_seconds
            ):
                continue
            out = measure(net, frame, mode, T, args.batch, dtype, args.chunk, args.reps, args.times)
            peaks[T] = out["peak_bytes"]
            seconds[T] = out.get("median_s", out["first_call_s"])
            records.append({"model": model, "dtype": dtype_name, "mode": mode, "T": T, **out})
            print(
                f"  {model} {dtype_name} {mode} T={T}: peak {fmt_bytes(out['peak_bytes'])}"
                + (f", {fmt_time(out['median_s'])}" if "median_s" in out else ""),
                file=sys.stderr,
            )


def groups(records: list[dict]) -> dict[tuple[str, str, str], dict[int, dict]]:
    """``{(model, dtype, mode): {T: record}}`` in the order first seen."""
    out: dict[tuple[str, str, str], dict[int, dict]] = {}
    for r in records:
        out.setdefault((r["model"], r["dtype"], r["mode"]), {})[r["T"]] = r
    return out


def table_rows(args, records: list[dict]) -> list[list[str]]:
    rows = []
    for (model, dtype, mode), cells_by_t in groups(records).items():
        peaks = {t: r["peak_bytes"] for t, r in cells_by_t.items()}
        line = growth_line(mode, peaks, args.chunk)
        cells = []
        for T in args.steps:
            if T in cells_by_t:
                text = fmt_bytes(peaks[T])
                if "median_s" in cells_by_t[T]:
                    text += f", {fmt_time(cells_by_t[T]['median_s'])}"
            else:
                est = estimate(mode, peaks, T, args.chunk)
                text = "n/a" if est is None else f"est. {fmt_bytes(int(est))}"
            cells.append(text)
        slope = f"{line[1] / 2**20:.3g} MiB/step" if line else "n/a"
        rows.append([model, dtype, mode, *cells, slope, largest_t(line, args.limit_gib * GIB)])
    return rows


def ratio_notes(args, records: list[dict]) -> list[str]:
    """Peak of checkpointed and truncated over plain BPTT at the longest table T
    (measured where both ran, else from the lines), and measured step-time ratios."""
    notes = []
    g = groups(records)
    for model, dtype in dict.fromkeys((m, d) for m, d, _ in g):
        plain = g.get((model, dtype, "plain"))
        for mode in ("checkpoint", "tbptt"):
            other = g.get((model, dtype, mode))
            if not plain or not other:
                continue
            T = max(args.steps)
            peaks = [{t: r["peak_bytes"] for t, r in c.items()} for c in (plain, other)]
            measured = T in plain and T in other
            est = [
                estimate(m, pk, T, args.chunk) for m, pk in zip(("plain", mode), peaks, strict=True)
            ]
            if None in est:
                continue
            text = (
                f"{model} {dtype} T={T}: {mode}/plain peak {est[1] / est[0]:.3f}"
                f" ({'measured' if measured else 'estimated from the lines'})"
            )
            common = [t for t in plain if t in other and "median_s" in plain[t]]
            if common:
                t = max(common)
                ratio = other[t]["median_s"] / plain[t]["median_s"]
                text += f"; step time {ratio:.2f}x at T={t}"
            notes.append(text)
    return notes


def lif_dtype_table(args) -> tuple[list[dict], str]:
    """The LIF layer alone (``algorithm="loop"``), forward + backward, per dtype."""
    T, B, N = args.lif_shape
    records, rows = [], []
    for name in ("float32", "bfloat16", "float16"):
        dtype = getattr(mx, name)
        x = (mx.random.normal((T, B, N), key=mx.random.key(1)) * 0.5 + 0.3).astype(dtype)
        c = mx.random.normal((T, B, N), key=mx.random.key(2)).astype(dtype)
        lif = snn.LIF(beta=0.9, algorithm="loop")
        grad = mx.grad(lambda a, c=c, lif=lif: (lif(a) * c).astype(mx.float32).sum())
        mx.eval(x, c)

        def step(grad=grad, x=x):
            mx.eval(grad(x))

        t = time_fn(step, reps=args.reps, warmup=1)
        records.append({"dtype": name, "T": T, "B": B, "N": N, **t})
        rows.append([name, fmt_time(t["median_s"]), fmt_bytes(t["peak_memory_bytes"])])
    base = records[0]["median_s"]
    for row, rec in zip(rows, records, strict=True):
        row.append(f"{base / rec['median_s']:.2f}x")
    header = [f"LIF layer fwd+bwd T={T} B={B} N={N}", "median", "peak", "speed-up vs float32"]
    return records, markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run (see the docstring)")
    p.add_argument("--models", nargs="+", choices=("mlp", "convnet"), default=None)
    p.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=None)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--steps", nargs="+", type=int, default=None, help="T of the table")
    p.add_argument("--fit-steps", nargs="+", type=int, default=None, help="extra small T")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None, help="mlp hidden width (1024)")
    p.add_argument("--chunk", type=int, default=None, help="chunk of checkpoint / tbptt (64)")
    p.add_argument("--limit-gib", type=float, default=8.0, help="memory budget for 'largest T'")
    p.add_argument("--max-alloc-gib", type=float, default=5.0, help="never run a bigger cell")
    p.add_argument("--max-seconds", type=float, default=120.0, help="never run a longer cell")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--no-times", dest="times", action="store_false", help="memory only")
    p.add_argument(
        "--lif-shape",
        nargs=3,
        type=int,
        default=(256, 32, 1024),
        metavar=("T", "B", "N"),
        help="the LIF layer timed per dtype (with times only)",
    )
    p.add_argument("--out", type=Path, default=None, help="results folder")
    p.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="JSON",
        help="measure nothing: rebuild the table from these result files' records",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.models = args.models or ["mlp"]
        args.dtypes = args.dtypes or ["float32"]
        args.steps = args.steps or [16, 64]
        args.fit_steps = args.fit_steps or [8]
        args.batch, args.hidden = args.batch or 4, args.hidden or 128
        args.chunk, args.times = args.chunk or 16, False
    args.models = args.models or ["mlp", "convnet"]
    args.dtypes = args.dtypes or list(DTYPES)
    args.steps = args.steps or [64, 256, 1024, 4096]
    args.fit_steps = args.fit_steps or [16, 32]
    args.batch, args.hidden, args.chunk = args.batch or 32, args.hidden or 1024, args.chunk or 64
    for name in ("batch", "hidden", "chunk", "reps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")

    print(f"mlx {mx.__version__}, device {mx.default_device()}", file=sys.stderr)
    records = []
    if args.merge:
        for path in args.merge:
            records += json.loads(Path(path).read_text())["records"]
        args.times = any("median_s" in r for r in records)
    else:
        for model in args.models:
            for dtype_name in args.dtypes:
                run_cells(args, model, dtype_name, records)
    header = ["model", "dtype", "mode", *(f"T={T}" for T in args.steps)]
    header += ["peak per step", f"largest T in {args.limit_gib:g} GiB"]
    table = markdown_table(header, table_rows(args, records))
    what = "peak memory" + (f", step time (median of {args.reps})" if args.times else "")
    table = (
        f"Training step (forward + backward) {what}; B={args.batch}, chunk={args.chunk}; "
        "'est.' = from the line through the measured T.\n\n" + table
    )
    notes = ratio_notes(args, records)
    if notes:
        table += "\n\n" + "\n".join(f"- {n}" for n in notes)
    lif_records = []
    if args.times and not args.merge:
        lif_records, lif_table = lif_dtype_table(args)
        table += "\n\n" + lif_table
    print(table)
    path = save(
        "memory_quick" if args.quick else "memory",
        {
            "workload": "training memory vs T: plain / checkpointed / truncated BPTT",
            "settings": {
                k: getattr(args, k)
                for k in (
                    "models",
                    "dtypes",
                    "modes",
                    "steps",
                    "fit_steps",
                    "batch",
                    "hidden",
                    "chunk",
                    "limit_gib",
                    "max_alloc_gib",
                    "max_seconds",
                    "reps",
                    "times",
                )
            },
            "records": records,
            "lif_dtypes": lif_records,
            "table": table,
        },
        out=args.out,
    )
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
