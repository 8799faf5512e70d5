"""functional.linear_scan: its methods and two that ``auto`` never picks, over shapes (forward).

Usage: python bench/scan_methods.py [--reps 3] [--quick] [--ts ...] [--widths ...] [--kinds ...]
Times ``linear_scan(a, b, method=m)`` for the library's methods ("loop",
"strided", "doubling", "auto") and this file's ``toeplitz`` and ``matrix``
block scans (kept here, not in the library: measured slower than the strided
scan, so ``auto`` never chose them) on b of shape [T, width] with a scalar
constant decay ("const"), a per-feature decay ("feature") and a time-varying
decay ("varying"), in one process. Prints one table per decay kind (median ms;
"auto" also names what it picked) and the ratio of the loop to the best method,
and writes bench/results/scan_methods-cpu-<host>.json.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import markdown_table, save, shown, time_fn
from mlx_snn.functional import linear_scan
from mlx_snn.functional.scan import choose_method, decay_powers

METHODS = ["loop", "toeplitz", "strided", "matrix", "doubling", "auto"]
BENCH_ONLY = ("toeplitz", "matrix")


# ----------------------------------------------------------------------------
# Block scans that the library does not carry (forward only, h_{-1} = 0). Both cut
# time into G blocks of L steps, scan every block from zero at once, then add each
# block's carried-in state: h_t += (prod of the decays up to t in its block) * c,
# with the carries c from linear_scan over the block ends (whole-block decays).
# ----------------------------------------------------------------------------


def _pad_time(x, pad, value=0.0):
    if not pad:
        return x
    return mx.concatenate([x, mx.full((pad, *x.shape[1:]), value, x.dtype)])


def _fix_up(h_loc, P, a_block, L):
    """``h_loc [G, L, ...]`` in-block scans, ``P`` in-block prefix products of the decays,
    ``a_block`` the whole-block decays."""
    carry = linear_scan(a_block, h_loc[:, L - 1])
    c_prev = mx.concatenate([mx.zeros_like(carry[:1]), carry[:-1]])
    return h_loc + P * c_prev[:, None]


def _toeplitz_matrix(pw, L):
    """``M[..., t, s] = pw[t - s]`` for ``t >= s`` else 0; ``pw [L+1, ...]``."""
    t = mx.arange(L)
    lag = t[:, None] - t[None, :]
    M = pw[mx.maximum(lag, 0).reshape(-1)].reshape(L, L, *pw.shape[1:])
    M = mx.where((lag >= 0).reshape(L, L, *([1] * (pw.ndim - 1))), M, 0)
    return mx.moveaxis(mx.moveaxis(M, 0, -1), 0, -1)  # [..., t, s]


def _feature_split(a_shape, F):
    """Split features ``F`` into ``(R, Na)``: ``a`` is constant over the first ``R``."""
    a_shape = (1,) * (len(F) - len(a_shape)) + tuple(a_shape)
    k = next((i for i, n in enumerate(a_shape) if n != 1), len(F))
    if tuple(a_shape[k:]) == tuple(F[k:]):
        return math.prod(F[:k]), math.prod(F[k:])
    return 1, math.prod(F)


def toeplitz(a: mx.array, b: mx.array) -> mx.array:
    """Constant decay ``a`` (``a.ndim < b.ndim``): inside a block ``h = M b`` with the
    Toeplitz matrix ``M_ts = a^(t-s)`` (``t >= s``), one GEMM for all blocks."""
    T, F = b.shape[0], b.shape[1:]
    L = 64 if T >= 4096 else 32
    if L >= T:
        return linear_scan(a, b, method="loop")
    G = -(-T // L)
    pad = G * L - T
    if a.size == 1:
        pw = decay_powers(a.reshape(()), L)
        bb = _pad_time(b.reshape(T, -1), pad).reshape(G, L, -1)
        h = _fix_up(_toeplitz_matrix(pw, L) @ bb, pw[1:, None], pw[L], L)
        return h.reshape(G * L, *F)[:T]
    R, Na = _feature_split(a.shape, F)
    a1 = mx.broadcast_to(a.reshape((1,) * (len(F) - a.ndim) + a.shape), F)
    a1 = a1.reshape(-1)[-Na:] if R > 1 else a1.reshape(-1)
    pw = decay_powers(a1, L)  # [L+1, Na]
    bb = _pad_time(b.reshape(T, R, Na), pad).reshape(G, L, R, Na)
    bb = bb.transpose(3, 1, 0, 2).reshape(Na, L, G * R)
    h_loc = (_toeplitz_matrix(pw, L) @ bb).reshape(Na, L, G, R).transpose(2, 1, 3, 0)
    h = _fix_up(h_loc, pw[1:, None], pw[L], L)
    return h.reshape(G * L, *F)[:T]


def matrix(a: mx.array, b: mx.array) -> mx.array:
    """Any decays: in-block transfer matrices ``M_ts = prod_{s<k<=t} a_k`` built by a
    cumulative product down each column (no division), contracted with ``b``."""
    T, F = b.shape[0], b.shape[1:]
    L = 16
    if L >= T:
        return linear_scan(a, b, method="loop")
    G = -(-T // L)
    pad = G * L - T
    a = mx.broadcast_to(a if a.ndim == b.ndim else a[None], b.shape)
    a = _pad_time(a, pad, 1.0).reshape(G, L, -1)
    bb = _pad_time(b, pad).reshape(G, L, -1)
    t = mx.arange(L)
    strict = (t[:, None] > t[None, :])[None, :, :, None]  # [1, k, s, 1]
    C = mx.cumprod(mx.where(strict, a[:, :, None, :], 1.0), axis=1)  # prod_{s<k<=t}
    M = mx.where((t[:, None] >= t[None, :])[None, :, :, None], C, 0.0)
    h_loc = (M * bb[:, None, :, :]).sum(axis=2)
    P = mx.cumprod(a, axis=1)
    h = _fix_up(h_loc, P, P[:, L - 1], L)
    return h.reshape(G * L, *F)[:T]


def scan(a: mx.array, b: mx.array, method: str) -> mx.array:
    """``linear_scan(a, b, method=method)``, or this file's block scan of that name."""
    if method in BENCH_ONLY:
        return {"toeplitz": toeplitz, "matrix": matrix}[method](a, b)
    return linear_scan(a, b, method=method)


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
                        mx.eval(scan(a, b, m))

                    row[m] = time_fn(fn, reps=args.reps, warmup=1)["median_s"] * 1e3
                row["auto_pick"] = choose_method(T, width)
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
