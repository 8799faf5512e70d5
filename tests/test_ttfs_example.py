"""examples/ttfs_mnist.py on the shared real MNIST (skipped when absent): it learns, evaluates
with early exit, and bad thresholds or schedules stop it with a clear message. What the three
examples share is in tests/test_examples.py.
"""

from __future__ import annotations

import pytest
from example_scripts import load_example, run


@pytest.fixture(scope="module")
def example():
    return load_example("ttfs_mnist")


TINY = ["--hidden", "24", "--time-steps", "1,3", "--epochs-per-stage", "1", "--limit", "24"]
TINY += ["--test-limit", "10", "--batch-size", "8", "--sweep-thresholds", "0.5,3"]


def test_metrics_hold_the_early_exit_evaluation(example, mnist_dir, tmp_path):
    metrics = run(example, tmp_path, "--data-dir", str(mnist_dir), *TINY)
    assert metrics["config"]["out"] == tmp_path.name  # no absolute path outside the repository
    final = metrics["final"]
    ev = final["evaluation"]
    dist = ev["t_first"]
    assert ev["num_steps"] == 3 and len(dist["counts"]) == 3 and sum(dist["counts"]) == 10
    assert dist["cumulative"][-1] == pytest.approx(1.0)
    hits = sum(a * c for a, c in zip(dist["accuracy"], dist["counts"], strict=True) if c)
    assert hits / 10 == pytest.approx(ev["accuracy"])
    spikes = ev["spikes_per_neuron"]
    assert [layer["neurons"] for layer in spikes["layers"]] == [24]
    for part in (*spikes["layers"], spikes["all_hidden"], spikes["input"]):
        assert 0 <= part["early_exit"] <= part["full_window"] <= 1
    assert [s["threshold"] for s in final["threshold_sweep"]] == [0.5, 3.0]
    assert ev == metrics["history"][-1]["test"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--threshold", "0"], "threshold must be a finite number > 0; got 0.0"),
        (["--threshold", "-2"], "threshold must be a finite number > 0; got -2.0"),
        (["--threshold", "nan"], "threshold must be a finite number > 0; got nan"),
        (["--neuron-threshold", "inf"], "neuron_threshold must be a finite number > 0"),
        (["--sweep-thresholds", "1,0"], "sweep_thresholds must be finite numbers > 0"),
        (["--time-steps", ""], "--time-steps must list at least one number of time steps"),
        (["--time-steps", ","], "--time-steps must list at least one number of time steps"),
        (["--epochs-per-stage", ""], "--epochs-per-stage must hold one value or one per stage"),
        (["--time-steps", "4,2"], "steps must be non-decreasing; got (4, 2)"),
        (["--time-steps", "0,2"], "steps[i] must be >= 1; got 0"),
        (["--epochs-per-stage", "1,2,3"], "epochs_per_stage must be an int or hold one value"),
        (["--epochs", "0"], "--epochs must be >= 1; got 0"),
    ],
)
def test_bad_thresholds_and_schedules_exit_with_a_message(example, flags, message, capsys):
    with pytest.raises(SystemExit):
        example.parse_args(flags)
    assert message in capsys.readouterr().err


def test_config_rejects_an_empty_schedule(example):
    with pytest.raises(ValueError, match="steps must hold at least one number of time steps"):
        example.Config(time_steps=())
    with pytest.raises(ValueError, match="threshold must be a finite number > 0; got 0"):
        example.Config(threshold=0)
    cfg = example.Config(time_steps=(1, 2, 4), epochs_per_stage=(2, 1, 3))
    assert cfg.epochs == 6
    assert [cfg.steps_at(e) for e in range(7)] == [1, 1, 2, 4, 4, 4, 4]


@pytest.mark.slow
def test_one_epoch_on_a_subset_reaches_a_sanity_accuracy(example, mnist_dir, tmp_path):
    """One epoch at T = 2 over the first 6,400 training images (100 steps of 64, Adam at
    3e-3), the AMOS MLP with 200 hidden neurons: above 75% on the first 1,000 test images
    (seed 0 gave 86.3% when this test was written; 10% is chance), in about a minute on
    two cores. The loss is cross-entropy on membranes near the threshold (small logits),
    so it stays well above 0 at that accuracy; ln(10) = 2.30 is chance.
    """
    metrics = run(
        example,
        tmp_path,
        *[
            "--data-dir",
            str(mnist_dir),
            "--arch",
            "mlp",
            "--hidden",
            "200",
            "--time-steps",
            "2",
            "--epochs-per-stage",
            "1",
        ],
        *["--batch-size", "64", "--limit", "6400", "--test-limit", "1000", "--lr", "3e-3"],
        "--compile",
    )
    (epoch,) = metrics["history"]
    assert metrics["steps_per_epoch"] == 100 and epoch["num_steps"] == 2
    assert epoch["train_loss"] < 2.0
    assert epoch["test"]["accuracy"] > 0.75, epoch["test"]
