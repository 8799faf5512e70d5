"""mlx_snn.viz writes non-empty PNGs, checks its input, and says how to get matplotlib."""

from __future__ import annotations

import sys

import mlx.core as mx
import numpy as np
import pytest

from mlx_snn import viz

pytest.importorskip("matplotlib", reason='matplotlib is not installed (pip install "mlx-snn[viz]")')

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 1000, path


def test_every_plot_writes_a_png(tmp_path):
    key = mx.random.key(0)
    spikes = (mx.random.uniform(shape=(12, 3, 40), key=key) < 0.2).astype(mx.float32)
    mem = mx.random.normal((12, 3, 40), key=key).astype(mx.bfloat16)
    frames = mx.random.uniform(shape=(6, 2, 16, 16, 2), key=key)
    viz.spike_raster(spikes, tmp_path / "raster.png", sample=2)
    viz.membrane_trace(mem, tmp_path / "mem.png", spikes=spikes, threshold=1.0, neurons=[0, 39])
    viz.frame_grid(frames, tmp_path / "frames.png", cols=4)
    viz.frame_grid(np.ones((3, 8, 8, 1)), tmp_path / "gray.png")
    viz.firing_rates({"conv1": spikes, "fc": 0.25}, tmp_path / "rates.png")
    viz.confusion_matrix(np.eye(11) * 3 + 1, tmp_path / "cm.png", class_names=list("abcdefghijk"))
    for name in ("raster", "mem", "frames", "gray", "rates", "cm"):
        assert_png(tmp_path / f"{name}.png")


def test_a_figure_is_returned_without_a_path():
    fig = viz.spike_raster(np.zeros((5, 7)))
    assert fig.axes[0].get_xlabel() == "time step"


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"sample must lie in 0\.\.1"):
        viz.spike_raster(np.zeros((4, 2, 3)), sample=2)
    with pytest.raises(ValueError, match=r"frames must be \[T, H, W, C\] with C = 1 or 2"):
        viz.frame_grid(np.zeros((4, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"neurons must lie in 0\.\.2"):
        viz.membrane_trace(np.zeros((4, 3)), neurons=[3])
    with pytest.raises(ValueError, match="spikes must match mem's shape"):
        viz.membrane_trace(np.zeros((4, 3)), spikes=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="matrix must be square"):
        viz.confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class_names must hold 2 names"):
        viz.confusion_matrix(np.zeros((2, 2)), class_names=["a"])
    with pytest.raises(ValueError, match="rates must be a non-empty mapping"):
        viz.firing_rates({})


def test_without_matplotlib_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "mlx-snn\[viz\]"'):
        viz.spike_raster(np.zeros((3, 3)))
