"""The scan kernels (metal/linear_scan.metal, metal/linear_scan_chunked.metal) on the CPU
shim through mlx_snn.kernels.linear_scan, against the float64 reference: values and
gradients of a, b and h0, forward and reverse, constant and per-step decays.

Tolerance (float32 vs float64): 1e-5 * max(1, |ref|) for h, 1e-4 for gradients;
half-precision inputs 4e-3 (float16) / 3e-2 (bfloat16).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np

from mlx_snn.kernels import registry
from mlx_snn.kernels import scan as kscan


def run_case(
    T,
    lanes,
    per_step,
    reverse,
    method,
    seed=0,
    dtype=mx.float32,
    tol=(1e-5, 1e-4),
    entry=kscan.linear_scan,
):
    """One case against the reference; ``entry`` has the signature of
    ``kernels.linear_scan`` (test_kernels_wired.py passes the functional path)."""
    rng = np.random.default_rng(seed)
    b = to_np(mx.array(rng.normal(size=(T, 2, lanes)).astype(np.float32)).astype(dtype))
    shape = (T, 2, lanes) if per_step else (lanes,)
    # decays in (-1, 1), zeros included: the kernels never divide by them
    a = rng.uniform(-0.2, 0.999, shape).astype(np.float32)
    a[rng.random(shape) < 0.05] = 0.0
    a = to_np(mx.array(a).astype(dtype))
    h0 = to_np(mx.array(rng.normal(size=(2, lanes)).astype(np.float32)).astype(dtype))
    g = to_np(mx.array(rng.normal(size=(T, 2, lanes)).astype(np.float32)).astype(dtype))

    def f(a_, b_, h0_):
        return entry(a_, b_, h0_, reverse=reverse, method=method, backend="metal")

    primals = [mx.array(v).astype(dtype) for v in (a, b, h0)]
    (h,), grads = mx.vjp(lambda *p: (f(*p),), primals, [mx.array(g).astype(dtype)])
    assert h.dtype == dtype
    assert_close(h, ref.linear_scan(a, b, h0, reverse), tol[0], "h")
    want = ref.linear_scan_backward(a, b, g, h0, reverse)
    for name, got in zip(("a", "b", "h0"), grads, strict=True):
        assert_close(got, want[name], tol[1], f"grad {name}")


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [1, 37, 4096])
def test_shim_linear_scan_lanes(shim_metal, T, reverse, per_step):
    run_case(T, 13, per_step, reverse, "lanes", seed=T)


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [37, 4096])
def test_shim_linear_scan_chunked(shim_metal, T, reverse, per_step):
    # 2 x 3 = 6 lanes: a partial group of 8 lanes, chunks of 10 and 64 steps
    run_case(T, 3, per_step, reverse, "chunked", seed=T + 1)


def test_shim_linear_scan_chunked_cuda_grid_and_uneven_chunks(shim_metal):
    shim_metal.semantics = "cuda"
    # 1000 steps in 64 chunks of 16: the last chunk is short and two are empty
    run_case(1000, 3, True, False, "chunked", seed=9)


@pytest.mark.parametrize("dtype,tol", [(mx.float16, 4e-3), (mx.bfloat16, 3e-2)])
@pytest.mark.parametrize("method", ["lanes", "chunked"])
def test_shim_linear_scan_half_precision(shim_metal, method, dtype, tol):
    run_case(300, 5, True, False, method, seed=4, dtype=dtype, tol=(tol, tol))


def test_linear_scan_entry_point_checks_the_time_axis_of_a():
    with pytest.raises(ValueError, match="time axis must have length 1 or 5"):
        kscan.linear_scan(mx.ones((3, 2, 4)), mx.zeros((5, 2, 4)), backend="metal")


def test_chunked_plan_fills_a_threadgroup_with_chunks_of_at_least_8_steps():
    assert registry.chunked_plan(1, 4096) == (1, 512)
    assert registry.chunked_plan(6, 4096) == (8, 64)
    assert registry.chunked_plan(100, 100) == (32, 8)
    assert registry.chunked_plan(3, 5) == (4, 1)
    assert kscan.choose_method(6, 4096) == "chunked"
    assert kscan.choose_method(65536, 4096) == "lanes"
    assert kscan.choose_method(6, 64) == "lanes"
