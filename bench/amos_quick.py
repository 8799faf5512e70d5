"""AMOS (PTTFS) layer, fwd+bwd: parallel method vs sequential step loop, side by side.

Usage: ``python -m bench.amos_quick [--T 256 ...] [--width 256 ...] [--batch 16] [--compile]``.
``--width`` is B*N (neurons in the layer); ``--compile`` wraps both grad steps in
``mx.compile``.
The two methods alternate in ``--rounds`` rounds (the machine is shared). Prints a
markdown table with the ratio of medians (sequential / parallel) and
writes ``bench/results/amos_quick-<kind>-<host>.json``.
"""

from __future__ import annotations

import argparse
import statistics

import mlx.core as mx

import mlx_snn as snn
from bench.harness import markdown_table, save, shown, time_fn


def step_fn(x, w, method, compiled):
    def loss(x):
        out = snn.functional.amos(x, tau=2.0, threshold=1.0, method=method)
        return (out.spikes * w).sum()

    grad = mx.compile(mx.grad(loss)) if compiled else mx.grad(loss)
    return lambda: mx.eval(grad(x))


HEADER = ["T", "B x N", "sequential ms", "parallel ms", "seq / par (medians)", "(mins)"]


def _merge(runs):
    times = [t for r in runs for t in r["times_s"]]
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--T", type=int, nargs="+", default=[8, 64, 256, 1024])
    parser.add_argument("--width", type=int, nargs="+", default=[256, 1024, 16384])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="mx.compile both grad steps")
    parser.add_argument("--note", default="", help="stored with the results (e.g. machine load)")
    args = parser.parse_args()
    rows, results = [], []
    for width in args.width:
        for T in args.T:
            n = width // args.batch
            mx.random.seed(0)
            x = 2.0 * mx.random.uniform(shape=(T, args.batch, n))
            w = mx.random.normal((T, args.batch, n))
            mx.eval(x, w)
            # alternate the two methods so that load changes hit both alike
            par, seq = [], []
            for _ in range(args.rounds):
                par_fn = step_fn(x, w, "parallel", args.compile)
                seq_fn = step_fn(x, w, "sequential", args.compile)
                par.append(time_fn(par_fn, reps=args.reps))
                seq.append(time_fn(seq_fn, reps=max(3, args.reps // 2)))
            par, seq = _merge(par), _merge(seq)
            ratio = seq["median_s"] / par["median_s"]
            ratio_min = seq["min_s"] / par["min_s"]
            row = {"T": T, "B": args.batch, "N": n, "ratio": ratio, "ratio_min": ratio_min}
            results.append({**row, "parallel": par, "sequential": seq})
            rows.append(
                [
                    T,
                    f"{args.batch}x{n}",
                    f"{seq['median_s'] * 1e3:.2f}",
                    f"{par['median_s'] * 1e3:.3f}",
                    f"{ratio:.1f}x",
                    f"{ratio_min:.1f}x",
                ]
            )
            print(markdown_table(HEADER, rows[-1:]), flush=True)
    table = markdown_table(HEADER, rows)
    print(table)
    workload = "AMOS fwd+bwd, tau=2" + (", mx.compile" if args.compile else "")
    payload = {"workload": workload, "note": args.note, "rows": results, "table": table}
    path = save("amos_quick_compiled" if args.compile else "amos_quick", payload)
    print(f"wrote {shown(path)}")


if __name__ == "__main__":
    main()
