"""AMOS neuron (PTTFS) and first_spike against the float64 oracle (tests/reference/amos.py).

Spikes and firing steps must match exactly (inputs are drawn so that no membrane lies
within 1e-5 of the threshold, where fp32 and float64 could disagree). Membranes and
gradients: max abs error <= 1e-4 * max(1, max |ref|) (fp32 vs float64), for T up to
1024 with tau = 2 (where the closed form A * cumsum(A^-1 X) overflows in fp32) and T = 4096
with tau from 1.0001 to 1e4, forced last-step neurons included. Parallel and sequential
gradients agree to the same tolerance.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from conftest import assert_close
from reference import amos as ref

import mlx_snn as snn
from mlx_snn.functional import amos, first_spike

RTOL = 1e-4
GAP = 1e-5


def drive(T, shape, seed, tau=2.0, threshold=1.0):
    """Inputs with per-neuron mean drive (some neurons never fire) and no near-ties."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        mean = rng.uniform(-3.0, 1.6, size=shape)
        x = (mean + 0.7 * rng.normal(size=(T, *shape))).astype(np.float32)
        mem = ref.amos_forward(x, tau, threshold)["mem"]
        if np.min(np.abs(mem - threshold)) > GAP:
            return x
    raise AssertionError("could not draw inputs away from the threshold")


def run_vjp(x, g_s, g_h, method, **kw):
    out, vjp = mx.vjp(
        lambda x_: tuple(amos(x_, method=method, **kw)[:2]),
        [mx.array(x)],
        [mx.array(g_s), mx.array(g_h)],
    )
    return out, vjp[0]


@pytest.mark.parametrize("T", [1, 8, 256, 1024])
def test_parallel_matches_oracle_forward_and_gradient(T):
    x = drive(T, (4, 16), seed=T)
    rng = np.random.default_rng(T + 1)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_h = rng.normal(size=x.shape).astype(np.float32)
    fw = ref.amos_forward(x)
    assert fw["forced"].any(), "the test needs forced neurons"
    if T > 1:
        assert not fw["forced"].all()
    (spikes, mem), g_x = run_vjp(x, g_s, g_h, "parallel")
    np.testing.assert_array_equal(np.array(spikes), fw["spikes"])
    assert_close(mem, fw["mem"], RTOL, "mem")
    assert_close(g_x, ref.amos_backward(x, g_s, g_h), RTOL, "grad x")


def test_naive_closed_form_overflows_where_parallel_does_not():
    T = 1024
    x = drive(T, (2, 8), seed=3)
    alpha = np.float32(0.5)
    powers = alpha ** np.arange(T, dtype=np.float32)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        naive = powers[:, None, None] * np.cumsum(x / powers[:, None, None], axis=0) / 2
    assert not np.all(np.isfinite(naive))
    out = amos(mx.array(x))
    assert_close(out.mem, ref.amos_forward(x)["mem"], RTOL, "mem")


@pytest.mark.parametrize("T", [1, 8, 256, 1024])
def test_exactly_one_spike_and_t_first_match_sequential_definition(T):
    x = drive(T, (3, 10), seed=10 + T)
    fw = ref.amos_forward(x)
    out = amos(mx.array(x))
    spikes = np.array(out.spikes)
    np.testing.assert_array_equal(spikes.sum(axis=0), np.ones((3, 10)))
    np.testing.assert_array_equal(np.array(out.t_first), fw["t_first"])
    assert out.t_first.dtype == mx.int32
    np.testing.assert_array_equal(spikes.argmax(axis=0), fw["t_first"])


@pytest.mark.parametrize("T", [1, 8, 256])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "triangle"])
def test_parallel_gradient_equals_autodiff_of_sequential(T, surrogate):
    x = drive(T, (2, 12), seed=20 + T)
    rng = np.random.default_rng(T)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_h = rng.normal(size=x.shape).astype(np.float32)
    (s_par, h_par), g_par = run_vjp(x, g_s, g_h, "parallel", surrogate=surrogate)
    (s_seq, h_seq), g_seq = run_vjp(x, g_s, g_h, "sequential", surrogate=surrogate)
    assert mx.array_equal(s_par, s_seq)
    assert_close(h_par, np.array(h_seq), RTOL, "mem")
    assert_close(g_par, np.array(g_seq), RTOL, "grad")
    expected = ref.amos_backward(x, g_s, g_h, surrogate=surrogate)
    assert_close(g_seq, expected, RTOL, "sequential vs oracle")


def test_forced_neurons_gradient_only_and_all_forced():
    # every neuron below threshold: all spikes forced at T-1, gradient still flows
    T = 64
    rng = np.random.default_rng(5)
    x = (0.3 * rng.uniform(size=(T, 2, 5))).astype(np.float32)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_h = np.zeros_like(g_s)
    (spikes, _), g_x = run_vjp(x, g_s, g_h, "parallel")
    fw = ref.amos_forward(x)
    assert fw["forced"].all()
    np.testing.assert_array_equal(np.array(spikes)[-1], np.ones((2, 5)))
    expected = ref.amos_backward(x, g_s, g_h)
    assert np.abs(expected).max() > 0
    assert_close(g_x, expected, RTOL, "grad forced")


def test_threshold_array_and_trailing_feature_shape():
    T = 32
    x = drive(T, (2, 3, 4), seed=7, threshold=1.0)
    thr = np.array([1.0, 1.0, 1.0, 1.0], np.float32)
    out = amos(mx.array(x), threshold=mx.array(thr))
    fw = ref.amos_forward(x, 2.0, 1.0)
    np.testing.assert_array_equal(np.array(out.spikes), fw["spikes"])
    assert out.spikes.shape == (T, 2, 3, 4)


def test_other_tau_matches_oracle():
    T, tau = 300, 7.5
    x = drive(T, (2, 6), seed=11, tau=tau)
    rng = np.random.default_rng(1)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_h = rng.normal(size=x.shape).astype(np.float32)
    (spikes, mem), g_x = run_vjp(x, g_s, g_h, "parallel", tau=tau)
    fw = ref.amos_forward(x, tau)
    np.testing.assert_array_equal(np.array(spikes), fw["spikes"])
    assert_close(mem, fw["mem"], RTOL, "mem")
    assert_close(g_x, ref.amos_backward(x, g_s, g_h, tau=tau), RTOL, "grad")


@pytest.mark.parametrize("tau", [1.0001, 1.05, 2.0, 100.0, 1e4])
def test_long_sequence_extreme_tau_matches_oracle(tau):
    # block lengths from 2 (tau -> 1) to one block of 4096 steps (tau = 1e4)
    T = 4096
    x = drive(T, (2, 8), seed=int(tau * 10), tau=tau) * max(1.0, tau / 200.0)
    fw = ref.amos_forward(x, tau)
    assert np.min(np.abs(fw["mem"] - 1.0)) > GAP, "inputs too close to the threshold"
    assert fw["forced"].any() and not fw["forced"].all()
    rng = np.random.default_rng(2)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_h = rng.normal(size=x.shape).astype(np.float32)
    (spikes, mem), g_x = run_vjp(x, g_s, g_h, "parallel", tau=tau)
    np.testing.assert_array_equal(np.array(spikes), fw["spikes"])
    assert_close(mem, fw["mem"], RTOL, "mem")
    assert_close(g_x, ref.amos_backward(x, g_s, g_h, tau=tau), RTOL, "grad")


@pytest.mark.parametrize("T", [1, 5, 300])
def test_first_spike_matches_reference(T):
    rng = np.random.default_rng(T)
    h = rng.normal(size=(T, 3, 7)).astype(np.float32)
    h[:, 0, 0] = -1.0  # never crosses: forced
    h[-1, 0, 1], h[:-1, 0, 1] = 2.0, -1.0  # crosses only at T-1: not forced
    got = first_spike(mx.array(h), 0.8)
    want = ref.first_spike(h, 0.8)
    for name in ("t_first", "forced", "t_second"):
        np.testing.assert_array_equal(np.array(getattr(got, name)), want[name], err_msg=name)
    assert got.t_first.dtype == mx.int32 and got.t_second.dtype == mx.int32
    assert got.forced.dtype == mx.bool_
    assert bool(got.forced[0, 0]) and not bool(got.forced[0, 1])


def test_module_wraps_functional():
    x = mx.array(drive(16, (2, 5), seed=2))
    neuron = snn.AMOS(tau=2.0, threshold=1.0, surrogate="atan")
    spikes, out = neuron(x, return_mem=True)
    ref_out = amos(x)
    assert mx.array_equal(spikes, ref_out.spikes)
    assert mx.array_equal(out.mem, ref_out.mem)
    assert mx.array_equal(out.t_first, ref_out.t_first)
    assert mx.array_equal(neuron(x), spikes)
    assert mx.array_equal(snn.AMOS(method="sequential")(x), spikes)
    assert "tau=2.0" in repr(neuron)


def test_module_with_threshold_array_compiles_and_checks_at_construction():
    x = mx.array(drive(16, (2, 5), seed=6))
    neuron = snn.AMOS(threshold=mx.full((5,), 1.0))
    assert "threshold" not in neuron.trainable_parameters()
    step = mx.compile(lambda x_: neuron(x_))
    assert mx.array_equal(step(x), amos(x).spikes)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        snn.AMOS(threshold=mx.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="threshold of shape"):
        neuron(mx.zeros((3, 2, 4)))


def test_compiles_and_runs_in_half_precision():
    x = drive(40, (2, 5), seed=4)
    loss = mx.compile(lambda x_: (amos(x_).spikes * mx.arange(40).reshape(40, 1, 1)).sum())
    g = mx.grad(loss)(mx.array(x))
    expected = ref.amos_backward(x, np.broadcast_to(np.arange(40.0)[:, None, None], x.shape), 0 * x)
    assert_close(g, expected, RTOL, "compiled grad")
    out = amos(mx.array(x).astype(mx.bfloat16))
    assert out.spikes.dtype == mx.bfloat16
    np.testing.assert_array_equal(np.array(out.spikes.astype(mx.float32)).sum(0), np.ones((2, 5)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tau": 1.0}, ValueError, "tau must be a finite number > 1"),
        ({"tau": 0.5}, ValueError, "tau"),
        ({"tau": float("nan")}, ValueError, "tau"),
        ({"tau": "2"}, TypeError, "tau must be a number"),
        ({"threshold": 0.0}, ValueError, "threshold must be > 0 and finite"),
        ({"threshold": -1.0}, ValueError, "threshold"),
        ({"threshold": mx.array([1.0, -1.0])}, ValueError, "threshold must be > 0"),
        ({"threshold": mx.ones((3,))}, ValueError, "threshold of shape"),
        ({"threshold": mx.array([1, 1])}, TypeError, "threshold must have a floating dtype"),
        ({"method": "fast"}, ValueError, "method must be one of 'auto', 'parallel', 'sequential'"),
        ({"surrogate": "nope"}, ValueError, "surrogate must be one of"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    x = mx.zeros((4, 2, 2))
    with pytest.raises(error, match=match):
        amos(x, **kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions.*got shape \(4,\)"):
        amos(mx.zeros((4,)))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        amos(mx.zeros((4, 2), dtype=mx.int32))
    with pytest.raises(TypeError, match=r"x must be an mx\.array"):
        amos(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least one time step"):
        amos(mx.zeros((0, 2)))
    with pytest.raises(ValueError, match="h must have at least 2 dimensions"):
        first_spike(mx.zeros((3,)))
    with pytest.raises(ValueError, match="threshold"):
        first_spike(mx.zeros((3, 2)), threshold=0.0)
    with pytest.raises(ValueError, match="tau"):
        snn.AMOS(tau=1.0)
    with pytest.raises(ValueError, match="method"):
        snn.AMOS(method="scan")
    with pytest.raises(ValueError, match="x must have at least 2 dimensions"):
        snn.AMOS()(mx.zeros((3,)))
