"""Encoders, losses, SeqToBatch and VotingLayer."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_snn as snn


def test_rate_coding_fires_with_the_given_probability_and_is_reproducible():
    images = mx.array(np.linspace(0, 1, 11, dtype=np.float32)).reshape(1, 11)
    s = snn.encode.rate(images, 4000, key=mx.random.key(0))
    assert s.shape == (4000, 1, 11) and s.dtype == mx.float32
    np.testing.assert_allclose(np.array(s.mean(axis=0))[0], np.linspace(0, 1, 11), atol=0.03)
    again = snn.encode.rate(images, 4000, key=mx.random.key(0))
    assert mx.array_equal(s, again)
    boosted = snn.encode.rate(images, 10, key=mx.random.key(1), gain=20.0)
    assert np.array(boosted)[:, 0, 1:].min() == 1.0  # gain * x >= 1: always fires


def test_latency_coding_fires_once_brighter_earlier():
    images = mx.array([[1.0, 0.5, 0.0, 0.2]])
    s = np.array(snn.encode.latency(images, 5, threshold=0.1))
    assert s.shape == (5, 1, 4)
    assert s.sum(axis=0).tolist() == [[1, 1, 0, 1]]
    assert np.argmax(s[:, 0, 0]) == 0 and np.argmax(s[:, 0, 1]) == 2 and np.argmax(s[:, 0, 3]) == 3


@pytest.mark.parametrize("encoder", [snn.encode.rate, snn.encode.latency])
def test_encoders_reject_bad_images(encoder):
    with pytest.raises(
        ValueError, match=r"images must lie in \[0, 1\]; got values in \[0.0, 255.0\]"
    ):
        encoder(mx.array([[0.0, 255.0]]), 3)
    with pytest.raises(TypeError, match="images must be floating point"):
        encoder(mx.array([[0, 255]], dtype=mx.uint8), 3)
    with pytest.raises(ValueError, match="images contain NaN"):
        encoder(mx.array([[0.5, float("nan")]]), 3)
    with pytest.raises(ValueError, match="num_steps must be >= 1; got 0"):
        encoder(mx.array([[0.5]]), 0)


def test_ce_count_is_cross_entropy_on_spike_counts():
    rng = np.random.default_rng(0)
    spikes = (rng.random((6, 4, 3)) < 0.5).astype(np.float32)
    labels = np.array([0, 2, 1, 2])
    counts = spikes.sum(0)
    logp = counts - np.log(np.exp(counts).sum(1, keepdims=True))
    expected = -logp[np.arange(4), labels].mean()
    got = snn.loss.ce_count(mx.array(spikes), mx.array(labels))
    np.testing.assert_allclose(got.item(), expected, rtol=1e-6)


def test_mse_rate_targets_on_and_off():
    spikes = mx.array(np.ones((4, 2, 3), np.float32))
    labels = mx.array([1, 0])
    got = snn.loss.mse_rate(spikes, labels, on=1.0, off=0.2).item()
    np.testing.assert_allclose(got, (4 * 0.8**2) / 6, rtol=1e-6)


def test_losses_reject_bad_shapes_and_labels():
    s = mx.zeros((3, 2, 4))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        snn.loss.ce_count(s, mx.array([1, 2, 3]))
    with pytest.raises(TypeError, match="labels must be an integer"):
        snn.loss.mse_rate(s, mx.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"spikes must be \[T, B, C\]"):
        snn.loss.ce_count(mx.zeros((3, 2, 4, 1)), mx.array([1, 2]))


def test_seq_to_batch_applies_a_conv_per_frame():
    conv = nn.Conv2d(2, 5, 3)
    x = mx.random.normal((4, 3, 8, 8, 2))
    y = snn.SeqToBatch(conv)(x)
    assert y.shape == (4, 3, 6, 6, 5)
    np.testing.assert_allclose(np.array(y[2, 1]), np.array(conv(x[2, 1:2])[0]), atol=1e-5)


def test_voting_layer_averages_consecutive_voters():
    x = mx.arange(2 * 6, dtype=mx.float32).reshape(1, 2, 6)
    y = snn.VotingLayer(3)(x)
    np.testing.assert_allclose(np.array(y), [[[1.0, 4.0], [7.0, 10.0]]])
