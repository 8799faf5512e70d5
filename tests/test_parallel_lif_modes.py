"""The parallel LIF in every reset x timing mode, against the float64 reference and the loop.

Tolerances (fp32 vs float64): membrane and state within 1e-5 * max(1, max |ref|),
gradients within 1e-4 * max(1, max |ref|). Spikes are compared exactly, on inputs
whose reference membrane stays at least 1e-5 away from the threshold (chosen by
seed), so fp32 rounding cannot fall on the other side of it.
"""

from __future__ import annotations

import itertools

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np

import mlx_snn as snn
from mlx_snn.functional import lif_sequence, parallel_lif_sequence
from mlx_snn.functional import parallel_lif as pl

MEM_RTOL = 1e-5
GRAD_RTOL = 1e-4
TIE = 1e-5

# (reset, timing, detach_reset) combinations that exist (delayed is always detached)
MODES = [
    (r, "immediate", d) for r, d in itertools.product(("subtract", "zero", "none"), (False, True))
] + [(r, "delayed", True) for r in ("subtract", "zero", "none")]

# per-feature parameters; beta = 0 makes the delayed subtract reset act alone
BETA = np.array([0.0, 0.8, 0.97], np.float32)
TH = np.array([0.7, 1.0, 1.3], np.float32)


def tie_free(T, shape, bias, seed, reset, timing, beta=BETA, th=TH):
    """Input, initial state (some above the threshold) and reference, tie-free."""
    for s in range(seed, seed + 200):
        rng = np.random.default_rng(s)
        x = rng.normal(bias, 0.6, size=(T, *shape)).astype(np.float32)
        v0 = rng.normal(0.5, 0.8, size=shape).astype(np.float32)
        out = ref.lif_forward(x, beta, th, reset, timing, v0)
        if np.min(np.abs(out["mem"] - np.broadcast_to(th, shape[1:]))) > TIE:
            return x, v0, rng, out
    raise AssertionError("no tie-free input found")


def check_against_reference(T, bias, reset, timing, detach, chunk, seed):
    x, v0, rng, expected = tie_free(T, (2, 3), bias, seed, reset, timing)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_m = rng.normal(size=x.shape).astype(np.float32) * 0.1
    g_v = rng.normal(size=x.shape[1:]).astype(np.float32)

    def f(x_, v0_, b_, t_):
        out = parallel_lif_sequence(
            x_, b_, t_, reset, detach_reset=detach, v0=v0_, chunk=chunk, reset_timing=timing
        )
        return tuple(out)

    pl.counters.clear()
    out, vjps = mx.vjp(
        f,
        [mx.array(x), mx.array(v0), mx.array(BETA), mx.array(TH)],
        [mx.array(g_s), mx.array(g_m), mx.array(g_v)],
    )
    np.testing.assert_array_equal(to_np(out[0]), expected["spikes"])
    # away from near-ties the rounds are already exact: one settle check, no repair
    assert pl.counters["checks"] == (reset != "none") and pl.counters["resumes"] == 0
    assert_close(out[1], expected["mem"], MEM_RTOL, "mem")
    assert_close(out[2], expected["state"], MEM_RTOL, "state")
    loop = lif_sequence(
        mx.array(x), mx.array(BETA), mx.array(TH), reset, v0=mx.array(v0), reset_timing=timing
    )
    np.testing.assert_array_equal(to_np(out[0]), to_np(loop.spikes))
    grads = ref.lif_backward(
        x, g_s, g_m, g_v, BETA, TH, reset, timing, detach, "fast_sigmoid", v0=v0
    )
    for name, got in zip(("x", "v0", "beta", "threshold"), vjps, strict=True):
        assert_close(got, grads[name], GRAD_RTOL, name)


@pytest.mark.parametrize("reset,timing,detach", MODES)
@pytest.mark.parametrize("T", [1, 25, 300])
@pytest.mark.parametrize("bias", [0.3, 1.2])
def test_every_mode_matches_reference_and_loop(reset, timing, detach, T, bias):
    check_against_reference(T, bias, reset, timing, detach, chunk=16, seed=T)


@pytest.mark.parametrize("reset,timing,detach", MODES)
def test_every_mode_matches_reference_at_t4096(reset, timing, detach):
    check_against_reference(4096, 0.3, reset, timing, detach, chunk=64, seed=40)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("timing", ["immediate", "delayed"])
def test_chunk_by_chunk_schedule_every_mode(reset, timing, monkeypatch):
    """Few neurons run all chunks at once; force the chunk-by-chunk schedule too."""
    monkeypatch.setattr(pl, "JACOBI_MAX_WIDTH", 0)
    check_against_reference(1000, 0.3, reset, timing, timing == "delayed", chunk=32, seed=8)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_delayed_module_matches_loop_with_learned_parameters(reset):
    x, _, rng, _ = tie_free(300, (2, 3), 0.3, 5, reset, "delayed")
    w = mx.array(rng.normal(size=x.shape).astype(np.float32))
    kw = dict(beta=BETA, threshold=TH, reset=reset, reset_timing="delayed")
    kw.update(learn_beta=True, learn_threshold=True)
    par, loop = snn.ParallelLIF(**kw, chunk=32), snn.LIF(**kw, algorithm="loop")

    def loss(model, x_):
        spikes, out = model(x_, return_state=True)
        return (spikes * w).sum() + 0.1 * (out.mem * w).sum() + out.state.sum()

    xm = mx.array(x)
    lp, gp = nn.value_and_grad(par, loss)(par, xm)
    ll, gl = nn.value_and_grad(loop, loss)(loop, xm)
    assert abs(lp.item() - ll.item()) <= 1e-4 * max(1.0, abs(ll.item()))
    assert set(gp) == set(gl) == {"beta", "threshold"}
    for k in gp:
        assert_close(gp[k], to_np(gl[k]), GRAD_RTOL, k)


@pytest.mark.parametrize("reset,timing,detach", MODES)
def test_every_mode_continues_from_state(reset, timing, detach):
    x, v0, _, expected = tie_free(400, (2, 3), 0.3, 9, reset, timing)
    xm, v0m = mx.array(x), mx.array(v0)
    lif = snn.ParallelLIF(BETA, TH, reset, detach_reset=detach, reset_timing=timing, chunk=16)
    s1, o1 = lif(xm[:150], state=v0m, return_state=True)
    s2, o2 = lif(xm[150:], state=o1.state, return_state=True)
    np.testing.assert_array_equal(np.concatenate([to_np(s1), to_np(s2)]), expected["spikes"])
    assert_close(o2.state, expected["state"], MEM_RTOL, "state")


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_delayed_mode_under_compile(reset):
    x, v0, _, expected = tie_free(40, (2, 3), 0.5, 2, reset, "delayed")

    def run(x_, v_):
        return parallel_lif_sequence(
            x_, mx.array(BETA), mx.array(TH), reset, v0=v_, chunk=8, reset_timing="delayed"
        ).spikes

    np.testing.assert_array_equal(
        to_np(mx.compile(run)(mx.array(x), mx.array(v0))), expected["spikes"]
    )


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_delayed_subtract_and_zero_with_scalar_beta_zero(reset):
    """beta = 0: the state is only the input minus the delayed reset."""
    x, v0, _, expected = tie_free(200, (2, 3), 0.9, 3, reset, "delayed", beta=0.0, th=1.0)
    out = parallel_lif_sequence(
        mx.array(x), 0.0, 1.0, reset, v0=mx.array(v0), chunk=16, reset_timing="delayed"
    )
    np.testing.assert_array_equal(to_np(out.spikes), expected["spikes"])
    assert_close(out.mem, expected["mem"], MEM_RTOL, "mem")


def test_auto_routes_every_mode_by_shape():
    for reset, timing, _ in MODES:
        assert pl.choose_algorithm((4096, 1, 16), reset, timing) == "parallel"
        assert pl.choose_algorithm((25, 128, 4096), reset, timing) == "loop"
    x, v0, _, expected = tie_free(1024, (1, 3), 0.3, 1, "zero", "delayed")
    lif = snn.LIF(BETA, TH, reset="zero", reset_timing="delayed")
    assert pl.choose_algorithm(x.shape, "zero", "delayed") == "parallel"
    pl.counters.clear()
    spikes = lif(mx.array(x), state=mx.array(v0))
    assert pl.counters["checks"] >= 1  # the parallel path ran
    np.testing.assert_array_equal(to_np(spikes), expected["spikes"])
