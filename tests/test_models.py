"""snn.models: the TAC paper's MNIST and DVS-Gesture networks in every mode.

Pins output shapes, the frames that reach the conv layers (counted by
instrumenting nn.Conv2d), the parameter counts stated in the paper (about 230K
and 914K), one finite Adam step, and argument errors. Small shapes only
(B = 2, T <= 4; the DVS net at T = 2).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_snn as snn

MODES = [("baseline", 1), ("tac", 2), ("tac", 4), ("tactp", 2), ("tactp", 4)]


@pytest.fixture
def conv_frames(monkeypatch):
    """Record the batch size of every nn.Conv2d call."""
    seen = []
    original = nn.Conv2d.__call__

    def counting(self, x):
        seen.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(nn.Conv2d, "__call__", counting)
    return seen


def _mnist_input(T, B, seed=0):
    return mx.random.bernoulli(0.3, (T, B, 28, 28, 1), key=mx.random.key(seed)).astype(mx.float32)


def _n_params(model):
    return sum(v.size for _, v in tree_flatten(model.trainable_parameters()))


@pytest.mark.parametrize(("mode", "g"), MODES)
def test_mnist_convnet_shapes_and_conv_frames(mode, g, conv_frames):
    T, B = 4, 2
    model = snn.models.mnist_convnet(mode=mode, group=g, num_steps=T)
    out = model(_mnist_input(T, B))
    t1 = math.ceil(T / g)
    want_steps = {"baseline": (T, T), "tac": (t1, math.ceil(t1 / min(g, t1))), "tactp": (t1, t1)}
    t_out = {"baseline": T, "tac": want_steps["tac"][1], "tactp": T}[mode]
    assert out.shape == (t_out, B, 10)
    assert model.conv_steps() == want_steps[mode]
    assert conv_frames == [s * B for s in want_steps[mode]]
    assert model.conv_frames(batch_size=B) == sum(conv_frames)


def test_mnist_conv_steps_at_the_paper_shape():
    def steps(mode, g):
        return snn.models.mnist_convnet(mode, g).conv_steps()

    assert steps("baseline", 4) == (25, 25)
    assert [steps("tac", g) for g in (2, 4, 8, 16)] == [(13, 7), (7, 2), (4, 1), (2, 1)]
    assert steps("tactp", 4) == (7, 7)


@pytest.mark.parametrize(("mode", "g"), MODES)
def test_mnist_convnet_adam_step_is_finite(mode, g):
    T, B = 4, 2
    model = snn.models.mnist_convnet(mode=mode, group=g, num_steps=T)
    x, y = _mnist_input(T, B, 1), mx.array([3, 7])
    before = np.array(model.fc1.weight)
    loss_and_grad = nn.value_and_grad(model, lambda a, b: snn.loss.ce_count(model(a), b))
    loss, grads = loss_and_grad(x, y)
    optim.Adam(1e-3).update(model, grads)
    mx.eval(model.parameters())
    assert np.isfinite(loss.item())
    assert all(np.isfinite(np.array(v)).all() for _, v in tree_flatten(grads))
    assert not np.array_equal(before, np.array(model.fc1.weight))


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "g"), [("baseline", 1), ("tac", 2), ("tactp", 2)])
def test_dvs_gesture_net_shapes_and_adam_step(mode, g, conv_frames):
    T, B = 2, 2
    model = snn.models.dvs_gesture_net(mode=mode, group=g, num_steps=T)
    x = mx.random.uniform(shape=(T, B, 64, 64, 2), key=mx.random.key(2)) * 2
    y = mx.array([0, 10])
    loss_and_grad = nn.value_and_grad(model, lambda a, b: snn.loss.mse_rate(model(a), b))
    loss, grads = loss_and_grad(x, y)
    optim.Adam(1e-3).update(model, grads)
    mx.eval(model.parameters())
    assert np.isfinite(loss.item())
    steps = model.conv_steps()
    assert conv_frames == [s * B for s in steps]
    assert model(x).shape == ({"tac": 1}.get(mode, T), B, 11)


def test_dvs_conv_steps_cascade_at_the_paper_shape():
    assert snn.models.dvs_gesture_net("baseline").conv_steps() == (16,) * 5
    assert snn.models.dvs_gesture_net("tac", 2).conv_steps() == (8, 4, 2, 1, 1)
    assert snn.models.dvs_gesture_net("tactp", 2).conv_steps() == (8,) * 5
    assert snn.models.dvs_gesture_net("tactp", 8).conv_steps() == (2,) * 5


def test_parameter_counts_match_the_paper():
    assert 220_000 < _n_params(snn.models.mnist_convnet()) < 235_000
    assert 905_000 < _n_params(snn.models.dvs_gesture_net()) < 920_000


def test_tac_tuple_form_matches_mode_and_group():
    model = snn.models.mnist_convnet(tac=("tactp", 8))
    assert (model.mode, model.group) == ("tactp", 8)
    assert snn.models.mnist_convnet(tac=None).mode == "baseline"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "collapse"}, ValueError, "mode must be one of"),
        ({"mode": "tac", "group": 0}, ValueError, "group must be >= 1"),
        ({"mode": "tac", "group": 2.5}, TypeError, "group must be an int"),
        ({"num_steps": 0}, ValueError, "num_steps must be >= 1"),
        ({"tac": "tac"}, ValueError, "tac must be None"),
        ({"tac": ("baseline", 2)}, ValueError, "tac must be None"),
        ({"tac": ("fast", 2)}, ValueError, "mode must be one of"),
    ],
)
def test_bad_model_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        snn.models.mnist_convnet(**kwargs)
    with pytest.raises(error, match=match):
        snn.models.dvs_gesture_net(**kwargs)


def test_wrong_input_shape_is_rejected():
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, 28, 28, 1\]"):
        snn.models.mnist_convnet()(mx.zeros((4, 2, 28, 28)))
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, 64, 64, 2\]"):
        snn.models.dvs_gesture_net()(mx.zeros((4, 2, 64, 64, 1)))
    with pytest.raises(TypeError, match="floating dtype"):
        snn.models.mnist_convnet()(mx.zeros((4, 2, 28, 28, 1), dtype=mx.int32))
