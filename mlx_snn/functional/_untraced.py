"""Custom functions whose forward and backward graphs are fused by ``mx.compile`` under ``mx.grad``.

While MLX differentiates a function, the arrays it traces (and, in the backward
pass, every array) are tracers, and a ``mx.compile``d function called on tracers
runs op by op: an eager ``mx.grad`` of a step loop built from compiled blocks
runs several small kernels per step instead of one fused kernel per block.
:func:`untraced_function` builds the forward graph and the hand-written backward
graph on the library's graph-building thread (:func:`mlx_snn._runtime.on_worker`),
where they are not traced, so the blocks are fused. The results are the same
numbers: MLX's fused CPU kernels are compiled without floating-point contraction,
so they round like the separate ops (the LIF parity tests compare both bit for bit).

Which path a call takes:

- no input is a tracer (no transformation is running, e.g. inference): the
  forward function runs directly (compiled blocks are fused there anyway);
- the inputs are traced by ``mx.compile`` or ``mx.vmap`` (they cannot be
  evaluated, :func:`mlx_snn._tracing.host_values`): the functions are traced op by
  op on the calling thread, as any MLX code is (``mx.compile`` then fuses them
  itself, and ``mx.vmap`` sees only ops it can vectorise);
- otherwise (``mx.grad``, ``mx.vjp``, ...; the inputs are evaluated at this call,
  or inside ``_tracing.deferred_reads(evaluable=True)``, where the caller vouches
  that they could be): the fused graphs, built on the graph-building thread.

A fused kernel cannot itself be differentiated or vectorised, so ``mx.jvp`` of the
forward pass, and ``mx.vmap``, ``mx.jvp`` and ``mx.vjp`` of the backward pass
(second-order gradients), fall back to the op-by-op functions. Internal module.
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx

from .._runtime import on_worker
from .._tracing import deferred_evaluable, readable

__all__ = ["any_tracer", "untraced_function"]

_probe_calls: list[None] = []


@mx.compile
def _probe(a):
    _probe_calls.append(None)  # runs when MLX traces: a tracer input, or a first call
    return a


def any_tracer(arrays) -> bool:
    """Whether any of ``arrays`` is being traced by an MLX transformation.

    A compiled function runs its Python body only while tracing: for tracer
    inputs always, otherwise once per input signature (and stream), which
    ``_probe`` has seen after its first call on this thread's default stream (a
    false "traced" only picks the slower path, never a wrong result).
    """
    probes = [a[(0,) * a.ndim].astype(mx.float32) for a in arrays if a.size]
    _probe(mx.zeros((), mx.float32))
    before = len(_probe_calls)
    for p in probes:
        _probe(p)
    return len(_probe_calls) != before


def _tangents(primals, tangents):
    return [mx.zeros_like(p) if t is None else t for p, t in zip(primals, tangents, strict=True)]


def untraced_function(
    forward: Callable[..., tuple[mx.array, ...]],
    backward: Callable[[tuple, tuple, tuple], tuple[mx.array, ...]],
    n_outputs: int,
    forward_for_grad: Callable[..., tuple[mx.array, ...]] | None = None,
) -> Callable[..., tuple[mx.array, ...]]:
    """``forward(*primals)`` (``n_outputs`` arrays) with the vjp ``backward(primals,
    cotangents, outputs)`` (one cotangent per primal), built where ``mx.compile`` fuses
    (see the module docstring). ``forward_for_grad`` (same results) replaces
    ``forward`` where a gradient may follow, i.e. where an input is a tracer."""
    forward_for_grad = forward_for_grad or forward
    plain = mx.custom_function(forward)

    @plain.vjp
    def plain_vjp(primals, cotangents, outputs):
        return tuple(backward(primals, cotangents, outputs))

    def backward_flat(*args):
        n = len(args) - 2 * n_outputs
        outs = args[n + n_outputs :]
        return tuple(backward(args[:n], args[n : n + n_outputs], outs))

    grads = mx.custom_function(lambda *args: on_worker(backward_flat, *args))

    @grads.vjp
    def grads_vjp(args, cotangents, outputs):
        return tuple(mx.vjp(backward_flat, list(args), list(cotangents))[1])

    @grads.jvp
    def grads_jvp(args, tangents):
        return tuple(mx.jvp(backward_flat, list(args), _tangents(args, tangents))[1])

    @grads.vmap
    def grads_vmap(args, axes):
        out = mx.vmap(backward_flat, in_axes=tuple(axes))(*args)
        return out, (0,) * len(out)

    fast = mx.custom_function(lambda *primals: on_worker(forward_for_grad, *primals))

    @fast.vjp
    def fast_vjp(primals, cotangents, outputs):
        return grads(*primals, *cotangents, *outputs)

    @fast.jvp
    def fast_jvp(primals, tangents):
        return tuple(mx.jvp(plain, list(primals), _tangents(primals, tangents))[1])

    def call(*primals):
        if not any_tracer(primals):
            return forward(*primals)
        if deferred_evaluable():  # a checkpointed chunk: evaluable, but not to be read now
            return fast(*primals)
        return (fast if readable(*primals) else plain)(*primals)

    return call
