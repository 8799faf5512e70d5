"""LIF layer, forward + backward: snn.LIF against a plain hand-written MLX loop.

Usage: python bench/lif_step.py [--reps 7]
Times one training step of the layer (loss = sum(spikes * w), gradient w.r.t.
the input) for the MNIST-like shape T=25, B=128, N=4096 and the long shape
T=256, B=16, N=1024, in one process. Rows: snn.LIF called eagerly under
mx.grad; the same step wrapped in mx.compile; a plain MLX loop differentiated
by autograd (the surrogate applied per step). Prints ratios of medians and
writes bench/results/lif_step-cpu-<host>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import markdown_table, save, shown, time_fn

SHAPES = [(25, 128, 4096), (256, 16, 1024)]


def plain_loop_loss(x, w, beta=0.9, threshold=1.0):
    """The obvious MLX implementation: a Python loop that autograd differentiates."""
    spike = snn.surrogate.fast_sigmoid()
    v = mx.zeros(x.shape[1:])
    spikes = []
    for t in range(x.shape[0]):
        h = beta * v + x[t]
        s = spike(h - threshold)
        v = h - threshold * s
        spikes.append(s)
    return (mx.stack(spikes) * w).sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    mx.random.seed(0)
    lif = snn.LIF(beta=0.9, threshold=1.0, reset="subtract", surrogate="fast_sigmoid")
    rows, records = [], []
    for T, B, N in SHAPES:
        x = mx.random.normal((T, B, N)) * 0.5 + 0.3
        w = mx.random.normal((T, B, N))
        mx.eval(x, w)

        def ours_loss(x_, w_=w):
            return (lif(x_) * w_).sum()

        impls = {
            "snn.LIF (eager)": mx.grad(ours_loss),
            "snn.LIF (mx.compile)": mx.compile(mx.grad(ours_loss)),
            "plain MLX loop + autograd": mx.grad(lambda x_, w_=w: plain_loop_loss(x_, w_)),
        }
        # correctness guard: same gradient before timing
        ref = impls["plain MLX loop + autograd"](x)
        for name, fn in impls.items():
            err = mx.abs(fn(x) - ref).max().item()
            if err > 1e-4:
                raise SystemExit(f"{name} disagrees with the plain loop: max error {err}")
        timings = {}
        for name, fn in impls.items():
            mx.reset_peak_memory()
            timings[name] = time_fn(lambda fn=fn, x=x: mx.eval(fn(x)), reps=args.reps)
            timings[name]["peak_memory_bytes"] = mx.get_peak_memory()
        base = timings["plain MLX loop + autograd"]["median_s"]
        for name, t in timings.items():
            rows.append(
                [
                    f"T={T}, B={B}, N={N}",
                    name,
                    f"{t['median_s'] * 1e3:.1f}",
                    f"{t['min_s'] * 1e3:.1f}",
                    f"{t['peak_memory_bytes'] / 2**20:.0f}",
                    f"{base / t['median_s']:.2f}x",
                ]
            )
            records.append({"T": T, "B": B, "N": N, "impl": name, **t})
    table = markdown_table(
        ["shape", "implementation", "median ms", "min ms", "peak MiB", "speed-up vs plain loop"],
        rows,
    )
    print(table)
    path = save("lif_step", {"workload": "LIF fwd+bwd", "results": records, "table": table})
    print(f"\nwrote {shown(path)}")


if __name__ == "__main__":
    main()
