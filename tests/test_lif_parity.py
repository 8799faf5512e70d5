"""snn.LIF / functional.lif_sequence against the float64 reference, forward and backward.

Tolerances (fp32 library vs float64 reference): membrane and state within
1e-5 * max(1, |ref|); gradients of x and v0 within 1e-4 * max(1, |ref|); gradients
of beta and threshold within 5e-4 * max(1, |ref|); spikes identical.
Test inputs keep every membrane at least 1e-6 away from the threshold, so an
exact-tie disagreement between fp32 and fp64 cannot occur.

Why beta and threshold get 5e-4: their gradients sum ``T*B*N`` products such as
``g_x,t * v_{t-1}`` whose magnitudes add up to hundreds of times the result (2900
against 3.88 at T = 1000, shape (2, 8)), and ``g_x`` depends on the surrogate
derivative, whose slope (50 for fast_sigmoid(25)) turns a 1-2 ulp difference in
one membrane within 1e-3 of the threshold into a tenth of a 1e-4 tolerance. Over
60 random inputs of that test, even the correctly rounded fp32 membrane (the best
any fp32 forward pass can return) gave beta gradients up to 1.67e-4 * |ref| off
(std 0.26e-4), the step loop up to 1.28e-4 and the parallel algorithm up to
1.34e-4: that is fp32's floor for this sum, the same for both algorithms.
"""

from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np

import mlx_snn as snn
from mlx_snn.functional import lif_sequence
from mlx_snn.functional._loops import BLOCK

MEM_RTOL = 1e-5
GRAD_RTOL = 1e-4
PARAM_GRAD_RTOL = 5e-4  # reductions over T*B*N terms: see the module docstring

SURROGATES = {
    "fast_sigmoid": {"slope": 25.0},
    "atan": {"alpha": 2.0},
    "sigmoid": {"slope": 4.0},
    "triangle": {"width": 1.0},
    "straight_through": {},
}

# (reset, timing, detach_reset) combinations that exist
MODES = [
    (r, "immediate", d) for r, d in itertools.product(("subtract", "zero", "none"), (False, True))
] + [(r, "delayed", True) for r in ("subtract", "zero", "none")]


def make_inputs(shape, seed, scale=0.6, bias=0.25):
    rng = np.random.default_rng(seed)
    x = (rng.normal(bias, scale, size=shape)).astype(np.float32)
    return x, rng


def check_no_ties(x, beta, th, reset, timing, v0=None):
    out = ref.lif_forward(x, beta, th, reset, timing, v0)
    margin = np.min(np.abs(out["mem"] - np.broadcast_to(th, x.shape[2:])))
    assert margin > 1e-6, "test input has a near-tie at the threshold; change the seed"
    return out


def run_case(x, reset, timing, detach, surrogate, beta, th, v0, rng, algorithm="loop"):
    """Compare forward outputs and all gradients with the reference."""
    expected = check_no_ties(x, beta, th, reset, timing, v0)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_m = rng.normal(size=x.shape).astype(np.float32) * 0.1
    g_v = rng.normal(size=x.shape[1:]).astype(np.float32)
    surr = snn.surrogate.NAMES[surrogate](**SURROGATES[surrogate])

    beta_mx = mx.array(np.asarray(beta, np.float32))
    th_mx = mx.array(np.asarray(th, np.float32))
    v0_mx = mx.array(v0) if v0 is not None else mx.zeros(x.shape[1:])

    def f(x_, v0_, b_, t_):
        return lif_sequence(
            x_,
            beta=b_,
            threshold=t_,
            reset=reset,
            surrogate=surr,
            detach_reset=detach,
            v0=v0_,
            reset_timing=timing,
            algorithm=algorithm,
        )

    out, vjps = mx.vjp(
        lambda *a: tuple(f(*a)),
        [mx.array(x), v0_mx, beta_mx, th_mx],
        [mx.array(g_s), mx.array(g_m), mx.array(g_v)],
    )
    spikes, mem, state = out
    np.testing.assert_array_equal(to_np(spikes), expected["spikes"])
    assert_close(mem, expected["mem"], MEM_RTOL, "mem")
    assert_close(state, expected["state"], MEM_RTOL, "state")

    grads = ref.lif_backward(
        x,
        g_s,
        g_m,
        g_v,
        beta,
        th,
        reset,
        timing,
        detach,
        surrogate,
        SURROGATES[surrogate],
        v0,
    )
    for name, got in zip(("x", "v0", "beta", "threshold"), vjps, strict=True):
        rtol = GRAD_RTOL if name in ("x", "v0") else PARAM_GRAD_RTOL
        assert_close(got, grads[name], rtol, f"grad {name}")


@pytest.mark.parametrize("reset,timing,detach", MODES)
@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_lif_matches_reference_every_mode_and_surrogate(reset, timing, detach, surrogate):
    x, rng = make_inputs((25, 3, 16), seed=1)
    run_case(x, reset, timing, detach, surrogate, 0.9, 1.0, None, rng)


@pytest.mark.parametrize("reset,timing,detach", MODES)
@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("T", [1, 25, 300])
def test_blocked_loop_matches_reference_across_block_edges(reset, timing, detach, surrogate, T):
    # T = 25 and 300 end in a partial block of _loops.BLOCK steps
    assert 25 % BLOCK and 300 % BLOCK
    x, rng = make_inputs((T, 3, 16), seed=T + 7)
    run_case(x, reset, timing, detach, surrogate, 0.9, 1.0, None, rng)


def test_wide_input_split_across_streams_matches_reference():
    previous = snn.set_cpu_streams(2)
    try:
        x, rng = make_inputs((4, 4, 32768), seed=4)  # 2 parts of MIN_PART_ELEMENTS
        run_case(x, "subtract", "immediate", False, "atan", 0.9, 1.0, None, rng)
    finally:
        snn.set_cpu_streams(previous)


@pytest.mark.parametrize("reset,timing,detach", MODES)
@pytest.mark.parametrize("T", [1, 2, 1000])
@pytest.mark.parametrize("algorithm", ["loop", "parallel"])
def test_lif_matches_reference_short_and_long_sequences(reset, timing, detach, T, algorithm):
    x, rng = make_inputs((T, 2, 8), seed=T)
    run_case(x, reset, timing, detach, "fast_sigmoid", 0.95, 1.0, None, rng, algorithm)


@pytest.mark.parametrize("reset,timing,detach", MODES)
def test_lif_matches_reference_on_images_with_per_channel_parameters(reset, timing, detach):
    # [T, B, H, W, C] with beta and threshold per channel, and an initial state
    x, rng = make_inputs((12, 2, 5, 4, 3), seed=7)
    beta = np.array([0.5, 0.8, 0.95], np.float32)
    th = np.array([0.7, 1.0, 1.3], np.float32)
    v0 = rng.uniform(0, 0.5, size=x.shape[1:]).astype(np.float32)
    run_case(x, reset, timing, detach, "atan", beta, th, v0, rng)


def test_lif_matches_reference_with_per_feature_parameters_over_1000_steps():
    x, rng = make_inputs((1000, 2, 6), seed=3, scale=0.8, bias=0.2)
    beta = np.linspace(0.3, 0.99, 6).astype(np.float32)
    th = np.linspace(0.5, 1.5, 6).astype(np.float32)
    run_case(x, "subtract", "immediate", False, "fast_sigmoid", beta, th, None, rng)


@pytest.mark.parametrize("firing", ["silent", "saturated"])
def test_lif_matches_reference_at_extreme_firing_rates(firing):
    bias = -0.5 if firing == "silent" else 3.0
    x, rng = make_inputs((50, 2, 8), seed=11, scale=0.1, bias=bias)
    out = ref.lif_forward(x)
    rate = out["spikes"].mean()
    assert (rate == 0.0) if firing == "silent" else (rate > 0.9)
    run_case(x, "subtract", "immediate", False, "fast_sigmoid", 0.9, 1.0, None, rng)


@pytest.mark.parametrize("reset,timing,detach", MODES)
def test_plain_autograd_through_lif_step_matches_reference(reset, timing, detach):
    # lif_step differentiated by MLX autograd: a third, independent implementation
    x, rng = make_inputs((20, 2, 8), seed=5)
    check_no_ties(x, 0.9, 1.0, reset, timing)
    g_s = rng.normal(size=x.shape).astype(np.float32)

    def loss(x_, b_, t_):
        v, total = None, mx.array(0.0)
        for t in range(x_.shape[0]):
            s, _, v = snn.functional.lif_step(
                x_[t], v, b_, t_, reset, "fast_sigmoid", detach, timing
            )
            total = total + (s * mx.array(g_s[t])).sum()
        return total

    gx, gb, gt = mx.grad(loss, argnums=(0, 1, 2))(mx.array(x), mx.array(0.9), mx.array(1.0))
    expected = ref.lif_backward(x, g_s, None, None, 0.9, 1.0, reset, timing, detach)
    assert_close(gx, expected["x"], GRAD_RTOL, "x")
    assert_close(gb, expected["beta"], GRAD_RTOL, "beta")
    assert_close(gt, expected["threshold"], GRAD_RTOL, "threshold")


@pytest.mark.parametrize("reset,timing,detach", MODES)
def test_two_halves_with_state_equal_one_full_call(reset, timing, detach):
    x, _ = make_inputs((40, 3, 10), seed=9)
    lif = snn.LIF(reset=reset, reset_timing=timing, detach_reset=detach)
    xm = mx.array(x)
    full, full_out = lif(xm, return_state=True)
    s1, out1 = lif(xm[:17], return_state=True)
    s2, out2 = lif(xm[17:], state=out1.state, return_state=True)
    np.testing.assert_array_equal(np.array(mx.concatenate([s1, s2])), np.array(full))
    np.testing.assert_allclose(np.array(out2.state), np.array(full_out.state), atol=1e-6)

    # gradients also flow through the carried state
    w = mx.array(np.random.default_rng(0).normal(size=x.shape).astype(np.float32))

    def split(x_):
        a, o = lif(x_[:17], return_state=True)
        b = lif(x_[17:], state=o.state)
        return (mx.concatenate([a, b]) * w).sum()

    g_full = mx.grad(lambda x_: (lif(x_) * w).sum())(xm)
    np.testing.assert_allclose(np.array(mx.grad(split)(xm)), np.array(g_full), atol=1e-5)


@pytest.mark.parametrize("reset,timing,detach", MODES)
def test_step_by_step_equals_sequence(reset, timing, detach):
    x, _ = make_inputs((15, 2, 7), seed=4)
    lif = snn.LIF(reset=reset, reset_timing=timing, detach_reset=detach)
    xm = mx.array(x)
    seq, out = lif(xm, return_state=True)
    v = None
    for t in range(x.shape[0]):
        s, v = lif.step(xm[t], v)
        np.testing.assert_array_equal(np.array(s), np.array(seq[t]))
    np.testing.assert_allclose(np.array(v), np.array(out.state), atol=1e-6)


@pytest.mark.parametrize("learn", ["beta", "threshold", "both"])
def test_learnable_parameters_get_reference_gradients(learn):
    n = 6
    x, rng = make_inputs((30, 4, n), seed=12)
    beta0 = np.full(n, 0.85, np.float32)
    th0 = np.float32(1.1)
    lif = snn.LIF(
        beta=mx.array(beta0),
        threshold=float(th0),
        learn_beta=learn in ("beta", "both"),
        learn_threshold=learn in ("threshold", "both"),
    )
    w = rng.normal(size=x.shape).astype(np.float32)
    check_no_ties(x, beta0, th0, "subtract", "immediate")

    def loss(params):
        lif.update(params)
        return (lif(mx.array(x)) * mx.array(w)).sum()

    grads = mx.grad(loss)(lif.trainable_parameters())
    expected = ref.lif_backward(x, w, None, None, beta0, th0)
    if learn in ("beta", "both"):
        assert grads["beta"].shape == (n,)
        assert_close(grads["beta"], expected["beta"], GRAD_RTOL, "beta")
    else:
        assert "beta" not in grads
    if learn in ("threshold", "both"):
        assert grads["threshold"].shape == ()
        assert_close(grads["threshold"], expected["threshold"], GRAD_RTOL, "threshold")
    else:
        assert "threshold" not in grads


def test_learned_beta_is_clipped_to_unit_interval():
    lif = snn.LIF(beta=0.5, learn_beta=True)
    lif.beta = mx.array(1.7)  # an optimiser step may leave [0, 1]
    x = mx.ones((3, 1, 1)) * 0.1
    _, out = lif(x, return_state=True)
    # clipped to 1.0: plain integration, no decay
    np.testing.assert_allclose(np.array(out.mem).ravel(), [0.1, 0.2, 0.3], rtol=1e-6)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_low_precision_inputs_run_and_keep_their_dtype(dtype):
    x = mx.array(make_inputs((10, 2, 8), seed=2)[0]).astype(dtype)
    lif = snn.LIF()
    spikes, out = lif(x, return_state=True)
    assert spikes.dtype == dtype and out.mem.dtype == dtype
    assert out.state.dtype == mx.float32  # carries in float32 (mlx_snn/_precision.py)
    g = mx.grad(lambda x_: lif(x_).sum())(x)
    assert g.dtype == dtype and bool(mx.all(mx.isfinite(g)))


def test_lif_works_under_compile_and_vmap():
    x = mx.array(make_inputs((10, 3, 8), seed=6)[0])
    lif = snn.LIF()
    eager = mx.grad(lambda x_: lif(x_).sum())(x)
    compiled = mx.compile(mx.grad(lambda x_: lif(x_).sum()))(x)
    np.testing.assert_allclose(np.array(compiled), np.array(eager), atol=1e-6)
    # vmap over an extra leading axis of independent sequences
    xs = mx.stack([x, 2 * x])
    batched = mx.vmap(lambda x_: lif(x_))(xs)
    np.testing.assert_array_equal(np.array(batched[1]), np.array(lif(2 * x)))
