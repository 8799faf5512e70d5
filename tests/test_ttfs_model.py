"""snn.models.ttfs_convnet (PTTFS networks): the paper's decoder properties, the one-spike
rule through whole networks, early exit, and the float64 oracle (tests/reference/ttfs.py).

Spikes and t_1st must match the oracle exactly (inputs are drawn away from the thresholds).
Logits and input gradients: max abs error <= 1e-4 * max(1, max |ref|) (fp32 vs float64).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from conftest import assert_close
from reference import ttfs as ref

import mlx_snn as snn
from mlx_snn.models.ttfs import AMOSLayer

RTOL = 1e-4
SMALL_CONV = {"input_shape": (8, 8, 1), "channels": (4, 6), "hidden": (12,)}
SMALL_MLP = {"input_shape": (8, 8, 1), "hidden": (16, 12)}


def small(arch: str, **kw) -> nn.Module:
    return snn.models.ttfs_convnet(arch, **(SMALL_CONV if arch == "conv" else SMALL_MLP), **kw)


def input_spikes(T: int, B: int = 5, seed: int = 0, shape=(8, 8, 1)) -> mx.array:
    images = np.random.default_rng(seed).uniform(size=(B, *shape)).astype(np.float32)
    return snn.encode.ttfs(mx.array(images), T, threshold=0.25, force_last=False)


def away_from_threshold(T, shape, seed, threshold=1.0):
    """Input currents whose membranes stay >= 1e-3 away from the threshold."""
    rng = np.random.default_rng(seed)
    while True:
        x = rng.normal(0.6, 1.2, size=(T, *shape)).astype(np.float32)
        x[..., 0] = -np.abs(x[..., 0])  # these neurons never fire
        if np.min(np.abs(ref.amos_unforced_forward(x, 2.0, threshold)["mem"] - threshold)) > 1e-3:
            return x


@pytest.mark.parametrize("T", [1, 5, 64, 1024])
def test_unforced_amos_layer_matches_reference(T):
    shape = (3, 7) if T < 1024 else (2, 3)
    x = away_from_threshold(T, shape, seed=T)
    layer = AMOSLayer(tau=2.0, threshold=1.0, force_last=False, method="parallel")
    spikes, masks = layer(mx.array(x))
    want = ref.amos_unforced_forward(x, 2.0, 1.0)
    np.testing.assert_array_equal(np.array(spikes), want["spikes"])
    np.testing.assert_array_equal(np.array(masks), np.cumsum(want["spikes"], axis=0))
    if T > 1:
        assert want["spikes"].sum(axis=0).min() == 0  # some neurons never fire
    g = np.random.default_rng(T + 1).normal(size=x.shape).astype(np.float32)
    g_x = mx.grad(lambda a: (layer(a)[0] * mx.array(g)).sum())(mx.array(x))
    assert_close(g_x, ref.amos_unforced_backward(x, g, 2.0, 1.0), RTOL, "grad x")


def test_forced_layer_is_the_library_amos():
    x = mx.array(away_from_threshold(6, (4, 5), seed=3))
    spikes, masks = AMOSLayer(2.0, 1.0, force_last=True, method="parallel")(x)
    assert mx.array_equal(spikes, snn.AMOS(tau=2.0, threshold=1.0)(x))
    assert mx.array_equal(masks, mx.cumsum(spikes, axis=0))


def test_mlp_forward_matches_float64_reference():
    T, B = 6, 7
    model = small("mlp", decoder_threshold=0.3)
    x = input_spikes(T, B, seed=1)
    rng = np.random.default_rng(2)
    layers = []
    for fc, bn in zip(model.fc, model.bn, strict=True):
        out_f = fc.module.weight.shape[0]
        bn.module.weight = mx.array(rng.uniform(0.8, 1.5, out_f).astype(np.float32))
        bn.module.bias = mx.array(rng.uniform(0.0, 0.6, out_f).astype(np.float32))
        layers.append(
            {
                "weight": np.array(fc.module.weight, np.float64),
                "gamma": np.array(bn.module.weight, np.float64),
                "beta": np.array(bn.module.bias, np.float64),
            }
        )
    dec = model.decoder
    decoder = {
        "weight": np.array(dec.linear.weight, np.float64),
        "bias": np.array(dec.linear.bias, np.float64),
        "tau": np.array(dec.tau, np.float64),
    }
    want = ref.mlp_forward(np.array(x).reshape(T, B, -1), layers, decoder, decoder_threshold=0.3)
    for mem in want["mem"]:
        assert np.min(np.abs(mem - 1.0)) > 1e-4  # no rounding-sensitive crossings
    model.train()
    out = model(x, return_spikes=True)
    for got, expected in zip(out.spikes, want["spikes"], strict=True):
        np.testing.assert_array_equal(np.array(got), expected)
    np.testing.assert_array_equal(np.array(out.t_first), want["t_first"])
    assert len(set(want["t_first"].tolist())) > 1  # the selector chose different steps
    assert_close(out.logits, want["logits"], RTOL, "logits")


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_decoder_is_a_membrane_decoder_at_one_step(arch):
    """The paper's P1: at T = 1 the logits are the decoder's membranes at step 0, the
    (mean over one step of the) membrane of a plain rate decoder, whatever V_th is."""
    x = input_spikes(1, seed=4)
    model = small(arch)
    model.eval()
    out = model(x, return_spikes=True)
    dec = model.decoder
    membrane = dec.linear(out.spikes[-1].astype(mx.float32)) / dec.tau  # [1, B, C]
    rate_decoder = membrane.mean(axis=0)
    assert_close(out.logits, np.array(rate_decoder, np.float64), 1e-6, "T=1 logits")
    np.testing.assert_array_equal(np.array(out.t_first), np.zeros(x.shape[1]))
    for v_th in (1e-3, 0.5, 1e3):
        model.set_decoder_threshold(v_th)
        assert mx.array_equal(model(x), out.logits)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
@pytest.mark.parametrize("T", [1, 3, 8])
def test_t_first_never_exceeds_the_last_step(arch, T):
    x = input_spikes(T, B=6, seed=T)
    for v_th in (1e-3, 0.3, 1.0, 1e6):
        model = small(arch, decoder_threshold=v_th)
        t_first = model(x, return_spikes=True).t_first
        assert t_first.dtype == mx.int32 and t_first.shape == (6,)
        assert 0 <= mx.min(t_first).item() and mx.max(t_first).item() <= T - 1
        if v_th == 1e6:
            assert mx.all(t_first == T - 1).item()  # no class fires: the last step


@pytest.mark.parametrize("arch", ["conv", "mlp"])
@pytest.mark.parametrize("T", [1, 2, 7])
def test_exactly_one_spike_per_amos_neuron_through_a_whole_network(arch, T):
    x = input_spikes(T, B=32, seed=10 + T)
    forced = small(arch, force_last=True)(x, return_spikes=True)
    free = small(arch)(x, return_spikes=True)
    assert len(forced.spikes) == (3 if arch == "conv" else 2)
    for s in forced.spikes:
        s = np.array(s)
        assert set(np.unique(s)) <= {0.0, 1.0}
        np.testing.assert_array_equal(s.sum(axis=0), np.ones(s.shape[1:]))
    for s in free.spikes:
        s = np.array(s)
        assert set(np.unique(s)) <= {0.0, 1.0} and s.sum(axis=0).max() <= 1
    if T == 1:  # unforced: a T = 1 network passes information (some neurons stay silent)
        assert 0 < np.array(free.spikes[0]).mean() < 1


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_early_exit_the_logits_ignore_steps_after_t_first(arch):
    T = 6
    model = small(arch, decoder_threshold=0.05)
    model.eval()  # BatchNorm with running statistics: every layer is causal
    x = input_spikes(T, B=8, seed=5)
    out = model(x, return_spikes=True)
    t_first = np.array(out.t_first)
    assert t_first.min() < T - 1
    late = np.arange(T)[:, None] > t_first[None, :]  # [T, B]
    noise = np.random.default_rng(6).uniform(size=x.shape) < 0.3
    changed = np.where(late.reshape(T, -1, 1, 1, 1), noise, np.array(x)).astype(np.float32)
    assert not np.array_equal(changed, np.array(x))
    again = model(mx.array(changed), return_spikes=True)
    np.testing.assert_array_equal(np.array(again.t_first), t_first)
    assert mx.array_equal(again.logits, out.logits)


def test_parallel_and_sequential_amos_agree_in_a_network():
    x = input_spikes(5, B=3, seed=8)
    y = mx.array([1, 2, 3])
    results = []
    for method in ("parallel", "sequential"):
        mx.random.seed(0)
        model = small("conv", method=method, decoder_threshold=0.2)

        def loss(m):
            return nn.losses.cross_entropy(m(x), y, reduction="mean")

        value, grads = nn.value_and_grad(model, loss)(model)
        results.append((value, dict(nn.utils.tree_flatten(grads))))
    (v_par, g_par), (v_seq, g_seq) = results
    assert abs(v_par.item() - v_seq.item()) < 1e-5
    assert sorted(g_par) == sorted(g_seq)
    for key, g in g_par.items():
        assert_close(g, np.array(g_seq[key], np.float64), RTOL, key)


def test_model_defaults_and_repr():
    conv, mlp = snn.models.ttfs_convnet(), snn.models.ttfs_convnet("mlp")
    assert isinstance(conv, snn.models.TTFSConvNet) and isinstance(mlp, snn.models.TTFSMLP)
    assert conv.channels == (32, 64) and conv.hidden == (256,) and mlp.hidden == (800,)
    assert conv.fc[0].module.weight.shape == (256, 7 * 7 * 64)
    assert "force_last=False" in repr(mlp) and "method='parallel'" in repr(conv)
    logits = conv(input_spikes(2, B=2, shape=(28, 28, 1)))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("name", ["threshold", "decoder_threshold"])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_thresholds_raise(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be > 0 and finite; got"):
        snn.models.ttfs_convnet("mlp", **{name: bad})


def test_bad_arguments_raise_clear_errors():
    model = small("mlp")
    with pytest.raises(ValueError, match="decoder_threshold must be > 0 and finite; got 0"):
        model.set_decoder_threshold(0)
    with pytest.raises(TypeError, match="threshold must be a number; got str"):
        snn.models.ttfs_convnet("mlp", threshold="1")
    with pytest.raises(TypeError, match="decoder_threshold must be a number; got bool"):
        snn.models.ttfs_convnet("mlp", decoder_threshold=True)
    with pytest.raises(ValueError, match=r"decoder_tau must be a finite number > 1.*got 1\.0"):
        snn.models.ttfs_convnet("mlp", decoder_tau=1.0)
    with pytest.raises(ValueError, match=r"tau must be a finite number > 1.*got 0\.5"):
        snn.models.ttfs_convnet("conv", tau=0.5)
    with pytest.raises(ValueError, match="arch must be one of 'conv', 'mlp'; got 'vgg'"):
        snn.models.ttfs_convnet("vgg")
    with pytest.raises(ValueError, match="method must be one of"):
        snn.models.ttfs_convnet("mlp", method="scan")
    with pytest.raises(ValueError, match=r"hidden must hold at least one layer width; got \(\)"):
        snn.models.ttfs_convnet("mlp", hidden=())
    with pytest.raises(ValueError, match=r"channels\[1\] must be >= 1; got 0"):
        snn.models.ttfs_convnet("conv", channels=(4, 0))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*len\\(channels\\) = 4"):
        snn.models.ttfs_convnet("conv", input_shape=(10, 10, 1))
    with pytest.raises(TypeError, match="force_last must be True or False"):
        snn.models.ttfs_convnet("mlp", force_last=1)
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, 8, 8, 1\]"):
        model(mx.zeros((2, 3, 8, 8)))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        model(mx.zeros((2, 3, 8, 8, 1), dtype=mx.int32))
