"""Plots of spiking activity (matplotlib, an optional dependency: ``pip install "mlx-snn[viz]"``).

Every function takes ``mx.array`` or numpy input, returns a ``matplotlib.figure.Figure`` and,
given ``path``, writes it there as an image (PNG by the suffix). Figures are built without
``pyplot``, so nothing here touches matplotlib's global state or needs a display.

- :func:`spike_raster`: spikes ``[T, B, ...]`` (or ``[T, N]``) of one sample as a raster.
- :func:`membrane_trace`: membrane potentials over time, with the threshold and spikes.
- :func:`frame_grid`: the frames ``[T, H, W, C]`` of one input sample in a grid (two channels:
  ON - OFF, red / blue).
- :func:`firing_rates`: mean firing rate per layer as bars.
- :func:`confusion_matrix`: a ``[C, C]`` count matrix (rows: true class, columns: predicted).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import mlx.core as mx
import numpy as np

__all__ = ["confusion_matrix", "firing_rates", "frame_grid", "membrane_trace", "spike_raster"]

INSTALL_HINT = 'pip install "mlx-snn[viz]"'


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            f"mlx_snn.viz needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from err
    return Figure(figsize=(width, height), layout="constrained")


def _numpy(name: str, x, min_ndim: int) -> np.ndarray:
    if isinstance(x, mx.array):
        x = x.astype(mx.float32)
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be an mx.array or numpy array; got {type(x).__name__}"
        ) from err
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions; got shape {arr.shape}")
    return arr


def _one_sample(name: str, x, sample: int, sample_ndim: int) -> np.ndarray:
    """``x [T, B, ...]`` -> ``[T, ...]`` of ``sample``; ``x`` of ``sample_ndim`` dims as is."""
    arr = _numpy(name, x, 2)
    if arr.ndim == sample_ndim:
        return arr
    if not 0 <= sample < arr.shape[1]:
        raise ValueError(
            f"sample must lie in 0..{arr.shape[1] - 1} for {name} of shape {arr.shape}"
        )
    return arr[:, sample]


def _save(fig, path: str | os.PathLike | None):
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
    return fig


def spike_raster(
    spikes,
    path: str | os.PathLike | None = None,
    *,
    sample: int = 0,
    max_neurons: int | None = 512,
    title: str | None = None,
):
    """Raster of one sample: a dot at ``(t, n)`` for every spike of neuron ``n`` at step ``t``.

    Args:
        spikes: ``[T, N]`` or ``[T, B, ...]`` (features flattened to neurons).
        path: where to write the image, or ``None``.
        sample: which of ``B`` to draw.
        max_neurons: draw only the first this many neurons (``None``: all).
        title: figure title.
    """
    s = _one_sample("spikes", spikes, sample, 2)
    s = s.reshape(s.shape[0], -1)
    if max_neurons is not None:
        s = s[:, :max_neurons]
    fig = _figure(7, 3.5)
    ax = fig.add_subplot()
    t, n = np.nonzero(s)
    ax.scatter(t, n, s=4, marker="|", color="black")
    ax.set(xlim=(-0.5, s.shape[0] - 0.5), ylim=(-0.5, s.shape[1] - 0.5))
    ax.set(xlabel="time step", ylabel="neuron", title=title or f"spikes ({int(s.sum())} in total)")
    return _save(fig, path)


def membrane_trace(
    mem,
    path: str | os.PathLike | None = None,
    *,
    spikes=None,
    threshold: float | None = None,
    sample: int = 0,
    neurons: Sequence[int] = (0, 1, 2, 3),
    title: str | None = None,
):
    """Membrane potential of a few neurons of one sample over time.

    Args:
        mem: ``[T, N]`` or ``[T, B, ...]`` membrane potentials (features flattened).
        path: where to write the image, or ``None``.
        spikes: same shape as ``mem``; spikes are marked on the traces.
        threshold: drawn as a dashed line.
        sample: which of ``B`` to draw.
        neurons: which (flattened) neurons to draw.
        title: figure title.
    """
    v = _one_sample("mem", mem, sample, 2)
    v = v.reshape(v.shape[0], -1)
    s = None
    if spikes is not None:
        s = _one_sample("spikes", spikes, sample, 2).reshape(v.shape[0], -1)
        if s.shape != v.shape:
            raise ValueError(f"spikes must match mem's shape {v.shape}; got {s.shape}")
    neurons = [int(n) for n in neurons]
    if any(not 0 <= n < v.shape[1] for n in neurons):
        raise ValueError(f"neurons must lie in 0..{v.shape[1] - 1}; got {neurons}")
    fig = _figure(7, 3.5)
    ax = fig.add_subplot()
    steps = np.arange(v.shape[0])
    for n in neurons:
        (line,) = ax.plot(steps, v[:, n], label=f"neuron {n}")
        if s is not None:
            fired = s[:, n] > 0
            ax.plot(steps[fired], v[fired, n], "o", color=line.get_color(), ms=4)
    if threshold is not None:
        ax.axhline(threshold, color="gray", ls="--", lw=1, label="threshold")
    ax.set(xlabel="time step", ylabel="membrane potential", title=title or "membrane")
    ax.legend(fontsize="small", loc="best")
    return _save(fig, path)


def frame_grid(
    frames,
    path: str | os.PathLike | None = None,
    *,
    sample: int = 0,
    cols: int = 8,
    title: str | None = None,
):
    """The ``T`` frames of one input sample, left to right, top to bottom.

    Two channels (DVS polarities: OFF, ON) are drawn as ON - OFF with a red-blue map centred on
    zero; one channel in grey.

    Args:
        frames: ``[T, H, W, C]`` or ``[T, B, H, W, C]`` with ``C`` 1 or 2.
        path: where to write the image, or ``None``.
        sample: which of ``B`` to draw.
        cols: frames per row.
        title: figure title.
    """
    f = _one_sample("frames", frames, sample, 4)
    if f.ndim != 4 or f.shape[-1] not in (1, 2):
        raise ValueError(f"frames must be [T, H, W, C] with C = 1 or 2; got {f.shape}")
    steps = f.shape[0]
    cols = max(1, min(cols, steps))
    rows = math.ceil(steps / cols)
    fig = _figure(1.4 * cols + 0.6, 1.4 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    if f.shape[-1] == 2:
        images, cmap = f[..., 1] - f[..., 0], "RdBu_r"
        limit = float(np.abs(images).max()) or 1.0
        vmin, vmax = -limit, limit
    else:
        images, cmap = f[..., 0], "gray"
        vmin, vmax = float(images.min()), float(images.max()) or 1.0
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < steps:
            ax.imshow(images[k], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_title(f"t={k}", fontsize="small")
    fig.suptitle(title or ("ON - OFF events" if f.shape[-1] == 2 else "input frames"))
    return _save(fig, path)


def firing_rates(
    rates: Mapping[str, object],
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
):
    """Bar chart of the mean firing rate of each layer.

    Args:
        rates: layer name -> a number or a spike array (its mean is the rate).
        path: where to write the image, or ``None``.
        title: figure title.
    """
    if not isinstance(rates, Mapping) or not rates:
        raise ValueError("rates must be a non-empty mapping of layer name -> rate or spikes")
    names = list(rates)
    values = [float(_numpy(f"rates[{n!r}]", rates[n], 0).mean()) for n in names]
    fig = _figure(max(4.0, 0.8 * len(names) + 1.5), 3.2)
    ax = fig.add_subplot()
    bars = ax.bar(range(len(names)), values, color="tab:blue")
    ax.bar_label(bars, fmt="%.3f", fontsize="small")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(ylabel="spikes per neuron per step", title=title or "firing rate per layer")
    return _save(fig, path)


def confusion_matrix(
    matrix,
    path: str | os.PathLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
):
    """Counts ``matrix[true, predicted]`` as a heat map with the counts written in.

    Args:
        matrix: ``[C, C]`` counts.
        path: where to write the image, or ``None``.
        class_names: ``C`` tick labels (default ``0 .. C-1``).
        title: figure title (default: the accuracy).
    """
    m = _numpy("matrix", matrix, 2)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square [C, C]; got shape {m.shape}")
    c = m.shape[0]
    names = [str(k) for k in range(c)] if class_names is None else list(class_names)
    if len(names) != c:
        raise ValueError(f"class_names must hold {c} names; got {len(names)}")
    fig = _figure(0.55 * c + 3, 0.5 * c + 2)
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    high = m.max() / 2 if m.size else 0
    for i in range(c):
        for j in range(c):
            if m[i, j]:
                color = "white" if m[i, j] > high else "black"
                ax.text(j, i, f"{m[i, j]:g}", ha="center", va="center", color=color, fontsize=7)
    ax.set_xticks(range(c), names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(c), names, fontsize="small")
    total = m.sum()
    accuracy = np.trace(m) / total if total else float("nan")
    ax.set(xlabel="predicted", ylabel="true", title=title or f"accuracy {100 * accuracy:.2f}%")
    return _save(fig, path)
