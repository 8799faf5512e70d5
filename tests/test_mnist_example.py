"""examples/mnist.py: it learns real MNIST, and bad flags stop it with a clear message (what
the three examples share: tests/test_examples.py). The runs use the shared real MNIST
(``mnist_dir`` fixture; skipped when absent).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from example_scripts import load_example, run


@pytest.fixture(scope="module")
def example():
    return load_example("mnist")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_run_keeps_its_dtype(example, mnist_dir, tmp_path, dtype):
    tiny = ["--data-dir", str(mnist_dir), "--num-steps", "2", "--epochs", "1"]
    tiny += ["--limit", "16", "--test-limit", "8", "--batch-size", "8"]
    metrics = run(example, tmp_path, *tiny, "--dtype", dtype)
    assert metrics["config"]["dtype"] == dtype
    assert np.isfinite(metrics["history"][0]["train_loss"])
    arrays = mx.load(str(tmp_path / example.common.CHECKPOINT))
    assert arrays["model.fc1.weight"].dtype == getattr(mx, dtype)
    with pytest.raises(SystemExit, match=f"dtype: checkpoint '{dtype}', now 'float32'"):
        run(example, tmp_path, *tiny, "--resume")


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
        tmp_path,
        *["--data-dir", str(mnist_dir), "--mode", "tac", "--group", "2", "--num-steps", "8"],
        *["--epochs", "1", "--batch-size", "32", "--limit", "12800", "--test-limit", "1000"],
    )
    (epoch,) = metrics["history"]
    assert metrics["conv_frames_per_sample"] == [4, 2]
    assert metrics["steps_per_epoch"] == 400
    assert epoch["train_loss"] < 2.0  # ln(10) = 2.303 is the loss of silent outputs
    assert epoch["test_acc"] > 0.80, epoch
