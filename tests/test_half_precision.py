"""Half precision: every neuron, scan and operator in float16 and bfloat16 against the
float64 oracle (tests/reference/), the rule of mlx_snn/_precision.py.

Inputs, parameters and cotangents are drawn in float32, rounded to the half type, and the
oracle runs in float64 on exactly those rounded values; so what a test measures is the
library's own arithmetic. Tolerances, as max abs error <= rtol * max(1, max |ref|):

- outputs (membranes, readouts, aggregates, losses): one rounding to the half type,
  ``OUT_RTOL`` = 2**-7 for bfloat16 and 2**-10 for float16 (twice the unit roundoff),
  more where a layer's own Linear map rounds its activations (stated at the test);
- gradients: ``GRAD_RTOL`` = 2e-2 for bfloat16 and 3e-3 for float16; they add the
  surrogate derivative evaluated at the membrane the forward pass saved (rounded to the
  half type) and the rounding of the cotangents on the way;
- spikes and first-spike steps: identical (inputs are drawn so that every float64
  membrane stays at least 1e-4 from the threshold; the float32 carries are accurate to
  about 1e-6, a half-precision carry would not be).

Long sequences: T = 1024 with decays from 0.99 to 0.999 (hundreds of steps of memory),
where a half-precision carry stalls (bfloat16 keeps 8 bits: adding a small input to a
large sum loses it) and the results above would be off by tens of percent.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np
from mlx.utils import tree_flatten
from reference import amos as ref_amos
from reference import associative as ref_assoc
from reference import state_leaky as ref_leaky
from reference import tac as ref_tac

import mlx_snn as snn
from mlx_snn import functional as F

DTYPES = {"bfloat16": mx.bfloat16, "float16": mx.float16}
OUT_RTOL = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
GRAD_RTOL = {"bfloat16": 2e-2, "float16": 3e-3}
GAP = 1e-4

pytestmark = pytest.mark.parametrize("name", list(DTYPES))


def half(a: np.ndarray, name: str) -> tuple[mx.array, np.ndarray]:
    """``(a rounded to the half type as an mx.array, the same values in float64)``."""
    h = mx.array(np.asarray(a, np.float32)).astype(DTYPES[name])
    return h, to_np(h)


def check_dtypes(name: str, *arrays: mx.array) -> None:
    for a in arrays:
        assert a.dtype == DTYPES[name], a.dtype


def tie_free(draw, mem_of, threshold, tries=60):
    """``draw(seed)`` until the float64 membrane ``mem_of(x)`` keeps GAP from the threshold."""
    for seed in range(tries):
        x = draw(seed)
        if np.min(np.abs(mem_of(x) - threshold)) > GAP:
            return x, np.random.default_rng(1000 + seed)
    raise AssertionError("no tie-free input found")


# ----------------------------------------------------------------------------
# Scans and the LIF neuron (internals on the perf branch)
# ----------------------------------------------------------------------------


def test_linear_scan_at_t1024(name):
    rng = np.random.default_rng(0)
    T, M = 1024, 8
    a32 = rng.uniform(0.99, 0.999, size=(M,)).astype(np.float32)
    b, b64 = half(rng.normal(0.2, 1.0, size=(T, M)), name)
    g, g64 = half(rng.normal(size=(T, M)), name)
    a = mx.array(a32)
    h, (g_b,) = mx.vjp(lambda b_: F.linear_scan(a, b_), [b], [g])
    h = h[0]
    check_dtypes(name, h, g_b)
    want = ref.linear_scan(a32.astype(np.float64), b64)
    assert_close(h, want, OUT_RTOL[name], "h")
    back = ref.linear_scan_backward(a32.astype(np.float64), b64, g64)
    assert_close(g_b, back["b"], OUT_RTOL[name], "grad b")


def lif_case(name, T=1024, shape=(4, 6), beta=0.9):
    x, x64 = None, None

    def draw(seed):
        r = np.random.default_rng(seed)
        return to_np(
            mx.array(r.normal(0.15, 0.5, size=(T, *shape)).astype(np.float32)).astype(DTYPES[name])
        )

    x64, rng = tie_free(draw, lambda v: ref.lif_forward(v, beta, 1.0)["mem"], 1.0)
    x, _ = half(x64, name)
    g_s, g_s64 = half(rng.normal(size=x64.shape), name)
    return x, x64, g_s, g_s64


def run_lif(x, g_s, **kw):
    out, (g_x,) = mx.vjp(
        lambda x_: (F.lif_sequence(x_, surrogate="atan", **kw).spikes,), [x], [g_s]
    )
    return out[0], g_x


def check_lif(name, x, x64, g_s, g_s64, beta, **kw):
    spikes, g_x = run_lif(x, g_s, beta=beta, **kw)
    out = F.lif_sequence(x, beta=beta, **kw)
    check_dtypes(name, spikes, out.mem, g_x)
    assert out.state.dtype == mx.float32
    want = ref.lif_forward(x64, beta, 1.0)
    np.testing.assert_array_equal(to_np(spikes), want["spikes"])
    assert_close(out.mem, want["mem"], OUT_RTOL[name], "mem")
    assert_close(out.state, want["state"], 1e-5, "state (float32 carry)")
    back = ref.lif_backward(x64, g_s64, beta=beta, surrogate="atan")
    assert_close(g_x, back["x"], GRAD_RTOL[name], "grad x")


def test_lif_loop_at_t1024(name):
    check_lif(name, *lif_case(name), beta=0.9, algorithm="loop")


def test_parallel_lif_with_beta_0_9_at_t1024(name):
    # beta = 0.9 reaches the parallel rounds already rounded by lif_sequence's entry
    check_lif(name, *lif_case(name, shape=(2, 3)), beta=0.9, algorithm="parallel")


def test_parallel_lif_rounds_at_t1024(name):
    # beta = 0.875 is exact in both half types, so lif_sequence's entry does not round it
    # and this checks the parallel rounds, settle pass and backward scan themselves
    check_lif(name, *lif_case(name, shape=(2, 3), beta=0.875), beta=0.875, algorithm="parallel")


# ----------------------------------------------------------------------------
# StateLeaky
# ----------------------------------------------------------------------------


def test_state_leaky_at_t1024(name):
    T, shape = 1024, (3, 4)
    beta = np.array([0.99, 0.995, 0.998, 0.999], np.float32)
    th = 4.0

    def draw(seed):
        r = np.random.default_rng(seed)
        return to_np(
            mx.array(r.normal(0.01, 0.3, size=(T, *shape)).astype(np.float32)).astype(DTYPES[name])
        )

    x64, rng = tie_free(draw, lambda v: ref_leaky.state_leaky_forward(v, beta, th)["mem"], th)
    x, _ = half(x64, name)
    g_s, g_s64 = half(rng.normal(size=x64.shape), name)
    g_m, g_m64 = half(rng.normal(size=x64.shape) * 0.01, name)
    surr = snn.surrogate.atan(alpha=2.0)
    b = mx.array(beta)
    out, (g_x, g_b) = mx.vjp(
        lambda x_, b_: tuple(F.state_leaky(x_, b_, th, surr)[:2]), [x, b], [g_s, g_m]
    )
    check_dtypes(name, *out, g_x)
    want = ref_leaky.state_leaky_forward(x64, beta, th)
    np.testing.assert_array_equal(to_np(out[0]), want["spikes"])
    assert_close(out[1], want["mem"], OUT_RTOL[name], "mem")
    state = F.state_leaky(x, b, th, surr).state
    assert state.dtype == mx.float32
    assert_close(state, want["state"], 1e-5, "state (float32 carry)")
    back = ref_leaky.state_leaky_backward(
        x64, g_s64, g_m64, np.zeros(shape), beta, th, lambda u: ref.surrogate_derivative("atan", u)
    )
    assert_close(g_x, back["x"], GRAD_RTOL[name], "grad x")
    assert_close(g_b, back["beta"], GRAD_RTOL[name], "grad beta")


# ----------------------------------------------------------------------------
# AMOS, first spike, temporal selector, decoder
# ----------------------------------------------------------------------------


def amos_case(name, T, tau, shape=(3, 8)):
    def draw(seed):
        r = np.random.default_rng(seed)
        mean = r.uniform(-1.0, 1.6, size=shape)
        v = mean + 0.7 * r.normal(size=(T, *shape))
        return to_np(mx.array(v.astype(np.float32)).astype(DTYPES[name]))

    x64, rng = tie_free(draw, lambda v: ref_amos.amos_forward(v, tau)["mem"], 1.0)
    return x64, rng


@pytest.mark.parametrize("method", ["parallel", "sequential"])
def test_amos_at_t1024(name, method):
    T, tau = 1024 if method == "parallel" else 256, 200.0
    x64, rng = amos_case(name, T, tau)
    x, _ = half(x64, name)
    g_s, g_s64 = half(rng.normal(size=x64.shape), name)
    g_h, g_h64 = half(rng.normal(size=x64.shape) * 0.1, name)
    out, (g_x,) = mx.vjp(lambda x_: tuple(F.amos(x_, tau, method=method)[:2]), [x], [g_s, g_h])
    check_dtypes(name, *out, g_x)
    want = ref_amos.amos_forward(x64, tau)
    assert want["forced"].any() and not want["forced"].all()
    np.testing.assert_array_equal(to_np(out[0]), want["spikes"])
    assert_close(out[1], want["mem"], OUT_RTOL[name], "mem")
    assert_close(g_x, ref_amos.amos_backward(x64, g_s64, g_h64, tau), GRAD_RTOL[name], "grad x")


def test_first_spike_and_temporal_selector(name):
    rng = np.random.default_rng(5)
    h, h64 = half(np.cumsum(rng.normal(0.002, 0.05, size=(1024, 4, 6)), axis=0), name)
    threshold = 0.3  # not exact in either half type: the comparison is in float32
    got = F.first_spike(h, threshold)
    want = ref_amos.first_spike(h64, threshold)
    for field in ("t_first", "forced", "t_second"):
        np.testing.assert_array_equal(np.array(getattr(got, field)), want[field])
    sel = F.temporal_selector(h, threshold)
    check_dtypes(name, sel.logits)
    t1 = want["t_first"].min(axis=1)
    np.testing.assert_array_equal(np.array(sel.t_first), t1)
    assert_close(sel.logits, h64[t1, np.arange(4)], 0.0, "logits (a gather, exact)")


def test_temporal_selector_decoder_at_t1024(name):
    rng = np.random.default_rng(8)
    T, B, Fe, C = 1024, 4, 6, 3
    x, x64 = half((rng.uniform(size=(T, B, Fe)) < 0.3).astype(np.float32), name)
    dec = snn.TemporalSelectorDecoder(Fe, C, threshold=0.8, tau=300.0)
    dec.linear.weight = mx.array(rng.normal(size=(C, Fe)).astype(np.float32) * 0.1)
    dec.set_dtype(DTYPES[name])
    w64, b64 = to_np(dec.linear.weight), to_np(dec.linear.bias)
    tau64 = 1.0 / (1.0 / (1.0 + np.exp(-to_np(dec.w))))
    want = ref_amos.selector_forward(x64, w64, b64, tau64, threshold=0.8)
    logits, t_first = dec(x, return_time=True)
    check_dtypes(name, logits)
    # the Linear map computes in the half type: its rounding enters the membrane
    rtol = 4 * OUT_RTOL[name]
    assert_close(logits, want["logits"], rtol, "logits")
    assert np.mean(np.array(t_first) == want["t_first"]) >= 0.75
    g = rng.normal(size=(B, C)).astype(np.float32)

    def loss(params):
        dec.update(params)
        return (dec(x).astype(mx.float32) * mx.array(g)).sum()

    grads = mx.grad(loss)(dec.trainable_parameters())
    check_dtypes(name, grads["linear"]["weight"], grads["w"])
    back = ref_amos.selector_backward(x64, w64, b64, tau64, g, threshold=0.8)
    same = np.array(t_first) == want["t_first"]
    if same.all():
        assert_close(grads["linear"]["weight"], back["weight"], GRAD_RTOL[name], "grad W")


# ----------------------------------------------------------------------------
# Associative memory
# ----------------------------------------------------------------------------


def test_associative_scan_at_t1024(name):
    rng = np.random.default_rng(2)
    T, B, dk, dv = 1024, 2, 3, 4
    q, q64 = half(rng.normal(size=(T, B, dk)) * 0.3, name)
    k, k64 = half(rng.normal(size=(T, B, dk)) * 0.3, name)
    v, v64 = half(rng.normal(size=(T, B, dv)), name)
    a, a64 = half(rng.uniform(0.99, 0.999, size=(T, B, dk)), name)
    g, g64 = half(rng.normal(size=(T, B, dv)), name)
    (y, S), (g_q, g_v) = mx.vjp(
        lambda q_, v_: F.associative_scan(q_, k, v_, a), [q, v], [g, mx.zeros((B, dk, dv))]
    )
    check_dtypes(name, y, g_q, g_v)
    assert S.dtype == mx.float32
    want = ref_assoc.associative_forward(q64, k64, v64, a64)
    assert_close(y, want["y"], OUT_RTOL[name], "y")
    assert_close(S, want["state"], 1e-4, "state (float32 carry)")
    back = ref_assoc.associative_backward(q64, k64, v64, a64, g64)
    assert_close(g_q, back["q"], GRAD_RTOL[name], "grad q")
    assert_close(g_v, back["v"], GRAD_RTOL[name], "grad v")


def test_associative_leaky_layer(name):
    rng = np.random.default_rng(4)
    T, B, dim, dk = 256, 2, 5, 3
    layer = snn.AssociativeLeaky(dim, dk, threshold=0.5, decay_init=0.99)
    layer.set_dtype(DTYPES[name])
    x, x64 = half(rng.normal(size=(T, B, dim)), name)
    spikes, out = layer(x, return_state=True)
    check_dtypes(name, spikes, out.mem)
    assert out.state.dtype == mx.float32
    p = {
        "Wq": to_np(layer.q_proj.weight),
        "Wk": to_np(layer.k_proj.weight),
        "Wv": to_np(layer.v_proj.weight),
        "Wa": to_np(layer.decay_proj.weight),
        "ba": to_np(layer.decay_proj.bias),
    }
    want = ref_assoc.associative_leaky_forward(x64, p, threshold=0.5)
    # the four Linear maps compute in the half type: their rounding enters the readout
    assert_close(out.mem, want["mem"], 8 * OUT_RTOL[name], "mem")
    near = np.abs(want["mem"] - 0.5) < 16 * OUT_RTOL[name] * max(1.0, np.abs(want["mem"]).max())
    np.testing.assert_array_equal(to_np(spikes)[~near], want["spikes"][~near])
    s1, S1 = layer.step(x[0])
    assert S1.dtype == mx.float32 and s1.dtype == DTYPES[name]


# ----------------------------------------------------------------------------
# TAC / TAC-TP
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [False, True])
def test_tac_aggregate(name, normalize):
    rng = np.random.default_rng(6)
    x, x64 = half(rng.normal(size=(1027, 3, 5)), name)
    g, g64 = half(rng.normal(size=(257, 3, 5)), name)
    out, (g_x,) = mx.vjp(lambda x_: (F.tac_aggregate(x_, 4, 0.9, normalize),), [x], [g])
    check_dtypes(name, out[0], g_x)
    assert_close(out[0], ref_tac.aggregate(x64, 4, 0.9, normalize), OUT_RTOL[name], "A")
    want = ref_tac.aggregate_backward(g64, 1027, 4, 0.9, normalize)
    assert_close(g_x, want, OUT_RTOL[name], "grad x")


def test_tac_and_tactp_layers(name):
    rng = np.random.default_rng(7)
    T, B, Fi, Fo = 24, 3, 5, 4
    x, x64 = half(rng.normal(size=(T, B, Fi)), name)
    tac = snn.TAC(nn.Linear(Fi, Fo), group=4, beta=0.9)
    tac.set_dtype(DTYPES[name])
    w64, b64 = to_np(tac.layer.weight), to_np(tac.layer.bias)
    y = tac(x)
    check_dtypes(name, y)
    assert_close(y, ref_tac.tac_linear(x64, w64, b64, 4, 0.9), 8 * OUT_RTOL[name], "TAC")
    tactp = snn.TACTP(nn.Linear(Fi, Fo), group=4, beta=0.9)
    tactp.set_dtype(DTYPES[name])
    spikes, out = tactp(x, return_state=True)
    check_dtypes(name, spikes, out.mem)
    drive = ref_tac.tactp_linear_drive(
        x64, to_np(tactp.layer.weight), to_np(tactp.layer.bias), 4, 0.9
    )
    assert np.mean(to_np(spikes) == ref.lif_forward(drive, 0.9, 1.0)["spikes"]) > 0.97


# ----------------------------------------------------------------------------
# Encoders, losses, voting
# ----------------------------------------------------------------------------


def test_encoders(name):
    rng = np.random.default_rng(9)
    img, img64 = half(rng.uniform(size=(4, 7)), name)
    T = 1024
    rate = snn.encode.rate(img, T, key=mx.random.key(3))
    check_dtypes(name, rate)
    same = snn.encode.rate(img.astype(mx.float32), T, key=mx.random.key(3))
    np.testing.assert_array_equal(to_np(rate), to_np(same))
    lat = snn.encode.latency(img, T, threshold=0.01)
    check_dtypes(name, lat)
    t_fire = np.round((1.0 - img64) * (T - 1))
    want = (np.arange(T)[:, None, None] == t_fire[None]) & (img64 >= 0.01)[None]
    np.testing.assert_array_equal(to_np(lat), want)
    ttfs = snn.encode.ttfs(img, 64, tau=2.0, threshold=0.5)
    check_dtypes(name, ttfs)
    np.testing.assert_array_equal(to_np(ttfs), ref_amos.ttfs_encode(img64, 64, 2.0, 0.5))


def test_losses_count_beyond_the_half_types_integers(name):
    rng = np.random.default_rng(10)
    T, B, C = 1024, 5, 4
    spikes, s64 = half((rng.uniform(size=(T, B, C)) < rng.uniform(0.3, 0.9, size=C)), name)
    labels = mx.array(rng.integers(0, C, size=B).astype(np.int32))
    y = np.array(labels)
    counts = s64.sum(axis=0)  # several hundred: beyond bfloat16's exact integers (256)
    assert counts.max() > 300
    z = counts - counts.max(axis=1, keepdims=True)
    ce = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(B), y])
    loss, (g,) = mx.vjp(lambda s: (snn.loss.ce_count(s, labels),), [spikes], [mx.array(1.0)])
    check_dtypes(name, loss[0], g)
    assert_close(loss[0], ce, OUT_RTOL[name], "ce_count")
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[np.arange(B), y] -= 1.0
    assert_close(g, np.broadcast_to(p / B, (T, B, C)), OUT_RTOL[name], "grad ce_count")
    target = np.eye(C)[y]
    mse = np.mean((s64.mean(axis=0) - target) ** 2)
    assert_close(snn.loss.mse_rate(spikes, labels), mse, OUT_RTOL[name], "mse_rate")


def test_voting_layer(name):
    rng = np.random.default_rng(11)
    x, x64 = half(rng.uniform(size=(8, 3, 11 * 10)), name)
    y = snn.VotingLayer(10)(x)
    check_dtypes(name, y)
    assert_close(y, x64.reshape(8, 3, 11, 10).mean(axis=-1), OUT_RTOL[name], "votes")


# ----------------------------------------------------------------------------
# The paper networks
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("tac", [None, ("tac", 2), ("tactp", 2)])
def test_mnist_network_trains_in_half_precision(name, tac):
    mx.random.seed(0)
    model = snn.models.mnist_convnet(tac=tac)
    model.set_dtype(DTYPES[name])
    x = snn.encode.rate(mx.random.uniform(shape=(2, 28, 28, 1)).astype(DTYPES[name]), 4)
    labels = mx.array([3, 5])
    loss, grads = nn.value_and_grad(model, lambda: snn.loss.ce_count(model(x), labels))()
    check_dtypes(name, loss, *(g for _, g in tree_flatten(grads)))
    assert np.isfinite(float(loss.astype(mx.float32)))
    assert all(np.all(np.isfinite(to_np(g))) for _, g in tree_flatten(grads))
    y, state = model(x, return_state=True)
    check_dtypes(name, y)
    assert len(state) == 4
