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

- ``lif_sequence(x, v0, beta, threshold, *, reset, reset_timing, surrogate,
  detach_reset, beta_grad, threshold_grad, mem=True, spike_dtype=None, backend)``
  -> ``(spikes, mem | None, state)``; vjp w.r.t. ``(x, v0, beta, threshold)`` by the
  backward kernel over the saved spikes and membrane (``mem=False``: not written,
  recomputed in the backward).
- ``linear_scan(a, b, h0=None, *, reverse=False, method="auto", backend)`` -> ``h``
  like ``b``; vjp w.r.t. ``(a, b, h0)`` (transposed scan on the same kernel).
- ``amos(x, tau, threshold, surrogate, *, mem=True, spike_dtype=None, backend)``
  -> ``(spikes, mem | None, t_first, t_second)``; vjp w.r.t. ``x`` (saved: h,
  t_first, t_second).
- ``first_spike(h, threshold, *, backend)`` -> ``(t_first, forced, t_second)``.

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
