"""Which compute backends exist on this machine, and how a ``backend=`` string is resolved.

``"mlx"`` (pure MLX ops) runs everywhere. ``"metal"`` and ``"cuda"`` name the
custom-kernel paths; they are listed as available only where both the device
and the kernels for it are present (in this build no kernels ship, so nowhere:
``"auto"`` resolves to ``"mlx"`` and ``"metal"``/``"cuda"`` raise a ``ValueError``
that lists what is available). ``"auto"`` picks the best available one.
:func:`mlx_snn.functional.lif_sequence` and :func:`mlx_snn.functional.linear_scan`
call :func:`resolve` once per call, at the marked place where a kernel path
plugs in.
"""

from __future__ import annotations

import mlx.core as mx

from ._checks import check_choice

BACKENDS = ("auto", "mlx", "metal", "cuda")


def metal_device() -> bool:
    """True when MLX can run on an Apple GPU here."""
    return bool(mx.metal.is_available())


def cuda_device() -> bool:
    """True when MLX can run on an NVIDIA GPU here."""
    return bool(getattr(mx, "cuda", None) is not None and mx.cuda.is_available())


def kernel_status() -> dict[str, str]:
    """Each kernel executor (``"metal"``, ``"cuda"``) and whether it can run here."""
    from .kernels import registry

    shipped = bool(registry.SPECS) and set(registry.SPECS) <= {
        f.removesuffix(".metal") for f in registry.source_files()
    }
    return {
        b: "ready" if registry.device_present(b) and shipped else "no device"
        for b in registry.EXECUTORS
    }


def kernel_backends() -> tuple[str, ...]:
    """Custom-kernel backends usable here: the device is present and the kernels ship."""
    return tuple(b for b, state in kernel_status().items() if state == "ready")


def available() -> tuple[str, ...]:
    """Backends that ``backend=`` may name on this machine (``"auto"`` always works)."""
    return ("mlx", *kernel_backends())


def resolve(backend: str) -> str:
    """Map a ``backend=`` argument to a concrete backend, or raise ``ValueError``."""
    check_choice("backend", backend, BACKENDS)
    if backend == "auto":
        return available()[-1] if len(available()) > 1 else "mlx"
    if backend not in available():
        device = {"metal": metal_device(), "cuda": cuda_device()}[backend]
        why = (
            "its custom kernels are not part of this build"
            if device
            else f"no {backend} device is present"
        )
        raise ValueError(
            f"backend {backend!r} is not available here ({why}); available backends: "
            f"{', '.join(repr(b) for b in ('auto', *available()))}"
        )
    return backend
