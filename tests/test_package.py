"""Package surface: version, CLI, runtime setting, bundled data, offline demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlx_snn as snn
from mlx_snn import cli
from mlx_snn.data import bundled_mnist, read_idx
from mlx_snn.data.idx import parse_idx

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_a_dev_release_of_1_0_0():
    assert snn.__version__.startswith("1.0.0.dev")


def test_info_reports_versions_backends_and_kernels(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("mlx_snn", "mlx", "numpy", "platform", "backends", "custom kernels"):
        assert key in out
    assert "auto, mlx" in out


def test_bundled_mnist_is_real_labelled_digits():
    x, y = bundled_mnist("train")
    assert x.shape == (6000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (6000,) and set(np.unique(y)) == set(range(10))
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's first labels
    xt, yt = bundled_mnist("test")
    assert xt.shape == (2000, 28, 28) and yt[:5].tolist() == [7, 2, 1, 0, 4]
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        bundled_mnist("val")


def test_idx_reader_round_trip_and_corruption(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in arr.shape) + arr.tobytes()
    path = tmp_path / "a.idx"
    path.write_bytes(raw)
    np.testing.assert_array_equal(read_idx(path), arr)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        parse_idx(raw[:-1])
    with pytest.raises(ValueError, match="bad magic number"):
        parse_idx(b"\x01\x02" + raw[2:])
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        read_idx(tmp_path / "missing.idx")


def test_demo_trains_to_90_percent_on_bundled_mnist():
    from mlx_snn.demo import run_demo

    result = run_demo(verbose=False)
    assert result.test_accuracy >= 0.90
    assert 0.0 < result.hidden_rate < 1.0


def test_console_script_module_runs_info():
    out = subprocess.run(
        [sys.executable, "-m", "mlx_snn.cli", "info"], capture_output=True, text=True, check=True
    )
    assert "mlx_snn" in out.stdout


def test_readme_quick_start_runs():
    import re

    block = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[0]
    scope: dict = {}
    exec(block, scope)
    assert scope["spikes"].shape == (25, 32, 784)
    assert scope["out"].state.shape == (32, 784)


def test_readme_starts_with_the_two_setup_commands():
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    assert lines[1:5] == [
        "```bash",
        'pip install ".[cpu]" && mlx-snn demo',
        'pip install ".[cpu,dev]" && pytest',
        "```",
    ]
