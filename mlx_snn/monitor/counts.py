"""Per-layer counting rules of :mod:`mlx_snn.monitor` (the formulas are in its docstring).

Each rule runs the module's own ``__call__`` and then queues small integer arrays (event
counts, per-position counts, a binary-input flag) with a ``fold`` that adds them, as exact
Python ints, to the layer's :class:`LayerStats` once the forward pass has finished. Counts
that follow from shapes alone are folded at the same time, so a forward that raises adds
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ..nn import AMOS, LIF, TAC, TACTP, AssociativeLeaky, StateLeaky, TemporalSelectorDecoder

__all__ = ["KINDS", "LayerStats", "classify"]

OPS = ("ac", "mac", "mult")
TRAFFIC = ("weight_read", "state_read", "state_write")
FIELDS = OPS + TRAFFIC
KINDS = ("synapse", "neuron", "aggregate", "container", "not counted")

SYNAPSES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
AGGREGATES = (TAC, TACTP)
# isinstance on the public neuron classes (ParallelLIF is an LIF)
NEURONS = (LIF, StateLeaky, AMOS, AssociativeLeaky, TemporalSelectorDecoder)


def _zeros() -> dict[str, int]:
    return dict.fromkeys(FIELDS, 0)


@dataclass
class LayerStats:
    """Totals of one module over every recorded forward pass (exact integers).

    ``snn`` holds the network as run (``ac``, ``mac``, ``mult`` operations and bytes
    ``weight_read``, ``state_read``, ``state_write``); ``ann`` the same keys for the
    equivalent non-spiking network (each layer once per sample). ``frames`` is what the
    layer ran on (synapse: frames; neuron: ``T*B`` steps; aggregate: output frames);
    ``per_frame_frames`` what the per-frame network runs there (``T*B`` inside a TAC /
    TAC-TP, else ``frames``).
    """

    path: str
    type: str
    kind: str
    note: str = ""
    calls: int = 0
    samples: int = 0
    frames: int = 0
    per_frame_frames: int = 0
    params: int = 0
    in_events: int = 0
    in_elements: int = 0
    graded_calls: int = 0
    synops: int = 0
    dense_mac: int = 0
    snn: dict[str, int] = field(default_factory=_zeros)
    ann: dict[str, int] = field(default_factory=_zeros)
    neurons: int = 0
    spikes: int = 0
    neuron_steps: int = 0
    fired_pairs: int = 0
    sample_neurons: int = 0
    spikes_by_step: list[int] = field(default_factory=list)
    neurons_by_step: list[int] = field(default_factory=list)
    spikes_by_neuron: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)

    def add(self, target: dict[str, int], **counts: int) -> None:
        """Add ``counts`` (field name to number) to ``target`` (e.g. ``self.snn``)."""
        for key, value in counts.items():
            target[key] += int(value)


def classify(module: nn.Module) -> tuple[str, str]:
    """``(kind, note)`` of a module: which rule counts it, or why none does."""
    if isinstance(module, SYNAPSES):
        return "synapse", ""
    if isinstance(module, AGGREGATES):
        return "aggregate", ""
    if isinstance(module, NEURONS):
        note = "outputs logits: membrane counted, no spikes"
        return "neuron", note if isinstance(module, TemporalSelectorDecoder) else ""
    own = sorted(k for k, v in module.items() if isinstance(v, mx.array))
    if len(module.named_modules()) > 1:
        if own:
            return "not counted", f"own arrays {own} used outside its child layers"
        return "container", ""
    return "not counted", f"no cost formula for {type(module).__name__}"


class Context(Protocol):
    """What a rule needs from the recorder: the batch, deferral, the TAC frames in force."""

    batch: int
    defer: Callable[[dict[str, mx.array], Callable[[dict[str, np.ndarray]], None]], None]
    first_call: Callable[[LayerStats], bool]
    per_frame_frames: Callable[[nn.Module, int], int]
    tac_enter: Callable[[nn.Module, int], None]
    tac_exit: Callable[[nn.Module], None]


def _first_array(args, kwargs, name: str = "x") -> mx.array:
    x = args[0] if args else kwargs.get(name)
    if not isinstance(x, mx.array):
        raise TypeError(f"monitor: expected an mx.array as the first argument; got {type(x)}")
    return mx.stop_gradient(x)


def _nonzero(x: mx.array) -> mx.array:
    return x != 0


def _binary(x: mx.array) -> mx.array:
    return mx.all((x == 0) | (x == 1))


def _as_tuple(value, n: int) -> tuple[int, ...]:
    if value is None:
        return (1,) * n
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * n


@lru_cache(maxsize=256)
def _taps(size: int, kernel: int, stride: int, pad: int, dilation: int) -> tuple[np.ndarray, int]:
    """Kernel taps landing on each input position along one axis, and the output size.

    Input position ``i`` is hit by output ``o`` at tap ``j`` when
    ``o * stride - pad + j * dilation == i``; taps on the zero padding hit nothing.
    """
    out = (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    hit = np.arange(max(out, 0))[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation
    hit = hit[(hit >= 0) & (hit < size)]
    return np.bincount(hit, minlength=size).astype(np.int64), max(out, 0)


def conv_fan_out(spatial: tuple[int, ...], module: nn.Module) -> tuple[np.ndarray, tuple[int, ...]]:
    """Exact fan-out ``[*spatial]`` of one input element per position, and the output size.

    ``fan_out[p] = (C_out / groups) * prod_d taps_d(p_d)``: every output channel of the
    element's group, once for every kernel tap that reads position ``p`` (stride, padding,
    dilation and the edges included).
    """
    weight = module.weight
    nd = weight.ndim - 2
    kernel = weight.shape[1:-1]
    stride = _as_tuple(module.stride, nd)
    padding = _as_tuple(module.padding, nd)
    dilation = _as_tuple(module.dilation, nd)
    groups = module.groups or 1
    fan = np.array(weight.shape[0] // groups, dtype=np.int64)
    out = []
    for d in range(nd):
        taps, size = _taps(spatial[d], kernel[d], stride[d], padding[d], dilation[d])
        fan = np.multiply.outer(fan, taps)
        out.append(size)
    return fan, tuple(out)


def record_synapse(ctx: Context, module, stats: LayerStats, call, args, kwargs):
    """Linear / ConvNd: SynOps = sum over nonzero inputs of their fan-out."""
    out = call(module, *args, **kwargs)
    x = _first_array(args, kwargs)
    weight = module.weight
    has_bias = "bias" in module
    nz = _nonzero(x)
    if isinstance(module, nn.Linear):
        fan_in, fan_out = weight.shape[1], weight.shape[0]
        frames = x.size // fan_in
        per_frame_mac, out_per_frame = fan_in * fan_out, fan_out
        # events per frame; each reaches all fan_out outputs
        counts = nz.reshape(frames, fan_in).astype(mx.uint32).sum(axis=1)
        fan = np.array(fan_out, dtype=np.int64)
    else:
        nd = weight.ndim - 2
        fan, out_size = conv_fan_out(tuple(x.shape[1:-1]), module)
        frames = x.shape[0]
        per_frame_mac = int(fan.sum()) * x.shape[-1]
        out_per_frame = math.prod(out_size) * weight.shape[0]
        # events per input position (over frames and channels), times that position's fan-out
        counts = nz.astype(mx.uint32).sum(axis=(0, nd + 1))
    elements = x.size
    bw, ba = weight.dtype.size, x.dtype.size
    bias_ops = frames * out_per_frame if has_bias else 0
    per_frame = ctx.per_frame_frames(module, frames)
    ann_here = ctx.first_call(stats)
    batch = ctx.batch

    def fold(v):
        counts = v["counts"].astype(np.int64)
        synops, events = int((counts * fan).sum()), int(counts.sum())
        graded = not bool(v["binary"])
        stats.calls += 1
        stats.frames += frames
        stats.per_frame_frames += per_frame
        stats.in_events += events
        stats.in_elements += elements
        stats.graded_calls += graded
        stats.synops += synops
        stats.dense_mac += frames * per_frame_mac
        stats.add(stats.snn, **{"mac" if graded else "ac": synops})
        stats.add(
            stats.snn,
            ac=bias_ops,
            weight_read=(synops + bias_ops) * bw,
            state_read=(synops + bias_ops) * ba,
            state_write=(synops + bias_ops) * ba,
        )
        if ann_here:
            ann_bias = batch * out_per_frame if has_bias else 0
            stats.add(
                stats.ann,
                mac=batch * per_frame_mac,
                ac=ann_bias,
                weight_read=(batch * per_frame_mac + ann_bias) * bw,
                state_read=batch * per_frame_mac * ba,
                state_write=batch * out_per_frame * ba,
            )

    ctx.defer({"counts": counts, "binary": _binary(x)}, fold)
    return out


def _spikes(out) -> mx.array:
    s = out[0] if isinstance(out, tuple) else out
    if not isinstance(s, mx.array) or s.ndim < 2:
        got = tuple(s.shape) if isinstance(s, mx.array) else type(s).__name__
        raise ValueError(f"monitor: a neuron must return spikes [T, B, ...]; got {got}")
    return mx.stop_gradient(s)


def record_neuron(ctx: Context, module, stats: LayerStats, call, args, kwargs):
    """Spiking neurons: spike statistics and the cost of the state update per step."""
    out = call(module, *args, **kwargs)
    x = _first_array(args, kwargs)
    b = x.dtype.size
    if isinstance(module, TemporalSelectorDecoder):
        steps, batch, width = x.shape[0], x.shape[1], module.num_classes
        n = steps * batch * width
        ops, state, ann_mac = {"mac": n, "mult": n}, (2 * n * b, n * b), 0
        arrays = {}
    else:
        s = _spikes(out)
        steps, batch, width = s.shape[0], s.shape[1], math.prod(s.shape[2:])
        n, feature_shape = s.size, tuple(s.shape[2:])
        if isinstance(module, AssociativeLeaky):
            cells = module.key_dim * module.value_dim * steps * batch
            ops, state = {"mac": 2 * cells, "mult": cells}, (cells * b, cells * b)
            ann_mac = ctx.batch * 2 * module.key_dim * module.value_dim
        else:
            ops = {"mac": n, "mult": n if isinstance(module, AMOS) else 0}
            state, ann_mac = (2 * n * b, n * b), 0
        nz = _nonzero(s).astype(mx.uint32)
        arrays = {
            "by_step": nz.reshape(steps, -1).sum(axis=1),
            "by_neuron": nz.sum(axis=(0, 1)),
            "fired": mx.any(nz.reshape(steps, batch, -1) > 0, axis=0).astype(mx.uint32).sum(),
        }
    subtract_reset = isinstance(module, LIF) and module.reset == "subtract"
    ann_here = ctx.first_call(stats)

    def fold(v):
        stats.calls += 1
        stats.frames += steps * batch
        stats.per_frame_frames += steps * batch
        stats.neuron_steps += n
        stats.add(stats.snn, **ops, state_read=state[0], state_write=state[1])
        if ann_here:
            stats.add(stats.ann, mac=ann_mac)
        if not v:
            stats.neurons = width
            return
        by_step = v["by_step"].astype(np.int64)
        spikes = int(by_step.sum())
        stats.spikes += spikes
        stats.fired_pairs += int(v["fired"])
        stats.sample_neurons += batch * width
        if subtract_reset:
            stats.add(stats.snn, ac=spikes)
        grow = len(by_step) - len(stats.spikes_by_step)
        if grow > 0:
            stats.spikes_by_step += [0] * grow
            stats.neurons_by_step += [0] * grow
        for t, k in enumerate(by_step.tolist()):
            stats.spikes_by_step[t] += k
            stats.neurons_by_step[t] += batch * width
        # one module called at places of different shapes keeps one count per shape
        previous = stats.spikes_by_neuron.get(feature_shape, 0)
        stats.spikes_by_neuron[feature_shape] = previous + v["by_neuron"].astype(np.int64)
        stats.neurons = sum(math.prod(k) for k in stats.spikes_by_neuron)

    ctx.defer(arrays, fold)
    return out


def record_aggregate(ctx: Context, module, stats: LayerStats, call, args, kwargs):
    """TAC / TAC-TP: the group sums, their normalisation and TAC's rescale by ``S_k``."""
    x = args[0] if args else kwargs.get("x")
    frames = x.shape[0] * x.shape[1] if isinstance(x, mx.array) and x.ndim >= 2 else 0
    ctx.tac_enter(module, frames)
    try:
        out = call(module, *args, **kwargs)
    finally:
        ctx.tac_exit(module)
    x = _first_array(args, kwargs)
    steps = x.shape[0]
    group = min(module.group, steps)
    groups = math.ceil(steps / group)
    batch, elements = x.shape[1], x.size
    agg = groups * (elements // steps)
    rescale = out.size if isinstance(module, TAC) else 0
    b = x.dtype.size
    accumulate = "ac" if module.beta == 1.0 else "mac"

    def fold(v):
        events = int(v["events"])
        stats.calls += 1
        stats.frames += groups * batch
        stats.per_frame_frames += steps * batch
        stats.in_events += events
        stats.in_elements += elements
        stats.graded_calls += not bool(v["binary"])
        stats.add(stats.snn, **{accumulate: events})
        stats.add(
            stats.snn,
            mult=agg + rescale,
            state_read=(events + agg + rescale) * b,
            state_write=(events + agg + rescale) * b,
        )

    ctx.defer({"events": _nonzero(x).astype(mx.uint32).sum(), "binary": _binary(x)}, fold)
    return out


def record_other(ctx: Context, module, stats: LayerStats, call, args, kwargs):
    """Containers and modules without a formula: calls only (the latter listed as not counted)."""
    out = call(module, *args, **kwargs)

    def fold(_):
        stats.calls += 1

    ctx.defer({}, fold)
    return out


RULES = {
    "synapse": record_synapse,
    "neuron": record_neuron,
    "aggregate": record_aggregate,
    "container": record_other,
    "not counted": record_other,
}
