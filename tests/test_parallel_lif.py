"""ParallelLIF / functional.parallel_lif_sequence against the float64 reference and snn.LIF.

Tolerances (fp32 vs float64): membrane and state within 1e-5 * max(1, max |ref|),
gradients within 1e-4 * max(1, max |ref|). Spikes: identical on inputs whose
reference membrane stays at least 1e-5 away from the threshold (chosen by seed);
on unrestricted random inputs a spike may differ from the reference only at a
near-tie (|h_ref - threshold| < 1e-5, where fp32 rounding of the scan and of the
loop can fall either side), and each neuron is compared up to its first such flip.
With dyadic inputs (exact fp32 arithmetic) exact ties occur and spikes are identical.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np

import mlx_snn as snn
from mlx_snn.functional import lif_sequence, parallel_lif_sequence
from mlx_snn.functional import parallel_lif as pl
from mlx_snn.functional.parallel_lif import choose_algorithm

MEM_RTOL = 1e-5
GRAD_RTOL = 1e-4
TIE = 1e-5


def tie_free(T, shape, bias, seed, beta, th, reset):
    for s in range(seed, seed + 100):
        rng = np.random.default_rng(s)
        x = rng.normal(bias, 0.6, size=(T, *shape)).astype(np.float32)
        v0 = rng.normal(0.0, 0.3, size=shape).astype(np.float32)
        out = ref.lif_forward(x, beta, th, reset, "immediate", v0)
        if np.min(np.abs(out["mem"] - np.broadcast_to(th, shape[1:]))) > TIE:
            return x, v0, rng, out
    raise AssertionError("no tie-free input found")


def assert_spikes_up_to_ties(got, expected, th):
    """Spikes equal, except a first flip per neuron at a reference near-tie."""
    got = to_np(got).reshape(got.shape[0], -1)
    exp_s = expected["spikes"].reshape(got.shape)
    margin = np.abs(expected["mem"] - np.broadcast_to(th, expected["mem"].shape[2:]))
    margin = margin.reshape(got.shape)
    for n in range(got.shape[1]):
        diff = np.flatnonzero(got[:, n] != exp_s[:, n])
        if diff.size:
            t = diff[0]
            assert margin[t, n] < TIE, f"neuron {n}: spike differs at t={t}, margin {margin[t, n]}"


@pytest.mark.parametrize("T", [1, 25, pytest.param(2048, marks=pytest.mark.slow)])
@pytest.mark.parametrize("bias", [-0.3, 0.3, 1.2])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("detach", [False, True])
def test_forward_and_gradients_match_reference(T, bias, reset, detach):
    shape = (2, 3)
    beta = np.array([0.5, 0.9, 0.99], np.float32)
    th = np.array([0.7, 1.0, 1.3], np.float32)
    x, v0, rng, expected = tie_free(T, shape, bias, T, beta, th, reset)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_m = rng.normal(size=x.shape).astype(np.float32) * 0.1
    g_v = rng.normal(size=shape).astype(np.float32)

    def f(x_, v0_, b_, t_):
        return tuple(
            parallel_lif_sequence(x_, b_, t_, reset=reset, detach_reset=detach, v0=v0_, chunk=16)
        )

    out, vjps = mx.vjp(
        f,
        [mx.array(x), mx.array(v0), mx.array(beta), mx.array(th)],
        [mx.array(g_s), mx.array(g_m), mx.array(g_v)],
    )
    np.testing.assert_array_equal(to_np(out[0]), expected["spikes"])
    assert_close(out[1], expected["mem"], MEM_RTOL, "mem")
    assert_close(out[2], expected["state"], MEM_RTOL, "state")
    grads = ref.lif_backward(
        x, g_s, g_m, g_v, beta, th, reset, "immediate", detach, "fast_sigmoid", v0=v0
    )
    for name, got in zip(("x", "v0", "beta", "threshold"), vjps, strict=True):
        assert_close(got, grads[name], GRAD_RTOL, name)


@pytest.mark.parametrize("bias", [0.3, 1.2])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_chunk_by_chunk_schedule_matches_reference(reset, bias, monkeypatch):
    """Few neurons run all chunks at once; force the chunk-by-chunk schedule too."""
    monkeypatch.setattr(pl, "JACOBI_MAX_WIDTH", 0)
    beta, th = np.array([0.5, 0.9, 0.99], np.float32), 1.0
    x, v0, rng, expected = tie_free(1500, (2, 3), bias, 21, beta, th, reset)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    out, (g_x,) = mx.vjp(
        lambda x_: [parallel_lif_sequence(x_, mx.array(beta), th, reset, v0=mx.array(v0))[0]],
        [mx.array(x)],
        [mx.array(g_s)],
    )
    np.testing.assert_array_equal(to_np(out[0]), expected["spikes"])
    grads = ref.lif_backward(x, g_s, beta=beta, threshold=th, reset=reset, v0=v0)
    assert_close(g_x, grads["x"], GRAD_RTOL, "x")


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_random_inputs_agree_up_to_near_ties(reset):
    rng = np.random.default_rng(3)
    x = rng.normal(0.4, 0.7, size=(700, 4, 16)).astype(np.float32)
    beta, th = np.float32(0.9), np.float32(1.0)
    got = parallel_lif_sequence(mx.array(x), 0.9, 1.0, reset=reset).spikes
    expected = ref.lif_forward(x, beta, th, reset, "immediate")
    rate = float(expected["spikes"].mean())
    assert 0.05 < rate < 0.9
    assert_spikes_up_to_ties(got, expected, th)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_exact_ties_with_dyadic_inputs(reset):
    """Multiples of 1/8 with beta = 0.5: the reference membrane hits the threshold exactly."""
    rng = np.random.default_rng(4)
    x = (rng.integers(-4, 12, size=(300, 3, 8)) / 8).astype(np.float32)
    expected = ref.lif_forward(x, 0.5, 1.0, reset, "immediate")
    assert np.any(expected["mem"] == 1.0)
    out = parallel_lif_sequence(mx.array(x), 0.5, 1.0, reset=reset, chunk=32)
    assert_spikes_up_to_ties(out.spikes, expected, 1.0)
    loop = lif_sequence(mx.array(x), 0.5, 1.0, reset=reset)
    assert_spikes_up_to_ties(loop.spikes, expected, 1.0)


@pytest.mark.parametrize("chunk", [1, 5, 64, 500])
def test_chunk_sizes_give_the_loop_result(chunk):
    x, v0, _, expected = tie_free(200, (3, 4), 0.4, 11, 0.8, 1.0, "subtract")
    out = parallel_lif_sequence(mx.array(x), 0.8, 1.0, v0=mx.array(v0), chunk=chunk)
    np.testing.assert_array_equal(to_np(out.spikes), expected["spikes"])
    assert_close(out.state, expected["state"], MEM_RTOL, "state")


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_module_matches_lif_with_learned_parameters(reset):
    x, _, rng, _ = tie_free(300, (2, 6), 0.3, 5, 0.9, 1.0, reset)
    w = mx.array(rng.normal(size=x.shape).astype(np.float32))
    kw = dict(beta=0.9, threshold=1.0, reset=reset, learn_beta=True, learn_threshold=True)
    par, loop = snn.ParallelLIF(**kw, chunk=32), snn.LIF(**kw, algorithm="loop")

    def loss(model, x_):
        spikes, out = model(x_, return_state=True)
        return (spikes * w).sum() + 0.1 * (out.mem * w).sum() + out.state.sum()

    xm = mx.array(x)
    lp, gp = nn.value_and_grad(par, loss)(par, xm)
    ll, gl = nn.value_and_grad(loop, loss)(loop, xm)
    assert abs(lp.item() - ll.item()) <= 1e-4 * max(1.0, abs(ll.item()))
    assert set(gp) == set(gl) == {"beta", "threshold"}
    for k in gp:
        assert_close(gp[k], to_np(gl[k]), GRAD_RTOL, k)
    gx_par = mx.grad(lambda x_: loss(par, x_))(xm)
    gx_loop = mx.grad(lambda x_: loss(loop, x_))(xm)
    assert_close(gx_par, to_np(gx_loop), GRAD_RTOL, "x")


def test_state_continuation_and_step():
    x, v0, _, _ = tie_free(400, (2, 5), 0.3, 9, 0.9, 1.0, "subtract")
    xm, v0m = mx.array(x), mx.array(v0)
    lif = snn.ParallelLIF(chunk=16)
    spikes, out = lif(xm, state=v0m, return_state=True)
    s1, o1 = lif(xm[:150], state=v0m, return_state=True)
    s2, o2 = lif(xm[150:], state=o1.state, return_state=True)
    np.testing.assert_array_equal(to_np(spikes), np.concatenate([to_np(s1), to_np(s2)]))
    assert_close(out.state, to_np(o2.state), MEM_RTOL, "state")
    s, v = lif.step(xm[0], v0m)
    s_ref, v_ref = snn.LIF().step(xm[0], v0m)
    np.testing.assert_array_equal(to_np(s), to_np(s_ref))
    assert_close(v, to_np(v_ref), MEM_RTOL, "step state")


def test_works_under_compile():
    x, v0, _, expected = tie_free(40, (2, 3), 0.5, 2, 0.9, 1.0, "zero")
    fn = mx.compile(
        lambda x_, v_: parallel_lif_sequence(x_, 0.9, 1.0, reset="zero", v0=v_, chunk=8).spikes
    )
    np.testing.assert_array_equal(to_np(fn(mx.array(x), mx.array(v0))), expected["spikes"])


def test_auto_rule_and_dispatch():
    assert choose_algorithm((4096, 1, 16), "subtract", "immediate") == "parallel"
    assert choose_algorithm((25, 128, 4096), "subtract", "immediate") == "loop"
    assert choose_algorithm((4096, 1, 16), "none", "immediate") == "parallel"
    assert choose_algorithm((4096, 1, 16), "subtract", "delayed") == "parallel"
    x, v0, _, expected = tie_free(1024, (1, 8), 0.3, 1, 0.9, 1.0, "subtract")
    assert choose_algorithm(x.shape, "subtract", "immediate") == "parallel"
    spikes = snn.LIF()(mx.array(x), state=mx.array(v0))
    np.testing.assert_array_equal(to_np(spikes), expected["spikes"])
    lif = snn.LIF(reset="none")
    assert lif.algorithm == "auto"
    assert_close(
        lif(mx.array(x), return_state=True)[1].mem,
        ref.lif_forward(x, 0.9, 1.0, "none")["mem"],
        MEM_RTOL,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"reset_timing": "late"}, "reset_timing must be one of 'immediate', 'delayed'"),
        ({"reset_timing": "delayed", "detach_reset": False}, "detach_reset=False is not"),
        ({"threshold": 0.0}, "threshold must be > 0"),
        ({"threshold": -1.0}, "threshold must be > 0"),
        ({"beta": 1.2}, r"beta must lie in \[0, 1\]"),
        ({"reset": "hard"}, "reset must be one of"),
    ],
)
def test_bad_parallel_lif_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        snn.ParallelLIF(**kwargs)


def test_bad_algorithm_and_inputs():
    with pytest.raises(ValueError, match=r"algorithm must be one of 'auto', 'loop', 'parallel'"):
        snn.LIF(algorithm="fast")
    with pytest.raises(ValueError, match="reset must be one of"):
        snn.LIF(reset="hard", algorithm="parallel")
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        snn.ParallelLIF(chunk=0)
    with pytest.raises(TypeError, match="chunk must be an int"):
        parallel_lif_sequence(mx.ones((4, 2)), chunk=2.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        parallel_lif_sequence(mx.ones((4,)))
    with pytest.raises(ValueError, match=r"v0 has shape \(3,\), expected \(2,\)"):
        parallel_lif_sequence(mx.ones((4, 2)), v0=mx.zeros((3,)))
    with pytest.raises(ValueError, match="reset_timing must be one of"):
        parallel_lif_sequence(mx.ones((4, 2)), reset_timing="late")
    with pytest.raises(ValueError, match="reset must be one of"):
        choose_algorithm((4096, 1, 16), "hard", "immediate")
