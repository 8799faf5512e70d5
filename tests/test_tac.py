"""TAC / TAC-TP and functional.tac_aggregate against the float64 reference (reference/tac.py).

Tolerances (fp32 library vs float64 reference, ``assert_close``: max abs error
<= rtol * max(1, max|ref|)): aggregates and their gradients 1e-5; layer outputs
(Linear, Conv2d, whose fp32 sums over 100-300 terms round differently) 1e-4;
TAC-TP weight gradients 1e-4; TAC-TP spikes identical (inputs checked to keep
every membrane >= 1e-4 away from the threshold). Scale test: TAC-TP firing rate
and weight-gradient norm within a factor 2 of the per-step baseline.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from conftest import assert_close, to_np
from reference import lif as ref_lif
from reference import tac as ref

import mlx_snn as snn
from mlx_snn.functional import tac_aggregate, tac_group_weights, tac_weight_sums

AGG_RTOL = 1e-5
LAYER_RTOL = 1e-4
GRAD_RTOL = 1e-4


class CountingLayer(nn.Module):
    """Wraps a per-frame layer and records how often and on how many frames it ran."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.calls = []

    def __call__(self, x):
        self.calls.append(x.shape[0])
        return self.layer(x)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _linear(rng, n_in, n_out, bias=True, scale=0.3):
    lin = nn.Linear(n_in, n_out, bias=bias)
    lin.weight = mx.array(rng.normal(0, scale, (n_out, n_in)).astype(np.float32))
    if bias:
        lin.bias = mx.array(rng.normal(0, 1, (n_out,)).astype(np.float32))
    return lin


@pytest.mark.parametrize(
    ("T", "g", "beta"),
    [
        (8, 4, 0.9),
        (10, 4, 0.5),
        (25, 4, 0.9),
        (25, 16, 0.9),
        (7, 3, 0.0),
        (5, 1, 0.9),
        (1024, 8, 0.9),
        (1030, 16, 0.5),
    ],
)
@pytest.mark.parametrize("normalize", [False, True])
def test_tac_aggregate_matches_reference_forward_and_grad(T, g, beta, normalize):
    rng = _rng(T + g)
    x = rng.normal(size=(T, 3, 2, 5))
    cot = rng.normal(size=(math.ceil(T / g), 3, 2, 5))
    xm, cm = mx.array(x.astype(np.float32)), mx.array(cot.astype(np.float32))
    out = tac_aggregate(xm, g, beta, normalize=normalize)
    assert_close(out, ref.aggregate(x, g, beta, normalize), AGG_RTOL, "aggregate")
    grad = mx.grad(lambda a: (tac_aggregate(a, g, beta, normalize=normalize) * cm).sum())(xm)
    assert_close(grad, ref.aggregate_backward(cot, T, g, beta, normalize), AGG_RTOL, "grad")


def test_short_last_group_weights_newest_frame_weighs_one():
    w = tac_group_weights(10, 4, 0.5)
    np.testing.assert_array_equal(w, [[0.125, 0.25, 0.5, 1], [0.125, 0.25, 0.5, 1], [0.5, 1, 0, 0]])
    np.testing.assert_allclose(to_np(tac_weight_sums(10, 4, 0.5)), [1.875, 1.875, 1.5])
    np.testing.assert_array_equal(tac_group_weights(3, 4, None), [[1, 1, 1]])


def test_group_larger_than_T_acts_as_one_group_of_all_frames():
    x = mx.array(_rng().normal(size=(5, 2, 3)).astype(np.float32))
    lin = _linear(_rng(1), 3, 4)
    assert_close(snn.TAC(lin, 9, 0.9)(x), to_np(snn.TAC(lin, 5, 0.9)(x)), 1e-6)
    assert snn.TACTP(lin, 9, beta=0.9)(x).shape == (5, 2, 4)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("T", "g"), [(12, 4), (25, 4), (10, 3), (6, 8)])
def test_tac_linear_equals_decayed_sum_of_per_frame_outputs(T, g, bias):
    rng = _rng(T * g)
    x = rng.normal(size=(T, 4, 6))
    lin = _linear(rng, 6, 5, bias=bias)
    out = snn.TAC(lin, g, beta=0.8)(mx.array(x.astype(np.float32)))
    want = ref.tac_linear(x, to_np(lin.weight), to_np(lin.bias) if bias else None, g, 0.8)
    assert out.shape == (math.ceil(T / min(g, T)), 4, 5)
    assert_close(out, want, LAYER_RTOL, "TAC(Linear)")


@pytest.mark.parametrize(("T", "g"), [(12, 4), (10, 3)])
def test_tac_linear_weight_and_bias_grads_match_reference(T, g):
    rng = _rng(T + 7 * g)
    x = rng.normal(size=(T, 4, 6))
    lin = _linear(rng, 6, 5)
    tac = snn.TAC(lin, g, beta=0.7)
    cot = rng.normal(size=(math.ceil(T / g), 4, 5))
    cm = mx.array(cot.astype(np.float32))
    grads = nn.value_and_grad(tac, lambda a: (tac(a) * cm).sum())(mx.array(x.astype(np.float32)))[1]
    want_w, want_b = ref.tac_linear_backward(x, cot, g, 0.7)
    assert_close(grads["layer"]["weight"], want_w, GRAD_RTOL, "dL/dW")
    assert_close(grads["layer"]["bias"], want_b, GRAD_RTOL, "dL/db")


def test_tac_under_mx_compile_equals_eager():
    x = mx.array(_rng().normal(size=(10, 2, 3)).astype(np.float32))
    tac, tp = snn.TAC(_linear(_rng(1), 3, 4), 4, 0.9), snn.TACTP(_linear(_rng(2), 3, 4), 4)
    assert_close(mx.compile(tac)(x), to_np(tac(x)), 1e-6)
    np.testing.assert_array_equal(to_np(mx.compile(tp)(x)), to_np(tp(x)))


def test_tac_bias_counts_once_per_weighted_frame():
    lin = nn.Linear(3, 2)
    lin.weight = mx.zeros((2, 3))
    lin.bias = mx.array([1.0, -2.0])
    out = snn.TAC(lin, 4, beta=0.5)(mx.ones((10, 1, 3)))
    sums = np.array([1.875, 1.875, 1.5])
    assert_close(out[:, 0], sums[:, None] * np.array([1.0, -2.0]), 1e-6)
    drive = snn.TACTP(lin, 4, neuron=lambda u: u, beta=0.5)(mx.ones((10, 1, 3)))
    assert_close(drive[:, 0], np.tile([1.0, -2.0], (10, 1)), 1e-6)


def test_tac_conv2d_equals_decayed_sum_of_per_frame_convs():
    rng = _rng(3)
    x = mx.array(rng.normal(size=(10, 2, 9, 9, 2)).astype(np.float32))
    conv = nn.Conv2d(2, 4, 3)
    per_frame = to_np(snn.SeqToBatch(conv)(x))
    out = snn.TAC(conv, 4, beta=0.9)(x)
    assert out.shape == (3, 2, 7, 7, 4)
    assert_close(out, ref.aggregate(per_frame, 4, 0.9), LAYER_RTOL, "TAC(Conv2d)")


@pytest.mark.parametrize(("T", "g"), [(25, 4), (16, 2), (9, 3), (7, 8)])
def test_layer_called_once_on_ceil_T_over_g_times_B_frames(T, g):
    B = 3
    G = math.ceil(T / min(g, T))
    x = mx.array(_rng().normal(size=(T, B, 8, 8, 1)).astype(np.float32))
    counted = CountingLayer(nn.Conv2d(1, 2, 3))
    assert snn.TAC(counted, g, 0.9)(x).shape == (G, B, 6, 6, 2)
    assert counted.calls == [G * B]
    counted.calls.clear()
    assert snn.TACTP(counted, g, beta=0.9)(x).shape == (T, B, 6, 6, 2)
    assert counted.calls == [G * B]


def test_tac_sequential_of_per_frame_layers():
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm(2), nn.MaxPool2d(2))
    x = mx.array(_rng().normal(size=(6, 2, 8, 8, 1)).astype(np.float32))
    assert snn.TAC(seq, 4)(x).shape == (2, 2, 3, 3, 2)
    assert snn.TACTP(seq, 4)(x).shape == (6, 2, 3, 3, 2)


@pytest.mark.parametrize(("T", "g"), [(12, 4), (10, 4), (9, 2)])
def test_tactp_linear_lif_matches_reference_spikes_and_weight_grad(T, g):
    rng = _rng(10 * T + g)
    x = (rng.random((T, 4, 20)) < 0.4).astype(np.float64)
    lin = _linear(rng, 20, 6, scale=0.5)
    w, b = to_np(lin.weight), to_np(lin.bias)
    cot = rng.normal(size=(T, 4, 6))
    lif_opts = dict(beta=0.9, threshold=1.0, surrogate="atan", surrogate_params={"alpha": 2.0})
    drive = ref.tactp_linear_drive(x, w, b, g, 0.9)
    margin = np.abs(ref_lif.lif_forward(drive, 0.9, 1.0)["mem"] - 1.0).min()
    assert margin > 1e-4, "test input too close to the threshold"
    want_s, want_gw = ref.tactp_linear(x, w, b, g, 0.9, cot, **lif_opts)
    assert 0 < want_s.mean() < 1 and np.abs(want_gw).max() > 0.1
    tp = snn.TACTP(lin, g, neuron=snn.LIF(0.9, surrogate=snn.surrogate.atan(2.0)), beta=0.9)
    xm, cm = mx.array(x.astype(np.float32)), mx.array(cot.astype(np.float32))
    np.testing.assert_array_equal(to_np(tp(xm)), want_s)
    grads = nn.value_and_grad(tp, lambda a: (tp(a) * cm).sum())(xm)[1]
    assert_close(grads["layer"]["weight"], want_gw, GRAD_RTOL, "dL/dW")


@pytest.mark.parametrize("g", [2, 4, 8])
def test_tactp_rate_and_grad_scale_match_per_step_baseline(g):
    rng = _rng(g)
    T, B = 32, 16
    x = mx.array((rng.random((T, B, 100)) < 0.3).astype(np.float32))
    lin = _linear(rng, 100, 50, bias=False, scale=0.15)
    lif = snn.LIF(0.9)
    cot = mx.array(rng.normal(size=(T, B, 50)).astype(np.float32))
    tp = snn.TACTP(lin, g, neuron=lif, beta=0.9)
    rate_base, rate_tp = lif(lin(x)).mean().item(), tp(x).mean().item()
    g_base = nn.value_and_grad(lin, lambda a: (lif(lin(a)) * cot).sum())(x)[1]["weight"]
    g_tp = nn.value_and_grad(tp, lambda a: (tp(a) * cot).sum())(x)[1]["layer"]["weight"]
    assert rate_base > 0.05
    assert 0.5 < rate_tp / rate_base < 2.0
    ratio = mx.linalg.norm(g_tp).item() / mx.linalg.norm(g_base).item()
    assert 0.5 < ratio < 2.0


def test_tactp_passes_state_to_the_neuron():
    lin = _linear(_rng(), 3, 4)
    x = mx.array(_rng(1).normal(size=(6, 2, 3)).astype(np.float32))
    tp = snn.TACTP(lin, 2, beta=0.9)
    spikes, out = tp(x, state=mx.ones((2, 4)) * 0.5, return_state=True)
    assert spikes.shape == (6, 2, 4) and out.mem.shape == (6, 2, 4) and out.state.shape == (2, 4)


@pytest.mark.parametrize("group", [0, -3])
def test_group_below_one_is_rejected(group):
    with pytest.raises(ValueError, match="group"):
        snn.TAC(nn.Linear(2, 2), group)
    with pytest.raises(ValueError, match="group"):
        snn.TACTP(nn.Linear(2, 2), group)
    with pytest.raises(ValueError, match="group"):
        tac_aggregate(mx.zeros((4, 1, 2)), group)


@pytest.mark.parametrize("group", [2.0, "4", True, None])
def test_group_not_an_int_is_rejected(group):
    with pytest.raises(TypeError, match="group"):
        snn.TAC(nn.Linear(2, 2), group)


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan")])
def test_beta_outside_unit_interval_is_rejected(beta):
    with pytest.raises(ValueError, match="beta"):
        snn.TAC(nn.Linear(2, 2), 2, beta=beta)
    with pytest.raises(ValueError, match="beta"):
        tac_aggregate(mx.zeros((4, 1, 2)), 2, beta)


@pytest.mark.parametrize(
    "layer",
    [nn.GRU(3, 3), nn.LSTM(3, 3), snn.LIF(), nn.Sequential(nn.Linear(3, 3), snn.LIF())],
    ids=["GRU", "LSTM", "LIF", "Sequential-with-LIF"],
)
def test_layers_that_work_across_time_are_rejected(layer):
    with pytest.raises(ValueError, match=r"per frame|each frame"):
        snn.TAC(layer, 2)
    with pytest.raises(ValueError, match=r"per frame|each frame"):
        snn.TACTP(layer, 2)


def test_layer_changing_the_batch_size_is_rejected():
    def merge(a):
        return a.reshape(1, -1)

    with pytest.raises(ValueError, match="per frame"):
        snn.TAC(merge, 2)(mx.zeros((4, 3, 5)))
    with pytest.raises(ValueError, match="per frame"):
        snn.TACTP(merge, 2)(mx.zeros((4, 3, 5)))


def test_non_callables_are_rejected():
    with pytest.raises(TypeError, match="layer"):
        snn.TAC(3, 2)
    with pytest.raises(TypeError, match="neuron"):
        snn.TACTP(nn.Linear(2, 2), 2, neuron="lif")


@pytest.mark.parametrize("shape", [(4,), (4, 3)])
def test_wrong_input_rank_is_rejected(shape):
    with pytest.raises(ValueError, match="x must have at least 3 dimensions"):
        snn.TAC(nn.Linear(3, 3), 2)(mx.zeros(shape))
    with pytest.raises(ValueError, match="x must have at least 3 dimensions"):
        snn.TACTP(nn.Linear(3, 3), 2)(mx.zeros(shape))


def test_non_float_input_is_rejected():
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        snn.TAC(nn.Linear(3, 3), 2)(mx.zeros((4, 2, 3), dtype=mx.int32))
    with pytest.raises(TypeError, match=r"x must be an mx\.array"):
        tac_aggregate(np.zeros((4, 2, 3)), 2)
