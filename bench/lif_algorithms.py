"""snn.LIF step loop vs the exact parallel LIF, forward and forward+backward, over shapes.

Usage: python bench/lif_algorithms.py [--reps 3] [--quick] [--ts T ...] [--widths W ...]
    [--reset subtract|zero|none] [--timing immediate|delayed] [--out DIR]
Input x = 0.5 * N(0, 1) + 0.1 on [T, 1, width] (firing rate about 0.1, beta 0.9;
subtract reset with immediate timing unless ``--reset``/``--timing`` say
otherwise). Rows: the loop (``algorithm="loop"``), the parallel path
(``algorithm="parallel"``, chunk 64) and, for reference with immediate timing,
the loop forward with the reverse-scan backward (``hybrid_fn`` below, built
from the library's internals). Times are the min over reps (the machine is
shared; min is the least noisy), in ms, measured in one process. Prints the
table, the loop/parallel ratios and what ``choose_algorithm`` picks; each record
also holds the parallel forward's work counters (settle checks, resumes). Writes
bench/results/lif_algorithms[-<reset>-<timing>]-cpu-<host>.json (or under --out).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import markdown_table, save, shown, time_fn
from mlx_snn.functional import parallel_lif as pl
from mlx_snn.functional.lif_backward import backward_immediate
from mlx_snn.functional.lif_forward import loop_forward

TS = [64, 256, 1024, 4096]
WIDTHS = [16, 64, 256, 1024, 4096, 16384, 65536]
MAX_ELEMENTS = 1 << 22


@functools.cache
def hybrid_fn(reset, surrogate, detach, need_beta, need_thr):
    """Step-loop forward (``functional.lif_forward``) with the parallel reverse-scan backward."""
    cfg = (reset, surrogate, detach, need_beta, need_thr)

    @mx.custom_function
    def lif(x, v0, beta, threshold):
        return loop_forward(reset, "immediate", x, v0, beta, threshold)

    @lif.vjp
    def lif_vjp(primals, cotangents, outputs):
        return backward_immediate(cfg, primals, cotangents, outputs, solve=pl._scan_recurrence)

    return lif


def hybrid(reset):
    fn = hybrid_fn(reset, snn.surrogate.get("fast_sigmoid"), False, False, False)

    def run(x):
        return fn(x, mx.zeros(x.shape[1:]), mx.array(0.9), mx.array(1.0))[0]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="T <= 1024, width <= 4096")
    parser.add_argument("--ts", type=int, nargs="+", default=TS, help="sequence lengths")
    parser.add_argument("--widths", type=int, nargs="+", default=WIDTHS, help="B*N values")
    parser.add_argument("--reset", default="subtract", choices=["subtract", "zero", "none"])
    parser.add_argument("--timing", default="immediate", choices=["immediate", "delayed"])
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args()
    mx.random.seed(0)
    mode = dict(reset=args.reset, reset_timing=args.timing)
    impls = {
        "loop": snn.LIF(**mode, algorithm="loop"),
        "parallel": snn.LIF(**mode, algorithm="parallel"),
    }
    if args.timing == "immediate":
        impls["hybrid"] = hybrid(args.reset)
    rows, records = [], []
    for T in [t for t in args.ts if not args.quick or t <= 1024]:
        for width in [w for w in args.widths if not args.quick or w <= 4096]:
            if T * width > MAX_ELEMENTS:
                continue
            x = mx.random.normal((T, 1, width)) * 0.5 + 0.1
            mx.eval(x)
            rec = {"T": T, "width": width, "rate": float(impls["loop"](x).mean())}
            pl.counters.clear()
            mx.eval(impls["parallel"](x))
            rec["parallel_counters"] = dict(pl.counters)
            for name, f in impls.items():
                grad = mx.grad(lambda x_, f=f: f(x_).sum())

                def fwd(f=f, x=x):
                    mx.eval(f(x))

                def fwd_bwd(grad=grad, x=x):
                    mx.eval(grad(x))

                rec[f"{name}_fwd"] = time_fn(fwd, reps=args.reps, warmup=1)["min_s"] * 1e3
                rec[f"{name}_fb"] = time_fn(fwd_bwd, reps=args.reps, warmup=1)["min_s"] * 1e3
            rec["auto"] = pl.choose_algorithm((T, 1, width), args.reset, args.timing)
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
    name = "lif_algorithms"
    if (args.reset, args.timing) != ("subtract", "immediate"):
        name += f"-{args.reset}-{args.timing}"
    payload = {"reps": args.reps, "mode": mode, "records": records}
    path = save(name, payload, out=args.out)
    print(f"\nwrote {shown(path)}")


if __name__ == "__main__":
    main()
