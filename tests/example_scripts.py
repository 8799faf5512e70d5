"""Running the training examples (examples/*.py) from the tests: one loader and one set of
helpers for tests/test_examples.py, the per-example tests and tests/distributed_worker.py.

Every example imports ``examples/_common.py`` as ``_common``; the module is shared by the
three, so patching ``example.common`` reaches all of them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import signal
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str):
    """``examples/<name>.py`` as a module (not run as a script)."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_example", ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(example, out: Path, *args: str) -> dict:
    """``example.main(--out out --quiet *args)``, which must succeed; the ``metrics.json``."""
    assert example.main(["--out", str(out), "--quiet", *args]) == 0
    return json.loads((out / example.common.METRICS).read_text())


def saved_arrays(example, out: Path) -> dict[str, np.ndarray]:
    """Every array of the run's checkpoint (weights, BatchNorm statistics, optimizer state)."""
    arrays = mx.load(str(out / example.common.CHECKPOINT))
    return {k: np.array(v) for k, v in arrays.items()}


def assert_same_run(example, a: Path, b: Path, fields) -> None:
    """Same arrays in both final checkpoints, bit for bit, and the same logged ``fields`` in
    every epoch of both ``metrics.json``."""
    arrays_a, arrays_b = saved_arrays(example, a), saved_arrays(example, b)
    assert sorted(arrays_a) == sorted(arrays_b)
    assert any(k.startswith("model.") and "running_mean" in k for k in arrays_a)
    assert any(k.startswith("optimizer.") and k.endswith(".m") for k in arrays_a)
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
    hist_a = json.loads((a / example.common.METRICS).read_text())["history"]
    hist_b = json.loads((b / example.common.METRICS).read_text())["history"]
    assert [h["epoch"] for h in hist_a] == [h["epoch"] for h in hist_b]
    for h_a, h_b in zip(hist_a, hist_b, strict=True):
        for field in fields:
            assert h_a[field] == h_b[field], field


def interrupt_at(example, monkeypatch, call: int) -> None:
    """Make the examples' train step send this process SIGINT (Ctrl-C) at the end of its
    ``call``-th call."""
    make_step = example.common.make_train_step

    def make(*args):
        step, calls = make_step(*args), itertools.count(1)

        def step_then_interrupt(*batch):
            result = step(*batch)
            if next(calls) == call:
                signal.raise_signal(signal.SIGINT)
            return result

        return step_then_interrupt

    monkeypatch.setattr(example.common, "make_train_step", make)


@contextlib.contextmanager
def ctrl_c_interrupts():
    """SIGINT handled as in an interactive Python (a background job may ignore it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
