"""Bad input raises a clear ValueError/TypeError naming the argument (never a silent answer)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import mlx_snn as snn
from mlx_snn.functional import lif_sequence, lif_step

X = mx.ones((4, 2, 3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"reset": "soft"}, r"reset must be one of 'subtract', 'zero', 'none'; got 'soft'"),
        (
            {"reset_timing": "late"},
            r"reset_timing must be one of 'immediate', 'delayed'; got 'late'",
        ),
        ({"surrogate": "relu"}, r"surrogate must be one of .*got 'relu'"),
        ({"backend": "tpu"}, r"backend must be one of 'auto', 'mlx', 'metal', 'cuda'; got 'tpu'"),
        ({"threshold": 0.0}, r"threshold must be > 0 and finite; got 0.0"),
        ({"threshold": -1.0}, r"threshold must be > 0 and finite; got -1.0"),
        ({"threshold": [1.0, -0.5]}, r"threshold must be > 0"),
        ({"beta": 1.5}, r"beta must lie in \[0, 1\]; got 1.5"),
        ({"beta": -0.1}, r"beta must lie in \[0, 1\]; got -0.1"),
        ({"beta": [0.5, 1.2]}, r"beta must lie in \[0, 1\]"),
        ({"beta": float("nan")}, r"beta must lie in \[0, 1\]; got nan"),
        (
            {"reset_timing": "delayed", "detach_reset": False},
            r"detach_reset=False is not supported",
        ),
    ],
)
def test_lif_constructor_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        snn.LIF(**kwargs)


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"beta": "0.9"}, TypeError),
        ({"threshold": True}, TypeError),
        ({"detach_reset": 1}, TypeError),
        ({"surrogate": 3}, TypeError),
    ],
)
def test_lif_constructor_rejects_wrong_types(kwargs, exc):
    with pytest.raises(exc):
        snn.LIF(**kwargs)


def test_unavailable_backend_names_the_available_ones():
    with pytest.raises(
        ValueError,
        match=r"backend 'metal' is not available here .*available backends: 'auto', 'mlx'",
    ):
        snn.LIF(backend="metal")
    with pytest.raises(ValueError, match=r"backend 'cuda' is not available here"):
        lif_sequence(X, backend="cuda")


@pytest.mark.parametrize("shape", [(5,), ()])
def test_input_with_fewer_than_two_dimensions_raises(shape):
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions .*got shape"):
        snn.LIF()(mx.ones(shape))


def test_empty_sequence_raises():
    with pytest.raises(ValueError, match="at least one time step"):
        snn.LIF()(mx.ones((0, 2, 3)))


@pytest.mark.parametrize("dtype", [mx.int32, mx.uint8, mx.bool_])
def test_non_float_input_raises_type_error(dtype):
    with pytest.raises(TypeError, match=r"x must have a floating dtype .*got"):
        snn.LIF()(mx.ones((3, 2, 2), dtype=dtype))


def test_numpy_input_raises_type_error():
    with pytest.raises(TypeError, match=r"x must be an mx\.array; got ndarray"):
        snn.LIF()(np.ones((3, 2, 2), np.float32))


def test_state_errors_name_the_argument_the_caller_wrote():
    with pytest.raises(ValueError, match=r"state has shape \(2, 4\), expected \(2, 3\)"):
        snn.LIF()(X, state=mx.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"v_prev has shape \(3,\), expected \(2, 3\)"):
        snn.LIF().step(X[0], mx.zeros((3,)))
    with pytest.raises(ValueError, match=r"state has shape \(3,\), expected \(2, 3\)"):
        snn.StateLeaky()(X, state=mx.zeros((3,)))
    with pytest.raises(ValueError, match=r"state has shape \(3,\), expected \(2, 3\)"):
        snn.ParallelLIF()(X, state=mx.zeros((3,)))
    with pytest.raises(ValueError, match=r"v0 has shape \(3,\), expected \(2, 3\)"):
        lif_sequence(X, v0=mx.zeros((3,)))
    with pytest.raises(ValueError, match=r"h0 has shape \(3,\), expected \(2, 3\)"):
        snn.functional.state_leaky(X, h0=mx.zeros((3,)))
    with pytest.raises(ValueError, match=r"v has shape \(3,\), expected \(2, 3\)"):
        lif_step(X[0], mx.zeros((3,)))


def test_state_with_integer_dtype_raises():
    with pytest.raises(TypeError, match="state must have a floating dtype"):
        snn.LIF()(X, state=mx.zeros((2, 3), dtype=mx.int32))
    with pytest.raises(TypeError, match="v0 must have a floating dtype"):
        lif_sequence(X, v0=mx.zeros((2, 3), dtype=mx.int32))


def test_per_feature_parameter_that_does_not_broadcast_raises():
    with pytest.raises(
        ValueError, match=r"beta of shape \(4,\) does not broadcast to the feature shape \(3,\)"
    ):
        snn.LIF(beta=mx.full((4,), 0.5))(X)
    with pytest.raises(ValueError, match=r"threshold of shape \(2, 3\) does not broadcast"):
        lif_sequence(X, threshold=mx.ones((2, 3)))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"beta": 2.0}, ValueError, r"beta must lie in \[0, 1\]"),
        ({"threshold": 0}, ValueError, r"threshold must be > 0 and finite"),
        ({"beta": "x"}, TypeError, "beta must be a float or an mx.array"),
        ({"beta": mx.array([1], dtype=mx.int32)}, TypeError, "beta must have a floating dtype"),
    ],
)
def test_functional_lif_validates_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lif_sequence(X, **kwargs)
    with pytest.raises(exc, match=match):
        lif_step(X[0], None, **kwargs)


def test_voting_layer_rejects_indivisible_width_and_bad_voters():
    with pytest.raises(
        ValueError, match=r"last dimension of x \(25\) must be divisible by voters=10"
    ):
        snn.VotingLayer(10)(mx.ones((2, 3, 25)))
    with pytest.raises(ValueError, match="voters must be >= 1; got 0"):
        snn.VotingLayer(0)
    with pytest.raises(TypeError, match="voters must be an int"):
        snn.VotingLayer(2.5)


def test_seq_to_batch_rejects_non_callables_and_rank_one_input():
    with pytest.raises(TypeError, match="module must be callable"):
        snn.SeqToBatch(3)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        snn.SeqToBatch(lambda x: x)(mx.ones((4,)))


# ----------------------------------------------------------------------------
# The functional API checks what the modules check (array values once per call)
# ----------------------------------------------------------------------------

NAN = float("nan")
BAD_ARRAYS = [
    ("threshold", mx.array(-1.0), r"threshold must be > 0 and finite everywhere"),
    ("threshold", mx.array([1.0, NAN, 1.0]), r"threshold must be > 0 and finite everywhere"),
    ("threshold", mx.array([1.0, float("inf"), 1.0]), r"threshold must be > 0 and finite"),
    ("beta", mx.array(1.5), r"beta must lie in \[0, 1\] everywhere; got 1 of 1 values outside"),
    ("beta", mx.array([0.5, NAN, 0.5]), r"beta must lie in \[0, 1\] everywhere"),
    ("beta", mx.array([0.5, -0.1, 0.5]), r"beta must lie in \[0, 1\] everywhere"),
]
LIF_FUNCTIONS = {
    "lif_sequence": lambda **kw: lif_sequence(X, **kw),
    "lif_sequence_loop": lambda **kw: lif_sequence(X, algorithm="loop", **kw),
    "parallel_lif_sequence": lambda **kw: snn.functional.parallel_lif_sequence(X, **kw),
    "state_leaky": lambda **kw: snn.functional.state_leaky(X, **kw),
    "lif_step": lambda **kw: lif_step(X[0], None, **kw),
}


@pytest.mark.parametrize("fn", list(LIF_FUNCTIONS))
@pytest.mark.parametrize("name, value, match", BAD_ARRAYS)
def test_functional_lif_checks_array_parameter_values(fn, name, value, match):
    with pytest.raises(ValueError, match=match):
        LIF_FUNCTIONS[fn](**{name: value})


@pytest.mark.parametrize("value", [mx.array(-1.0), mx.array([1.0, NAN])])
def test_first_spike_and_amos_check_threshold_arrays(value):
    h = mx.ones((4, 2, value.size))
    for fn in (snn.functional.first_spike, snn.functional.temporal_selector):
        with pytest.raises(ValueError, match="threshold must be > 0 and finite everywhere"):
            fn(h, threshold=value)
    with pytest.raises(ValueError, match="threshold must be > 0 and finite everywhere"):
        snn.functional.amos(h, threshold=value)


@pytest.mark.parametrize("a", [1.5, 0.0, -0.1, NAN])
def test_associative_scan_rejects_decays_outside_zero_one(a):
    q = mx.ones((5, 2, 3))
    decays = mx.full((5, 2, 3), 0.5)
    decays[2, 1, 0] = a
    with pytest.raises(ValueError, match=r"a must lie in \(0, 1\] everywhere; got 1 of 30"):
        snn.functional.associative_scan(q, q, q, decays)
    with pytest.raises(ValueError, match=r"log_a must be finite and <= 0 everywhere"):
        snn.functional.associative_scan_log(q, q, q, mx.full((5, 2, 3), 0.1))


def test_value_checks_run_inside_grad_and_are_skipped_inside_compile():
    def loss(t):
        return lif_sequence(X, threshold=t).mem.sum()

    with pytest.raises(ValueError, match="threshold must be > 0"):
        mx.grad(loss)(mx.array(-1.0))
    # under mx.compile arrays cannot be read back: used as given (documented)
    mx.eval(mx.compile(loss)(mx.array(-1.0)))
    a = mx.full((5, 2, 3), 1.5)
    mx.eval(mx.compile(snn.functional.associative_scan)(a, a, a, a))


# ----------------------------------------------------------------------------
# Flags are bools (never a truthy string), everywhere
# ----------------------------------------------------------------------------

Y = mx.ones((4, 2, 3))
FLAG_CALLS = {
    "return_state": [
        lambda v: snn.LIF()(Y, return_state=v),
        lambda v: snn.ParallelLIF()(Y, return_state=v),
        lambda v: snn.StateLeaky()(Y, return_state=v),
        lambda v: snn.AssociativeLeaky(3, 2)(Y, return_state=v),
        lambda v: snn.TACTP(lambda f: f, 2)(Y, return_state=v),
    ],
    "learn_beta": [lambda v: snn.LIF(learn_beta=v), lambda v: snn.StateLeaky(learn_beta=v)],
    "learn_threshold": [lambda v: snn.LIF(learn_threshold=v)],
    "return_mem": [lambda v: snn.AMOS()(Y, return_mem=v)],
    "return_time": [lambda v: snn.TemporalSelectorDecoder(3, 2)(Y, return_time=v)],
    "learn_tau": [lambda v: snn.TemporalSelectorDecoder(3, 2, learn_tau=v)],
    "bias": [
        lambda v: snn.TemporalSelectorDecoder(3, 2, bias=v),
        lambda v: snn.AssociativeLeaky(3, 2, bias=v),
    ],
    "reverse": [lambda v: snn.functional.linear_scan(0.5, Y, reverse=v)],
    "normalize": [lambda v: snn.functional.tac_aggregate(Y, 2, normalize=v)],
    "beta_grad": [lambda v: lif_sequence(Y, beta_grad=v)],
    "threshold_grad": [lambda v: lif_sequence(Y, threshold_grad=v)],
}


@pytest.mark.parametrize(
    "flag, index", [(f, i) for f, calls in FLAG_CALLS.items() for i in range(len(calls))]
)
@pytest.mark.parametrize("value", ["no", 1, 0.0])
def test_non_bool_flags_are_rejected(flag, index, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False; got"):
        FLAG_CALLS[flag][index](value)


def test_gradient_flags_choose_what_is_differentiated():
    beta = mx.full((3,), 0.9)

    def grad_beta(**kw):
        return mx.grad(lambda b: lif_sequence(0.3 * Y, beta=b, **kw).mem.sum())(beta)

    assert mx.abs(grad_beta()).sum().item() > 0
    assert mx.abs(grad_beta(beta_grad=False)).sum().item() == 0
    with pytest.raises(ValueError, match=r"beta_grad=True needs beta as an mx\.array"):
        lif_sequence(Y, beta=0.9, beta_grad=True)


def test_chunk_is_rejected_where_nothing_uses_it():
    with pytest.raises(ValueError, match="chunk=8 with algorithm='loop'"):
        lif_sequence(Y, algorithm="loop", chunk=8)
    lif_sequence(Y, algorithm="parallel", chunk=8)
    with pytest.raises(ValueError, match="algorithm must be one of 'auto', 'loop', 'parallel'"):
        lif_sequence(Y, algorithm="scan")
