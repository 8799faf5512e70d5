"""Profile of ``functional.lif_sequence`` (loop algorithm) against the machine's memory bandwidth.

Usage: python bench/lif_profile.py [--quick] [--reps N] [--streams 1 2]
       [--steps auto 1 8] [--out FILE.json]

For each shape (T=25, B=128, N=4096 and T=256, B=16, N=1024; --quick: small ones)
and each setting (CPU streams x time steps per compiled call: the library's rule
``auto``, or always 1, or always ``BLOCK``), interleaved so that
the settings see the same machine load, it times:

- ``fwd``: the forward pass alone (spikes and membrane evaluated),
- ``fwd+bwd``: forward and backward of ``loss = sum(spikes * w)`` w.r.t. ``x``,
- ``fwd+bwd, sum``: the same with ``loss = sum(spikes)``,

the fused step variants of :func:`step_variants` (one stream), and the
bandwidth of the machine: ``x + 1`` on a ``[T, B, N]`` float32 array
(4 bytes read and 4 written per element) on one stream and split across two.
The effective bandwidth of a LIF pass is its bytes per element (the budget in
``mlx_snn/functional/lif_forward.py``) times the elements over its time. Prints a
table and the 1-minute load average beside it; writes JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx.core as mx
import numpy as np

import mlx_snn as snn
from mlx_snn.functional import _loops, lif_sequence

SHAPES = [(25, 128, 4096), (256, 16, 1024)]
QUICK_SHAPES = [(25, 16, 4096), (256, 4, 1024)]
# bytes per element of x moved by each pass (float32, subtract reset; see lif_forward)
BUDGET = {"fwd": 36, "bwd": 28}


def _interleaved(fns: dict, reps: int, warmup: int = 2) -> dict:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: {"median_s": statistics.median(v), "min_s": min(v)} for k, v in times.items()}


RULE = (_loops.WIDE_PART, _loops.WIDE_PART_BACKWARD)


def _set_steps(steps: str) -> None:
    """``auto``: the library's rule; ``1``: one step per call; else ``BLOCK`` steps."""
    wide = {"auto": RULE, "1": (0, 0)}.get(steps, (1 << 62, 1 << 62))
    _loops.WIDE_PART, _loops.WIDE_PART_BACKWARD = wide


def bandwidth(shape, reps: int) -> dict:
    """GB/s of ``x + 1`` (8 bytes per element) on one stream and on two."""
    x = mx.random.normal(shape)
    mx.eval(x)
    half = shape[1] // 2
    parts = [x[:, :half], x[:, half:]]
    streams = [mx.default_stream(mx.cpu), mx.new_stream(mx.cpu)]

    def one():
        mx.eval(x + 1)

    def two():
        outs = []
        for part, stream in zip(parts, streams, strict=True):
            with mx.stream(stream):
                outs.append(part + 1)
        mx.eval(outs)

    res = _interleaved({"1 stream": one, "2 streams": two}, reps)
    return {k: 8 * x.size / v["median_s"] / 1e9 for k, v in res.items()}


def lif_cases(T, B, N, settings, reps: int) -> dict:
    rng = np.random.default_rng(0)
    x = mx.array((rng.standard_normal((T, B, N)) * 0.5 + 0.3).astype(np.float32))
    w = mx.array(rng.standard_normal((T, B, N)).astype(np.float32))
    mx.eval(x, w)
    surrogate = snn.surrogate.atan(2.0)

    def run(x_):
        return lif_sequence(x_, 0.9, 1.0, surrogate=surrogate, algorithm="loop")

    grad_w = mx.grad(lambda x_: (run(x_).spikes * w).sum())
    grad_sum = mx.grad(lambda x_: run(x_).spikes.sum())

    def fwd():
        out = run(x)
        mx.eval(out.spikes, out.mem)

    fns = {}
    for streams, steps in settings:

        def with_setting(fn, streams=streams, steps=steps):
            def call():
                snn.set_cpu_streams(streams)
                _set_steps(steps)
                fn()

            return call

        tag = f"streams={streams} steps={steps}"
        fns[f"{tag} | fwd"] = with_setting(fwd)
        fns[f"{tag} | fwd+bwd"] = with_setting(lambda: mx.eval(grad_w(x)))
        fns[f"{tag} | fwd+bwd, sum"] = with_setting(lambda: mx.eval(grad_sum(x)))
    return _interleaved(fns, reps)


def step_variants(T, B, N, reps: int) -> dict:
    """One stream, ``T`` fused step calls of the immediate subtract-reset update, three
    choices the loop makes (``mlx_snn/functional/lif_forward.py``, ``_loops.at``):

    - ``index``: the step's input read as ``x[t]`` inside the compiled call, vs
      ``slice``: as ``x[t:t+1].reshape(...)`` (``_loops.at``);
    - ``two outputs``: a step that writes the membrane and the state (the loop
      before 2026-12-05), vs ``one output``: the membrane only, its reset applied at
      the start of the next step (``_membrane_block``);
    - ``select``: the reset written as ``where(h >= θ, h - θ, h)``, vs the cast of the
      comparison (``h - θ (h >= θ)``) that the loop uses.
    """
    x = (mx.random.normal((T, B, N)) * 0.5 + 0.3).astype(mx.float32)
    beta, thr = mx.array(0.9), mx.array(1.0)
    mx.eval(x)

    def first(xb):
        return xb[0:1].reshape(xb.shape[1:])

    def reset(h, th):
        return h - th * (h >= th).astype(h.dtype)

    two = mx.compile(lambda xb, v, b, th: (lambda h: (h, reset(h, th)))(b * v + first(xb)))
    one_index = mx.compile(lambda xb, h, b, th: b * reset(h, th) + xb[0])
    one = mx.compile(lambda xb, h, b, th: b * reset(h, th) + first(xb))
    one_select = mx.compile(lambda xb, h, b, th: b * mx.where(h >= th, h - th, h) + first(xb))

    def loop(step, n_out):
        def run():
            carry, outs = mx.zeros((B, N)), []
            for t in range(T):
                out = step(x[t : t + 1], carry, beta, thr)
                carry = out[-1] if n_out == 2 else out
                outs.append(out[0] if n_out == 2 else out)
            mx.eval(outs, carry)

        return run

    with mx.stream(mx.default_stream(mx.cpu)):
        return _interleaved(
            {
                "one output, slice": loop(one, 1),
                "one output, index": loop(one_index, 1),
                "two outputs, slice": loop(two, 2),
                "one output, select": loop(one_select, 1),
            },
            reps,
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--streams", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", nargs="+", default=["auto"], choices=["auto", "1", "8"])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    reps = args.reps or (3 if args.quick else 15)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    settings = [(s, b) for s in args.streams for b in args.steps]
    default_streams = snn.cpu_streams()
    result = {"shapes": {}, "load_before": os.getloadavg()[0]}
    for T, B, N in shapes:
        bw = bandwidth((T, B, N), reps)
        cases = lif_cases(T, B, N, settings, reps)
        variants = step_variants(T, B, N, reps)
        elems = T * B * N
        key = f"T={T}, B={B}, N={N}"
        result["shapes"][key] = {"bandwidth_GBps": bw, "cases": cases, "step_variants": variants}
        print(f"{key}  ({elems / 1e6:.1f} M elements)")
        print(f"  x + 1: {bw['1 stream']:.1f} GB/s one stream, {bw['2 streams']:.1f} GB/s two")
        for name, r in cases.items():
            med = r["median_s"]
            kind = name.split(" | ")[1]
            gbps = BUDGET["fwd"] * elems / med / 1e9 if kind == "fwd" else None
            extra = f"  ({gbps:.1f} GB/s at {BUDGET['fwd']} B/elem)" if gbps else ""
            print(f"  {name:38s} median {med * 1e3:8.2f} ms  min {r['min_s'] * 1e3:8.2f} ms{extra}")
        base = variants["one output, slice"]["median_s"]
        for name, r in variants.items():
            med = r["median_s"]
            print(f"  steps only, {name:26s} median {med * 1e3:8.2f} ms  ({med / base:.2f}x)")
    snn.set_cpu_streams(default_streams)
    _set_steps("auto")
    result["load_after"] = os.getloadavg()[0]
    before, after = result["load_before"], result["load_after"]
    print(f"load average (1 min): {before:.2f} before, {after:.2f} after")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
