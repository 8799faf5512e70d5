"""Every data-dependent loop of the parallel LIF is bounded (issue 21).

The forward pass counts its work in ``parallel_lif.counters``; these tests assert
small bounds on those counts (never timings):

- the settle pass runs at most ``MAX_RESUMES + 1`` checks and speculations and at
  most one step loop over the rest, however many near-ties the input has (it used
  to iterate ``s <- Θ(h(s))`` over the whole sequence, one pass per few steps:
  2447 passes on the issue's seed);
- the all-chunks-at-once (Jacobi) schedule runs at most ``JACOBI_MAX_PASSES``
  passes per speculation (it used to run up to one pass per chunk);
- a chunk takes at most ``K`` rounds (rounded up to ``ROUNDS_PER_CHECK``).

Spikes are compared with the step loop (issue seed) or, on constructed near-tie
inputs where fp32 rounding may fall either side, checked for self-consistency
and against the float64 reference up to each neuron's first near-tie.
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import to_np

import mlx_snn as snn
from mlx_snn.functional import parallel_lif as pl
from mlx_snn.functional import parallel_lif_sequence

TIE = 1e-5
SETTLE_BOUND = {"checks": pl.MAX_RESUMES + 1, "speculations": pl.MAX_RESUMES + 1}


def assert_settle_bounded():
    c = pl.counters
    assert c["checks"] <= SETTLE_BOUND["checks"], dict(c)
    assert c["speculations"] <= SETTLE_BOUND["speculations"], dict(c)
    assert c["resumes"] <= pl.MAX_RESUMES and c["loop_tails"] <= 1, dict(c)


def near_tie_input(T, M, reset, timing, beta=0.9, th=1.0, seed=0):
    """``x [T, 1, M]`` whose float64 membrane is within 1e-7 of ``th`` at every step."""
    rng = np.random.default_rng(seed)
    eps = rng.uniform(-1e-7, 1e-7, size=(T, M))
    x = np.zeros((T, M))
    m = np.zeros(M)
    spiked = np.zeros(M)
    for t in range(T):
        if timing == "immediate":
            carry = beta * m
        elif reset == "subtract":
            carry = beta * m - th * spiked
        else:
            carry = beta * (1.0 - spiked) * m
        x[t] = th + eps[t] - carry
        h = carry + x[t]
        spiked = (h >= th) if timing == "immediate" else (h > th)
        m = h - th * spiked if timing == "immediate" and reset == "subtract" else h
        if timing == "immediate" and reset == "zero":
            m = h * (1.0 - spiked)
    return x.astype(np.float32)[:, None, :]


def assert_consistent(out, x, beta, th, reset, timing):
    """Spikes are the threshold of the returned membrane, which follows the recurrence."""
    s, h = to_np(out.spikes), to_np(out.mem)
    fired = (h > th) if timing == "delayed" else (h >= th)
    np.testing.assert_array_equal(s, fired)
    x = x.astype(np.float64)
    prev = np.zeros(x.shape[1:])
    for t in range(x.shape[0]):
        if timing == "immediate":
            expected = beta * prev + x[t]
            prev = h[t] - th * s[t] if reset == "subtract" else h[t] * (1.0 - s[t])
        else:
            r = s[t - 1] if t else np.zeros_like(prev)
            reset_term = th * r if reset == "subtract" else 0.0
            keep = (1.0 - r) if reset == "zero" else 1.0
            expected = beta * keep * prev + x[t] - reset_term
            prev = h[t]
        np.testing.assert_allclose(h[t], expected, atol=1e-5)


def assert_spikes_up_to_first_tie(got, expected, th):
    got = to_np(got).reshape(got.shape[0], -1)
    exp_s = expected["spikes"].reshape(got.shape)
    margin = np.abs(expected["mem"] - th).reshape(got.shape)
    for n in range(got.shape[1]):
        diff = np.flatnonzero(got[:, n] != exp_s[:, n])
        if diff.size:
            assert margin[diff[0], n] < TIE, f"neuron {n}: spike differs at t={diff[0]}"


def test_issue_seed_settles_in_a_bounded_number_of_passes():
    """The default LIF at T = 16384, B*N = 64 took 2447 settle passes before the fix."""
    x = np.random.default_rng(7).normal(0.3, 0.8, (16384, 2, 32)).astype(np.float32)
    xm = mx.array(x)
    lif = snn.LIF(beta=0.9)
    assert pl.choose_algorithm(x.shape, "subtract", "immediate") == "parallel"
    pl.counters.clear()
    spikes = lif(xm)
    mx.eval(spikes)
    assert pl.counters["checks"] >= 1  # the parallel path ran
    assert_settle_bounded()
    loop = snn.LIF(beta=0.9, algorithm="loop")(xm)
    np.testing.assert_array_equal(to_np(spikes), to_np(loop))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("timing", ["immediate", "delayed"])
@pytest.mark.parametrize("M", [4, 40])  # all chunks at once / chunk by chunk
def test_near_tie_at_every_step_is_bounded(reset, timing, M):
    x = near_tie_input(1500, M, reset, timing)
    pl.counters.clear()
    out = parallel_lif_sequence(mx.array(x), 0.9, 1.0, reset, reset_timing=timing)
    mx.eval(out)
    assert_settle_bounded()
    assert pl.counters["loop_tail_steps"] <= x.shape[0]
    assert_consistent(out, x, 0.9, 1.0, reset, timing)
    expected = ref.lif_forward(x, 0.9, 1.0, reset, timing)
    assert_spikes_up_to_first_tie(out.spikes, expected, 1.0)


def flip_first_spike_after_start(speculate, calls):
    """Wrap ``_speculate`` so its answer is wrong right after each segment start."""

    def wrapped(x, m, *args):
        s = speculate(x, m, *args)
        calls.append(x.shape[0])
        t = min(3, x.shape[0] - 1)
        return mx.concatenate([s[:t], 1.0 - s[t : t + 1], s[t + 1 :]])

    return wrapped


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("timing", ["immediate", "delayed"])
@pytest.mark.parametrize("M", [4, 40])
def test_wrong_speculation_is_repaired_by_resume_then_loop(reset, timing, M, monkeypatch):
    """Every speculation is wrong at its 4th step: one resume, then the step loop."""
    rng = np.random.default_rng(12)
    x = rng.normal(0.3, 0.6, size=(700, 1, M)).astype(np.float32)
    expected = ref.lif_forward(x, 0.9, 1.0, reset, timing)
    assert np.min(np.abs(expected["mem"] - 1.0)) > TIE
    calls = []
    monkeypatch.setattr(pl, "_speculate", flip_first_spike_after_start(pl._speculate, calls))
    pl.counters.clear()
    out = parallel_lif_sequence(mx.array(x), 0.9, 1.0, reset, reset_timing=timing)
    np.testing.assert_array_equal(to_np(out.spikes), expected["spikes"])
    c = pl.counters
    assert (c["checks"], c["resumes"], c["loop_tails"]) == (pl.MAX_RESUMES + 1, pl.MAX_RESUMES, 1)
    # each resume and the loop start right after the previous disagreement (step 3)
    assert calls == [700 - 4 * i for i in range(pl.MAX_RESUMES + 1)]
    assert c["loop_tail_steps"] == 700 - 4 * (pl.MAX_RESUMES + 1)


def test_one_wrong_spike_costs_one_resume(monkeypatch):
    rng = np.random.default_rng(13)
    x = rng.normal(0.3, 0.6, size=(2000, 2, 8)).astype(np.float32)
    expected = ref.lif_forward(x, 0.9, 1.0)
    assert np.min(np.abs(expected["mem"] - 1.0)) > TIE
    speculate = pl._speculate

    def wrong_once(x_, m, *args):
        s = speculate(x_, m, *args)
        if pl.counters["speculations"] == 1:  # the first speculation: flip step 100
            s = mx.concatenate([s[:100], 1.0 - s[100:101], s[101:]])
        return s

    monkeypatch.setattr(pl, "_speculate", wrong_once)
    pl.counters.clear()
    out = parallel_lif_sequence(mx.array(x), 0.9, 1.0)
    np.testing.assert_array_equal(to_np(out.spikes), expected["spikes"])
    c = pl.counters
    assert (c["checks"], c["resumes"], c["loop_tails"]) == (2, 1, 0)


@pytest.mark.parametrize("timing", ["immediate", "delayed"])
def test_jacobi_passes_are_bounded_without_leak(timing):
    """beta = 1: entry guesses never forget, so the passes would run once per chunk."""
    rng = np.random.default_rng(5)
    x = rng.normal(0.3, 0.6, size=(4096, 1, 3)).astype(np.float32)
    expected = ref.lif_forward(x, 1.0, 1.0, "subtract", timing)
    assert np.min(np.abs(expected["mem"] - 1.0)) > TIE
    pl.counters.clear()
    out = parallel_lif_sequence(mx.array(x), 1.0, 1.0, reset_timing=timing, chunk=32)
    np.testing.assert_array_equal(to_np(out.spikes), expected["spikes"])
    c = pl.counters
    assert c["jacobi_passes"] <= pl.JACOBI_MAX_PASSES * c["speculations"]
    assert c["jacobi_passes"] < 4096 // 32  # fewer passes than chunks


def test_jacobi_passes_stop_as_soon_as_the_entries_settle():
    rng = np.random.default_rng(6)
    x = rng.normal(0.3, 0.6, size=(4096, 1, 3)).astype(np.float32)
    pl.counters.clear()
    parallel_lif_sequence(mx.array(x), 0.5, 1.0, chunk=32)
    assert pl.counters["jacobi_passes"] <= 3  # beta = 0.5 forgets a guess in a few steps


@pytest.mark.parametrize("M", [4, 40])
def test_rounds_per_chunk_are_bounded_when_firing_every_step(M):
    K, T = 33, 330
    x = mx.full((T, 1, M), 5.0)
    pl.counters.clear()
    out = parallel_lif_sequence(x, 0.9, 1.0, "zero", chunk=K)
    assert bool(mx.all(out.spikes == 1).item())
    n = pl.ROUNDS_PER_CHECK
    per_chunk = n * math.ceil(K / n)
    chunks = T // K
    # each Jacobi pass is one chunk of lanes; the chunk-by-chunk rest at most all chunks
    assert pl.counters["rounds"] <= per_chunk * (pl.counters["jacobi_passes"] + chunks)
