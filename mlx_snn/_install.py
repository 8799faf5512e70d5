"""Import-time checks of the MLX installation, with the command that fixes each problem.

MLX's wheel for Linux carries no compute library: ``mlx-cpu`` (``mlx-snn[cpu]``) or
``mlx-cuda-13`` / ``mlx-cuda-12`` (``mlx-snn[cuda]`` / ``[cuda12]``) adds ``mlx/lib/libmlx.so``.
Two of them in one environment overwrite each other's copy of that file, and uninstalling
either one deletes it. On macOS MLX needs Apple silicon; MLX does not support Windows.
``mlx_snn`` imports this module first; importing it runs both checks.
"""

from __future__ import annotations

import platform
import sys
import warnings
from pathlib import Path

# distributions that each ship mlx/lib/libmlx.so (dist-info folder prefix -> project name)
BACKEND_WHEELS = {"mlx_cpu": "mlx-cpu", "mlx_cuda_12": "mlx-cuda-12", "mlx_cuda_13": "mlx-cuda-13"}


def install_hint(system: str | None = None, machine: str | None = None) -> str:
    """What to install for MLX on this platform, as one sentence."""
    system = system or platform.system()
    machine = machine or platform.machine()
    if system == "Windows":
        return (
            "MLX supports macOS (Apple silicon) and Linux, not Windows: use Linux "
            "(WSL 2 works) with pip install 'mlx[cpu]', or a Mac with Apple silicon"
        )
    if system == "Darwin" and machine != "arm64":
        return "MLX runs on Apple silicon (arm64) Macs only; this Mac reports " + machine
    if system == "Linux":
        return (
            "MLX for Linux needs exactly one backend wheel: pip install 'mlx[cpu]' for the "
            "CPU, or 'mlx[cuda13]' ('mlx[cuda12]') for an NVIDIA GPU; mlx-snn's extras "
            "[cpu], [cuda] and [cuda12] install the same"
        )
    return f"MLX publishes wheels for macOS (Apple silicon) and Linux, not for {system}"


def require_mlx() -> None:
    """Import ``mlx.core`` or raise ``ImportError`` that says what to install here."""
    try:
        import mlx.core  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"mlx_snn cannot import MLX ({exc}). {install_hint()}.") from exc


def backend_wheels(site: Path | None = None) -> list[str]:
    """Installed MLX backend distributions next to the ``mlx`` package (Linux), sorted."""
    if site is None:
        import mlx

        site = Path(next(iter(mlx.__path__))).parent
    found = set()
    for info in site.glob("mlx_*.dist-info"):
        name = info.name.split("-")[0].lower()
        if name in BACKEND_WHEELS:
            found.add(BACKEND_WHEELS[name])
    return sorted(found)


def conflict_message(wheels: list[str]) -> str | None:
    """A warning text when more than one backend wheel is installed, else ``None``."""
    if len(wheels) < 2:
        return None
    keep = next((w for w in wheels if w.startswith("mlx-cuda")), wheels[0])
    others = " ".join(w for w in wheels if w != keep)
    return (
        f"{' and '.join(wheels)} are all installed; each ships mlx/lib/libmlx.so, so one "
        f"overwrote the other. Keep one, e.g. pip uninstall -y {others} && "
        f"pip install --force-reinstall --no-deps {keep}"
    )


def warn_on_backend_conflict() -> None:
    """Warn (``RuntimeWarning``) when two MLX backend wheels share this environment."""
    if sys.platform != "linux":
        return
    message = conflict_message(backend_wheels())
    if message:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


require_mlx()
warn_on_backend_conflict()
