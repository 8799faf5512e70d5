"""The LIF <-> NIR neuron mapping, both directions (equations in the package docstring)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .. import surrogate as _surrogate
from ..functional import RESETS, TIMINGS
from ..nn import LIF, ParallelLIF, StateLeaky
from ._common import key

# snn.LIF clamps a learned threshold to this in its forward pass (its docstring).
LEARNED_THRESHOLD_FLOOR = 1e-6


def effective_params(neuron) -> tuple[np.ndarray, np.ndarray]:
    """``(beta, threshold)`` as float64 arrays, as the neuron's forward pass uses them."""
    beta = np.asarray(neuron.beta, dtype=np.float64)
    threshold = np.asarray(neuron.threshold, dtype=np.float64)
    if neuron.learn_beta:
        beta = np.clip(beta, 0.0, 1.0)
    if getattr(neuron, "learn_threshold", False):
        threshold = np.maximum(threshold, LEARNED_THRESHOLD_FLOOR)
    return beta, threshold


def neuron_metadata(name: str, neuron, dt: float) -> dict:
    """What NIR's neuron nodes cannot say: reset mode and timing, dt, training options."""
    if isinstance(neuron, StateLeaky):
        kind, reset, timing = "StateLeaky", "none", "immediate"
    else:
        kind = "ParallelLIF" if isinstance(neuron, ParallelLIF) else "LIF"
        reset, timing = neuron.reset, neuron.reset_timing
    md = {
        key("module"): kind,
        key("dt"): float(dt),
        key("reset"): reset,
        key("reset_timing"): timing,
        key("learn_beta"): bool(neuron.learn_beta),
    }
    if kind != "StateLeaky":
        md[key("detach_reset")] = bool(neuron.detach_reset)
        md[key("learn_threshold")] = bool(neuron.learn_threshold)
        md[key("algorithm")] = str(neuron.algorithm)
    if kind == "ParallelLIF":
        md[key("chunk")] = int(neuron.chunk)
    md.update(_surrogate_metadata(name, neuron.surrogate))
    return md


def _surrogate_metadata(name: str, sg) -> dict:
    make = _surrogate.NAMES.get(getattr(sg, "name", None))
    if make is None or type(make()) is not type(sg) or not dataclasses.is_dataclass(sg):
        warnings.warn(
            f"{name}: surrogate {sg!r} is not one of mlx_snn.surrogate.NAMES, so the graph "
            "does not record it; a loaded network uses the default surrogate (training only: "
            "the forward pass does not depend on it)",
            stacklevel=4,
        )
        return {}
    md = {key("surrogate"): sg.name}
    for field in dataclasses.fields(sg):
        md[key(f"surrogate.{field.name}")] = float(getattr(sg, field.name))
    return md


def _surrogate_from(md: dict):
    name = md.get("surrogate")
    if name not in _surrogate.NAMES:
        return "fast_sigmoid"
    prefix = "surrogate."
    params = {k[len(prefix) :]: float(v) for k, v in md.items() if k.startswith(prefix)}
    return _surrogate.NAMES[name](**params)


def build_neuron(md: dict, beta, threshold, reset: str, timing: str):
    """An mlx-snn neuron from decoded parameters and its mlx-snn metadata (maybe empty).

    ``beta`` and ``threshold`` are floats or channels-last arrays; ``reset`` and
    ``timing`` are already resolved (argument > metadata > NIR default).
    """
    if reset not in RESETS or timing not in TIMINGS:
        raise ValueError(
            f"reset must be one of {RESETS} and reset_timing one of {TIMINGS}; "
            f"got {reset!r}, {timing!r}"
        )
    surrogate = _surrogate_from(md)
    kind = md.get("module")
    learn_beta = bool(md.get("learn_beta", False))
    if kind == "StateLeaky" and reset == "none" and timing == "immediate":
        return StateLeaky(beta, threshold, surrogate=surrogate, learn_beta=learn_beta)
    detach = md.get("detach_reset")
    detach = None if detach is None or timing == "delayed" else bool(detach)
    options = dict(
        reset=reset,
        surrogate=surrogate,
        detach_reset=detach,
        learn_beta=learn_beta,
        learn_threshold=bool(md.get("learn_threshold", False)),
        reset_timing=timing,
    )
    parallel_ok = reset != "none" and timing == "immediate"
    if kind == "ParallelLIF" and parallel_ok:
        return ParallelLIF(beta, threshold, chunk=int(md["chunk"]), **options)
    algorithm = md.get("algorithm", "auto")
    if algorithm == "parallel" and not parallel_ok:
        algorithm = "auto"
    return LIF(beta, threshold, algorithm=algorithm, **options)
