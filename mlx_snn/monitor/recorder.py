"""The recorder: swaps each module's class for a recording subclass while it is active."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._checks import check_int
from .._tracing import host_values
from ..nn import TAC, TACTP
from .counts import RULES, LayerStats, classify
from .report import CostReport

__all__ = ["Monitor"]

# module id -> the Monitor recording it (at most one at a time)
_ACTIVE: dict[int, Monitor] = {}
_RECORDING_CLASSES: dict[type, type] = {}


def _recording_class(cls: type) -> type:
    """A subclass of ``cls`` whose ``__call__`` reports to the active Monitor (cached)."""
    sub = _RECORDING_CLASSES.get(cls)
    if sub is None:
        original = cls.__call__

        def __call__(self, *args, **kwargs):
            monitor = _ACTIVE.get(id(self))
            if monitor is None:
                return original(self, *args, **kwargs)
            return monitor._record(self, original, args, kwargs)

        namespace = {
            "__call__": __call__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "_monitor_original_class": cls,
        }
        sub = _RECORDING_CLASSES[cls] = type(cls.__name__, (cls,), namespace)
    return sub


class Monitor:
    """Record per-layer activity and cost of ``model`` over real forward passes.

    Use as a context manager (``with Monitor(model) as mon: model(x)``) or call it
    (``mon(x)`` runs ``model(x)`` under recording); read :meth:`report`. Every forward pass
    recorded adds up: ``reset()`` clears the totals. Outputs and gradients are those of the
    model alone (the recording only reads arrays). See :mod:`mlx_snn.monitor` for the
    mechanism and what is counted.

    Args:
        model (nn.Module): the network. Its outermost call's first argument must be an
            array ``[T, B, ...]``: ``B`` (axis ``batch_axis``) is the number of samples.
        strict (bool): raise ``TypeError`` for modules without a cost formula instead of
            listing them as "not counted". Default ``False``.
        batch_axis (int): the batch axis of the outermost input. Default ``1`` (time-major).

    Raises:
        TypeError: ``model`` not an ``nn.Module``; with ``strict=True``, modules the monitor
            has no formula for (named with their paths and types).
        RuntimeError: the model is already being recorded by another Monitor, or the
            forward pass runs under ``mx.compile`` / ``mx.vmap`` (counts need values).
        ValueError: the outermost input has no axis ``batch_axis``.
    """

    def __init__(self, model: nn.Module, *, strict: bool = False, batch_axis: int = 1):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an mlx.nn.Module; got {type(model).__name__}")
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool; got {type(strict).__name__}")
        self.model = model
        self.strict = strict
        self.batch_axis = check_int("batch_axis", batch_axis, minimum=0)
        self._patched: list[tuple[nn.Module, type]] = []
        self._depth = 0
        self._pending: list[tuple[dict, Callable]] = []
        self._counted: dict[int, LayerStats] = {}
        self._new_order: list[int] = []
        self._called: dict[int, LayerStats] = {}
        self._tac_frames: dict[int, int] = {}
        self._input: mx.array | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every count recorded so far."""
        self._stats: dict[int, LayerStats] = {}
        self._modules: dict[int, nn.Module] = {}
        self._order: list[int] = []
        self._static_not_counted: list[LayerStats] = []
        self._tac_owner: dict[int, int] = {}
        self.forwards = 0
        self.samples = 0
        self._scan()

    def _scan(self) -> None:
        """Classify every module of the tree (new ones get fresh totals)."""
        modules: dict[int, tuple[str, nn.Module]] = {}
        for path, m in self.model.named_modules():
            modules.setdefault(id(m), (path or type(self.model).__name__, m))
        self._modules = {key: m for key, (_, m) in modules.items()}
        missing = []
        for key, (path, m) in modules.items():
            if key not in self._stats:
                kind, note = classify(m)
                params = sum(v.size for _, v in _own_arrays(m)) if kind == "synapse" else 0
                self._stats[key] = LayerStats(path, type(m).__name__, kind, note, params=params)
            if self._stats[key].kind == "not counted":
                missing.append(f"{path} ({type(m).__name__}: {self._stats[key].note})")
            if isinstance(m, (TAC, TACTP)):
                self._scan_tac(path, m)
        if self.strict and missing:
            raise TypeError(
                "Monitor(strict=True): no cost formula for "
                + "; ".join(missing)
                + ". Pass strict=False to record them as 'not counted'."
            )

    def _scan_tac(self, path: str, tac: nn.Module) -> None:
        parts = [("layer", tac.layer)]
        if isinstance(tac, TACTP):
            parts.append(("neuron", tac.neuron))
        for name, part in parts:
            if isinstance(part, nn.Module):
                if name == "layer":
                    for _, inner in part.named_modules():
                        self._tac_owner[id(inner)] = id(tac)
            elif not any(s.path == f"{path}.{name}" for s in self._static_not_counted):
                note = f"the {name} of {type(tac).__name__} is a plain callable, not a Module"
                self._static_not_counted.append(
                    LayerStats(f"{path}.{name}", type(part).__name__, "not counted", note)
                )
        if self.strict and self._static_not_counted:
            raise TypeError(
                "Monitor(strict=True): "
                + "; ".join(f"{s.path}: {s.note}" for s in self._static_not_counted)
            )

    # -- patching -------------------------------------------------------------------------

    def __enter__(self) -> Monitor:
        if self._patched:
            raise RuntimeError("this Monitor is already active (no nested `with` on it)")
        self._scan()
        try:
            for key, module in self._modules.items():
                if key in _ACTIVE:
                    raise RuntimeError(
                        f"{self._stats[key].path} is already being recorded by another Monitor"
                    )
                cls = type(module)
                object.__setattr__(module, "__class__", _recording_class(cls))
                _ACTIVE[key] = self
                self._patched.append((module, cls))
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        while self._patched:
            module, cls = self._patched.pop()
            object.__setattr__(module, "__class__", cls)
            _ACTIVE.pop(id(module), None)
        self._depth = 0
        self._pending.clear()
        self._new_order.clear()

    def __call__(self, *args, **kwargs):
        """``model(*args, **kwargs)`` under recording."""
        with self:
            return self.model(*args, **kwargs)

    # -- recording ------------------------------------------------------------------------

    def _record(self, module, call, args, kwargs):
        top = self._depth == 0
        if top:
            self._begin(args, kwargs)
        key = id(module)
        stats = self._stats[key]
        if key not in self._order and key not in self._new_order:
            self._new_order.append(key)
        self._called[key] = stats
        self._depth += 1
        try:
            out = RULES[stats.kind](self, module, stats, call, args, kwargs)
        except BaseException:
            if top:
                self._pending.clear()
                self._new_order.clear()
            raise
        finally:
            self._depth -= 1
        if top:
            self._finish()
        return out

    def _begin(self, args, kwargs) -> None:
        x = args[0] if args else next(iter(kwargs.values()), None)
        if not isinstance(x, mx.array) or x.ndim <= self.batch_axis:
            got = tuple(x.shape) if isinstance(x, mx.array) else type(x).__name__
            raise ValueError(
                f"Monitor: the outermost call's first argument must be an array with a batch "
                f"axis {self.batch_axis} (time-major [T, B, ...]); got {got}"
            )
        self.batch = x.shape[self.batch_axis]
        self._input = x
        self._pending.clear()
        self._counted.clear()
        self._called.clear()
        self._new_order.clear()

    def _finish(self) -> None:
        arrays = [a for values, _ in self._pending for a in values.values()]
        probe, self._input = mx.sum(mx.stop_gradient(self._input)), None
        if host_values(probe) is None:
            self._pending.clear()
            self._new_order.clear()
            raise RuntimeError(
                "Monitor cannot count inside mx.compile or mx.vmap (the counts need values): "
                "record an uncompiled forward pass of the same model"
            )
        mx.eval(*arrays)
        for values, fold in self._pending:
            fold({k: np.array(v) for k, v in values.items()})
        self._pending.clear()
        self._order += self._new_order
        self._new_order.clear()
        self.forwards += 1
        self.samples += self.batch
        for stats in self._called.values():
            stats.samples += self.batch

    # the Context protocol of counts.py
    def defer(self, arrays: dict, fold: Callable) -> None:
        """For the counting rules: call ``fold(numpy arrays)`` once this forward pass ends."""
        self._pending.append((arrays, fold))

    def first_call(self, stats: LayerStats) -> bool:
        """For the counting rules: ``True`` the first time this forward pass reaches ``stats``."""
        new = id(stats) not in self._counted
        self._counted[id(stats)] = stats
        return new

    def per_frame_frames(self, module: nn.Module, frames: int) -> int:
        """For the counting rules: the frames a per-frame run of ``module`` would take."""
        return self._tac_frames.get(self._tac_owner.get(id(module), -1), frames)

    def tac_enter(self, tac: nn.Module, frames: int) -> None:
        """For the counting rules: ``tac`` starts on ``frames = T*B`` input frames."""
        self._tac_frames[id(tac)] = frames

    def tac_exit(self, tac: nn.Module) -> None:
        """For the counting rules: ``tac`` has returned (undoes :meth:`tac_enter`)."""
        self._tac_frames.pop(id(tac), None)

    # -- results --------------------------------------------------------------------------

    def report(self) -> CostReport:
        """A :class:`CostReport` of everything recorded since construction or ``reset()``."""
        called = [self._stats[k] for k in self._order]
        rest = [s for k, s in self._stats.items() if k not in self._order]
        return CostReport(
            layers=[s for s in called if s.kind not in ("container", "not counted")],
            samples=self.samples,
            forwards=self.forwards,
            not_called=[s for s in rest if s.kind not in ("container", "not counted")],
            not_counted=[s for s in called + rest if s.kind == "not counted"]
            + self._static_not_counted,
        )


def _own_arrays(module: nn.Module):
    return [(k, v) for k, v in module.items() if isinstance(v, mx.array)]
