"""The step loops' CPU-stream split and graph-building paths change no result, bit for bit.

``set_cpu_streams(n)`` splits the lanes of the LIF loop (forward and backward) and
of the linear scan across ``n`` CPU streams; the loops are built where
``mx.compile`` fuses them (``functional/_untraced.py``), or traced op by op under
``mx.compile``/``mx.vmap``. Every path must give the same bits as one stream, and
the split must happen (batch rows, or features when B = 1, uneven parts too).
Float64 parity of the values themselves: tests/test_lif_parity.py and
tests/test_linear_scan.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest

import mlx_snn as snn
from mlx_snn import _runtime
from mlx_snn.functional import lif_sequence, linear_scan
from mlx_snn.functional._loops import Lanes

# (shape, per-feature parameters): batch split, uneven batch split, feature split, images
SHAPES = [
    ((9, 6, 3000), False),
    ((7, 3, 9000), True),
    ((6, 1, 20000), True),
    ((5, 4, 16, 16, 64), True),  # images, per-channel parameters
    ((5, 1, 16, 16, 64), True),
]


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    """Parts of 8,192 elements per step, so that these small shapes split (the library's
    threshold, measured for speed, is larger; the split's results must not depend on it)."""
    monkeypatch.setattr(_runtime, "MIN_PART_ELEMENTS", 1 << 13)


@pytest.fixture
def streams():
    previous = snn.set_cpu_streams(1)
    yield snn.set_cpu_streams
    snn.set_cpu_streams(previous)


def _lif_case(shape, per_feature, reset, timing, seed=0):
    rng = np.random.default_rng(seed)
    x = mx.array(rng.normal(0.3, 0.6, size=shape).astype(np.float32))
    n = shape[-1]
    beta = mx.array(rng.uniform(0.5, 0.95, n).astype(np.float32)) if per_feature else mx.array(0.9)
    thr = mx.array(rng.uniform(0.8, 1.2, n).astype(np.float32)) if per_feature else mx.array(1.0)
    v0 = mx.array(rng.uniform(0, 0.5, size=shape[1:]).astype(np.float32))
    cots = [mx.array(rng.normal(size=s).astype(np.float32)) for s in (shape, shape, shape[1:])]

    def f(x_, v_, b_, t_):
        out = lif_sequence(
            x_, b_, t_, reset=reset, reset_timing=timing, v0=v_, algorithm="loop", surrogate="atan"
        )
        return tuple(out)

    outs, grads = mx.vjp(f, [x, v0, beta, thr], cots)
    return [np.array(a) for a in (*outs, *grads, *f(x, v0, beta, thr))]


@pytest.mark.parametrize("shape,per_feature", SHAPES)
@pytest.mark.parametrize(
    "reset,timing", [("subtract", "immediate"), ("zero", "immediate"), ("zero", "delayed")]
)
def test_lif_results_do_not_depend_on_the_stream_split(streams, shape, per_feature, reset, timing):
    streams(1)
    one = _lif_case(shape, per_feature, reset, timing)
    streams(2)
    assert len(Lanes(shape[1:])) == 2  # the split happens for these shapes
    two = _lif_case(shape, per_feature, reset, timing)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    # the forward pass outside mx.vjp (spikes written by the steps) and inside it
    # (spikes derived from the membrane) give the same bits
    for a, b in zip(one[:3], one[7:], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["loop", "strided"])
@pytest.mark.parametrize("shape", [(40, 6, 3000), (33, 1, 20000)])
def test_linear_scan_results_do_not_depend_on_the_stream_split(streams, method, shape):
    rng = np.random.default_rng(1)
    b = mx.array(rng.normal(size=shape).astype(np.float32))
    a = mx.array(rng.uniform(0.5, 0.99, size=shape).astype(np.float32))
    g = mx.array(rng.normal(size=shape).astype(np.float32))

    def run():
        out, vjps = mx.vjp(lambda a_, b_: linear_scan(a_, b_, method=method), [a, b], [g])
        return [np.array(t) for t in (*out, *vjps)]

    streams(1)
    one = run()
    streams(2)
    two = run()
    for x, y in zip(one, two, strict=True):
        np.testing.assert_array_equal(x, y)


def test_compiled_and_vmapped_and_per_example_gradients_match_eager(streams):
    streams(2)
    rng = np.random.default_rng(2)
    x = mx.array(rng.normal(0.3, 0.6, size=(2, 12, 4, 4096)).astype(np.float32))
    lif = snn.LIF(surrogate="atan", algorithm="loop")

    def loss(x_):
        return lif(x_).sum()

    eager = np.array(mx.grad(loss)(x[0]))
    np.testing.assert_array_equal(np.array(mx.compile(mx.grad(loss))(x[0])), eager)
    per_example = mx.vmap(mx.grad(loss))(x)
    np.testing.assert_array_equal(np.array(per_example[0]), eager)
    np.testing.assert_array_equal(np.array(mx.vmap(lif)(x)[1]), np.array(lif(x[1])))


def test_second_order_gradient_runs_through_the_fused_backward():
    x = mx.array(np.random.default_rng(3).normal(0.3, 0.6, size=(6, 2, 8)).astype(np.float32))
    w = mx.array(np.linspace(-1, 1, 16).reshape(2, 8).astype(np.float32))

    def grad_norm(x_):
        g = mx.grad(lambda y: (snn.LIF(surrogate="atan")(y) * w).sum())(x_)
        return (g * g).sum()

    g2 = mx.grad(grad_norm)(x)
    assert g2.shape == x.shape and bool(mx.all(mx.isfinite(g2)))


def test_set_cpu_streams_checks_its_argument_and_returns_the_previous_value():
    previous = snn.set_cpu_streams(3)
    try:
        assert snn.cpu_streams() == 3
        assert snn.set_cpu_streams(1) == 3
        with pytest.raises(TypeError, match="n must be an int"):
            snn.set_cpu_streams(2.0)
        with pytest.raises(ValueError, match="n must be an int >= 1; got 0"):
            snn.set_cpu_streams(0)
    finally:
        snn.set_cpu_streams(previous)


def test_no_split_below_the_part_size(streams):
    streams(2)
    assert len(Lanes((2, 8))) == 1
    assert len(Lanes((4, _runtime.MIN_PART_ELEMENTS))) == 2
    assert len(Lanes((1, 4 * _runtime.MIN_PART_ELEMENTS))) == 2


def test_environment_variable_sets_the_default():
    code = "import mlx_snn as s; print(s.cpu_streams())"
    env = {**os.environ, _runtime.CPU_STREAMS_ENV: "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "3", out.stderr
    env[_runtime.CPU_STREAMS_ENV] = "zero"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "MLX_SNN_CPU_STREAMS must be an int >= 1; got 'zero'" in bad.stderr
