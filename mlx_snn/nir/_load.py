"""NIR -> mlx-snn: walk the chain from Input to Output, one module per node (or pair)."""

from __future__ import annotations

import math
import os
from collections import defaultdict

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._checks import check_choice, check_positive
from ..functional import RESETS, TIMINGS
from ..nn import SeqToBatch, VotingLayer
from . import layers
from ._common import (
    GAIN_RTOL,
    PREFIX,
    flatten_order,
    from_nir_layout,
    ours_shape,
    pair,
    require_nir,
)
from ._neurons import build_neuron


def _plain(value):
    """An HDF5-read metadata value as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def metadata(node) -> dict:
    """The node's mlx-snn metadata without the key prefix (empty for foreign graphs)."""
    md = getattr(node, "metadata", None) or {}
    return {k[len(PREFIX) :]: _plain(v) for k, v in md.items() if k.startswith(PREFIX)}


def _label(name: str, node) -> str:
    return f"node {name!r} ({type(node).__name__})"


def chain(nir, graph) -> tuple[tuple[int, ...], list[tuple[str, object]]]:
    """``(input shape, [(name, node), ...])`` from Input to Output, or raise."""
    nodes = graph.nodes
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"the graph must have one Input and one Output node; it has inputs {inputs} "
            f"and outputs {outputs}"
        )
    succ, pred = defaultdict(list), defaultdict(list)
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
    hint = "mlx_snn.nir.load supports chains: one path from Input to Output"
    path, name, seen = [], inputs[0], {inputs[0]}
    while name != outputs[0]:
        if len(succ[name]) != 1:
            raise ValueError(
                f"{_label(name, nodes[name])} has {len(succ[name])} outgoing edges; {hint}"
            )
        name = succ[name][0]
        if len(pred[name]) != 1 or name in seen:
            raise ValueError(
                f"{_label(name, nodes[name])} has {len(pred[name])} incoming edges (a merge or "
                f"a recurrent connection); {hint}"
            )
        seen.add(name)
        if isinstance(nodes[name], nir.NIRGraph):
            raise ValueError(
                f"{_label(name, nodes[name])} is a nested graph (snnTorch writes recurrent "
                f"layers this way); {hint}"
            )
        if name != outputs[0]:
            path.append((name, nodes[name]))
    if len(seen) != len(nodes):
        raise ValueError(f"nodes {sorted(set(nodes) - seen)} are not on the path; {hint}")
    shape = nodes[inputs[0]].input_type["input"]
    return tuple(int(d) for d in np.ravel(shape)), path


def _value(arr: np.ndarray):
    """A float when every element is equal, else a float32 array."""
    flat = np.ravel(arr)
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return mx.array(np.asarray(arr, dtype=np.float32))


class Reader:
    """Builds the modules; ``shape`` is the NIR (channels-first) feature shape so far."""

    def __init__(self, nir, shape, dt, reset, reset_timing):
        self.nir, self.shape = nir, tuple(shape)
        self.dt, self.reset, self.reset_timing = dt, reset, reset_timing
        self.layers: list[nn.Module] = []
        self.order = None  # pending flatten reorder (see _common.flatten_order)

    def per_feature(self, label: str, value) -> np.ndarray:
        """A NIR per-neuron array in our layout, broadcast to the current shape."""
        arr = np.asarray(value, dtype=np.float64)
        try:
            arr = np.broadcast_to(arr, self.shape)
        except ValueError:
            raise ValueError(
                f"{label}: parameters of shape {arr.shape} do not match the incoming "
                f"shape {self.shape}"
            ) from None
        return from_nir_layout(np.array(arr), self.order)

    def read(self, path, i: int) -> int:
        """Build the module(s) for ``path[i]``; return the index of the next node."""
        nir = self.nir
        name, node = path[i]
        nxt = path[i + 1][1] if i + 1 < len(path) else None
        label = _label(name, node)
        if isinstance(node, (nir.Affine, nir.Linear)):
            self.linear(label, node)
        elif isinstance(node, nir.Conv2d):
            self.conv(label, node)
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            return i + self.pool(node, nxt)
        elif isinstance(node, nir.Flatten):
            self.flatten(label, node)
        elif isinstance(node, (nir.LIF, nir.IF)):
            self.neuron(label, node, node.v_threshold)
        elif isinstance(node, (nir.LI, nir.I)):
            if isinstance(nxt, nir.Threshold):
                self.neuron(label, node, nxt.threshold)
                return i + 2
            beta, gain = self.decay_and_gain(label, node)
            self.layers.append(layers.LeakyIntegrator(_value(beta), _value(gain)))
        elif isinstance(node, nir.Threshold):
            self.layers.append(layers.Threshold(_value(self.per_feature(label, node.threshold))))
        elif isinstance(node, nir.Scale):
            self.layers.append(layers.Scale(_value(self.per_feature(label, node.scale))))
        else:
            raise ValueError(f"{label} has no mlx-snn equivalent (see the table in mlx_snn.nir)")
        return i + 1

    def finish(self) -> None:
        if self.order is not None:
            self.layers.append(layers.Permute(self.order))
            self.order = None

    # -- layers ------------------------------------------------------------------------
    def linear(self, label: str, node) -> None:
        weight = np.asarray(node.weight)
        if weight.ndim != 2 or len(self.shape) != 1 or weight.shape[1] != self.shape[0]:
            raise ValueError(
                f"{label}: weight of shape {weight.shape} does not map the incoming shape "
                f"{self.shape} (mlx-snn loads 2-D weights on flat features)"
            )
        if self.order is not None:
            unordered = np.empty_like(weight)
            unordered[:, self.order] = weight
            weight, self.order = unordered, None
        n_out, n_in = weight.shape
        self.shape = (n_out,)
        md = metadata(node)
        if md.get("module") == "VotingLayer":
            voters = int(md["voters"])
            vote = np.kron(np.eye(n_out), np.full((1, voters), 1.0 / voters))
            if np.allclose(weight, vote, rtol=0, atol=1e-7):
                self.layers.append(VotingLayer(voters))
                return
        if md.get("module") == "Permutation" and np.array_equal(weight, np.eye(n_in)):
            return  # it only undid a flatten reorder, which is not pending any more
        has_bias = isinstance(node, self.nir.Affine)
        layer = nn.Linear(n_in, n_out, bias=has_bias)
        layer.weight = mx.array(weight.astype(np.float32))
        if has_bias:
            layer.bias = mx.array(np.asarray(node.bias, dtype=np.float32))
        self.layers.append(layer)

    def conv(self, label: str, node) -> None:
        weight = np.asarray(node.weight)
        groups = int(node.groups)
        if len(self.shape) != 3 or weight.ndim != 4 or weight.shape[1] * groups != self.shape[0]:
            raise ValueError(
                f"{label}: weight of shape {weight.shape} with groups={groups} does not fit "
                f"the incoming shape {self.shape} (C, H, W)"
            )
        kernel = weight.shape[2:]
        stride, dilation = pair(node.stride), pair(node.dilation)
        padding = node.padding
        if isinstance(padding, str):
            reach = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
            if padding == "same" and any(r % 2 for r in reach):
                raise ValueError(f"{label}: padding='same' with an even kernel is asymmetric")
            padding = [r // 2 if padding == "same" else 0 for r in reach]
        padding = pair(padding)
        bias = np.asarray(node.bias, dtype=np.float32)
        has_bias = bool(metadata(node).get("bias", True)) or np.any(bias != 0)
        c_out = weight.shape[0]
        conv = nn.Conv2d(self.shape[0], c_out, kernel, stride, padding, dilation, groups, has_bias)
        conv.weight = mx.array(weight.transpose(0, 2, 3, 1).astype(np.float32))
        if has_bias:
            conv.bias = mx.array(bias)
        self.layers.append(SeqToBatch(conv))
        size = [
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, d, k, s in zip(self.shape[1:], padding, dilation, kernel, stride, strict=True)
        ]
        self.shape = (c_out, *size)

    def pool(self, node, nxt) -> int:
        """Pooling; a SumPool2d + Threshold pair that mlx-snn wrote for a max pool is one."""
        kernel, stride, padding = pair(node.kernel_size), pair(node.stride), pair(node.padding)
        consumed = 1
        if isinstance(node, self.nir.AvgPool2d):
            layer = nn.AvgPool2d(kernel, stride, padding)
        elif (
            metadata(node).get("module") == "MaxPool2d"
            and isinstance(nxt, self.nir.Threshold)
            and metadata(nxt).get("module") == "MaxPool2d"
        ):
            layer, consumed = nn.MaxPool2d(kernel, stride, padding), 2
        else:
            layer = layers.SumPool2d(kernel, stride, padding)
        self.layers.append(SeqToBatch(layer))
        geometry = zip(self.shape[1:], padding, kernel, stride, strict=True)
        size = [(n + 2 * p - k) // s + 1 for n, p, k, s in geometry]
        self.shape = (self.shape[0], *size)
        return consumed

    def flatten(self, label: str, node) -> None:
        rank = len(self.shape)
        start, end = int(node.start_dim) % rank, int(node.end_dim) % rank
        out = (*self.shape[:start], math.prod(self.shape[start : end + 1]), *self.shape[end + 1 :])
        if len(out) != 1:
            raise ValueError(
                f"{label} turns {self.shape} into {out}: mlx-snn loads flattens to one dimension"
            )
        if rank > 1:
            self.layers.append(layers.Flatten())
            self.order = flatten_order(ours_shape(self.shape))
        self.shape = out

    # -- neurons -----------------------------------------------------------------------
    def time_step(self, label: str, md: dict) -> float:
        dt = self.dt if self.dt is not None else md.get("dt")
        if dt is None:
            raise ValueError(
                f"{label}: the graph does not record the time step its time constants are "
                "meant for; pass dt= to mlx_snn.nir.load (snnTorch's export uses dt=1e-4)"
            )
        return float(dt)

    def decay_and_gain(self, label: str, node) -> tuple[np.ndarray, np.ndarray]:
        """Forward Euler: ``beta = 1 - dt/tau``, input gain ``r*dt/tau`` (``r*dt`` for IF/I)."""
        dt = self.time_step(label, metadata(node))
        r = self.per_feature(label, node.r)
        if isinstance(node, (self.nir.IF, self.nir.I)):
            return np.ones_like(r), r * dt
        tau = self.per_feature(label, node.tau)
        if np.any(np.asarray(node.v_leak) != 0):
            raise ValueError(f"{label}: v_leak != 0 has no mlx-snn equivalent (rest at 0 only)")
        beta = 1.0 - dt / tau
        if not np.all((beta >= 0) & (beta <= 1)):
            raise ValueError(
                f"{label}: dt={dt} does not fit tau in [{tau.min()}, {tau.max()}]: "
                "beta = 1 - dt/tau must lie in [0, 1]; pass the dt the graph was made for"
            )
        return beta, r * dt / tau

    def neuron(self, label: str, node, threshold) -> None:
        md = metadata(node)
        beta, gain = self.decay_and_gain(label, node)
        spiking = isinstance(node, (self.nir.LIF, self.nir.IF))
        reset = self.reset or md.get("reset") or ("zero" if spiking else "none")
        if spiking and reset == "zero" and np.any(np.asarray(node.v_reset) != 0):
            raise ValueError(f"{label}: v_reset != 0 has no mlx-snn equivalent (reset to 0 only)")
        timing = self.reset_timing or md.get("reset_timing") or "immediate"
        if not np.allclose(gain, 1.0, rtol=0.0, atol=GAIN_RTOL):
            self.layers.append(layers.Scale(_value(gain)))
        thr = self.per_feature(label, threshold)
        self.layers.append(build_neuron(md, _value(beta), _value(thr), reset, timing))


def load(graph, *, dt=None, reset=None, reset_timing=None) -> nn.Sequential:
    """Implementation of :func:`mlx_snn.nir.load` (documented there)."""
    nir = require_nir()
    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph or a path; got {type(graph).__name__}")
    if dt is not None:
        dt = check_positive("dt", dt)
    if reset is not None:
        check_choice("reset", reset, RESETS)
    if reset_timing is not None:
        check_choice("reset_timing", reset_timing, TIMINGS)
    shape, path = chain(nir, graph)
    reader = Reader(nir, shape, dt, reset, reset_timing)
    i = 0
    while i < len(path):
        i = reader.read(path, i)
    reader.finish()
    return nn.Sequential(*reader.layers)
