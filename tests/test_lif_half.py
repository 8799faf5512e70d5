"""LIF (both algorithms) and linear_scan with float16/bfloat16 inputs, against float64.

The loops read 16-bit inputs, compute and carry their state in float32 and return
results in the input's dtype. The reference runs in float64 on the same (rounded)
inputs, so the only error left is the float32 arithmetic plus one rounding of each
result to the 16-bit dtype. Tolerances, ``max|got - ref| <= rtol * max(1, max|ref|)``
per dtype (twice the dtype's unit roundoff: float16 2^-10, bfloat16 2^-7); the
parameter gradients (float32 parameters, reduced in float32) use the float32
tolerance of tests/test_lif_parity.py. Spikes must be identical (inputs keep every
membrane 1e-6 away from the threshold). T = 1024 shows that the state does not
drift: a 16-bit state would be off by about 20 of its roundoffs there (beta 0.95).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np

from mlx_snn.functional import lif_sequence, linear_scan

RTOL = {mx.float16: 2.0**-10, mx.bfloat16: 2.0**-7}
PARAM_GRAD_RTOL = 5e-4  # float32 parameters, as in tests/test_lif_parity.py


def rounded(a: np.ndarray, dtype) -> np.ndarray:
    """``a`` rounded to ``dtype`` and back to float64 (what the library receives)."""
    return np.array(mx.array(a.astype(np.float32)).astype(dtype).astype(mx.float32), np.float64)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("T,algorithm", [(25, "loop"), (1024, "loop"), (1024, "parallel")])
@pytest.mark.parametrize("timing", ["immediate", "delayed"])
def test_lif_half_precision_matches_float64(dtype, T, algorithm, timing):
    rng = np.random.default_rng(T)
    shape = (T, 2, 8)
    x = rounded(rng.normal(0.25, 0.6, size=shape), dtype)
    g_s = rounded(rng.normal(size=shape), dtype)
    g_m = rounded(0.1 * rng.normal(size=shape), dtype)
    expected = ref.lif_forward(x, 0.95, 1.0, "subtract", timing)
    assert np.min(np.abs(expected["mem"] - 1.0)) > 1e-6, "near-tie: change the seed"
    grads = ref.lif_backward(
        x, g_s, g_m, None, 0.95, 1.0, "subtract", timing, timing == "delayed", "atan"
    )

    def f(x_, beta_):
        out = lif_sequence(
            x_,
            beta_,
            1.0,
            surrogate="atan",
            reset_timing=timing,
            detach_reset=timing == "delayed",
            algorithm=algorithm,
        )
        return out.spikes, out.mem

    cots = [mx.array(g_s.astype(np.float32)).astype(dtype), mx.array(g_m.astype(np.float32))]
    cots[1] = cots[1].astype(dtype)
    beta = mx.array(0.95)
    (spikes, mem), (g_x, g_beta) = mx.vjp(
        f, [mx.array(x.astype(np.float32)).astype(dtype), beta], cots
    )
    assert spikes.dtype == mem.dtype == g_x.dtype == dtype and g_beta.dtype == mx.float32
    np.testing.assert_array_equal(to_np(spikes), expected["spikes"])
    assert_close(mem, expected["mem"], RTOL[dtype], "mem")
    assert_close(g_x, grads["x"], RTOL[dtype], "grad x")
    # beta is float32; its reference is beta = float32(0.95) in the forward pass
    assert_close(g_beta, grads["beta"], PARAM_GRAD_RTOL, "grad beta")


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("method", ["loop", "strided", "doubling"])
@pytest.mark.parametrize("reverse", [False, True])
def test_linear_scan_half_precision_matches_float64_over_1024_steps(dtype, method, reverse):
    rng = np.random.default_rng(5)
    T = 1024
    b = rounded(rng.normal(size=(T, 3, 4)), dtype)
    g = rounded(rng.normal(size=(T, 3, 4)), dtype)
    a = 0.99  # a long memory: errors of a 16-bit state would add up over ~100 steps
    expected = ref.linear_scan(np.float32(a), b, reverse=reverse)
    g_b = ref.linear_scan_backward(np.float32(a), b, g, reverse=reverse)["b"]
    h, (grad_b,) = mx.vjp(
        lambda b_: linear_scan(a, b_, reverse=reverse, method=method),
        [mx.array(b.astype(np.float32)).astype(dtype)],
        [mx.array(g.astype(np.float32)).astype(dtype)],
    )
    assert h[0].dtype == grad_b.dtype == dtype
    assert_close(h[0], expected, RTOL[dtype], "h")
    assert_close(grad_b, g_b, RTOL[dtype], "grad b")
