"""What the three training examples share (examples/_common.py), tested on each of them:
examples/mnist.py, examples/ttfs_mnist.py and examples/dvs_gesture.py.

Every way a run can stop (``--stop-after``, Ctrl-C mid-epoch, a periodic mid-epoch
checkpoint) resumes bit-for-bit: every saved array (weights, BatchNorm statistics, Adam
state) and every logged number equal an uninterrupted run's, no tolerance, eager and
compiled. Result files hold no absolute paths; a missing optional package stops an example
with a one-line hint; ``--plots`` and ``--cost`` write their files.

The MNIST examples use the shared real MNIST (skipped when absent); the DVS example trains on
``--synthetic`` data read through tonic (skipped without tonic). Each tiny run has 3 steps
per epoch and 2 epochs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import pytest
from conftest import SHARED_MNIST
from example_scripts import (
    assert_same_run,
    ctrl_c_interrupts,
    interrupt_at,
    load_example,
    run,
)


@dataclass(frozen=True)
class Case:
    example: str  # examples/<example>.py
    args: tuple[str, ...]  # a tiny run: 2 epochs of 3 steps
    fields: tuple[str, ...]  # per-epoch metrics that must agree between runs
    also: tuple[str, ...] = ()  # top-level metrics that must agree too
    mismatch: tuple[tuple[tuple[str, ...], str], ...] = (
        (("--lr", "0.01"), "lr: checkpoint 0.001, now 0.01"),
    )


MNIST = ("--group", "2", "--num-steps", "3", "--epochs", "2")
MNIST += ("--limit", "24", "--test-limit", "8", "--batch-size", "8")
TTFS = ("--hidden", "24", "--time-steps", "1,3", "--epochs-per-stage", "1", "--limit", "24")
TTFS += ("--test-limit", "10", "--batch-size", "8", "--sweep-thresholds", "0.5,3")
DVS = ("--synthetic", "--num-bins", "2", "--batch-size", "2", "--eval-batch-size", "4")
DVS += ("--limit", "6", "--test-limit", "4", "--epochs", "2", "--restart-epochs", "1")
TRAIN = ("train_loss", "train_acc", "test_acc")
CASES = {
    "mnist-baseline": Case("mnist", ("--mode", "baseline", *MNIST), TRAIN),
    "mnist-tactp-compiled": Case("mnist", ("--mode", "tactp", *MNIST, "--compile"), TRAIN),
    "ttfs-mlp": Case(
        "ttfs_mnist",
        ("--arch", "mlp", *TTFS),
        (*TRAIN, "num_steps", "train_mean_t_first", "test"),
        ("final",),
        (
            (("--threshold", "2"), "threshold: checkpoint 1.0, now 2.0"),
            (("--time-steps", "1,4"), "time_steps: checkpoint [1, 3], now [1, 4]"),
        ),
    ),
    "ttfs-conv-compiled": Case(
        "ttfs_mnist",
        ("--arch", "conv", *TTFS, "--compile"),
        (*TRAIN, "num_steps", "train_mean_t_first", "test"),
        ("final",),
    ),
    "dvs-tac": Case(
        "dvs_gesture", ("--mode", "tac", *DVS), (*TRAIN, "lr", "test_loss"), ("test_confusion",)
    ),
}
ONE_EACH = ["mnist-tactp-compiled", "ttfs-mlp", "dvs-tac"]


def needs(case: Case) -> list[str]:
    """The case's data arguments, or a skip when its data or packages are missing."""
    if case.example == "dvs_gesture":
        pytest.importorskip("tonic", reason='tonic is not installed (pip install "mlx-snn[dvs]")')
        return []
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    return ["--data-dir", str(SHARED_MNIST)]


@dataclass
class Straight:
    """An uninterrupted run of a case, with a copy of every checkpoint it saved."""

    case: Case
    example: object
    args: list[str]
    out: Path
    saves: list[tuple[Path, int, int | None]]  # (copy, epochs done, steps of the next)


@pytest.fixture(scope="module", params=list(CASES))
def straight(request, tmp_path_factory) -> Straight:
    case = CASES[request.param]
    example = load_example(case.example)
    args = [*needs(case), *case.args]
    folder = tmp_path_factory.mktemp(request.param)
    saves = []
    save = example.common.save_checkpoint

    def save_and_copy(path, model, optimizer, meta):
        save(path, model, optimizer, meta)
        copy = folder / f"save{len(saves)}.safetensors"
        shutil.copy(path, copy)
        saves.append((copy, meta["epoch"], meta["partial"] and meta["partial"]["step"]))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(example.common, "save_checkpoint", save_and_copy)
        run(example, folder / "a", *args, "--checkpoint-every", "2")
    return Straight(case, example, args, folder / "a", saves)


def assert_same_as(straight: Straight, out: Path) -> None:
    assert_same_run(straight.example, straight.out, out, straight.case.fields)
    metrics = [json.loads((f / "metrics.json").read_text()) for f in (straight.out, out)]
    for key in straight.case.also:
        assert metrics[0][key] == metrics[1][key], key


def test_checkpoints_are_saved_every_n_steps_and_at_epoch_ends(straight):
    positions = [(epochs, step) for _, epochs, step in straight.saves]
    assert positions == [(0, 2), (1, None), (1, 2), (2, None)]


def test_resume_after_stop_after_equals_an_uninterrupted_run(straight, tmp_path):
    first = run(straight.example, tmp_path, *straight.args, "--stop-after", "1")
    assert [h["epoch"] for h in first["history"]] == [1]
    resumed = run(straight.example, tmp_path, *straight.args, "--resume")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert_same_as(straight, tmp_path)
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_resume_from_a_periodic_mid_epoch_checkpoint_is_bit_exact(straight, tmp_path):
    """``--checkpoint-every 2`` saved at step 2 of epoch 1: resume from that copy."""
    copy, epochs, step = straight.saves[0]
    assert (epochs, step) == (0, 2)
    shutil.copy(copy, tmp_path / "checkpoint.safetensors")
    run(straight.example, tmp_path, *straight.args, "--resume")
    assert_same_as(straight, tmp_path)


def test_ctrl_c_saves_mid_epoch_and_resume_is_bit_exact(straight, tmp_path, monkeypatch, capsys):
    argv = ["--out", str(tmp_path), "--quiet", *straight.args, "--checkpoint-every", "0"]
    with ctrl_c_interrupts(), monkeypatch.context() as patch:
        interrupt_at(straight.example, patch, call=5)  # step 2 of epoch 2
        assert straight.example.main(argv) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted at step 2/3 of epoch 2; saved ")
    # metrics.json is written after every epoch: epoch 1 is there, the interrupted one is not
    after_one = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["epoch"] for h in after_one["history"]] == [1]
    resumed = run(straight.example, tmp_path, *straight.args, "--resume")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert_same_as(straight, tmp_path)


def test_resume_refuses_other_settings_or_no_checkpoint(straight, tmp_path):
    with pytest.raises(SystemExit, match=r"no checkpoint\.safetensors"):
        run(straight.example, tmp_path, *straight.args, "--resume")
    shutil.copy(straight.out / "checkpoint.safetensors", tmp_path)
    for flags, message in straight.case.mismatch:
        with pytest.raises(SystemExit) as stop:
            run(straight.example, tmp_path, *straight.args, *flags, "--resume")
        assert message in str(stop.value)


def test_result_files_hold_no_absolute_paths(straight):
    metrics = json.loads((straight.out / "metrics.json").read_text())
    config = metrics["config"]
    assert config["out"] == "a"  # outside the repository: its name only
    for key in ("data_dir", "cache_dir", "out"):
        assert config.get(key) is None or not os.path.isabs(config[key]), (key, config[key])
    assert not os.path.isabs(metrics.get("frame_cache") or "."), metrics["frame_cache"]
    _, meta = mx.load(str(straight.out / "checkpoint.safetensors"), return_metadata=True)
    assert str(straight.out.parent) not in json.dumps(meta)


def test_portable_path_keeps_paths_relative_to_the_repository():
    common = load_example("mnist").common
    assert common.portable_path(str(common.ROOT / "runs" / "x")) == os.path.join("runs", "x")
    assert common.portable_path(str(common.ROOT.parent / "shared")) == os.path.join("..", "shared")
    assert common.portable_path("/elsewhere/run") == "run"
    assert common.portable_path(None) is None


@pytest.mark.parametrize(
    "name, hidden, extra",
    [
        ("mnist", "tqdm", "examples"),
        ("ttfs_mnist", "matplotlib", "examples"),
        ("dvs_gesture", "tonic", "dvs"),
    ],
)
def test_missing_optional_imports_exit_with_one_line_hint(name, hidden, extra, monkeypatch):
    example = load_example(name)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda m: None if m == hidden else find_spec(m)
    )
    with pytest.raises(SystemExit) as stop:
        example.main(["--quiet"])
    hint = f'examples/{name}.py needs {hidden}: pip install ".[{extra}]" from the repository root'
    assert str(stop.value) == hint


@pytest.mark.parametrize("name", ["mnist", "ttfs_mnist", "dvs_gesture"])
def test_a_negative_checkpoint_interval_exits_with_a_message(name, capsys):
    with pytest.raises(SystemExit):
        load_example(name).parse_args(["--checkpoint-every", "-1"])
    assert "--checkpoint-every must be >= 0; got -1" in capsys.readouterr().err


@pytest.mark.parametrize("name", ONE_EACH)
def test_plots_and_cost_write_their_files(name, tmp_path, capsys):
    case = CASES[name]
    example = load_example(case.example)
    args = [*needs(case), *case.args, "--epochs", "1", "--plots", "--cost"]
    run(example, tmp_path, *args)
    printed = capsys.readouterr().out
    assert "snn.monitor:" in printed and "non-spiking (ANN)" in printed
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["samples"] == {"mnist": 8, "ttfs_mnist": 10, "dvs_gesture": 4}[case.example]
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    expected = ["firing_rates.png", "input_frames.png", "output_raster.png"]
    if case.example != "ttfs_mnist":  # the LIF networks' output membrane
        expected.append("output_membrane.png")
    assert plots == sorted(expected)
    assert all((tmp_path / "plots" / p).stat().st_size > 1000 for p in plots)
    assert (tmp_path / "curves.png").stat().st_size > 0
