"""Custom kernels vs the pure-MLX path: LIF, linear scan and AMOS, forward + backward.

Usage: ``python -m bench.kernels [--quick] [--reps 5] [--out DIR] [--bandwidth GB/s]``.

Cases (issue 13): LIF fwd+bwd at T=25/B=128/N=4096 and T=1024/B=16/N=1024; linear
scan and AMOS fwd+bwd at T=1024 and T=4096 (B=16, N=1024). Each row times the public
functions of ``mlx_snn.functional`` with ``backend="mlx"`` and, for each kernel
backend present (``mlx_snn.backends.kernel_backends()``), with that backend, and
reports the bytes the kernel path must move at least (every [T, ...] array read
or written once, itemsize 4) per second of each, beside the device's memory
bandwidth (``--bandwidth``, else a table of known devices). Without a kernel
backend (this CPU) only the MLX path runs and the output says so. Writes
``bench/results/kernels-<kind>-<host>.json`` (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse

import mlx.core as mx

import mlx_snn as snn
from bench.harness import markdown_table, save, time_fn
from mlx_snn import backends

# peak memory bandwidth in GB/s, by a substring of the device name
BANDWIDTH_GBS = {
    "H200": 4800,
    "H100": 3350,
    "A100": 2039,
    "M4 Max": 546,
    "M4 Pro": 273,
    "M4": 120,
    "M3 Max": 400,
    "M3 Pro": 150,
    "M3": 100,
    "M2 Ultra": 800,
    "M2 Max": 400,
    "M2 Pro": 200,
    "M2": 100,
    "M1 Ultra": 800,
    "M1 Max": 400,
    "M1 Pro": 200,
    "M1": 68,
}

# [T, ...] arrays each path moves at least once per fwd+bwd (kernel path)
TRAFFIC = {
    "lif": 8,  # fwd: x, spikes, mem; bwd: h, spikes, g_spikes, g_mem, g_x
    "linear_scan": 6,  # fwd: b, h; bwd: g, g_b, then g_b * h_prev
    "amos": 7,  # fwd: x, spikes, h; bwd: g_spikes, g_h, h, g_x
}


def cases(quick: bool):
    if quick:
        return [
            ("lif", 25, 8, 256),
            ("lif", 128, 4, 256),
            ("linear_scan", 128, 4, 256),
            ("amos", 128, 4, 256),
        ]
    return [
        ("lif", 25, 128, 4096),
        ("lif", 1024, 16, 1024),
        *[(op, T, 16, 1024) for op in ("linear_scan", "amos") for T in (1024, 4096)],
    ]


def step(op: str, backend: str, x: mx.array, w: mx.array):
    """A forward + backward closure for one op through ``mlx_snn.functional`` on ``backend``."""
    surr = snn.surrogate.atan()
    fn = snn.functional

    def loss(x_):
        if op == "lif":
            out = fn.lif_sequence(x_, 0.9, 1.0, surrogate=surr, backend=backend)
        elif op == "linear_scan":
            return (fn.linear_scan(0.95, x_, backend=backend) * w).sum()
        else:
            out = fn.amos(x_, tau=2.0, threshold=1.0, surrogate=surr, backend=backend)
        return (out.spikes * w).sum() + (out.mem * w).sum()

    grad = mx.grad(loss)
    return lambda: mx.eval(grad(x))


def device_bandwidth(override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given"
    name = ""
    if backends.metal_device():
        name = str(mx.metal.device_info().get("device_name", ""))
    elif backends.cuda_device():
        name = str(mx.default_device())
    for key, gbs in BANDWIDTH_GBS.items():
        if key in name:
            return float(gbs), name
    return None, name or "cpu"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes (smoke test)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--bandwidth", type=float, default=None, help="device peak GB/s")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)

    paths = ["mlx", *backends.kernel_backends()]
    peak, device = device_bandwidth(args.bandwidth)
    if len(paths) == 1:
        status = ", ".join(f"{b}: {s}" for b, s in backends.kernel_status().items())
        print(f"no kernel backend is present here ({status}): timing the MLX path only")
    header = ["op", "T x B x N"]
    for p in paths:
        header += [f"{p} ms", f"{p} GB/s"]
    header += ["peak GB/s"]
    rows, records = [], []
    for op, T, B, N in cases(args.quick):
        x = mx.random.normal((T, B, N)) * 0.5 + 0.3
        w = mx.random.normal((T, B, N))
        mx.eval(x, w)
        nbytes = TRAFFIC[op] * T * B * N * 4
        row = [op, f"{T} x {B} x {N}"]
        for p in paths:
            t = time_fn(step(op, p, x, w), reps=args.reps, warmup=1)
            gbs = nbytes / t["median_s"] / 1e9
            row += [f"{t['median_s'] * 1e3:.2f}", f"{gbs:.1f}"]
            records.append(
                {"op": op, "T": T, "B": B, "N": N, "path": p, "bytes": nbytes, "gbs": gbs, **t}
            )
        row.append(f"{peak:.0f}" if peak else "n/a")
        rows.append(row)
    table = markdown_table(header, rows)
    print(table)
    kind = next((p for p in paths if p != "mlx"), "cpu")
    path = save(
        "kernels" + ("_quick" if args.quick else ""),
        {
            "records": records,
            "table": table,
            "device": device,
            "peak_gbs": peak,
            "note": args.note,
            "kernel_backends": paths[1:],
        },
        kind=kind,
        out=args.out,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
