r"""Training schedules, and training over sequences too long for one backward pass.

**Stateful networks.** Everything here works on one protocol, a callable

.. code-block:: python

    y, state = net(x, state)

on a chunk of time ``x [t, B, ...]``: ``y [t', B, ...]`` are the outputs of those
steps and ``state`` a pytree (lists, tuples, dicts) of arrays holding every neuron's
state (``None``: all neurons start from zeros). Running ``net`` over ``x[:a]`` and
then over ``x[a:]`` from the state it returned is the same function as one call on
``x``. The library's neurons (``LIF``, ``ParallelLIF``, ``StateLeaky``,
``AssociativeLeaky``, ``TACTP``) and paper networks (``mnist_convnet``,
``dvs_gesture_net``) take ``state=`` / ``return_state=``; :class:`Stateful` wraps
them, and ``nn.Sequential`` stacks of them and per-frame layers, into such a
callable. ``TemporalModule.chunking`` (:mod:`mlx_snn.nn.temporal`) says how a module
chunks: neurons carry state; ``TAC`` needs chunks that start on a group boundary
(``chunk`` a multiple of :func:`time_granularity`); ``AMOS`` and the temporal selector
decoder depend on the whole sequence and cannot run in chunks.

**Exactness.** The chunked forward pass equals the unchunked one bit for bit where
every step's arithmetic does not depend on the chunk: LIF with ``algorithm="loop"``
and per-frame layers (``nn.Linear``, ``SeqToBatch(nn.Conv2d)``, pooling). The scans
(``StateLeaky``, ``AssociativeLeaky``, ``ParallelLIF``, and ``LIF(algorithm="auto")``
where it picks the parallel path) group their sums by ``T``, so chunking changes
their rounding: equal to fp32 rounding, spikes equal except at near-ties.
``nn.BatchNorm`` in training mode normalises over the frames it is given, i.e. per
chunk: chunked training of the paper networks is *not* the same function in
training mode (it is in eval mode), and the running statistics are updated once
per chunk.

**Three ways to train over ``T`` steps** (``bench/memory.py`` measures them):

- plain BPTT: ``net(x, None)`` (or :func:`run_chunked` without ``checkpoint``)
  under ``nn.value_and_grad``; memory grows with ``T`` (every neuron saves its
  ``[T, B, ...]`` membrane, every layer its input);
- checkpointed BPTT, :func:`run_chunked` with ``checkpoint=True``: the same
  gradients (to fp32 rounding); each chunk but the last keeps only its boundary
  state and recomputes its inside during the backward pass, so memory holds one
  chunk's activations plus a state per chunk, for one more forward pass of
  ``T - chunk`` steps;
- truncated BPTT, :func:`tbptt`: each chunk is a separate backward pass from the
  exact carried state, with the gradient stopped at chunk edges; the gradients of
  all chunks are summed. Memory holds one chunk; the gradient ignores dependencies
  longer than a chunk (with ``chunk = T`` it is full BPTT exactly).

:func:`incremental_time_steps` is the incremental time-step strategy of PTTFS
(Che et al.): train first at ``T = 1``, where the temporal selector decoder is a
membrane decoder, then grow ``T`` stage by stage so that each stage starts from
the previous one's weights.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from ._checks import check_bool, check_float_array, check_int
from ._tracing import deferred_reads, readable
from .models._common import run_neuron
from .nn.tac import TAC, TACTP
from .nn.temporal import MLX_RECURRENT, TemporalModule, find_temporal

__all__ = [
    "Stateful",
    "TBPTTResult",
    "incremental_time_steps",
    "run_chunked",
    "tbptt",
    "time_granularity",
]

StatefulNet = Callable[[mx.array, Any], tuple[mx.array, Any]]


# ----------------------------------------------------------------------------
# Stateful networks
# ----------------------------------------------------------------------------


def _chunking(layer: object) -> str:
    """How ``layer`` chunks in time (see ``TemporalModule.chunking``); per-frame layers
    (anything without a module that acts over time) give ``"frames"``."""
    if isinstance(layer, TemporalModule):
        return layer.chunking
    inner = find_temporal(layer)
    if inner is None:
        return "frames"
    name = type(layer).__name__
    if isinstance(inner, MLX_RECURRENT):
        raise ValueError(
            f"{name} contains {type(inner).__name__}, MLX's batch-first recurrent layer: "
            "Stateful cannot thread its state; use this library's neurons"
        )
    raise ValueError(
        f"{name} contains {type(inner).__name__}, which acts over time, so Stateful cannot "
        f"treat it as a per-frame layer: list its parts in Stateful, or give {name} "
        "state=/return_state= arguments and a TemporalModule chunking marker"
    )


class Stateful(nn.Module):
    """A stack of layers as a stateful network ``net(x, state) -> (y, state)``.

    ``Stateful(*layers)`` (or ``Stateful(nn.Sequential(...))``) applies the layers in
    order to ``x [t, B, ...]``. A layer that carries state (``chunking == "state"``:
    the neurons, ``TACTP``, the paper networks) is called as
    ``layer(x, state=s, return_state=True)`` and its new state kept (a neuron's
    ``LIFOutput.state``); a per-frame layer (``nn.Linear``, activations, ``VotingLayer``,
    ``SeqToBatch(nn.Conv2d(...))``) and ``TAC`` are called as ``layer(x)``. The state
    is a list with one entry per layer (``None`` for stateless layers);
    ``state=None`` starts every neuron from zeros.

    Args:
        *layers: modules or callables; one ``nn.Sequential`` is unpacked.

    Raises:
        ValueError: no layers; a layer that depends on the whole sequence (``AMOS``,
            ``TemporalSelectorDecoder``), a module with a neuron inside that does not
            take ``state=`` (or MLX's ``RNN``/``GRU``/``LSTM``), a ``state`` of the
            wrong length.
        TypeError: a layer that is not callable.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], nn.Sequential):
            layers = tuple(layers[0].layers)
        if not layers:
            raise ValueError("Stateful needs at least one layer")
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"layers[{i}] must be callable; got {type(layer).__name__}")
            if _chunking(layer) == "whole":
                raise ValueError(
                    f"layers[{i}] ({type(layer).__name__}) depends on the whole sequence "
                    "(chunking 'whole') and cannot run in chunks of time; apply it to the "
                    "concatenated outputs instead"
                )
        self.layers = list(layers)

    def __call__(self, x: mx.array, state: list | None = None) -> tuple[mx.array, list]:
        if state is None:
            state = [None] * len(self.layers)
        elif not isinstance(state, (list, tuple)) or len(state) != len(self.layers):
            got = len(state) if isinstance(state, (list, tuple)) else type(state).__name__
            raise ValueError(
                f"state must be None or hold one entry per layer ({len(self.layers)}); got {got}"
            )
        new_state = []
        for layer, s in zip(self.layers, state, strict=True):
            if _chunking(layer) == "state":
                x, s = run_neuron(layer, x, s, return_state=True)
            else:
                x, s = layer(x), None
            new_state.append(s)
        return x, new_state


def time_granularity(module: object) -> int:
    """Chunk lengths that keep ``module``'s ``TAC`` / ``TAC-TP`` groups intact are
    multiples of this number: the product of the ``TAC`` groups (they cascade, each
    collapsing time by its group) times the least common multiple of the ``TACTP``
    groups; 1 without them."""
    if not isinstance(module, nn.Module):
        return 1
    tac, tactp = 1, 1
    for m in module.modules():
        if isinstance(m, TAC):
            tac *= m.group
        elif isinstance(m, TACTP):
            tactp = math.lcm(tactp, m.group)
    return tac * tactp


# ----------------------------------------------------------------------------
# Pytrees of arrays with None leaves (states)
# ----------------------------------------------------------------------------


def _flatten(tree) -> tuple[list[mx.array], Callable]:
    """``(leaves, rebuild)``: the arrays of ``tree`` in order and a function that puts
    new leaves back in the same structure (lists, tuples, named tuples, dicts; ``None``
    and other non-array leaves are kept as they are)."""
    if isinstance(tree, mx.array):
        return [tree], lambda leaves: leaves[0]
    if isinstance(tree, (list, tuple)):
        parts = [_flatten(t) for t in tree]
        sizes = [len(p[0]) for p in parts]

        def rebuild(leaves):
            items, i = [], 0
            for (_, r), n in zip(parts, sizes, strict=True):
                items.append(r(leaves[i : i + n]))
                i += n
            if isinstance(tree, list):
                return items
            return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)

        return [leaf for p in parts for leaf in p[0]], rebuild
    if isinstance(tree, dict):
        keys = list(tree)
        leaves, rebuild_values = _flatten([tree[k] for k in keys])
        return leaves, lambda new: dict(zip(keys, rebuild_values(new), strict=True))
    return [], lambda leaves: tree


def _tree_map(fn, tree):
    leaves, rebuild = _flatten(tree)
    return rebuild([fn(leaf) for leaf in leaves])


# ----------------------------------------------------------------------------
# Checkpointed chunks
# ----------------------------------------------------------------------------


def _checkpointed(
    net: StatefulNet, module: nn.Module, params, state_tree, x_chunk: mx.array, evaluable: bool
):
    """``net(x_chunk, state)`` as one ``mx.custom_function`` that saves its inputs and
    outputs only and recomputes the rest in the backward pass; returns
    ``(y, state, params)``.

    Four things make MLX evaluate the backward chunk by chunk, from the last one
    back, holding one chunk at a time (``mx.checkpoint`` alone recomputes every chunk
    first, which keeps them all):

    - the recomputation waits for the chunk's output cotangents (``mx.depends``);
    - the parameters pass through each chunk to the next (``params`` out is ``params``
      in), so the gradient sum over chunks runs along the chain, one running sum,
      instead of one parameter-sized gradient per chunk summed at the end;
    - the state cotangent handed to the previous chunk waits for that running sum.
    - the chunk runs with host reads deferred (:func:`mlx_snn._tracing.deferred_reads`):
      a value check, or the probe that picks the LIF loop's fused graphs, evaluating a
      traced array during the recomputation would keep every chunk's activations alive
      at once (its value checks are skipped). ``evaluable`` (the caller read a value of
      the input, parameters and state, so no ``mx.compile`` or ``mx.vmap`` traces them)
      lets the LIF loop still build its fused graphs there; otherwise the chunk runs
      op-by-op graphs.

    The module's other arrays that the chunk updates (BatchNorm's running statistics)
    are outputs too, so that they are computed with the chunk: MLX's BatchNorm
    computes its running variance apart from the normalisation, and left lazy it would
    keep every chunk's input alive until the end of the step.
    """
    leaves, rebuild = _flatten(state_tree)
    out_structure = {}  # how to rebuild the returned state from its leaves
    trainable = {k for k, _ in tree_flatten(module.trainable_parameters())}
    buffer_keys = [k for k, _ in tree_flatten(module.parameters()) if k not in trainable]

    def run(p, x, state_leaves):
        module.update(p)
        with deferred_reads(evaluable):  # build the graph without evaluating (docstring)
            y, new_state = net(x, rebuild(state_leaves))
        new_leaves, out_structure["rebuild"] = _flatten(new_state)
        return y, new_leaves

    @mx.custom_function
    def chunk_fn(p, x, state_leaves):
        y, new_leaves = run(p, x, state_leaves)
        buffers = dict(tree_flatten(module.parameters()))
        return y, new_leaves, p, [buffers[k] for k in buffer_keys]

    @chunk_fn.vjp
    def chunk_vjp(primals, cotangents, outputs):
        p, x, state_leaves = primals
        p_leaves, p_rebuild = _flatten(p)
        g_y, g_leaves, g_p_next, _ = cotangents
        cot_leaves = [*_flatten(g_y)[0], *_flatten(g_leaves)[0]]
        g_p_next = _flatten(g_p_next)[0]
        inputs = mx.depends([*p_leaves, x, *state_leaves], cot_leaves + g_p_next)
        n_p = len(p_leaves)
        saved = module.parameters()

        def replay(*args):
            y, new_leaves = run(p_rebuild(list(args[:n_p])), args[n_p], list(args[n_p + 1 :]))
            return [*_flatten(y)[0], *new_leaves]

        _, grads = mx.vjp(replay, inputs, cot_leaves)
        module.update(saved)  # the replay must not leave traced or updated arrays behind
        g_p = [a + b for a, b in zip(grads[:n_p], g_p_next, strict=True)]
        g_x, g_state = grads[n_p], grads[n_p + 1 :]
        if g_p and g_state:
            g_state = mx.depends(g_state, g_p)
        return p_rebuild(g_p), g_x, list(g_state)

    y, new_leaves, params, buffers = chunk_fn(params, x_chunk, leaves)
    if buffer_keys:
        module.update(tree_unflatten(list(zip(buffer_keys, buffers, strict=True))))
    return y, out_structure["rebuild"](new_leaves), params


# ----------------------------------------------------------------------------
# Running and training in chunks
# ----------------------------------------------------------------------------


def _evaluable(*trees) -> bool:
    """Whether the arrays of ``trees`` (input, parameters, state: never an activation)
    can be evaluated, i.e. no ``mx.compile`` or ``mx.vmap`` traces any of them: one
    host read of one element of each."""
    return readable(*(a for tree in trees for a in _flatten(tree)[0]))


def _check_chunked_args(net, x, chunk, module) -> tuple[int, int]:
    if not callable(net):
        raise TypeError(f"net must be callable as net(x, state); got {type(net).__name__}")
    check_float_array("x", x, min_ndim=2)
    T = x.shape[0]
    if T < 1:
        raise ValueError(f"x must have at least one time step; got shape {tuple(x.shape)}")
    chunk = T if chunk is None else check_int("chunk", chunk, minimum=1)
    unit = time_granularity(module if module is not None else net)
    if chunk < T and chunk % unit:
        raise ValueError(
            f"chunk must be a multiple of {unit} for this network (its TAC / TAC-TP "
            f"groups must not straddle chunks; see time_granularity); got chunk={chunk}"
        )
    return T, chunk


def _module_of(net, module, why: str) -> nn.Module:
    if module is not None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module; got {type(module).__name__}")
        return module
    if isinstance(net, nn.Module):
        return net
    raise ValueError(
        f"{why} needs the nn.Module whose parameters net uses: pass module= "
        "(or build net as an nn.Module, e.g. Stateful(...))"
    )


def run_chunked(
    net: StatefulNet,
    x: mx.array,
    chunk: int | None = None,
    state: Any = None,
    *,
    checkpoint: bool = False,
    module: nn.Module | None = None,
) -> tuple[mx.array, Any]:
    """Run ``net`` over ``x [T, B, ...]`` in chunks of ``chunk`` steps, threading the state.

    The state flows from chunk to chunk with its gradient (this is full BPTT: use it
    inside ``nn.value_and_grad``). ``y`` is the chunks' outputs concatenated along
    time (``T`` steps for most networks, fewer after a TAC collapse).

    Args:
        net: stateful network ``net(x_chunk, state) -> (y_chunk, state)`` (see the
            module docstring; e.g. :class:`Stateful`).
        x: input ``[T, B, ...]`` (float32, float16 or bfloat16).
        chunk: steps per chunk (``>= 1``; the last chunk may be shorter); ``None``
            means ``T`` (one call). Must be a multiple of :func:`time_granularity` of
            the network when it has TAC layers.
        state: initial state (``None``: zeros).
        checkpoint: recompute each chunk but the last in the backward pass instead
            of keeping its activations: gradients equal the plain path's to fp32
            rounding, memory drops to one chunk's activations plus one state per
            chunk, for one more forward pass of every chunk but the last (whose
            activations the backward pass needs first, as in PyTorch's
            ``checkpoint_sequential``; with one chunk nothing is recomputed). The
            recomputation restores the module's parameters and buffers (BatchNorm
            statistics) afterwards.
        module: the ``nn.Module`` whose trainable parameters ``net`` uses (needed
            with ``checkpoint=True``; default ``net`` itself when it is a module).

    Returns:
        ``(y, state)``: outputs along time and the state after the last step.

    Raises:
        ValueError: ``x`` without a time axis or with ``T = 0``, ``chunk < 1``, a
            chunk that would split a TAC group, ``checkpoint=True`` without a module.
        TypeError: non-callable ``net``, non-floating ``x``, non-int ``chunk``,
            non-bool ``checkpoint``.
    """
    check_bool("checkpoint", checkpoint)
    T, chunk = _check_chunked_args(net, x, chunk, module)
    if checkpoint:
        module = _module_of(net, module, "checkpoint=True")
        first = params = module.trainable_parameters()
        evaluable = _evaluable(x, module.parameters(), state)
    ys = []
    starts = range(0, T, chunk)
    for start in starts:
        x_chunk = x[start : start + chunk]
        if checkpoint and start != starts[-1]:
            y, state, params = _checkpointed(net, module, params, state, x_chunk, evaluable)
        elif checkpoint:  # the last chunk keeps its activations: its backward runs first
            module.update(params)
            with deferred_reads(evaluable):  # a read would evaluate (and keep) every chunk
                y, state = net(x_chunk, state)
        else:
            y, state = net(x_chunk, state)
        ys.append(y)
    if checkpoint:
        module.update(first)  # not the last chunk's pass-through copies
    return (ys[0] if len(ys) == 1 else mx.concatenate(ys)), state


class TBPTTResult(NamedTuple):
    """Result of :func:`tbptt`.

    Attributes:
        loss: scalar, the sum of the chunks' losses.
        grads: the sum of the chunks' gradients, a tree like
            ``module.trainable_parameters()`` (pass to ``optimizer.update``).
        state: the state after the last step (evaluated, no gradient history):
            pass it back as ``state=`` to continue the sequence.
        outputs: the chunks' outputs concatenated along time, without gradient.
    """

    loss: mx.array
    grads: dict
    state: Any
    outputs: mx.array


def tbptt(
    net: StatefulNet,
    loss_fn: Callable[..., mx.array],
    x: mx.array,
    chunk: int,
    state: Any = None,
    *,
    targets: Any = None,
    module: nn.Module | None = None,
) -> TBPTTResult:
    r"""Truncated backpropagation through time with the state carried exactly.

    For chunks :math:`c = 0, 1, \dots` of ``chunk`` steps, with :math:`S_c` the state
    entering chunk :math:`c` (exactly the state of the unchunked forward pass):

    .. math::

        (y_c, S_{c+1}) = \mathrm{net}(x_c, \mathrm{sg}(S_c)),\qquad
        L = \sum_c \ell(y_c),\qquad
        g = \sum_c \partial \ell(y_c) / \partial \theta

    (:math:`\mathrm{sg}` stops the gradient). Each chunk is its own
    ``nn.value_and_grad`` call, evaluated before the next one starts, so memory
    holds one chunk's activations whatever ``T`` is. The forward pass, spikes and
    states are those of one unchunked call (see the module docstring for where
    that is bit for bit); with ``chunk >= T`` the gradient is full BPTT exactly.

    Args:
        net: stateful network ``net(x_chunk, state) -> (y_chunk, state)``.
        loss_fn: the loss of one chunk, ``loss_fn(y_chunk)`` or, with ``targets``,
            ``loss_fn(y_chunk, targets_chunk)``; a scalar array. Labels that are not
            time-major (``[B]`` classes) can be captured in a closure.
        x: input ``[T, B, ...]``.
        chunk: steps per chunk (``>= 1``; the last chunk may be shorter); a multiple
            of :func:`time_granularity` for networks with TAC layers.
        state: initial state (``None``: zeros).
        targets: optional pytree of time-major arrays ``[T, ...]``, sliced into the
            same chunks as ``x`` and passed to ``loss_fn``.
        module: the ``nn.Module`` whose trainable parameters get gradients (default
            ``net`` when it is a module).

    Returns:
        :class:`TBPTTResult` ``(loss, grads, state, outputs)``.

    Raises:
        ValueError: as :func:`run_chunked`; a ``loss_fn`` that does not return a scalar
            array.
        TypeError: as :func:`run_chunked`; a non-callable ``loss_fn``.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable; got {type(loss_fn).__name__}")
    module = _module_of(net, module, "tbptt")
    T, chunk = _check_chunked_args(net, x, chunk, module)

    def chunk_loss(x_chunk, state_in, targets_chunk):
        y, state_out = net(x_chunk, state_in)
        loss = loss_fn(y) if targets_chunk is None else loss_fn(y, targets_chunk)
        if not isinstance(loss, mx.array) or loss.ndim != 0:
            raise ValueError(
                f"loss_fn must return a scalar mx.array; got {getattr(loss, 'shape', loss)!r}"
            )
        return loss, (mx.stop_gradient(y), state_out)

    value_and_grad = nn.value_and_grad(module, chunk_loss)
    total, grads, ys = None, None, []
    for start in range(0, T, chunk):
        span = slice(start, start + chunk)
        targets_chunk = None if targets is None else _tree_map(lambda a, s=span: a[s], targets)
        state = _tree_map(mx.stop_gradient, state)
        (loss, (y, state)), g = value_and_grad(x[span], state, targets_chunk)
        total = loss if total is None else total + loss
        grads = g if grads is None else _tree_map_pair(mx.add, grads, g)
        ys.append(y)
        # the module's own updates (BatchNorm statistics) too: left lazy they would
        # keep each chunk's activations alive
        mx.eval(total, grads, state, y, module.parameters())
    outputs = ys[0] if len(ys) == 1 else mx.concatenate(ys)
    return TBPTTResult(total, grads, state, outputs)


def _tree_map_pair(fn, a, b):
    leaves_a, rebuild = _flatten(a)
    leaves_b, _ = _flatten(b)
    return rebuild([fn(u, v) for u, v in zip(leaves_a, leaves_b, strict=True)])


# ----------------------------------------------------------------------------
# Schedules
# ----------------------------------------------------------------------------


def incremental_time_steps(
    epoch: int,
    steps: Sequence[int] = (1, 2, 4),
    epochs_per_stage: int | Sequence[int] = 1,
) -> int:
    """Number of time steps ``T`` to train with at ``epoch`` (0-based).

    Stage ``k`` uses ``steps[k]`` for ``epochs_per_stage`` epochs (or
    ``epochs_per_stage[k]`` when a sequence is given); after the last stage the
    last value is kept. Example: ``steps=(1, 2, 4), epochs_per_stage=2`` gives
    ``1, 1, 2, 2, 4, 4, 4, ...``.

    Raises:
        ValueError: ``epoch < 0``, empty or decreasing ``steps``, values ``< 1``,
            ``epochs_per_stage`` of the wrong length.
        TypeError: non-integer arguments.
    """
    check_int("epoch", epoch, minimum=0)
    steps = tuple(steps)
    if not steps:
        raise ValueError("steps must hold at least one number of time steps; got ()")
    for t in steps:
        check_int("steps[i]", t, minimum=1)
    if any(b < a for a, b in itertools.pairwise(steps)):
        raise ValueError(f"steps must be non-decreasing; got {steps}")
    if isinstance(epochs_per_stage, int) and not isinstance(epochs_per_stage, bool):
        durations = (epochs_per_stage,) * len(steps)
    else:
        durations = tuple(epochs_per_stage)
        if len(durations) != len(steps):
            raise ValueError(
                f"epochs_per_stage must be an int or hold one value per stage "
                f"({len(steps)}); got {len(durations)} values"
            )
    for d in durations:
        check_int("epochs_per_stage", d, minimum=1)
    end = 0
    for t, d in zip(steps, durations, strict=True):
        end += d
        if epoch < end:
            return t
    return steps[-1]
