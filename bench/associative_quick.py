"""AssociativeLeaky, forward + backward: chunked scan (several chunk sizes) vs the step loop.

Usage: python bench/associative_quick.py [--reps 5] [--T 256 1024 4096]
One training step of snn.AssociativeLeaky(dim=64, key_dim=32, value_dim=64), B=4
(loss = sum(spikes * w), gradients w.r.t. all parameters), in one
process. Rows: the layer with chunk in {8, 16, 32, 64}; the same layer run as a
Python loop over layer.step, differentiated by autograd (the baseline, same
values; checked before timing). Prints median/min ms, peak memory and speed-up over the step loop;
writes bench/results/associative_quick-cpu-<host>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import markdown_table, save, shown, time_fn

B, DIM, DK, DV = 4, 64, 32, 64
CHUNKS = (8, 16, 32, 64)
LOOP = "step loop + autograd"


def step_loop(layer, x):
    S, spikes = None, []
    for t in range(x.shape[0]):
        s, S = layer.step(x[t], S)
        spikes.append(s)
    return mx.stack(spikes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--T", type=int, nargs="+", default=[256, 1024, 4096])
    args = parser.parse_args()
    mx.random.seed(0)
    layer = snn.AssociativeLeaky(DIM, DK, DV, threshold=0.5)
    mx.eval(layer.parameters())
    rows, records = [], []
    for T in args.T:
        x = mx.random.normal((T, B, DIM))
        w = mx.random.normal((T, B, DV))
        mx.eval(x, w)

        def make(chunk, x=x, w=w):
            def loss(x_):
                if chunk is None:
                    return (step_loop(layer, x_) * w).sum()
                layer.chunk = chunk
                return (layer(x_) * w).sum()

            grad = nn.value_and_grad(layer, loss)

            def run():
                out = grad(x)
                mx.eval(out)
                return out[1]

            return run

        impls = {LOOP: make(None), **{f"chunk={c}": make(c) for c in CHUNKS}}
        # correctness guard: the same decay-weight gradient as the step loop
        want = impls[LOOP]()["decay_proj"]["weight"]
        for name, fn in impls.items():
            err = (mx.abs(fn()["decay_proj"]["weight"] - want).max() / mx.abs(want).max()).item()
            if err > 1e-3:
                raise SystemExit(f"{name} disagrees with the step loop: relative error {err:.2g}")
        timings = {}
        for name, fn in impls.items():
            mx.reset_peak_memory()
            timings[name] = time_fn(fn, reps=args.reps, warmup=1)
            timings[name]["peak_memory_bytes"] = mx.get_peak_memory()
        base = timings[LOOP]["median_s"]
        for name, t in timings.items():
            rows.append(
                [
                    f"T={T}",
                    name,
                    f"{t['median_s'] * 1e3:.1f}",
                    f"{t['min_s'] * 1e3:.1f}",
                    f"{t['peak_memory_bytes'] / 2**20:.0f}",
                    f"{base / t['median_s']:.2f}x",
                ]
            )
            records.append(
                {"T": T, "B": B, "dim": DIM, "key_dim": DK, "value_dim": DV, "impl": name, **t}
            )
    table = markdown_table(
        ["shape", "implementation", "median ms", "min ms", "peak MiB", "speed-up vs step loop"],
        rows,
    )
    print(f"AssociativeLeaky fwd+bwd, B={B}, dim={DIM}, key_dim={DK}, value_dim={DV}, float32")
    print(table)
    path = save(
        "associative_quick",
        {"workload": "AssociativeLeaky fwd+bwd", "results": records, "table": table},
    )
    print(f"\nwrote {shown(path)}")


if __name__ == "__main__":
    main()
