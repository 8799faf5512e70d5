"""functional.linear_scan: every internal method side by side over shapes (forward).

Usage: python bench/scan_methods.py [--reps 3] [--quick] [--ts ...] [--widths ...] [--kinds ...]
Times ``linear_scan(a, b, _method=m)`` for each method on b of shape [T, width]
with a scalar constant decay ("const"), a per-feature decay ("feature") and a
time-varying decay ("varying"), plus the "auto" choice, in one process. Prints
one table per decay kind (median ms; "auto" also names what it picked) and the
ratio of the loop to the best method, and writes
bench/results/scan_methods-cpu-<host>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import markdown_table, save, shown, time_fn
from mlx_snn.functional import linear_scan
from mlx_snn.functional import scan as scan_mod

METHODS = ["loop", "toeplitz", "strided", "matrix", "doubling", "auto"]
TS = [16, 64, 256, 1024, 4096, 16384]
WIDTHS = [16, 256, 4096, 65536]
MAX_ELEMENTS = 1 << 24


def decay(kind, T, width):
    if kind == "const":
        return mx.array(0.95)
    if kind == "feature":
        return mx.random.uniform(0.5, 0.999, (width,))
    return mx.random.uniform(0.5, 0.999, (T, width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="T <= 4096, width <= 4096")
    parser.add_argument("--ts", type=int, nargs="+", default=TS, help="sequence lengths")
    parser.add_argument("--widths", type=int, nargs="+", default=WIDTHS, help="lanes")
    parser.add_argument("--kinds", nargs="+", default=["const", "feature", "varying"])
    args = parser.parse_args()
    mx.random.seed(0)
    ts = [t for t in args.ts if not args.quick or t <= 4096]
    widths = [w for w in args.widths if not args.quick or w <= 4096]
    records = []
    for kind in args.kinds:
        rows = []
        for T in ts:
            for width in widths:
                if T * width > MAX_ELEMENTS:
                    continue
                b = mx.random.normal((T, width))
                a = decay(kind, T, width)
                mx.eval(a, b)
                row = {"kind": kind, "T": T, "width": width}
                for m in METHODS:
                    if m == "toeplitz" and kind == "varying":
                        continue
                    if m == "loop" and T * width > (1 << 22) and T > 4096:
                        continue
                    if m == "matrix" and T * width > (1 << 22):
                        continue

                    def fn(a=a, b=b, m=m):
                        mx.eval(linear_scan(a, b, _method=m))

                    row[m] = time_fn(fn, reps=args.reps, warmup=1)["median_s"] * 1e3
                const = kind != "varying"
                row["auto_pick"] = scan_mod._choose(T, width, const)
                records.append(row)
                best = min(v for k, v in row.items() if k in METHODS[:-1])
                loop = row.get("loop")
                rows.append(
                    [T, width]
                    + [f"{row[m]:.2f}" if m in row else "-" for m in METHODS]
                    + [row["auto_pick"], f"{loop / best:.1f}x" if loop else "-"]
                )
                print(kind, rows[-1], flush=True)
        print(f"\n### decay: {kind} (median ms)\n")
        print(markdown_table(["T", "width", *METHODS, "auto picks", "loop/best"], rows))
    path = save("scan_methods", {"reps": args.reps, "records": records})
    print(f"\nwrote {shown(path)}")


if __name__ == "__main__":
    main()
