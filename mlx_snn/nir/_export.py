"""mlx-snn -> NIR: trace the layer calls on a sample, check they form a chain, write nodes."""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._checks import check_float_array, check_positive
from ..nn import (
    AMOS,
    LIF,
    TAC,
    TACTP,
    AssociativeLeaky,
    StateLeaky,
    TemporalSelectorDecoder,
    VotingLayer,
)
from . import layers
from ._common import (
    MAXPOOL_THRESHOLD,
    flatten_order,
    key,
    nir_shape,
    require_nir,
    to_nir_layout,
)
from ._neurons import effective_params, neuron_metadata

NEURONS = (LIF, StateLeaky)
PER_FRAME = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, layers.SumPool2d)  # [N, H, W, C]
LAST_AXIS = (nn.Linear, VotingLayer, layers.Permute)  # act on the last axis
PASS_THROUGH = (nn.Dropout, nn.Identity)  # identity in eval mode
LEAVES = (
    *NEURONS,
    *PER_FRAME,
    *LAST_AXIS,
    *PASS_THROUGH,
    nn.BatchNorm,
    layers.Flatten,
    layers.Scale,
    layers.Threshold,
    layers.LeakyIntegrator,
)
NO_NIR_NODE = {
    TAC: "aggregates groups of time steps into one (NIR graphs run once per time step)",
    TACTP: "aggregates groups of time steps (NIR graphs run once per time step)",
    AMOS: "fires at most once per sequence (no NIR neuron has that rule)",
    TemporalSelectorDecoder: "reads the membrane at the first output spike (no NIR node)",
    AssociativeLeaky: "has a matrix state with input-dependent decay (no NIR node)",
    nn.RNN: "is a recurrent layer without a NIR node",
    nn.GRU: "is a recurrent layer without a NIR node",
    nn.LSTM: "is a recurrent layer without a NIR node",
}


@dataclass
class Call:
    """One recorded call of a leaf layer."""

    module: nn.Module
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def _describe(name: str, module) -> str:
    return f"{name or 'the model'} ({type(module).__name__})"


def check_modules(model: nn.Module) -> dict[int, str]:
    """Raise for modules without a NIR node (all of them named); return ``id -> name``."""
    names, problems = {}, []
    for name, m in model.named_modules():
        names.setdefault(id(m), name)
        why = next((why for cls, why in NO_NIR_NODE.items() if isinstance(m, cls)), None)
        if why is None and not isinstance(m, LEAVES) and not m.children():
            why = "has no NIR node that mlx_snn.nir.export knows (see the table in mlx_snn.nir)"
        if why is not None:
            problems.append(f"{_describe(name, m)} {why}")
    if problems:
        raise ValueError("cannot export to NIR: " + "; ".join(sorted(problems)))
    return names


@contextlib.contextmanager
def recording(names: dict[int, str], calls: list[Call]):
    """Record the outermost calls of every leaf layer class while the block runs."""
    depth = 0

    def wrap(call):
        def recorded(self, x, *args, **kwargs):
            nonlocal depth
            if depth == 0 and any(
                a is not None and a is not False for a in (*args, *kwargs.values())
            ):
                raise ValueError(
                    f"{_describe(names.get(id(self), ''), self)} was called with extra "
                    "arguments (state= or return_state=): a NIR graph starts at rest "
                    "and passes one array from node to node"
                )
            depth += 1
            try:
                y = call(self, x, *args, **kwargs)
            finally:
                depth -= 1
            if depth == 0:
                name = names.get(id(self)) or type(self).__name__.lower()
                calls.append(Call(self, name, tuple(x.shape), tuple(y.shape)))
            return y

        return recorded

    saved = [(cls, cls.__dict__.get("__call__")) for cls in LEAVES]
    try:
        for cls, _ in saved:
            cls.__call__ = wrap(cls.__call__)
        yield
    finally:
        for cls, original in reversed(saved):
            if original is None:
                del cls.__call__
            else:
                cls.__call__ = original


def replay(calls: list[Call], x: mx.array, out_shape: tuple[int, ...]) -> mx.array:
    """Run the recorded layers as a plain chain (each on the previous output, reshaped)."""
    for call in calls:
        if math.prod(call.in_shape) != x.size:
            raise _not_a_chain(calls)
        x = call.module(x.reshape(call.in_shape))
    if math.prod(out_shape) != x.size:
        raise _not_a_chain(calls)
    return x.reshape(out_shape)


def _not_a_chain(calls: list[Call]) -> ValueError:
    chain = " -> ".join(_describe(c.name, c.module) for c in calls) or "(no layers)"
    return ValueError(
        "the model is not a chain of its layers: running the layers it called, each on "
        "the previous one's output, does not reproduce its output on sample_input. "
        "mlx_snn.nir.export supports models whose __call__ only chains layers and "
        "flattens (no residual connections, activation functions or other array "
        f"operations between layers). Layers called: {chain}"
    )


class Writer:
    """Turns the recorded calls into NIR nodes, tracking the per-sample feature shape.

    ``shape`` is the current feature shape in mlx-snn's layout; ``order`` is set
    after a flatten of a channels-last image until a linear layer absorbs it.
    """

    def __init__(self, nir, dt: float, in_shape: tuple[int, ...], frames: int):
        self.nir, self.dt, self.frames = nir, dt, frames
        self.nodes: dict[str, object] = {
            "input": nir.Input(input_type=np.array(nir_shape(in_shape)))
        }
        self.shape = tuple(in_shape)
        self.order = None
        self.binary = False  # the current signal is spikes (0/1)
        self.prev = "the input"

    # -- bookkeeping ---------------------------------------------------------------
    def add(self, name: str, node) -> None:
        base, i = name, 1
        while name in self.nodes or name == "output":
            name, i = f"{base}_{i}", i + 1
        self.nodes[name] = node

    def features(self, call: Call, *leads: int) -> None:
        """Check the call runs once per frame and continues from the current shape.

        ``leads``: how many leading (frame) axes the input may have, in order of
        preference; the rest are the per-sample features.
        """
        valid = [n for n in leads if n >= 1 and math.prod(call.in_shape[:n]) == self.frames]
        if not valid:
            raise ValueError(
                f"{_describe(call.name, call.module)} got input of shape {call.in_shape}, "
                f"which is not {self.frames} frames (T*B of sample_input) of features: "
                "export needs every layer to run once per time step"
            )
        self.reshape(call.in_shape[valid[0] :], _describe(call.name, call.module))

    def reshape(self, feats: tuple[int, ...], where: str) -> None:
        feats = tuple(feats)
        if feats == self.shape:
            return
        if len(feats) == 1 and feats[0] == math.prod(self.shape):
            self.add(
                "flatten",
                self.nir.Flatten(
                    input_type=np.array(nir_shape(self.shape)), start_dim=0, end_dim=-1
                ),
            )
            self.order = flatten_order(self.shape)
            self.shape = feats
            return
        raise ValueError(
            f"before {where} the features change from {self.shape} to {feats} "
            f"(after {self.prev}): only flattening to one dimension has a NIR node"
        )

    def per_feature(self, value) -> np.ndarray:
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), self.shape)
        return to_nir_layout(np.array(arr), self.order)

    def absorb_order(self, weight: np.ndarray) -> np.ndarray:
        """Reorder a ``(out, in)`` weight's columns to NIR's flatten order."""
        if self.order is not None:
            weight, self.order = weight[:, self.order], None
        return weight

    def finish(self, out_feats: tuple[int, ...]) -> dict:
        self.reshape(out_feats, "the output")
        if self.order is not None:
            n = len(self.order)
            perm = np.zeros((n, n), dtype=np.float32)
            perm[self.order, np.arange(n)] = 1.0
            self.order = None
            self.add(
                "permutation", self.nir.Linear(weight=perm, metadata={key("module"): "Permutation"})
            )
        self.nodes["output"] = self.nir.Output(output_type=np.array(nir_shape(self.shape)))
        return self.nodes

    # -- layers ------------------------------------------------------------------------
    def write(self, call: Call) -> None:
        m, ndim = call.module, len(call.in_shape)
        if isinstance(m, PASS_THROUGH):
            self.features(call, ndim - len(self.shape), ndim - 1)
            return
        if isinstance(m, nn.BatchNorm):
            self.features(call, ndim - len(self.shape), ndim - 1)
            self.fold_batchnorm(call)
        elif isinstance(m, PER_FRAME):
            self.features(call, ndim - 3)
            self.per_frame(call)
        elif isinstance(m, LAST_AXIS):
            self.features(call, ndim - 1)
            self.last_axis(call)
        else:  # neurons and the elementwise sequence layers take [T, B, ...]
            self.features(call, 2)
            self.sequence(call)
        self.prev = _describe(call.name, call.module)

    def per_frame(self, call: Call) -> None:
        nir, m = self.nir, call.module
        out_feats = call.out_shape[len(call.in_shape) - 3 :]
        if isinstance(m, nn.Conv2d):
            weight = np.array(m.weight).transpose(0, 3, 1, 2)
            has_bias = "bias" in m
            bias = np.array(m.bias) if has_bias else np.zeros(weight.shape[0], np.float32)
            node = nir.Conv2d(
                input_shape=self.shape[:2],
                weight=weight,
                stride=tuple(m.stride),
                padding=tuple(m.padding),
                dilation=(m.dilation,) * 2 if isinstance(m.dilation, int) else tuple(m.dilation),
                groups=int(m.groups),
                bias=bias,
                metadata={} if has_bias else {key("bias"): False},
            )
            nir_out = tuple(int(d) for d in node.output_type["output"])
            if nir_out != nir_shape(out_feats):
                raise ValueError(
                    f"cannot export {_describe(call.name, m)}: the installed nir package "
                    f"computes its output shape as {nir_out} instead of "
                    f"{nir_shape(out_feats)} (nir 1.0.8 reads only the kernel height, so "
                    "non-square kernels fail its type check)"
                )
            self.add(call.name, node)
            self.binary = False
        else:
            pool = m.pool if isinstance(m, layers.SumPool2d) else m
            # mlx.nn's pooling layers keep their geometry in private attributes only
            geometry = dict(
                kernel_size=np.array(pool._kernel_size),
                stride=np.array(pool._stride),
                padding=np.array([p[0] for p in pool._padding]),
            )
            if isinstance(m, nn.MaxPool2d):
                if not self.binary:
                    raise ValueError(
                        f"cannot export {_describe(call.name, m)}: NIR has no max pooling. "
                        "On spikes (0/1) it equals SumPool2d followed by Threshold(0.5), "
                        f"which is how it is exported, but here it follows {self.prev}, "
                        "whose output is not spikes"
                    )
                marker = {key("module"): "MaxPool2d"}
                self.add(call.name, nir.SumPool2d(**geometry, metadata=marker))
                threshold = np.full(nir_shape(out_feats), MAXPOOL_THRESHOLD)
                self.add(f"{call.name}.threshold", nir.Threshold(threshold, metadata=dict(marker)))
            elif isinstance(m, nn.AvgPool2d):
                self.add(call.name, nir.AvgPool2d(**geometry))
                self.binary = False
            else:
                self.add(call.name, nir.SumPool2d(**geometry))
                self.binary = False
        self.shape = tuple(out_feats)

    def fold_batchnorm(self, call: Call) -> None:
        bn, last_name = call.module, list(self.nodes)[-1]
        last = self.nodes[last_name]
        if not isinstance(last, (self.nir.Conv2d, self.nir.Affine, self.nir.Linear)):
            raise ValueError(
                f"cannot export {_describe(call.name, bn)}: NIR has no BatchNorm node, and it "
                f"follows {self.prev}, not a Conv2d or Linear it could be folded into"
            )
        if "running_mean" not in bn:
            raise ValueError(
                f"cannot export {_describe(call.name, bn)}: without running statistics "
                "(track_running_stats=False) it normalises each batch, which no NIR node does"
            )
        mean, var = np.array(bn.running_mean, np.float64), np.array(bn.running_var, np.float64)
        if mean.shape != (last.weight.shape[0],):
            raise ValueError(
                f"cannot fold {_describe(call.name, bn)} ({mean.size} channels) into "
                f"{self.prev} ({last.weight.shape[0]} outputs)"
            )
        # var + eps rounded to fp32 as BatchNorm itself computes it; the rest in float64
        var_eps = (var.astype(np.float32) + np.float32(bn.eps)).astype(np.float64)
        scale = 1.0 / np.sqrt(var_eps)
        shift = -mean * scale
        if "weight" in bn:
            gamma, beta = np.array(bn.weight, np.float64), np.array(bn.bias, np.float64)
            scale, shift = scale * gamma, shift * gamma + beta
        weight = np.asarray(last.weight, np.float64)
        bias = np.zeros(weight.shape[0]) if isinstance(last, self.nir.Linear) else last.bias
        weight = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
        bias = np.asarray(bias, np.float64) * scale + shift
        if isinstance(last, self.nir.Conv2d):
            last.weight, last.bias = weight.astype(np.float32), bias.astype(np.float32)
            last.metadata.pop(key("bias"), None)
        else:
            self.nodes[last_name] = self.nir.Affine(
                weight=weight.astype(np.float32), bias=bias.astype(np.float32)
            )

    def last_axis(self, call: Call) -> None:
        nir, m = self.nir, call.module
        n_in = self.shape[0]
        if isinstance(m, nn.Linear):
            weight = self.absorb_order(np.array(m.weight))
            if "bias" in m:
                node = nir.Affine(weight=weight, bias=np.array(m.bias))
            else:
                node = nir.Linear(weight=weight)
        elif isinstance(m, VotingLayer):
            classes = n_in // m.voters
            vote = np.kron(np.eye(classes), np.full((1, m.voters), 1.0 / m.voters))
            meta = {key("module"): "VotingLayer", key("voters"): int(m.voters)}
            node = nir.Linear(weight=self.absorb_order(vote.astype(np.float32)), metadata=meta)
        else:  # layers.Permute
            index = np.array(m.index)
            perm = np.zeros((index.size, n_in), dtype=np.float32)
            perm[np.arange(index.size), index] = 1.0
            node = nir.Linear(
                weight=self.absorb_order(perm), metadata={key("module"): "Permutation"}
            )
        self.add(call.name, node)
        self.shape = (call.out_shape[-1],)
        self.binary = False

    def sequence(self, call: Call) -> None:
        nir, m = self.nir, call.module
        if isinstance(m, NEURONS):
            self.neuron(call)
            return
        if isinstance(m, layers.Flatten):
            self.reshape(call.out_shape[2:], _describe(call.name, m))
            return
        if isinstance(m, layers.Scale):
            self.add(call.name, nir.Scale(self.per_feature(m.scale)))
            self.binary = False
        elif isinstance(m, layers.Threshold):
            self.add(call.name, nir.Threshold(self.per_feature(m.threshold)))
            self.binary = True
        else:  # layers.LeakyIntegrator
            beta, gain = self.per_feature(m.beta), self.per_feature(m.gain)
            self.add(call.name, self.integrator(call.name, beta, gain, {key("dt"): self.dt}))
            self.binary = False

    def integrator(self, name: str, beta: np.ndarray, gain: np.ndarray, md: dict):
        """``LI`` (beta < 1) or ``I`` (beta = 1) with input gain ``gain``."""
        dt = self.dt
        if np.all(beta == 1.0):
            return self.nir.I(r=gain / dt, metadata=md)
        tau = self.tau(name, beta)
        return self.nir.LI(tau=tau, r=gain * tau / dt, v_leak=np.zeros_like(tau), metadata=md)

    def tau(self, name: str, beta: np.ndarray) -> np.ndarray:
        if np.any(beta == 1.0):
            raise ValueError(
                f"cannot export {name}: beta is 1 for some neurons and below 1 for others; "
                "NIR's LIF/LI need tau = dt/(1-beta) < inf and its IF/I have no leak, so "
                "one layer must be all leaky or all non-leaky"
            )
        return self.dt / (1.0 - beta)

    def neuron(self, call: Call) -> None:
        nir, m, dt = self.nir, call.module, self.dt
        beta, threshold = (self.per_feature(p) for p in effective_params(m))
        md = neuron_metadata(_describe(call.name, m), m, dt)
        ones, zeros = np.ones_like(beta), np.zeros_like(beta)
        if md[key("reset")] == "none":
            self.add(call.name, self.integrator(_describe(call.name, m), beta, ones, md))
            marker = {key("module"): md[key("module")]}
            self.add(f"{call.name}.threshold", nir.Threshold(threshold, metadata=marker))
        elif np.all(beta == 1.0):
            self.add(
                call.name, nir.IF(r=ones / dt, v_threshold=threshold, v_reset=zeros, metadata=md)
            )
        else:
            tau = self.tau(_describe(call.name, m), beta)
            node = nir.LIF(
                tau=tau, r=tau / dt, v_leak=zeros, v_threshold=threshold, v_reset=zeros, metadata=md
            )
            self.add(call.name, node)
        self.binary = True


def export(model: nn.Module, sample_input: mx.array, dt: float = 1.0):
    """Implementation of :func:`mlx_snn.nir.export` (documented there)."""
    nir = require_nir()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an mlx.nn.Module; got {type(model).__name__}")
    check_float_array("sample_input", sample_input, min_ndim=3)
    dt = check_positive("dt", dt)
    names = check_modules(model)
    was_training = model.training
    model.eval()
    try:
        calls: list[Call] = []
        with recording(names, calls):
            reference = model(sample_input)
        if not isinstance(reference, mx.array):
            raise TypeError(
                f"model must return one mx.array; it returned {type(reference).__name__}"
            )
        if not mx.array_equal(replay(calls, sample_input, tuple(reference.shape)), reference):
            raise _not_a_chain(calls)
    finally:
        model.train(was_training)
    t, b = sample_input.shape[:2]
    if reference.ndim < 3 or tuple(reference.shape[:2]) != (t, b):
        raise ValueError(
            f"the model's output has shape {tuple(reference.shape)}; export needs [T, B, ...] "
            f"with the T={t} steps and B={b} samples of sample_input"
        )
    writer = Writer(nir, dt, tuple(sample_input.shape[2:]), t * b)
    for call in calls:
        writer.write(call)
    nodes = writer.finish(tuple(reference.shape[2:]))
    edges = list(itertools.pairwise(nodes))
    from .. import __version__  # set after mlx_snn/__init__ has imported this package

    metadata = {
        key("version"): __version__,
        key("dt"): dt,
        key("layout"): "mlx-snn runs this graph on [T, B, ...] arrays, images channels-last",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
