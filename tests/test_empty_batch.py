"""Empty in, empty out: a batch of B = 0 gives empty outputs of the right shapes everywhere.

(``T = 0`` stays an error: a sequence needs at least one time step.) Each entry point
runs forward and, where it is differentiable, backward on ``[T, 0, ...]``.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import pytest

import mlx_snn as snn

F = snn.functional
T, N = 300, 4  # T >= 256 with few neurons: LIF's "auto" picks the parallel path
X = mx.zeros((T, 0, N))


def shapes(out):
    if isinstance(out, mx.array):
        return tuple(out.shape)
    return tuple(shapes(o) for o in out)


CASES = {
    "LIF auto": (lambda x: snn.LIF()(x, return_state=True), ((T, 0, N), ((T, 0, N), (0, N)))),
    "LIF loop": (lambda x: snn.LIF(algorithm="loop")(x), (T, 0, N)),
    "LIF parallel": (lambda x: snn.LIF(algorithm="parallel")(x), (T, 0, N)),
    "LIF delayed": (lambda x: snn.LIF(reset_timing="delayed")(x), (T, 0, N)),
    "ParallelLIF": (lambda x: snn.ParallelLIF()(x), (T, 0, N)),
    "lif_sequence": (lambda x: F.lif_sequence(x), ((T, 0, N), (T, 0, N), (0, N))),
    "parallel_lif_sequence": (
        lambda x: F.parallel_lif_sequence(x),
        ((T, 0, N), (T, 0, N), (0, N)),
    ),
    "lif_step": (lambda x: F.lif_step(x[0], None), ((0, N), (0, N), (0, N))),
    "StateLeaky": (
        lambda x: snn.StateLeaky()(x, return_state=True),
        ((T, 0, N), ((T, 0, N), (0, N))),
    ),
    "AMOS parallel": (lambda x: snn.AMOS()(x, return_mem=True), ((T, 0, N), ((T, 0, N), (0, N)))),
    "AMOS sequential": (
        lambda x: snn.AMOS(method="sequential")(x, return_mem=True),
        ((T, 0, N), ((T, 0, N), (0, N))),
    ),
    "first_spike": (lambda x: F.first_spike(x), ((0, N), (0, N), (0, N))),
    "temporal_selector": (lambda x: F.temporal_selector(x), ((0, N), (0,))),
    "decoder": (lambda x: snn.TemporalSelectorDecoder(N, 3)(x, return_time=True), ((0, 3), (0,))),
    "AssociativeLeaky": (
        lambda x: snn.AssociativeLeaky(N, 2)(x, return_state=True),
        ((T, 0, N), ((T, 0, N), (0, 2, N))),
    ),
    "TAC": (lambda x: snn.TAC(nn.Linear(N, 3), 4)(x), (T // 4, 0, 3)),
    "TACTP": (lambda x: snn.TACTP(nn.Linear(N, 3), 4)(x), (T, 0, 3)),
    "linear_scan": (lambda x: F.linear_scan(0.5, x), (T, 0, N)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_empty_batch_gives_empty_outputs(name):
    fn, expected = CASES[name]
    out = fn(X)
    mx.eval(out)
    assert shapes(out) == expected
    first = out if isinstance(out, mx.array) else out[0]
    if mx.issubdtype(first.dtype, mx.floating) and name != "lif_step":
        g = mx.grad(lambda x: (fn(x) if isinstance(fn(x), mx.array) else fn(x)[0]).sum())(X)
        assert g.shape == X.shape


def test_empty_feature_axis_gives_empty_outputs():
    x = mx.zeros((8, 2, 0))
    assert snn.LIF()(x).shape == (8, 2, 0)
    sel = F.temporal_selector(x)
    assert sel.logits.shape == (2, 0) and sel.t_first.tolist() == [7, 7]


@pytest.mark.parametrize("mode", ["baseline", "tac", "tactp"])
def test_mnist_convnet_on_an_empty_batch(mode):
    out = snn.models.mnist_convnet(mode, group=4, num_steps=8)(mx.zeros((8, 0, 28, 28, 1)))
    assert out.shape[1:] == (0, 10)


def test_dvs_gesture_net_on_an_empty_batch():
    out = snn.models.dvs_gesture_net("tac", group=2, num_steps=4)(mx.zeros((4, 0, 64, 64, 2)))
    assert out.shape == (1, 0, 11)
