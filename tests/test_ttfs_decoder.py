"""TemporalSelectorDecoder, functional.temporal_selector, encode.ttfs and the
incremental time-step schedule against the float64 oracle (tests/reference/amos.py).

Selected steps t_1st and encoder spikes must match exactly (inputs are drawn away from
the threshold). Logits and gradients (input, weight, bias, per-class tau):
max abs error <= 1e-4 * max(1, max |ref|) (fp32 vs float64).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from conftest import assert_close
from reference import amos as ref

import mlx_snn as snn
from mlx_snn.functional import temporal_selector

RTOL = 1e-4


def decoder_case(T, seed, threshold, B=6, F=9, C=4):
    rng = np.random.default_rng(seed)
    x = (rng.uniform(size=(T, B, F)) < 0.4).astype(np.float32)
    weight = (rng.normal(size=(C, F)) * 0.8).astype(np.float32)
    x[:, 0] = 0.0  # sample 0 gets only the bias (< threshold): nothing fires
    bias = np.clip(rng.normal(size=(C,)) * 0.3, -0.5, 0.5).astype(np.float32)
    tau = rng.uniform(1.5, 4.0, size=(C,)).astype(np.float32)
    dec = snn.TemporalSelectorDecoder(F, C, threshold=threshold)
    dec.linear.weight = mx.array(weight)
    dec.linear.bias = mx.array(bias)
    dec.w = mx.array(-np.log(tau - 1.0).astype(np.float32))
    tau = np.array(dec.tau, dtype=np.float64)  # the fp32 value the module uses
    return dec, x, weight, bias, tau, rng


@pytest.mark.parametrize("T", [1, 4, 16, 256])
def test_decoder_logits_and_gradients_match_reference(T):
    dec, x, weight, bias, tau, rng = decoder_case(T, seed=T, threshold=0.6)
    want = ref.selector_forward(x, weight, bias, tau, threshold=0.6)
    assert np.min(np.abs(want["mem"] - 0.6)) > 1e-5
    if T > 1:
        assert want["t_first"][0] == T - 1 and np.any(want["t_first"] < T - 1)
    g_logits = rng.normal(size=want["logits"].shape).astype(np.float32)

    def loss(params, x_):
        dec.update(params)
        return (dec(x_) * mx.array(g_logits)).sum()

    logits, t_first = dec(mx.array(x), return_time=True)
    np.testing.assert_array_equal(np.array(t_first), want["t_first"])
    assert_close(logits, want["logits"], RTOL, "logits")

    params = dec.trainable_parameters()
    grads, g_x = mx.grad(loss, argnums=(0, 1))(params, mx.array(x))
    expected = ref.selector_backward(x, weight, bias, tau, g_logits, threshold=0.6)
    assert_close(g_x, expected["x"], RTOL, "grad x")
    assert_close(grads["linear"]["weight"], expected["weight"], RTOL, "grad weight")
    assert_close(grads["linear"]["bias"], expected["bias"], RTOL, "grad bias")
    # tau = 1 + exp(-w): dL/dw = dL/dtau * (-(tau - 1))
    assert_close(grads["w"], expected["tau"] * -(tau - 1.0), RTOL, "grad w")


def test_decoder_at_one_step_is_a_membrane_decoder():
    dec, x, _, _, tau, _ = decoder_case(1, seed=3, threshold=5.0)
    linear_out = np.array(dec.linear(mx.array(x[0])), dtype=np.float64)
    logits, t_first = dec(mx.array(x), return_time=True)
    assert_close(logits, linear_out / tau, RTOL, "T=1 logits")
    np.testing.assert_array_equal(np.array(t_first), np.zeros(x.shape[1]))


def test_no_spike_selects_last_step_and_high_threshold_delays_selection():
    dec, x, weight, bias, tau, _ = decoder_case(12, seed=4, threshold=100.0)
    logits, t_first = dec(mx.array(x), return_time=True)
    np.testing.assert_array_equal(np.array(t_first), np.full(x.shape[1], 11))
    mem = ref.selector_forward(x, weight, bias, tau, threshold=100.0)["mem"]
    assert_close(logits, mem[-1], RTOL, "last-step logits")
    low = snn.TemporalSelectorDecoder(9, 4, threshold=0.05)
    low.update(dec.parameters())
    _, t_low = low(mx.array(x), return_time=True)
    assert np.all(np.array(t_low) <= np.array(t_first))


def test_decoder_trains_on_a_separable_task():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=64)
    x = np.zeros((6, 64, 3), np.float32)
    x[:, np.arange(64), labels] = rng.uniform(0.6, 1.0, size=(6, 64))
    dec = snn.TemporalSelectorDecoder(3, 3, threshold=1.0)
    opt_state = {"lr": 0.5}

    def loss_fn(model, x_, y_):
        return nn.losses.cross_entropy(model(x_), y_, reduction="mean")

    step = nn.value_and_grad(dec, loss_fn)
    xs, ys = mx.array(x), mx.array(labels)
    first, _ = step(dec, xs, ys)
    for _ in range(60):
        loss, grads = step(dec, xs, ys)
        dec.update(nn.utils.tree_map(lambda p, g: p - opt_state["lr"] * g, dec.parameters(), grads))
    assert loss.item() < 0.5 * first.item()
    assert np.mean(np.array(mx.argmax(dec(xs), axis=1)) == labels) > 0.9


def test_temporal_selector_functional_matches_reference():
    rng = np.random.default_rng(9)
    h = rng.normal(size=(10, 5, 3)).astype(np.float32)
    h[:, 0] = -5.0  # sample 0: no neuron crosses
    got = temporal_selector(mx.array(h), 1.5)
    t_ref = np.full(5, 9)
    for b in range(5):
        hits = [t for t in range(10) if np.any(h[t, b] >= 1.5)]
        if hits:
            t_ref[b] = hits[0]
    np.testing.assert_array_equal(np.array(got.t_first), t_ref)
    np.testing.assert_array_equal(np.array(got.logits), h[t_ref, np.arange(5)])
    assert got.t_first.dtype == mx.int32


def test_decoder_fixed_tau_and_errors():
    dec = snn.TemporalSelectorDecoder(4, 2, tau=3.0, learn_tau=False, bias=False)
    assert "w" not in dec.trainable_parameters()
    assert_close(dec.tau, np.full(2, 3.0), 1e-6, "tau")
    with pytest.raises(ValueError, match="tau must be a finite number > 1"):
        snn.TemporalSelectorDecoder(4, 2, tau=1.0)
    with pytest.raises(ValueError, match="threshold must be > 0 and finite"):
        snn.TemporalSelectorDecoder(4, 2, threshold=0.0)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        snn.TemporalSelectorDecoder(4, 0)
    with pytest.raises(TypeError, match="in_features must be an int"):
        snn.TemporalSelectorDecoder(4.0, 2)
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, 4\].*got \(3, 2, 5\)"):
        dec(mx.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match="x must have at least 3 dimensions"):
        dec(mx.zeros((2, 4)))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        dec(mx.zeros((3, 2, 4), dtype=mx.int32))
    with pytest.raises(ValueError, match="h must have at least 2 dimensions"):
        temporal_selector(mx.zeros((4,)))


@pytest.mark.parametrize("force_last", [True, False])
@pytest.mark.parametrize("tau", [2.0, 5.0])
def test_ttfs_encoder_matches_reference(force_last, tau):
    rng = np.random.default_rng(int(tau))
    images = rng.uniform(size=(8, 6, 5)).astype(np.float32)
    images[0, 0, :3] = [0.0, 0.5, 1.0]
    got = snn.encode.ttfs(mx.array(images), 20, tau=tau, threshold=0.5, force_last=force_last)
    want = ref.ttfs_encode(images, 20, tau=tau, threshold=0.5, force_last=force_last)
    np.testing.assert_array_equal(np.array(got), want)
    counts = np.array(got).sum(axis=0)
    assert counts.max() == 1 and (counts.min() == 1) == force_last
    # brighter fires no later
    t = np.where(counts > 0, np.array(got).argmax(axis=0), 99)
    order = np.argsort(images.ravel())
    assert np.all(np.diff(t.ravel()[order]) <= 0)


def test_ttfs_encoder_equals_amos_on_repeated_image():
    rng = np.random.default_rng(2)
    images = mx.array(rng.uniform(size=(4, 7)).astype(np.float32))
    T = 16
    spikes = snn.AMOS(tau=2.0, threshold=0.5)(mx.broadcast_to(images, (T, 4, 7)))
    assert mx.array_equal(snn.encode.ttfs(images, T, tau=2.0, threshold=0.5), spikes)


def test_ttfs_encoder_errors():
    img = mx.zeros((2, 3))
    with pytest.raises(ValueError, match="tau"):
        snn.encode.ttfs(img, 4, tau=0.9)
    with pytest.raises(ValueError, match="threshold"):
        snn.encode.ttfs(img, 4, threshold=-1.0)
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        snn.encode.ttfs(img, 0)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        snn.encode.ttfs(img + 2.0, 4)
    with pytest.raises(TypeError, match="images must be floating point"):
        snn.encode.ttfs(mx.zeros((2, 3), dtype=mx.uint8), 4)
    with pytest.raises(TypeError, match="force_last must be a bool"):
        snn.encode.ttfs(img, 4, force_last=1)


def test_incremental_time_steps_schedule():
    sched = snn.training.incremental_time_steps
    assert [sched(e, (1, 2, 4), 2) for e in range(8)] == [1, 1, 2, 2, 4, 4, 4, 4]
    assert [sched(e, (1, 4), (1, 3)) for e in range(6)] == [1, 4, 4, 4, 4, 4]
    assert sched(0) == 1 and sched(100) == 4
    with pytest.raises(ValueError, match="non-decreasing"):
        sched(0, (4, 2))
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        sched(-1)
    with pytest.raises(ValueError, match="one value per stage"):
        sched(0, (1, 2), (1, 2, 3))
    with pytest.raises(ValueError, match="at least one"):
        sched(0, ())
    with pytest.raises(TypeError, match="epochs_per_stage must be an int"):
        sched(0, (1, 2), (1.5, 2))
    assert math.isclose(float(sched(3, (1, 2, 8), 1)), 8.0)
