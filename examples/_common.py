"""Pieces the training examples share: per-epoch seeding, checkpoints that resume bit-for-bit,
and the ``--plots`` figures (through :mod:`mlx_snn.viz`).

Imported by ``examples/dvs_gesture.py`` and ``examples/mnist.py`` (which add this folder to
``sys.path`` so that it is found however they are started).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

CHECKPOINT = "checkpoint.safetensors"


def seed_epoch(seed: int, epoch: int) -> None:
    """Reseed MLX's global generator from ``(seed, epoch)`` alone, so that a resumed run draws
    what an uninterrupted one drew."""
    mx.random.seed(int(np.random.SeedSequence([seed, 3, epoch]).generate_state(1)[0]))


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: optim.Optimizer,
    epoch: int,
    config: dict,
    history: list,
) -> None:
    """Weights, BatchNorm statistics, optimizer state, epoch, config and history in one
    safetensors file, written to a temporary name and renamed (never half-written)."""
    arrays = {f"model.{k}": v for k, v in tree_flatten(model.parameters())}
    arrays.update({f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)})
    meta = {"epoch": str(epoch), "config": json.dumps(config), "history": json.dumps(history)}
    tmp = path.with_name(f".{path.stem}.tmp.safetensors")
    mx.save_safetensors(str(tmp), arrays, metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: optim.Optimizer,
    config: dict,
    must_match: Sequence[str],
) -> tuple[int, list]:
    """Restore what :func:`save_checkpoint` wrote; return ``(epoch, history)``.

    Exits with a message when a setting named in ``must_match`` differs from ``config`` or the
    optimizer state does not fit the model.
    """
    arrays, meta = mx.load(str(path), return_metadata=True)
    saved = json.loads(meta["config"])
    diff = [
        f"{k}: checkpoint {saved.get(k)!r}, now {config[k]!r}"
        for k in must_match
        if k in saved and saved[k] != config[k]  # a setting older files lack is not checked
    ]
    if diff:
        raise SystemExit(f"--resume: {path} was made with other settings ({'; '.join(diff)})")
    model.load_weights([(k[6:], v) for k, v in arrays.items() if k.startswith("model.")])
    opt = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    if sorted(opt) != sorted(k for k, _ in tree_flatten(optimizer.state)):
        raise SystemExit(f"--resume: the optimizer state in {path} does not fit this model")
    optimizer.state = tree_map_with_path(lambda key, _: opt[key], optimizer.state)
    return int(meta["epoch"]), json.loads(meta["history"])


def record_layers(model: nn.Module, x: mx.array) -> tuple[dict[str, mx.array], mx.array]:
    """Spikes of every layer of a paper network (``mnist_convnet`` or ``dvs_gesture_net``) and
    the output LIF's membrane, for input ``x [T, B, H, W, C]``.

    Runs the model's own layers in its order (conv blocks, then FC + LIF); returns
    ``({layer name: spikes [T_l, B, ...]}, membrane [T_out, B, N_out])``.
    """
    blocks = model.blocks if hasattr(model, "blocks") else [model.block1, model.block2]
    spikes, h = {}, x
    for i, block in enumerate(blocks):
        h = block(h)
        spikes[f"conv{i + 1}"] = h
    h = model.lif1(model.fc1(h.reshape(*h.shape[:2], -1)))
    spikes["fc1"] = h
    out, state = model.lif2(model.fc2(h), return_state=True)
    spikes["fc2"] = out
    return spikes, state.mem


def write_spike_plots(model: nn.Module, x: mx.array, folder: Path, title: str) -> list[Path]:
    """``--plots``: input frames, output raster, output membrane, firing rate per layer.

    ``x [T, B, H, W, C]`` is one batch of inputs; the first sample is drawn. The model is put in
    eval mode for this and back in train mode after.
    """
    from mlx_snn import viz

    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    spikes, mem = record_layers(model, x)
    model.train()
    threshold = float(model.lif2.threshold)
    paths = {
        "frames": folder / "input_frames.png",
        "raster": folder / "output_raster.png",
        "membrane": folder / "output_membrane.png",
        "rates": folder / "firing_rates.png",
    }
    viz.frame_grid(x, paths["frames"], title=f"{title}: input, sample 0")
    viz.spike_raster(spikes["fc2"], paths["raster"], title=f"{title}: output spikes, sample 0")
    viz.membrane_trace(
        mem,
        paths["membrane"],
        spikes=spikes["fc2"],
        threshold=threshold,
        title=f"{title}: output membrane, sample 0",
    )
    viz.firing_rates(spikes, paths["rates"], title=f"{title}: firing rate per layer")
    return list(paths.values())
