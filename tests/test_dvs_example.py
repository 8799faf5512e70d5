"""examples/dvs_gesture.py on synthetic data: one epoch end to end, the warm-restart schedule,
bad flags. What the three examples share (bit-exact resume from every kind of checkpoint,
Ctrl-C, result paths, the optional-import hint, ``--plots``, ``--cost``) is tested on each of
them in tests/test_examples.py.

Real DVS128-Gesture is not on our machines; ``--synthetic`` writes a small fake tree in tonic's
layout and the example reads it through tonic, so these tests need tonic (skipped without it).
Tiny shapes (T=2, B=2, a few samples) keep each epoch to seconds on two CPU cores.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from example_scripts import load_example, run

pytest.importorskip("tonic", reason='tonic is not installed (pip install "mlx-snn[dvs]")')
pytest.importorskip("tqdm", reason='the example needs tqdm (pip install "mlx-snn[examples]")')

TINY = ["--synthetic", "--num-bins", "2", "--batch-size", "2", "--eval-batch-size", "4"]
TINY += ["--limit", "4", "--test-limit", "4"]


@pytest.fixture(scope="module")
def example():
    return load_example("dvs_gesture")


def test_one_epoch_on_synthetic_data_writes_metrics_checkpoint_and_confusion(example, tmp_path):
    metrics = run(example, tmp_path, *TINY, "--mode", "tactp", "--epochs", "1")
    (epoch,) = metrics["history"]
    assert metrics["train_samples"] == 4 and metrics["steps_per_epoch"] == 2
    assert metrics["conv_frames_per_sample"] == [1, 1, 1, 1, 1]  # TAC-TP g=2 on T=2
    assert 0 <= epoch["test_acc"] <= 1 and np.isfinite(epoch["train_loss"])
    assert np.array(metrics["test_confusion"]).sum() == 4
    assert metrics["frame_cache_stats"]["built"] == 4
    assert (tmp_path / "checkpoint.safetensors").stat().st_size > 0
    assert (tmp_path / example.CONFUSION).read_bytes().startswith(b"\x89PNG")


def test_the_schedule_restarts_every_period(example):
    schedule = example.warm_restarts(1.0, steps_per_epoch=3, restart_epochs=2, epochs=6)
    lrs = [float(schedule(mx.array(s))) for s in range(0, 18, 3)]
    assert lrs == pytest.approx([1.0, 0.5, 1.0, 0.5, 1.0, 0.5])
    assert float(schedule(mx.array(5))) == pytest.approx(0.5)  # constant within an epoch
    one = example.warm_restarts(1.0, steps_per_epoch=1, restart_epochs=0, epochs=4)
    assert [float(one(mx.array(s))) for s in range(4)] == pytest.approx(
        [1.0, 0.8535534, 0.5, 0.1464466]
    )


@pytest.mark.parametrize("flag", ["--group", "--num-bins", "--epochs", "--batch-size"])
def test_bad_flags_exit_with_a_message(example, flag, capsys):
    with pytest.raises(SystemExit):
        example.parse_args([flag, "0"])
    assert f"{flag} must be >= 1; got 0" in capsys.readouterr().err
