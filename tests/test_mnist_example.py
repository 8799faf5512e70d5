"""examples/mnist.py: it learns real MNIST, and --resume continues bit-for-bit.

The runs use the shared real MNIST (``mnist_dir`` fixture; skipped when absent). The resume
test compares every saved array (weights, BatchNorm statistics, Adam state) and every logged
loss/accuracy for exact equality, no tolerance, eager and compiled.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("mnist_example", ROOT / "examples" / "mnist.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return load_example()


def run(example, mnist_dir, out, *args):
    argv = ["--data-dir", str(mnist_dir), "--out", str(out), "--quiet", *args]
    assert example.main(argv) == 0
    return json.loads((out / example.METRICS).read_text())


def saved_arrays(example, out) -> dict[str, np.ndarray]:
    arrays = mx.load(str(out / example.CHECKPOINT))
    return {k: np.array(v) for k, v in arrays.items()}


@pytest.mark.parametrize("mode, compiled", [("baseline", []), ("tactp", ["--compile"])])
def test_resume_equals_an_uninterrupted_run(example, mnist_dir, tmp_path, mode, compiled):
    tiny = ["--mode", mode, "--group", "2", "--num-steps", "3", "--epochs", "2", *compiled]
    tiny += ["--limit", "16", "--test-limit", "8", "--batch-size", "8"]
    straight = run(example, mnist_dir, tmp_path / "a", *tiny)
    first = run(example, mnist_dir, tmp_path / "b", *tiny, "--stop-after", "1")
    assert [h["epoch"] for h in first["history"]] == [1]
    resumed = run(example, mnist_dir, tmp_path / "b", *tiny, "--resume")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    a, b = saved_arrays(example, tmp_path / "a"), saved_arrays(example, tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert any(k.startswith("model.") and "running_mean" in k for k in a)
    assert any(k.startswith("optimizer.") and k.endswith(".m") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for h_a, h_b in zip(straight["history"], resumed["history"], strict=True):
        for field in ("train_loss", "train_acc", "test_acc"):
            assert h_a[field] == h_b[field], field
    assert (tmp_path / "b" / example.CURVES).stat().st_size > 0


def test_resume_refuses_other_settings_or_no_checkpoint(example, mnist_dir, tmp_path):
    tiny = ["--num-steps", "2", "--epochs", "1", "--limit", "8", "--test-limit", "8"]
    with pytest.raises(SystemExit, match=r"no checkpoint\.safetensors"):
        run(example, mnist_dir, tmp_path, *tiny, "--resume")
    run(example, mnist_dir, tmp_path, *tiny)
    with pytest.raises(SystemExit, match=r"lr: checkpoint 0\.001, now 0\.01"):
        run(example, mnist_dir, tmp_path, *tiny, "--lr", "0.01", "--resume")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_run_keeps_its_dtype(example, mnist_dir, tmp_path, dtype):
    tiny = ["--num-steps", "2", "--epochs", "1", "--limit", "16", "--test-limit", "8"]
    metrics = run(example, mnist_dir, tmp_path, *tiny, "--batch-size", "8", "--dtype", dtype)
    assert metrics["config"]["dtype"] == dtype
    assert np.isfinite(metrics["history"][0]["train_loss"])
    arrays = mx.load(str(tmp_path / example.CHECKPOINT))
    assert arrays["model.fc1.weight"].dtype == getattr(mx, dtype)
    with pytest.raises(SystemExit, match=f"dtype: checkpoint '{dtype}', now 'float32'"):
        run(example, mnist_dir, tmp_path, *tiny, "--batch-size", "8", "--resume")


@pytest.mark.parametrize("flag", ["--group", "--epochs", "--limit", "--batch-size"])
def test_bad_flags_exit_with_a_message(example, flag, capsys):
    with pytest.raises(SystemExit):
        example.parse_args([flag, "0"])
    assert f"{flag} must be >= 1; got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_one_epoch_with_limit_reaches_80_percent(example, mnist_dir, tmp_path):
    """One epoch over the first 12,800 training images (400 steps of 32) passes 80% test accuracy.

    TAC g=2 with T=8 rate-coding steps (4 + 2 conv frames per sample) keeps it to about 3.5
    minutes on two CPU cores, where MLX's convolutions are slow; the recipe is otherwise the
    example's (bias-corrected Adam, cosine schedule over the epoch, CE on spike counts). Seed
    0 reached 86.7% on the first 1,000 test images when this test was written; the torch
    stand-in used to pick the settings gave 79-86% over three seeds at this length, so the
    margin is modest and a platform with other rounding may land a few points lower.
    """
    metrics = run(
        example,
        mnist_dir,
        tmp_path,
        *["--mode", "tac", "--group", "2", "--num-steps", "8", "--epochs", "1"],
        *["--batch-size", "32", "--limit", "12800", "--test-limit", "1000"],
    )
    (epoch,) = metrics["history"]
    assert metrics["conv_frames_per_sample"] == [4, 2]
    assert metrics["steps_per_epoch"] == 400
    assert epoch["train_loss"] < 2.0  # ln(10) = 2.303 is the loss of silent outputs
    assert epoch["test_acc"] > 0.80, epoch
