"""examples/dvs_gesture.py on synthetic data: one epoch end to end, and a bit-exact --resume.

Real DVS128-Gesture is not on our machines; ``--synthetic`` writes a small fake tree in tonic's
layout and the example reads it through tonic, so these tests need tonic (skipped without it).
Tiny shapes (T=2, B=2, a few samples) keep each epoch to seconds on two CPU cores.
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

pytest.importorskip("tonic", reason='tonic is not installed (pip install "mlx-snn[dvs]")')
pytest.importorskip("tqdm", reason='the example needs tqdm (pip install "mlx-snn[examples]")')

TINY = ["--synthetic", "--num-bins", "2", "--batch-size", "2", "--eval-batch-size", "4"]
TINY += ["--limit", "4", "--test-limit", "4", "--quiet"]


@pytest.fixture(scope="module")
def example():
    path = ROOT / "examples" / "dvs_gesture.py"
    spec = importlib.util.spec_from_file_location("dvs_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(example, out, *args):
    assert example.main(["--out", str(out), *TINY, *args]) == 0
    return json.loads((out / example.METRICS).read_text())


def test_one_epoch_on_synthetic_data_writes_metrics_checkpoint_and_plots(example, tmp_path):
    metrics = run(example, tmp_path, "--mode", "tactp", "--epochs", "1", "--plots")
    (epoch,) = metrics["history"]
    assert metrics["train_samples"] == 4 and metrics["steps_per_epoch"] == 2
    assert metrics["conv_frames_per_sample"] == [1, 1, 1, 1, 1]  # TAC-TP g=2 on T=2
    assert 0 <= epoch["test_acc"] <= 1 and np.isfinite(epoch["train_loss"])
    assert np.array(metrics["test_confusion"]).sum() == 4
    assert metrics["frame_cache_stats"]["built"] == 4
    assert (tmp_path / example.CHECKPOINT).stat().st_size > 0
    assert (tmp_path / example.CONFUSION).read_bytes().startswith(b"\x89PNG")
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == sorted(
        ["firing_rates.png", "input_frames.png", "output_membrane.png", "output_raster.png"]
    )
    assert all((tmp_path / "plots" / p).stat().st_size > 1000 for p in plots)


def test_resume_equals_an_uninterrupted_run(example, tmp_path):
    args = ["--mode", "tac", "--epochs", "2", "--restart-epochs", "1"]
    straight = run(example, tmp_path / "a", *args)
    first = run(example, tmp_path / "b", *args, "--stop-after", "1")
    assert [h["epoch"] for h in first["history"]] == [1]
    resumed = run(example, tmp_path / "b", *args, "--resume")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    a = mx.load(str(tmp_path / "a" / example.CHECKPOINT))
    b = mx.load(str(tmp_path / "b" / example.CHECKPOINT))
    assert sorted(a) == sorted(b)
    assert any("running_mean" in k for k in a) and any(k.endswith(".v") for k in a)
    for key in a:
        np.testing.assert_array_equal(np.array(a[key]), np.array(b[key]), err_msg=key)
    for h_a, h_b in zip(straight["history"], resumed["history"], strict=True):
        for field in ("lr", "train_loss", "train_acc", "test_loss", "test_acc"):
            assert h_a[field] == h_b[field], field
    # the warm restart: epoch 1 starts at the full rate again
    assert [h["lr"] for h in straight["history"]] == pytest.approx([1e-3, 1e-3])
    assert straight["test_confusion"] == resumed["test_confusion"]
    with pytest.raises(SystemExit, match=r"lr: checkpoint 0\.001, now 0\.01"):
        run(example, tmp_path / "b", *args, "--lr", "0.01", "--resume")


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
