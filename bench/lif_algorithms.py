"""snn.LIF step loop vs the exact parallel LIF, forward and forward+backward, over shapes.

Usage: python bench/lif_algorithms.py [--reps 3] [--quick] [--ts T ...] [--widths W ...]
Input x = 0.5 * N(0, 1) + 0.1 on [T, 1, width] (firing rate about 0.1, subtract
reset, beta 0.9). Rows: the loop (``algorithm="loop"``), the parallel path
(``algorithm="parallel"``, chunk 64) and, for reference, the loop forward with the
reverse-scan backward (internal ``_hybrid_fn``). Times are the min over reps
(the machine is shared; min is the least noisy), in ms, measured in one process.
Prints the table, the loop/parallel ratios and what ``choose_algorithm`` picks,
and writes bench/results/lif_algorithms-cpu-<host>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import markdown_table, save, shown, time_fn
from mlx_snn.functional import parallel_lif as pl

TS = [64, 256, 1024, 4096]
WIDTHS = [16, 64, 256, 1024, 4096, 16384, 65536]
MAX_ELEMENTS = 1 << 22


def hybrid(x):
    fn = pl._hybrid_fn("subtract", snn.surrogate.get("fast_sigmoid"), False, False, False)
    v0 = mx.zeros(x.shape[1:])
    return fn(x, v0, mx.array(0.9), mx.array(1.0))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="T <= 1024, width <= 4096")
    parser.add_argument("--ts", type=int, nargs="+", default=TS, help="sequence lengths")
    parser.add_argument("--widths", type=int, nargs="+", default=WIDTHS, help="B*N values")
    args = parser.parse_args()
    mx.random.seed(0)
    impls = {
        "loop": snn.LIF(algorithm="loop"),
        "parallel": snn.LIF(algorithm="parallel"),
        "hybrid": hybrid,
    }
    rows, records = [], []
    for T in [t for t in args.ts if not args.quick or t <= 1024]:
        for width in [w for w in args.widths if not args.quick or w <= 4096]:
            if T * width > MAX_ELEMENTS:
                continue
            x = mx.random.normal((T, 1, width)) * 0.5 + 0.1
            mx.eval(x)
            rec = {"T": T, "width": width, "rate": float(impls["loop"](x).mean())}
            for name, f in impls.items():
                grad = mx.grad(lambda x_, f=f: f(x_).sum())

                def fwd(f=f, x=x):
                    mx.eval(f(x))

                def fwd_bwd(grad=grad, x=x):
                    mx.eval(grad(x))

                rec[f"{name}_fwd"] = time_fn(fwd, reps=args.reps, warmup=1)["min_s"] * 1e3
                rec[f"{name}_fb"] = time_fn(fwd_bwd, reps=args.reps, warmup=1)["min_s"] * 1e3
            rec["auto"] = pl.choose_algorithm((T, 1, width), "subtract", "immediate")
            records.append(rec)
            rows.append(
                [T, width, f"{rec['rate']:.2f}"]
                + [f"{rec[f'{n}_{k}']:.1f}" for k in ("fwd", "fb") for n in impls]
                + [
                    f"{rec['loop_fwd'] / rec['parallel_fwd']:.2f}",
                    f"{rec['loop_fb'] / rec['parallel_fb']:.2f}",
                    rec["auto"],
                ]
            )
            print(rows[-1], flush=True)
    header = ["T", "width", "rate"]
    header += [f"{n} {k}" for k in ("fwd", "f+b") for n in impls]
    header += ["loop/par fwd", "loop/par f+b", "auto picks"]
    print("\n" + markdown_table(header, rows))
    path = save("lif_algorithms", {"reps": args.reps, "records": records})
    print(f"\nwrote {shown(path)}")


if __name__ == "__main__":
    main()
