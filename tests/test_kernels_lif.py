"""The LIF kernels (metal/lif_forward.metal, metal/lif_backward.metal) run on the CPU
shim through mlx_snn.kernels.lif_sequence, against the float64 reference.

Tolerances: float32 membrane/state within 1e-5 * max(1, |ref|), gradients within
1e-4 * max(1, |ref|), spikes identical (inputs keep every membrane > 1e-6 from the
threshold). float16 / bfloat16 inputs: the reference runs on the rounded inputs and
cotangents; outputs within 2e-3 (float16) / 1.6e-2 (bfloat16) of max(1, |ref|),
gradients within 4e-3 / 3e-2, with the gentle atan surrogate (the backward reads the
membrane as stored, in half precision: a steep surrogate amplifies that rounding).
"""

from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np

import mlx_snn as snn
from mlx_snn import kernels

SURROGATES = {
    "fast_sigmoid": {"slope": 25.0},
    "atan": {"alpha": 2.0},
    "sigmoid": {"slope": 4.0},
    "triangle": {"width": 1.0},
    "straight_through": {},
}
MODES = [
    (r, "immediate", d) for r, d in itertools.product(("subtract", "zero", "none"), (False, True))
] + [(r, "delayed", True) for r in ("subtract", "zero", "none")]
TOL = {  # dtype: (outputs, gradients)
    "float32": (1e-5, 1e-4),
    "float16": (2e-3, 4e-3),
    "bfloat16": (1.6e-2, 3e-2),
}
MX_DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    return to_np(mx.array(a).astype(MX_DTYPES[dtype]))


def run_case(
    shape,
    seed,
    reset,
    timing,
    detach,
    surrogate="fast_sigmoid",
    dtype="float32",
    entry=kernels.lif_sequence,
    **kw,
):
    """One case against the reference; ``entry`` has the signature of
    ``kernels.lif_sequence`` (test_kernels_wired.py passes the functional path)."""
    rng = np.random.default_rng(seed)
    x = rounded(rng.normal(0.25, 0.6, shape).astype(np.float32), dtype)
    features = shape[2:]
    beta = rng.uniform(0.7, 0.95, features).astype(np.float32)
    th = rng.uniform(0.8, 1.2, features).astype(np.float32)
    v0 = rounded(rng.normal(0.0, 0.3, shape[1:]).astype(np.float32), dtype)
    expected = ref.lif_forward(x, beta, th, reset, timing, v0)
    margin = np.min(np.abs(expected["mem"] - th))
    assert margin > 1e-6, "near-tie at the threshold; change the seed"
    g_s = rounded(rng.normal(size=shape).astype(np.float32), dtype)
    g_m = rounded(0.1 * rng.normal(size=shape).astype(np.float32), dtype)
    g_v = rounded(rng.normal(size=shape[1:]).astype(np.float32), dtype)
    surr = snn.surrogate.NAMES[surrogate](**SURROGATES[surrogate])
    dt = MX_DTYPES[dtype]

    def f(x_, v0_, b_, t_):
        return entry(
            x_,
            v0_,
            b_,
            t_,
            reset=reset,
            reset_timing=timing,
            surrogate=surr,
            detach_reset=detach,
            beta_grad=True,
            threshold_grad=True,
            backend="metal",
            **kw,
        )

    primals = [mx.array(x).astype(dt), mx.array(v0).astype(dt), mx.array(beta), mx.array(th)]
    cot = [mx.array(g_s).astype(dt), mx.array(g_m).astype(dt), mx.array(g_v).astype(dt)]
    (spikes, mem, state), grads = mx.vjp(lambda *a: tuple(f(*a)), primals, cot)
    out_tol, grad_tol = TOL[dtype]
    assert spikes.dtype == dt and mem.dtype == dt and state.dtype == dt
    np.testing.assert_array_equal(to_np(spikes), expected["spikes"])
    assert_close(mem, expected["mem"], out_tol, "mem")
    assert_close(state, expected["state"], out_tol, "state")
    want = ref.lif_backward(
        x, g_s, g_m, g_v, beta, th, reset, timing, detach, surrogate, SURROGATES[surrogate], v0
    )
    for name, got in zip(("x", "v0", "beta", "threshold"), grads, strict=True):
        assert_close(got, want[name], grad_tol, f"grad {name}")


@pytest.mark.parametrize("reset,timing,detach", MODES)
def test_shim_lif_forward_and_backward_every_mode(shim_metal, reset, timing, detach):
    run_case((25, 3, 13), 1, reset, timing, detach)


@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_shim_lif_backward_every_surrogate(shim_metal, surrogate):
    run_case((25, 3, 13), 2, "subtract", "immediate", False, surrogate)


@pytest.mark.parametrize("reset,timing,detach", MODES)
@pytest.mark.parametrize("T", [1, 4096])
def test_shim_lif_short_and_long_sequences(shim_metal, reset, timing, detach, T):
    # seed 4090 keeps every membrane of every mode > 1e-6 from the threshold at T = 4096
    run_case((T, 2, 5), 4090, reset, timing, detach)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    "reset,timing,detach",
    [("subtract", "immediate", False), ("zero", "immediate", True), ("subtract", "delayed", True)],
)
def test_shim_lif_half_precision_inputs(shim_metal, dtype, reset, timing, detach):
    run_case((40, 2, 11), 3, reset, timing, detach, "atan", dtype=dtype)


def test_shim_lif_cuda_grid_rounding_runs_guarded_tail_threads(shim_metal):
    # N = 300 > 256: a CUDA launch rounds up to 512 threads; the extra 212 must not write
    shim_metal.semantics = "cuda"
    run_case((9, 4, 75), 4, "zero", "immediate", False)


def test_shim_lif_uint8_spikes_and_unwritten_membrane(shim_metal):
    x = mx.array(np.random.default_rng(6).normal(0.3, 0.6, (30, 2, 9)).astype(np.float32))
    v0 = mx.zeros((2, 9))
    surr = snn.surrogate.atan()
    full = kernels.lif_sequence(x, v0, 0.9, 1.0, surrogate=surr, backend="metal")
    small = kernels.lif_sequence(
        x, v0, 0.9, 1.0, surrogate=surr, mem=False, spike_dtype=mx.uint8, backend="metal"
    )
    assert small[1] is None and small[0].dtype == mx.uint8
    np.testing.assert_array_equal(np.array(small[0]), np.array(full[0]).astype(np.uint8))
    np.testing.assert_array_equal(np.array(small[2]), np.array(full[2]))


def test_shim_lif_backward_recomputes_membrane_when_not_written(shim_metal):
    rng = np.random.default_rng(8)
    x = mx.array(rng.normal(0.3, 0.6, (20, 2, 5)).astype(np.float32))
    w = mx.array(rng.normal(size=(20, 2, 5)).astype(np.float32))

    def loss(x_, mem):
        out = kernels.lif_sequence(
            x_,
            mx.zeros((2, 5)),
            0.9,
            1.0,
            surrogate=snn.surrogate.atan(),
            mem=mem,
            backend="metal",
        )
        return (out[0] * w).sum() + out[2].sum()

    np.testing.assert_allclose(
        np.array(mx.grad(lambda a: loss(a, False))(x)),
        np.array(mx.grad(lambda a: loss(a, True))(x)),
        atol=1e-6,
    )
