"""The AMOS kernels (metal/amos_forward.metal, metal/amos_backward.metal,
metal/first_spike.metal) on the CPU shim through mlx_snn.kernels, against the
float64 reference (the sequential at-most-one-spike recurrence, differentiated step
by step).

Tolerance (float32 vs float64): membrane 1e-5 * max(1, |ref|), gradient 1e-4; spikes
and indices identical (inputs keep h > 1e-6 from the threshold). Half precision:
membrane 2e-3 (float16) / 1.6e-2 (bfloat16), gradient 4e-3 / 3e-2.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from conftest import assert_close, to_np
from reference import amos as ref

import mlx_snn as snn
from mlx_snn import kernels

SURROGATES = {
    "fast_sigmoid": {"slope": 25.0},
    "atan": {"alpha": 2.0},
    "sigmoid": {"slope": 4.0},
    "triangle": {"width": 1.0},
    "straight_through": {},
}


def first_spike_ref(h, th):
    """reference.amos.first_spike (scalar threshold) applied per feature."""
    parts = [ref.first_spike(h[..., f], float(th[f])) for f in range(h.shape[-1])]
    return {k: np.stack([p[k] for p in parts], axis=-1) for k in parts[0]}


def make(shape, seed, dtype=mx.float32):
    rng = np.random.default_rng(seed)
    x = to_np(mx.array(rng.normal(0.3, 1.0, shape).astype(np.float32)).astype(dtype))
    th = rng.uniform(0.8, 1.5, shape[2:]).astype(np.float32)
    return x, th, rng


def run_case(shape, seed, surrogate="atan", mem=True, tau=2.0, dtype=mx.float32, tol=None):
    out_tol, grad_tol = tol or (1e-5, 1e-4)
    x, th, rng = make(shape, seed, dtype)
    fw = ref.amos_forward(x, tau, th)
    assert np.min(np.abs(fw["mem"] - th)) > 1e-6, "near-tie at the threshold; change the seed"
    g_s = to_np(mx.array(rng.normal(size=shape).astype(np.float32)).astype(dtype))
    g_h = to_np(mx.array(0.1 * rng.normal(size=shape).astype(np.float32)).astype(dtype))
    surr = snn.surrogate.NAMES[surrogate](**SURROGATES[surrogate])

    def f(x_):
        out = kernels.amos(x_, tau, mx.array(th), surr, mem=mem, backend="metal")
        return (out[0], out[1]) if mem else (out[0],)

    cot = [mx.array(g_s).astype(dtype)] + ([mx.array(g_h).astype(dtype)] if mem else [])
    outs, (g_x,) = mx.vjp(f, [mx.array(x).astype(dtype)], cot)
    np.testing.assert_array_equal(to_np(outs[0]), fw["spikes"])
    if mem:
        assert outs[1].dtype == dtype
        assert_close(outs[1], fw["mem"], out_tol, "mem")
    full = kernels.amos(mx.array(x).astype(dtype), tau, mx.array(th), surr, backend="metal")
    np.testing.assert_array_equal(np.array(full[2]), fw["t_first"])
    np.testing.assert_array_equal(np.array(full[3]), first_spike_ref(fw["mem"], th)["t_second"])
    want = ref.amos_backward(
        x, g_s, g_h if mem else np.zeros_like(g_s), tau, th, surrogate, **SURROGATES[surrogate]
    )
    assert_close(g_x, want, grad_tol, "grad x")


@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_shim_amos_forward_and_backward_every_surrogate(shim_metal, surrogate):
    run_case((30, 3, 13), 1, surrogate)


@pytest.mark.parametrize("T", [1, 4096])
@pytest.mark.parametrize("mem", [True, False])
def test_shim_amos_short_and_long_sequences(shim_metal, T, mem):
    run_case((T, 2, 5), 4, mem=mem, tau=50.0 if T > 1 else 2.0)


@pytest.mark.parametrize("dtype,tol", [(mx.float16, (2e-3, 4e-3)), (mx.bfloat16, (1.6e-2, 3e-2))])
def test_shim_amos_half_precision(shim_metal, dtype, tol):
    run_case((40, 2, 11), 5, dtype=dtype, tol=tol)


def test_shim_amos_cuda_grid_and_uint8_spikes(shim_metal):
    shim_metal.semantics = "cuda"
    run_case((12, 4, 75), 6)
    x, _, _ = make((12, 4, 75), 6)
    out = kernels.amos(
        mx.array(x),
        2.0,
        1.0,
        snn.surrogate.atan(),
        mem=False,
        spike_dtype=mx.uint8,
        backend="metal",
    )
    assert out[1] is None and out[0].dtype == mx.uint8
    np.testing.assert_array_equal(np.array(out[0]), ref.amos_forward(x, 2.0, 1.0)["spikes"])


@pytest.mark.parametrize("T", [1, 50, 4096])
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_shim_first_spike_matches_reference(shim_metal, T, dtype):
    rng = np.random.default_rng(T)
    h = to_np(mx.array(rng.normal(0.0, 1.0, (T, 3, 13)).astype(np.float32)).astype(dtype))
    h[:, 0, :4] = 0.0  # never crosses: forced at T-1
    th = rng.uniform(1.5, 3.5, 13).astype(np.float32)
    want = first_spike_ref(h, th)
    t_first, forced, t_second = kernels.first_spike(
        mx.array(h).astype(dtype), mx.array(th), backend="metal"
    )
    assert t_first.dtype == mx.int32 and forced.dtype == mx.bool_
    for name, got in (("t_first", t_first), ("forced", forced), ("t_second", t_second)):
        np.testing.assert_array_equal(np.array(got), want[name], err_msg=name)
