"""The ``mlx-snn`` command: ``demo``, ``info``, ``bench`` and ``launch``."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np


def info() -> dict[str, str]:
    """Versions, platform, device and which backends and kernels are active."""
    import mlx_snn

    from . import _runtime, backends, surrogate
    from .kernels import registry
    from .kernels import surrogates as kernel_surrogates

    try:
        from importlib.metadata import version

        mlx_version = version("mlx")
    except Exception:
        mlx_version = getattr(mx, "__version__", "unknown")
    kernels = backends.kernel_backends()
    return {
        "mlx_snn": mlx_snn.__version__,
        "mlx": mlx_version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "default device": str(mx.default_device()),
        "metal device": "yes" if backends.metal_device() else "no",
        "cuda device": "yes" if backends.cuda_device() else "no",
        "backends": ", ".join(("auto", *backends.available())),
        "backend for 'auto'": backends.resolve("auto")
        + ("" if backends.auto_kernels() else f" ({backends.AUTO_KERNELS_ENV}=0)"),
        "custom kernels": ", ".join(kernels) if kernels else "none (pure-MLX path)",
        "kernels": ", ".join(registry.SPECS),
        "kernel executors": ", ".join(f"{b}: {s}" for b, s in backends.kernel_status().items()),
        "wired ops": ", ".join(f"{op} ({', '.join(k)})" for op, k in registry.WIRED.items()),
        "kernel surrogates": ", ".join(
            name for name, make in surrogate.NAMES.items() if kernel_surrogates.supports(make())
        ),
        "cpu buffer cache": (
            "raised by mlx_snn (MLX_SNN_KEEP_CACHE_LIMIT=1 to keep MLX's 32 MiB)"
            if _runtime.cache_limit_raised
            else "MLX default"
        ),
    }


BENCH_HELP = (
    "Run the benchmark suite against snnTorch, SpikingJelly and mlx-snn 0.5.0. The "
    "benchmarks are not installed with the package: this needs a source checkout with "
    "the bench extra (clone the repository, then pip install -e '.[bench]'), and runs "
    "'python -m bench [options]' in a subprocess from the checkout's root (which you "
    "can also run yourself)."
)


def find_bench_dir(cwd: Path | None = None) -> Path:
    """The source checkout's ``bench/`` folder (next to the package source, else in the cwd).

    ``bench/`` is not part of the wheel: raise ``FileNotFoundError`` saying where it looked.
    """
    candidates = [Path(__file__).resolve().parents[1] / "bench", Path(cwd or Path.cwd()) / "bench"]
    for path in candidates:
        if (path / "__main__.py").is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        "mlx-snn bench needs a source checkout (the benchmarks are not installed with the "
        f"package): no bench/__main__.py in {looked}. Clone the repository, pip install -e "
        "'.[bench]', and run mlx-snn bench (or python -m bench) from its root."
    )


def bench_argv(args: argparse.Namespace) -> list[str]:
    """The ``bench`` subcommand's options as arguments for ``python -m bench``."""
    argv = ["--quick"] if args.quick else []
    if args.only:
        argv += ["--only", *args.only]
    if args.out is not None:
        argv += ["--out", str(args.out)]
    if args.reps is not None:
        argv += ["--reps", str(args.reps)]
    if args.note:
        argv += ["--note", args.note]
    if args.install_peers:
        argv.append("--install-peers")
    return argv


def bench_command(args: argparse.Namespace) -> list[str]:
    """The command ``mlx-snn bench`` runs from the checkout's root."""
    if args.peers_only:
        return [sys.executable, "-m", "bench.peers", "install" if args.install_peers else "status"]
    return [sys.executable, "-m", "bench", *bench_argv(args)]


def run_bench(args: argparse.Namespace) -> int:
    """Run the suite of the source checkout in a subprocess (the library never imports it)."""
    try:
        bench_dir = find_bench_dir()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out
    if out is not None and not out.is_absolute():  # relative to where the user is
        args = argparse.Namespace(**{**vars(args), "out": Path.cwd() / out})
    return subprocess.call(bench_command(args), cwd=bench_dir.parent)


def add_bench_parser(sub) -> argparse.ArgumentParser:
    bench = sub.add_parser(
        "bench",
        help="benchmark suite vs snnTorch, SpikingJelly, mlx-snn 0.5.0 (needs a source checkout)",
        description=BENCH_HELP,
    )
    bench.add_argument("--quick", action="store_true", help="small shapes, few reps")
    bench.add_argument("--only", nargs="+", metavar="NAME", help="run only these workloads")
    bench.add_argument("--out", type=Path, default=None, help="results folder")
    bench.add_argument("--reps", type=int, default=None, help="timed repetitions per cell")
    bench.add_argument("--note", default="", help="free text stored with the results")
    bench.add_argument(
        "--install-peers", action="store_true", help="pip-install missing peer libraries first"
    )
    bench.add_argument(
        "--peers",
        dest="peers_only",
        action="store_true",
        help="only show (or with --install-peers, install) the peer libraries",
    )
    return bench


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["launch"]:  # every later argument is mlx.launch's
        from .distributed import launch

        return launch(argv[1:])
    parser = argparse.ArgumentParser(prog="mlx-snn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a spiking MLP on bundled MNIST (offline)")
    demo.add_argument("--epochs", type=int, default=None, help="default 8 (--quick: 1)")
    demo.add_argument("--steps", type=int, default=8, help="time steps T")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--limit", type=int, default=None, help="use N training images (--quick: 2000)"
    )
    demo.add_argument("--quick", action="store_true", help="a few seconds: 1 epoch, 2000 images")
    demo.add_argument("--quiet", action="store_true", help="print only the result")
    sub.add_parser("info", help="versions, device, backends and kernels")
    add_bench_parser(sub)
    sub.add_parser(
        "launch",
        help="mlx.launch (same arguments) that exits non-zero when a rank fails",
        description="mlx-snn launch [mlx.launch arguments] COMMAND: see mlx_snn.distributed.",
    )
    args = parser.parse_args(argv)

    if args.command == "bench":
        if args.reps is not None and args.reps < 1:
            parser.error(f"--reps must be >= 1; got {args.reps}")
        return run_bench(args)

    if args.command == "info":
        for key, value in info().items():
            print(f"{key:>20}: {value}")
        return 0
    from .demo import run_demo

    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 8)
    limit = args.limit if args.limit is not None or not args.quick else 2000
    for name, value in (("--epochs", epochs), ("--steps", args.steps), ("--limit", limit)):
        if value is not None and value < 1:
            parser.error(f"{name} must be >= 1; got {value}")
    run_demo(
        epochs=epochs,
        num_steps=args.steps,
        seed=args.seed,
        limit=limit,
        show_progress=not args.quiet,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
