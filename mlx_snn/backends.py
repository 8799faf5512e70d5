"""Which compute backends exist on this machine, and how a ``backend=`` string is resolved.

``"mlx"`` (pure MLX ops) runs everywhere. ``"metal"`` and ``"cuda"`` name the
custom-kernel paths (``mlx_snn.kernels``); they are available only where that
device is present and the kernel sources ship with the package. ``"auto"`` picks
``"metal"`` > ``"cuda"`` > ``"mlx"``: the first kernel backend available here,
unless the call is one the kernels do not run (then ``"mlx"``).

The functions with a ``backend=`` argument (:func:`mlx_snn.functional.lif_sequence`,
:func:`~mlx_snn.functional.linear_scan`, :func:`~mlx_snn.functional.amos`,
:func:`~mlx_snn.functional.first_spike` and the functions and modules built on
them) call :func:`resolve` once per call at their "Backend dispatch" comment,
passing ``kernel_limit``: why that call cannot run on a kernel (an MLX-only
algorithm, a surrogate without a kernel-side derivative), or ``None``. ``"auto"``
then stays on MLX; an explicit kernel backend raises a ``ValueError`` that gives
the reason.

Set the environment variable ``MLX_SNN_AUTO_KERNELS=0`` to make ``"auto"`` always
resolve to ``"mlx"`` (an explicit ``backend="metal"``/``"cuda"`` still runs the
kernels). The kernels are checked in CI by a CPU harness that executes their exact
source and by compiling the CUDA twins; this switch is the escape hatch should a
GPU disagree.
"""

from __future__ import annotations

import os

import mlx.core as mx

from ._checks import check_choice

BACKENDS = ("auto", "mlx", "metal", "cuda")
AUTO_KERNELS_ENV = "MLX_SNN_AUTO_KERNELS"


def auto_kernels() -> bool:
    """Whether ``backend="auto"`` may pick a kernel backend (``MLX_SNN_AUTO_KERNELS``
    is unset or anything but ``"0"``)."""
    return os.environ.get(AUTO_KERNELS_ENV, "1").strip() != "0"


def metal_device() -> bool:
    """True when MLX can run on an Apple GPU here."""
    return bool(mx.metal.is_available())


def cuda_device() -> bool:
    """True when MLX can run on an NVIDIA GPU here."""
    return bool(getattr(mx, "cuda", None) is not None and mx.cuda.is_available())


def kernel_status() -> dict[str, str]:
    """Each kernel executor (``"metal"``, ``"cuda"``) and whether it can run here:
    ``"ready"``, ``"no device"`` or ``"no kernel sources"``."""
    from .kernels import registry

    def state(backend):
        if not registry.device_present(backend):
            return "no device"
        return "ready" if registry.sources_ship() else "no kernel sources"

    return {b: state(b) for b in registry.EXECUTORS}


def kernel_backends() -> tuple[str, ...]:
    """Custom-kernel backends usable here, in the order ``"auto"`` prefers them."""
    return tuple(b for b, state in kernel_status().items() if state == "ready")


def available() -> tuple[str, ...]:
    """Backends that ``backend=`` may name on this machine (``"auto"`` always works)."""
    return ("mlx", *kernel_backends())


def resolve(backend: str, kernel_limit: str | None = None) -> str:
    """Map a ``backend=`` argument to ``"mlx"``, ``"metal"`` or ``"cuda"``.

    Args:
        backend: ``"auto"`` | ``"mlx"`` | ``"metal"`` | ``"cuda"``.
        kernel_limit: why this call cannot run on a kernel backend (a phrase that
            completes "the kernels do not run ..."), or ``None`` when it can.

    Raises:
        ValueError: unknown backend; a kernel backend that is not available here
            (the message lists those that are); a kernel backend named for a call
            with a ``kernel_limit``.
    """
    check_choice("backend", backend, BACKENDS)
    if backend == "mlx":
        return backend
    ready = kernel_backends()
    if backend == "auto":
        use = ready and kernel_limit is None and auto_kernels()
        return ready[0] if use else "mlx"
    if backend not in ready:
        device = {"metal": metal_device(), "cuda": cuda_device()}[backend]
        why = (
            "the kernel sources are missing from this installation"
            if device
            else f"no {backend} device is present"
        )
        raise ValueError(
            f"backend {backend!r} is not available here ({why}); available backends: "
            f"{', '.join(repr(b) for b in ('auto', *available()))}"
        )
    if kernel_limit is not None:
        raise ValueError(
            f"backend={backend!r} cannot run this call: the kernels do not run "
            f"{kernel_limit}; pass backend='auto' or 'mlx' for the MLX path"
        )
    return backend
