"""The ``mlx-snn`` command: ``demo`` and ``info``."""

from __future__ import annotations

import argparse
import platform
import sys

import mlx.core as mx
import numpy as np


def info() -> dict[str, str]:
    """Versions, platform, device and which backends and kernels are active."""
    import mlx_snn

    from . import _runtime, backends

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
        "backend for 'auto'": backends.resolve("auto"),
        "custom kernels": ", ".join(kernels) if kernels else "none (pure-MLX path)",
        "cpu buffer cache": (
            "raised by mlx_snn (MLX_SNN_KEEP_CACHE_LIMIT=1 to keep MLX's 32 MiB)"
            if _runtime.cache_limit_raised
            else "MLX default"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlx-snn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a spiking MLP on bundled MNIST (offline)")
    demo.add_argument("--epochs", type=int, default=8)
    demo.add_argument("--steps", type=int, default=8, help="time steps T")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--limit", type=int, default=None, help="use N training images")
    sub.add_parser("info", help="versions, device, backends and kernels")
    args = parser.parse_args(argv)

    if args.command == "info":
        for key, value in info().items():
            print(f"{key:>20}: {value}")
        return 0
    from .demo import run_demo

    run_demo(epochs=args.epochs, num_steps=args.steps, seed=args.seed, limit=args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
