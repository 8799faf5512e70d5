"""Encoders under mx.compile / mx.vmap (value checks skipped, images clipped to [0, 1]),
their eager checks, and empty batches."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import mlx_snn as snn

NAN = float("nan")


def _rate(x, T):
    return snn.encode.rate(x, T, key=mx.random.key(3))


ENCODERS = {
    "rate": _rate,
    "latency": snn.encode.latency,
    "ttfs": snn.encode.ttfs,
    "ttfs_silent": lambda x, T: snn.encode.ttfs(x, T, force_last=False),
}


@pytest.mark.parametrize("name", ENCODERS)
def test_compiled_encoder_matches_eager(name):
    encode = ENCODERS[name]
    x = mx.array(np.linspace(0, 1, 12, dtype=np.float32)).reshape(2, 3, 2)
    compiled = mx.compile(lambda x: encode(x, 7))
    assert mx.array_equal(compiled(x), encode(x, 7))
    mapped = mx.vmap(lambda x: encode(x, 7), out_axes=1)(x)
    assert mapped.shape == (7, 2, 3, 2)
    if name != "rate":  # vmap draws other random numbers (per-sample shapes)
        assert mx.array_equal(mapped, encode(x, 7))


@pytest.mark.parametrize("name", ENCODERS)
def test_compiled_encoder_clips_unchecked_values_and_nan_never_crosses(name):
    """Under mx.compile values are not checked: -0.5 acts as 0, 1.5 and 7 as 1; NaN never
    crosses (silent, or the forced spike at T-1 of ttfs with force_last=True)."""
    encode = ENCODERS[name]
    compiled = mx.compile(lambda x: encode(x, 6))
    got = np.array(compiled(mx.array([[-0.5, 1.5, 7.0, 0.25, NAN]])))
    want = np.array(encode(mx.array([[0.0, 1.0, 1.0, 0.25, 0.0]]), 6))
    np.testing.assert_array_equal(got[:, :, :4], want[:, :, :4])
    nan_train = got[:, 0, 4]
    if name == "ttfs":
        assert nan_train.tolist() == [0, 0, 0, 0, 0, 1]
    else:
        assert not nan_train.any()


def test_compiled_rate_with_the_global_rng_needs_the_state_as_input():
    x = mx.full((1, 256), 0.5)
    captured = mx.compile(
        lambda x: snn.encode.rate(x, 4), inputs=mx.random.state, outputs=mx.random.state
    )
    assert not mx.array_equal(captured(x), captured(x))
    with_key = mx.compile(lambda x, k: snn.encode.rate(x, 4, key=k))
    assert not mx.array_equal(with_key(x, mx.random.key(0)), with_key(x, mx.random.key(1)))


@pytest.mark.parametrize("name", ["rate", "latency", "ttfs"])
def test_eager_checks_still_reject_bad_images(name):
    encode = ENCODERS[name]
    with pytest.raises(
        ValueError, match=r"images must lie in \[0, 1\]; got values in \[-0.5, 1.0\]"
    ):
        encode(mx.array([[-0.5, 1.0]]), 3)
    with pytest.raises(ValueError, match="images contain NaN"):
        encode(mx.array([[0.5, NAN]]), 3)
    with pytest.raises(TypeError, match="images must be floating point"):
        encode(mx.array([[0, 1]], dtype=mx.uint8), 3)


@pytest.mark.parametrize("name", ["rate", "latency", "ttfs"])
def test_images_that_are_constants_of_a_compiled_function_are_still_checked(name):
    encode, bad = ENCODERS[name], mx.array([[0.5, 2.0]])
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        mx.compile(lambda: encode(bad, 3))()


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (0, 4, 4, 2)])
def test_empty_batch_gives_empty_spikes(name, shape):
    encode = ENCODERS[name]
    for out in (encode(mx.zeros(shape), 5), mx.compile(lambda x: encode(x, 5))(mx.zeros(shape))):
        assert out.shape == (5, *shape) and out.dtype == mx.float32


def test_number_arguments_reject_arrays_bools_and_bad_values():
    x = mx.array([[0.5]])
    with pytest.raises(TypeError, match="gain must be a number"):
        snn.encode.rate(x, 3, gain=mx.array(2.0))
    with pytest.raises(TypeError, match="gain must be a number"):
        snn.encode.rate(x, 3, gain=True)
    for gain in (0.0, -1.0, float("inf"), NAN):
        with pytest.raises(ValueError, match="gain must be a finite number > 0"):
            snn.encode.rate(x, 3, gain=gain)
    with pytest.raises(TypeError, match="threshold must be a number in"):
        snn.encode.latency(x, 3, threshold=mx.array(0.1))
    with pytest.raises(TypeError, match="threshold must be a number in"):
        snn.encode.latency(x, 3, threshold=False)
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\]; got 1.5"):
        snn.encode.latency(x, 3, threshold=1.5)
    with pytest.raises(TypeError, match="force_last must be a bool; got str"):
        snn.encode.ttfs(x, 3, force_last="no")
