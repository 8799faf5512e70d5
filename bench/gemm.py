"""fp32 GEMM throughput: MLX vs NumPy (and PyTorch when installed), side by side.

Usage: ``python -m bench.gemm [--reps 5] [--note ...]``.

The paper networks are convolution-bound, and a convolution on the CPU is an im2col
GEMM, so the CPU backend's matrix multiply sets their speed. The shapes are the GEMMs
of one ``mnist_convnet`` TAC g=4 training step at B=32 (conv2 forward: ``[G*B*11*11,
288] @ [288, 64]``, its weight gradient, conv1 forward) plus a square 1024^3. Each row
times the same product in every library, alternating, and prints GFLOP/s and the ratio
to MLX. This explains the MNIST-step gap to snnTorch in ``bench/results/cpu-vm.md``: on
Linux the ``mlx[cpu]`` wheel's ``cblas_sgemm`` is whatever ``libblas`` it loads (a
reference BLAS in the wheel we measured), while NumPy and PyTorch ship tuned BLAS.
Writes ``bench/results/gemm-<kind>-<host>.json``.
"""

from __future__ import annotations

import argparse
import statistics

import mlx.core as mx
import numpy as np

from bench import peers
from bench.harness import markdown_table, save, shown, time_fn

# (name, M, K, N): C[M, N] = A[M, K] @ B[K, N]
SHAPES = (
    ("conv2 fwd, TAC g=4 B=32", 2 * 32 * 11 * 11, 288, 64),
    ("conv2 weight grad", 288, 2 * 32 * 11 * 11, 64),
    ("conv1 fwd, TAC g=4 B=32", 7 * 32 * 26 * 26, 9, 32),
    ("square 1024", 1024, 1024, 1024),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--note", default="", help="stored with the results (e.g. machine load)")
    args = parser.parse_args(argv)
    torch = peers.load("torch")
    libs = ["MLX", "NumPy"] + (["PyTorch"] if torch is not None else [])
    header = ["GEMM", "M x K x N"] + [f"{lib} GFLOP/s" for lib in libs]
    header += [f"{lib} / MLX" for lib in libs[1:]]
    rng = np.random.default_rng(0)
    rows, results = [], []
    for name, m, k, n in SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        fns = {"MLX": _mlx_fn(a, b), "NumPy": lambda a=a, b=b: a @ b}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns["PyTorch"] = lambda ta=ta, tb=tb: ta @ tb
        times = {lib: [] for lib in libs}
        for _ in range(2):  # alternate the libraries so that load changes hit all alike
            for lib in libs:
                times[lib] += time_fn(fns[lib], reps=args.reps, warmup=1)["times_s"]
        flop = 2.0 * m * k * n
        median = {lib: statistics.median(t) for lib, t in times.items()}
        gflops = {lib: flop / median[lib] / 1e9 for lib in libs}
        results.append({"name": name, "M": m, "K": k, "N": n, "times_s": times, "gflops": gflops})
        row = [name, f"{m} x {k} x {n}"] + [f"{gflops[lib]:.1f}" for lib in libs]
        row += [f"{gflops[lib] / gflops['MLX']:.1f}x" for lib in libs[1:]]
        rows.append(row)
        print(markdown_table(header, rows[-1:]), flush=True)
    table = markdown_table(header, rows)
    print(table)
    payload = {"workload": "fp32 GEMM", "note": args.note, "rows": results, "table": table}
    print(f"wrote {shown(save('gemm', payload))}")


def _mlx_fn(a: np.ndarray, b: np.ndarray):
    xa, xb = mx.array(a), mx.array(b)
    mx.eval(xa, xb)
    return lambda: mx.eval(xa @ xb)


if __name__ == "__main__":
    main()
