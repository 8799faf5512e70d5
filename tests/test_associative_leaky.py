"""functional.associative_scan and snn.AssociativeLeaky against the float64 step loop.

The oracle (tests/reference/associative.py) updates S_t = diag(a_t) S_{t-1} + k_t v_t^T
one step at a time and has a hand-written backward; that backward is itself checked
against central finite differences in float64 on a tiny case.

Tolerances (fp32 vs float64): max abs error <= RTOL * max(1, max |ref|) with
RTOL = 1e-5 for readouts and states, 1e-4 for gradients, no inf/NaN, for
T in {1, 7, 64, 4096} and decays log-uniform in [1e-4, 0.9999] (both ends present),
plus all-near-1 and underflowing (log a = -200) decays, and random shapes and
chunk sizes (hypothesis, T <= 40, chunk 1..50). Results for different
``chunk`` agree to 1e-5 relative (rounding only). Spikes must equal the reference
wherever the reference membrane is more than 1e-3 away from the threshold.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from conftest import assert_close, to_np
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import associative as ref

import mlx_snn as snn
from mlx_snn.functional import associative_scan, associative_scan_log

RTOL = 1e-5
GRAD_RTOL = 1e-4
NAMES = ("q", "k", "v", "a", "S0")


def decays(shape, rng, lo=1e-4, hi=0.9999):
    a = np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))
    a.flat[0], a.flat[-1] = lo, hi
    return a.astype(np.float32)


def inputs(T, B=2, dk=4, dv=3, seed=0, lo=1e-4, hi=0.9999):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {
        "q": rng.normal(size=(T, B, dk)).astype(f32),
        "k": rng.normal(size=(T, B, dk)).astype(f32),
        "v": rng.normal(size=(T, B, dv)).astype(f32),
        "a": decays((T, B, dk), rng, lo, hi),
        "S0": rng.normal(size=(B, dk, dv)).astype(f32),
        "g_y": rng.normal(size=(T, B, dv)).astype(f32),
        "g_state": rng.normal(size=(B, dk, dv)).astype(f32),
    }


def run_vjp(d, chunk=16):
    primals = [mx.array(d[n]) for n in NAMES]
    (y, S), grads = mx.vjp(
        lambda *p: associative_scan(*p, chunk=chunk),
        primals,
        [mx.array(d["g_y"]), mx.array(d["g_state"])],
    )
    return y, S, dict(zip(NAMES, grads, strict=True))


def assert_matches_reference(d, chunk=16):
    """Readouts, final state and every gradient of the scan against the float64 loop."""
    y, S, grads = run_vjp(d, chunk=chunk)
    expected = ref.associative_forward(d["q"], d["k"], d["v"], d["a"], d["S0"])
    assert_close(y, expected["y"], RTOL, "y")
    assert_close(S, expected["state"], RTOL, "state")
    g = ref.associative_backward(d["q"], d["k"], d["v"], d["a"], d["g_y"], d["S0"], d["g_state"])
    for name in NAMES:
        assert_close(grads[name], g[name], GRAD_RTOL, name)


@pytest.mark.parametrize("T", [1, 7, 64, 4096])
def test_readout_state_and_gradients_match_float64_loop(T):
    d = inputs(T, seed=T)
    assert_matches_reference(d)


@pytest.mark.parametrize(("lo", "hi"), [(0.999, 0.99999), (1e-6, 1e-2)])
def test_long_memory_and_fast_forgetting_at_t4096(lo, hi):
    d = inputs(4096, seed=3, lo=lo, hi=hi)
    assert_matches_reference(d, chunk=32)


def test_log_decays_that_underflow_in_fp32_and_unit_decays():
    d = inputs(300, seed=4)
    log_a = np.full(d["a"].shape, -200.0, np.float32)  # exp(-200) == 0 in fp32
    log_a[:, :, 0] = 0.0  # a = 1: pure accumulation in the first key row
    args = [mx.array(d[n]) for n in ("q", "k", "v")] + [mx.array(log_a), mx.array(d["S0"])]
    y, S = associative_scan_log(*args, chunk=16)
    expected = ref.associative_forward(d["q"], d["k"], d["v"], np.exp(log_a.astype(float)), d["S0"])
    assert_close(y, expected["y"], RTOL, "y")
    assert_close(S, expected["state"], RTOL, "state")
    grads = mx.grad(lambda la: associative_scan_log(*args[:3], la, args[4])[0].sum())(args[3])
    assert np.all(np.isfinite(to_np(grads)))


def test_reference_backward_matches_float64_finite_differences():
    d = {n: x.astype(np.float64) for n, x in inputs(5, B=1, dk=3, dv=2, seed=5).items()}

    def loss(p):
        f = ref.associative_forward(p["q"], p["k"], p["v"], p["a"], p["S0"])
        return np.sum(d["g_y"] * f["y"]) + np.sum(d["g_state"] * f["state"])

    g = ref.associative_backward(d["q"], d["k"], d["v"], d["a"], d["g_y"], d["S0"], d["g_state"])
    eps = 1e-6
    for name in NAMES:
        numeric = np.zeros_like(d[name])
        for idx in np.ndindex(d[name].shape):
            plus, minus = dict(d), dict(d)
            plus[name], minus[name] = d[name].copy(), d[name].copy()
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(g[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_results_do_not_depend_on_chunk():
    d = inputs(203, seed=6)
    y0, S0, g0 = run_vjp(d, chunk=1)
    for chunk in (3, 16, 64, 500):
        y, S, g = run_vjp(d, chunk=chunk)
        assert_close(y, to_np(y0), RTOL, f"y chunk={chunk}")
        assert_close(S, to_np(S0), RTOL, f"state chunk={chunk}")
        for name in NAMES:
            assert_close(g[name], to_np(g0[name]), RTOL, f"{name} chunk={chunk}")


def test_two_halves_with_state_equal_one_call():
    d = inputs(100, seed=7)
    q, k, v, a, S0 = (mx.array(d[n]) for n in NAMES)
    y, S = associative_scan(q, k, v, a, S0, chunk=16)
    y1, S1 = associative_scan(q[:37], k[:37], v[:37], a[:37], S0, chunk=16)
    y2, S2 = associative_scan(q[37:], k[37:], v[37:], a[37:], S1, chunk=16)
    assert_close(mx.concatenate([y1, y2]), to_np(y), RTOL, "y")
    assert_close(S2, to_np(S), RTOL, "state")


@settings(max_examples=25, deadline=None)
@given(
    T=st.integers(1, 40),
    B=st.integers(1, 3),
    dk=st.integers(1, 5),
    dv=st.integers(1, 5),
    chunk=st.integers(1, 50),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_and_chunks_match_float64_loop(T, B, dk, dv, chunk, seed):
    d = inputs(T, B, dk, dv, seed=seed)
    assert_matches_reference(d, chunk=chunk)


def test_default_state_is_zero_and_half_precision_is_kept():
    d = inputs(20, seed=8)
    q, k, v, a = (mx.array(d[n]) for n in NAMES[:4])
    y, S = associative_scan(q, k, v, a)
    assert S.shape == (2, 4, 3)
    expected = ref.associative_forward(d["q"], d["k"], d["v"], d["a"])
    assert_close(y, expected["y"], RTOL, "y")
    y16, S16 = associative_scan(*(x.astype(mx.float16) for x in (q, k, v, a)))
    # readouts in the input dtype, the state in the float32 carry (mlx_snn._precision)
    assert y16.dtype == mx.float16 and S16.dtype == mx.float32
    assert_close(y16, expected["y"], 1e-2, "y float16")


# ----------------------------------------------------------------------------
# The layer
# ----------------------------------------------------------------------------


def layer_params(layer):
    p = {
        "Wq": layer.q_proj.weight,
        "Wk": layer.k_proj.weight,
        "Wv": layer.v_proj.weight,
        "Wa": layer.decay_proj.weight,
        "ba": layer.decay_proj.bias,
    }
    return {n: to_np(x) for n, x in p.items()}


def make_layer(seed=0, **kw):
    mx.random.seed(seed)
    return snn.AssociativeLeaky(6, 4, 5, threshold=0.3, **kw)


@pytest.mark.parametrize("T", [64, 1024])
def test_layer_forward_and_parameter_gradients_match_float64(T):
    layer = make_layer(chunk=16)
    rng = np.random.default_rng(T)
    x = rng.normal(size=(T, 2, 6)).astype(np.float32)
    g_s = rng.normal(size=(T, 2, 5)).astype(np.float32)
    g_m = rng.normal(size=(T, 2, 5)).astype(np.float32)
    p = layer_params(layer)
    expected = ref.associative_leaky_forward(x, p, threshold=0.3)
    spikes, out = layer(mx.array(x), return_state=True)
    assert_close(out.mem, expected["mem"], RTOL, "mem")
    assert_close(out.state, expected["state"], RTOL, "state")
    away = np.abs(expected["mem"] - 0.3) > 1e-3
    assert np.array_equal(to_np(spikes)[away], expected["spikes"][away])
    assert 0.05 < expected["spikes"].mean() < 0.95  # the spike path is exercised

    def loss(x_):
        s, o = layer(x_, return_state=True)
        return (s * mx.array(g_s)).sum() + (o.mem * mx.array(g_m)).sum()

    _, grads = nn.value_and_grad(layer, loss)(mx.array(x))
    g_x = mx.grad(loss)(mx.array(x))
    g = ref.associative_leaky_backward(x, p, g_s, g_m, threshold=0.3)
    got = {
        "Wq": grads["q_proj"]["weight"],
        "Wk": grads["k_proj"]["weight"],
        "Wv": grads["v_proj"]["weight"],
        "Wa": grads["decay_proj"]["weight"],
        "ba": grads["decay_proj"]["bias"],
        "x": g_x,
    }
    for name, value in got.items():
        assert_close(value, g[name], GRAD_RTOL, name)


def test_layer_step_loop_and_halves_equal_one_call():
    layer = make_layer(seed=1, bias=True, chunk=8)
    x = mx.array(np.random.default_rng(1).normal(size=(30, 3, 6)).astype(np.float32))
    spikes, out = layer(x, return_state=True)
    S, step_spikes = None, []
    for t in range(30):
        s_t, S = layer.step(x[t], S)
        step_spikes.append(s_t)
    assert_close(S, to_np(out.state), RTOL, "step state")
    s1, o1 = layer(x[:11], return_state=True)
    s2, o2 = layer(x[11:], state=o1.state, return_state=True)
    assert_close(mx.concatenate([o1.mem, o2.mem]), to_np(out.mem), RTOL, "halves mem")
    assert_close(o2.state, to_np(out.state), RTOL, "halves state")
    halves = to_np(mx.concatenate([s1, s2]))
    mem = to_np(out.mem)
    away = np.abs(mem - 0.3) > 1e-3
    assert np.array_equal(to_np(mx.stack(step_spikes))[away], to_np(spikes)[away])
    assert np.array_equal(halves[away], to_np(spikes)[away])
    assert spikes.shape == (30, 3, 5) and out.state.shape == (3, 4, 5)


def test_layer_under_mx_compile_matches_eager():
    layer = make_layer(seed=2)
    x = mx.array(np.random.default_rng(2).normal(size=(40, 2, 6)).astype(np.float32))

    def loss(x_):
        s, o = layer(x_, return_state=True)
        return (s + o.mem).sum()

    step = nn.value_and_grad(layer, loss)
    compiled = mx.compile(step, inputs=layer.state, outputs=layer.state)
    (v0, g0), (v1, g1) = step(x), compiled(x)
    assert_close(v1, to_np(v0), RTOL, "loss")
    w0, w1 = g0["decay_proj"]["weight"], g1["decay_proj"]["weight"]
    assert_close(w1, to_np(w0), RTOL, "decay weight gradient")


def test_layer_defaults():
    layer = snn.AssociativeLeaky(8, 4)
    assert layer.value_dim == 8
    x = mx.zeros((3, 2, 8))
    assert layer(x).shape == (3, 2, 8)
    a = to_np(mx.sigmoid(layer.decay_proj(x)))
    np.testing.assert_allclose(a, 0.9, rtol=1e-6)
    assert "key_dim=4" in repr(layer)


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------


def good():
    d = inputs(5, seed=9)
    return {n: mx.array(d[n]) for n in NAMES}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"q": mx.zeros((5, 2))}, ValueError, "q must have 3 dimensions"),
        ({"v": mx.zeros((5, 2, 3, 1))}, ValueError, "v must have 3 dimensions"),
        ({"k": mx.zeros((5, 2, 3))}, ValueError, "k of shape"),
        ({"a": mx.zeros((4, 2, 4))}, ValueError, "a of shape"),
        ({"v": mx.zeros((5, 1, 3))}, ValueError, "v of shape"),
        ({"S0": mx.zeros((2, 3, 3))}, ValueError, "S0 of shape"),
        ({"q": mx.zeros((5, 2, 4), mx.int32)}, TypeError, "q must have a floating dtype"),
        ({"a": np.zeros((5, 2, 4))}, TypeError, "a must be an mx.array"),
        ({"S0": mx.zeros((2, 4, 3), mx.int32)}, TypeError, "S0 must have a floating"),
    ],
)
def test_bad_arrays_raise(change, error, match):
    args = {**good(), **change}
    with pytest.raises(error, match=match):
        associative_scan(*(args[n] for n in NAMES))


def test_bad_chunk_and_empty_sequence_raise():
    args = [good()[n] for n in NAMES]
    with pytest.raises(ValueError, match="chunk must be >= 1; got 0"):
        associative_scan(*args, chunk=0)
    with pytest.raises(TypeError, match="chunk must be an int"):
        associative_scan(*args, chunk=2.0)
    empty = [mx.zeros((0, 2, 4))] * 2 + [mx.zeros((0, 2, 3)), mx.zeros((0, 2, 4))]
    with pytest.raises(ValueError, match="at least one time step"):
        associative_scan(*empty)
    with pytest.raises(ValueError, match="log_a of shape"):
        associative_scan_log(args[0], args[1], args[2], mx.zeros((5, 2, 1)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dim": 0}, ValueError, "dim must be >= 1"),
        ({"key_dim": 2.5}, TypeError, "key_dim must be an int"),
        ({"value_dim": 0}, ValueError, "value_dim must be >= 1"),
        ({"threshold": -1.0}, ValueError, "threshold must be > 0 and finite"),
        ({"decay_init": 1.0}, ValueError, "decay_init must lie in"),
        ({"decay_init": 0.0}, ValueError, "decay_init must be a finite number > 0"),
        ({"surrogate": "nope"}, ValueError, "surrogate must be one of"),
        ({"chunk": 0}, ValueError, "chunk must be >= 1"),
    ],
)
def test_bad_layer_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        snn.AssociativeLeaky(**{"dim": 6, "key_dim": 4, **kwargs})


def test_bad_layer_inputs_raise():
    layer = make_layer()
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, dim\] with dim = 6"):
        layer(mx.zeros((3, 2, 7)))
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, dim\]"):
        layer(mx.zeros((3, 6)))
    with pytest.raises(ValueError, match="x must have at least one time step"):
        layer(mx.zeros((0, 2, 6)))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        layer(mx.zeros((3, 2, 6), mx.int32))
    with pytest.raises(ValueError, match="state of shape"):
        layer(mx.zeros((3, 2, 6)), state=mx.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match=r"x must have shape \[B, dim\]"):
        layer.step(mx.zeros((3, 2, 6)))
    with pytest.raises(ValueError, match="state of shape"):
        layer.step(mx.zeros((2, 6)), mx.zeros((3, 4, 5)))


def test_cumulative_product_closed_form_breaks_in_fp32_where_the_scan_does_not():
    """Why the chunked form: P_t = prod a_r underflows and 1/P_t overflows by T = 64."""
    d = inputs(64, seed=10, lo=0.05, hi=0.5)
    f32 = {n: d[n] for n in ("q", "k", "v", "a")}
    P = np.cumprod(f32["a"], axis=0)  # [T, B, dk], fp32
    with np.errstate(all="ignore"):
        writes = f32["k"][..., None] * f32["v"][:, :, None, :] / P[..., None]
        S = P[..., None] * np.cumsum(writes, axis=0)
        naive = np.einsum("tbi,tbij->tbj", f32["q"], S)
    expected = ref.associative_forward(*f32.values())["y"]
    assert not np.allclose(naive, expected, rtol=1e-3, atol=1e-3)
    y, _ = associative_scan(*(mx.array(f32[n]) for n in ("q", "k", "v", "a")))
    assert_close(y, expected, RTOL, "y")
