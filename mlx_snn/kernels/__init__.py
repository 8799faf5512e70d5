"""Custom kernels (Metal, CUDA) for the hot loops: fused LIF, linear scan, AMOS.

The kernel bodies live in ``metal/`` at the repository root (shipped inside the
package as ``mlx_snn/metal``); :mod:`mlx_snn.kernels.registry` holds one spec per
kernel and builds the ``mx.fast.metal_kernel`` / ``mx.fast.cuda_kernel`` objects.
The same bodies run on the CPU in the tests through a C++ shim, and their CUDA
twins are compiled with ``nvcc``.

Users reach the kernels through ``backend=`` of :mod:`mlx_snn.functional`
(``lif_sequence``, ``linear_scan``, ``amos``, ``first_spike``: ``registry.WIRED``) and
the modules built on them; :func:`mlx_snn.backends.resolve` decides per call.

Entry points (each takes ``backend="metal"`` or ``"cuda"``; anything else raises
``ValueError``, a backend whose device is absent raises ``RuntimeError``).
Arguments are expected validated by :mod:`mlx_snn.functional`; the checks here are
the cheap ones (options, dtypes, shapes).

=====================================  =============================================
``lif_sequence(x, v0, beta, threshold,  ``(spikes, mem | None, state)``; vjp w.r.t.
*, reset, reset_timing, surrogate,      ``(x, v0, beta, threshold)`` by the backward
detach_reset, beta_grad,                kernel over the saved spikes and membrane
threshold_grad, mem=True,               (``mem=False``: not written, recomputed in
spike_dtype=None, backend)``            the backward)
``linear_scan(a, b, h0=None, *,         ``h`` like ``b``; vjp w.r.t. ``(a, b, h0)``
reverse=False, method="auto",           (transposed scan on the same kernel)
backend)``
``amos(x, tau, threshold, surrogate,    ``(spikes, mem | None, t_first, t_second)``;
*, mem=True, spike_dtype=None,          vjp w.r.t. ``x`` (saved: h, t_first,
backend)``                              t_second)
``first_spike(h, threshold, *,          ``(t_first, forced, t_second)``
backend)``
=====================================  =============================================

Shapes are time-major ``[T, B, ...]`` (states ``[B, ...]``); inputs may be float32,
float16 or bfloat16 and the kernels accumulate in float32; parameters broadcast to
the feature shape ``x.shape[2:]``. Surrogates need a kernel-side derivative
(:data:`mlx_snn.kernels.surrogates.DERIVATIVES`, one expression per class).
"""

from __future__ import annotations

from .amos import amos, first_spike
from .lif import lif_sequence
from .registry import EXECUTORS, SPECS, kernel
from .scan import linear_scan
from .surrogates import supports as supports_surrogate

__all__ = [
    "EXECUTORS",
    "SPECS",
    "amos",
    "first_spike",
    "kernel",
    "lif_sequence",
    "linear_scan",
    "supports_surrogate",
]
