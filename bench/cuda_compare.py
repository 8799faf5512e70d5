"""Workloads 1-4 on one NVIDIA GPU: ours on MLX's CUDA backend vs snnTorch and SpikingJelly.

NOT YET RUN ON A GPU: written and dry-run tested on CPU only.

One command from a fresh machine (creates .venv-cuda, installs mlx[cuda13], CUDA
torch, snntorch, spikingjelly --no-deps and mlx-snn 0.5.0 into bench/.peers):
    bash bench/cuda_compare.sh [--quick]
Direct use in a prepared environment:
    python bench/cuda_compare.py [--quick] [--reps N] [--out DIR]
    python bench/cuda_compare.py --dry-run     # tiny shapes on CPU, to test the script

Same tables as the CPU suite (median, ratio to the row's first column, extra peak
memory: MLX allocator peak for MLX, ``torch.cuda.max_memory_allocated`` for torch),
all peers in the same process on the same GPU, each guarded against ours before
timing. SpikingJelly 2.0 chooses its own CUDA path (Triton kernels when triton
imports); the JSON records whether triton/cupy were importable. For the LIF layer
the table adds the effective memory bandwidth, counting the six passes over
``T*B*N`` float32 values a fused fwd+bwd needs (read x, write s and h; read dL/ds
and h, write dL/dx), next to the GPU's peak from its spec sheet.
Writes bench/results/cuda_compare-cuda-<host>.json/.md (``-dryrun`` on CPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lif_impls as li
from bench import peers
from bench.amos_layer import PAR, SEQ, amos_impl
from bench.harness import RESULTS, SCHEMA_VERSION, markdown_table, save, shown, tables_by_workload
from bench.lif_layer import DELAYED, OURS, lif_columns
from bench.runner import Scaling, run_row

# HBM bandwidth from the vendors' spec sheets, in bytes/s; matched on the device name.
PEAK_BANDWIDTH = (
    ("H200", 4.8e12),
    ("H100 PCIe", 2.0e12),
    ("H100 NVL", 3.9e12),
    ("H100", 3.35e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),
)
LIF_PASSES = 6
TAC_TITLE = "4. Conv+LIF with TAC / TAC-TP (GPU)"
GPU_COLUMNS = [OURS, DELAYED, "ours ParallelLIF", "mlx-snn 0.5.0", "snnTorch", "SpikingJelly"]


def peak_bandwidth(name: str) -> float | None:
    """Spec-sheet peak memory bandwidth (bytes/s) for a GPU name, or None if unknown."""
    for key, value in PEAK_BANDWIDTH:
        if key.lower() in name.lower():
            return value
    return None


def gpu_name() -> str | None:
    torch = peers.load("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def mlx_on_gpu() -> bool:
    import mlx.core as mx

    return bool(getattr(mx, "cuda", None) is not None and mx.cuda.is_available())


def _optional(name: str) -> str:
    try:
        module = __import__(name)
        return getattr(module, "__version__", "present")
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def lif_rows(device, quick, dry, reps) -> list[dict]:
    if dry:
        shapes = [(8, 2, 64)]
    elif quick:
        shapes = [(25, 128, 4096)]
    else:
        shapes = [(25, 128, 4096), (256, 16, 1024), (256, 128, 4096)]
    title = "1. LIF layer fwd+bwd (GPU)"
    records = []
    for T, B, N in shapes:
        x, w = li.inputs(T, B, N)
        records += run_row(
            title,
            f"T={T}, B={B}, N={N}",
            lif_columns(x, w, device, include=tuple(GPU_COLUMNS)),
            references={"immediate": OURS, "delayed": DELAYED},
            guard=li.guard,
            reps=reps,
            params={"T": T, "B": B, "N": N, "dtype": "float32", "bytes": 4 * T * B * N},
        )
    return records


def scaling_rows(device, quick, dry, reps) -> list[dict]:
    Ts = (16, 64) if dry else (16, 64, 256, 1024) if quick else (16, 64, 256, 1024, 4096)
    B, N = (2, 32) if dry else (64, 1024)
    title = "2. LIF fwd+bwd vs T, fixed B*N (GPU)"
    cols = (OURS, "ours ParallelLIF", "mlx-snn 0.5.0", "snnTorch", "SpikingJelly")
    records, scaling = [], Scaling()
    for T in Ts:
        x, w = li.inputs(T, B, N)
        row = run_row(
            title,
            f"T={T}, B={B}, N={N}",
            lif_columns(x, w, device, include=cols),
            references={
                "immediate": OURS,
                "delayed": lambda x=x, w=w: li.ours(x, w, reset_timing="delayed"),
            },
            guard=li.guard,
            reps=reps,
            params={"T": T, "B": B, "N": N},
            budget_s=120.0,
            **scaling.estimates(T),
        )
        records += row
        scaling.add(T, row)
    return records


def amos_rows(quick, dry, reps) -> list[dict]:
    Ts = (8, 64) if dry else (8, 64, 256, 1024)
    B, N = (2, 32) if dry else (128, 1024)
    title = "3. AMOS layer fwd+bwd, parallel vs sequential (GPU)"
    records = []
    for T in Ts:
        x, w = li.inputs(T, B, N)
        records += run_row(
            title,
            f"T={T}, B={B}, N={N}",
            {
                SEQ: lambda x=x, w=w: amos_impl(x, w, "sequential"),
                PAR: lambda x=x, w=w: amos_impl(x, w, "parallel"),
            },
            references={"amos": SEQ},
            guard=li.guard,
            reps=reps,
            params={"T": T, "B": B, "N": N},
            budget_s=120.0,
        )
    return records


def tac_rows(quick, dry, reps) -> list[dict]:
    from bench import tac_conv

    if dry:
        shapes, groups = [(1, 4, 10, 4, 2)], (2,)
    else:
        shapes = [(1, 32, 28, 25, 128), (2, 128, 64, 16, 16)]
        groups = (4,) if quick else (2, 4, 8, 16)
    records = []
    for shape in shapes:
        records += tac_conv.shape_rows(*shape, groups=groups, reps=reps)
    for rec in records:
        rec["workload"] = TAC_TITLE
    return records


def bandwidth_table(records: list[dict], peak: float | None) -> str:
    rows = []
    for r in records:
        if r["workload"].startswith("1.") and "median_s" in r:
            achieved = LIF_PASSES * r["params"]["bytes"] / r["median_s"]
            share = f"{achieved / peak:.1%}" if peak else "unknown GPU"
            rows.append([r["row"], r["col"], f"{achieved / 1e9:.0f} GB/s", share])
    head = [
        "case",
        "implementation",
        f"effective bandwidth ({LIF_PASSES} passes)",
        f"of peak {peak / 1e12:.2f} TB/s" if peak else "of peak",
    ]
    return markdown_table(head, rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/cuda_compare.py", description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU (no GPU needed)")
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    name = gpu_name()
    if not args.dry_run and (name is None or not mlx_on_gpu()):
        print(
            "error: bench/cuda_compare.py needs an NVIDIA GPU visible to both torch "
            f"(found: {name or 'none'}) and MLX's CUDA backend (found: {mlx_on_gpu()}). "
            "Run it with bash bench/cuda_compare.sh on a GPU machine, or use --dry-run.",
            file=sys.stderr,
        )
        return 2
    device = "cpu" if args.dry_run else "cuda"
    reps = args.reps or (2 if args.dry_run else 5 if args.quick else 10)
    records = lif_rows(device, args.quick, args.dry_run, reps)
    records += scaling_rows(device, args.quick, args.dry_run, reps)
    records += amos_rows(args.quick, args.dry_run, reps)
    records += tac_rows(args.quick, args.dry_run, reps)
    peak = None if args.dry_run else peak_bandwidth(name or "")
    from bench.tac_conv import COLUMNS as TAC_COLUMNS

    table = (
        tables_by_workload(records, {TAC_TITLE: TAC_COLUMNS})
        + "\n\n### LIF layer memory bandwidth\n\n"
    )
    table += bandwidth_table(records, peak)
    print("\n" + table + "\n")
    payload = {
        "schema": SCHEMA_VERSION,
        "dry_run": args.dry_run,
        "quick": args.quick,
        "gpu": name,
        "peak_bandwidth_bytes_per_s": peak,
        "peers": {n: i["version"] or i["note"] for n, i in peers.status().items()},
        "optional": {"triton": _optional("triton"), "cupy": _optional("cupy")},
        "records": records,
        "table": table,
    }
    kind = "dryrun" if args.dry_run else "cuda"
    path = save("cuda_compare", payload, kind=kind, out=args.out)
    print(f"wrote {shown(path)} and {shown(path.with_suffix('.md'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
