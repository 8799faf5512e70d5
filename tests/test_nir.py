"""snn.nir: export to and load from NIR (skipped without the ``nir`` package, except
the test that ``import mlx_snn`` does not need it).

Round trips go through a ``.nir`` file. Spikes must be identical. Membranes agree
to fp32 rounding: bit for bit where export only reorders arrays, and within
``1e-5 * max(1, |mem|)`` where BatchNorm is folded into the conv with
non-dyadic statistics (there, spikes may differ only at threshold ties
``|mem - threshold| < 1e-4``). The MNIST round trip uses dyadic weights and BN
statistics (multiples of 1/64, ``var + eps = 1``) so that folding is exact in
fp32 on any device and the spikes are compared bit for bit.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_snn as snn


@pytest.fixture
def nir():
    return pytest.importorskip("nir")


def _dyadic(rng, shape, scale):
    """Uniform in [-scale, scale], rounded to multiples of 1/64 (exact in fp32 sums)."""
    return mx.array(np.round(rng.uniform(-scale, scale, shape) * 64) / 64, dtype=mx.float32)


def _spikes(rng, shape, p=0.4):
    return mx.array((rng.random(shape) < p).astype(np.float32))


def _through_file(nir, graph, tmp_path):
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    return snn.nir.load(nir.read(path))


def _run_layers(layers, x):
    """Outputs of each layer of a chain, and the membranes of its neurons."""
    outs, mems = [], []
    for layer in layers:
        if isinstance(layer, (snn.LIF, snn.StateLeaky)):
            x, out = layer(x, return_state=True)
            mems.append(out.mem)
        else:
            x = layer(x)
        outs.append(x)
    return outs, mems


def _rate(s):
    return float(mx.mean(s).item())


# -- optional dependency ------------------------------------------------------------------
def test_import_mlx_snn_does_not_import_nir():
    code = "import sys, mlx_snn; assert 'nir' not in sys.modules and 'h5py' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_nir_package_raises_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)
    mlp = nn.Sequential(nn.Linear(3, 2), snn.LIF())
    with pytest.raises(ImportError, match=r'pip install "mlx-snn\[nir\]"'):
        snn.nir.export(mlp, mx.zeros((2, 1, 3)))
    with pytest.raises(ImportError, match=r'pip install "mlx-snn\[nir\]"'):
        snn.nir.load("net.nir")


# -- round trips ---------------------------------------------------------------------------
def test_mlp_round_trip_through_file_gives_identical_spikes_and_membranes(nir, tmp_path):
    rng = np.random.default_rng(0)
    mlp = nn.Sequential(
        nn.Linear(20, 48),
        snn.LIF(beta=0.9, reset="subtract", surrogate=snn.surrogate.atan(3.0)),
        nn.Linear(48, 32, bias=False),
        snn.LIF(beta=mx.array(rng.uniform(0.5, 0.95, 32)), reset="zero", reset_timing="delayed"),
        nn.Linear(32, 24),
        snn.LIF(beta=1.0, threshold=2.0, reset="subtract", detach_reset=True),
        nn.Linear(24, 16),
        snn.LIF(beta=0.7, threshold=mx.array(rng.uniform(0.5, 1.5, 16)), reset="none"),
    )
    for layer in mlp.layers[::2]:
        layer.weight = layer.weight * 3.0
    x = mx.array(rng.uniform(0.0, 1.0, (64, 3, 20)).astype(np.float32))
    loaded = _through_file(nir, snn.nir.export(mlp, x), tmp_path)

    assert [type(m) for m in loaded.layers] == [type(m) for m in mlp.layers]
    ours, our_mems = _run_layers(mlp.layers, x)
    theirs, their_mems = _run_layers(loaded.layers, x)
    for a, b in zip(ours, theirs, strict=True):
        assert mx.array_equal(a, b)
    for a, b in zip(our_mems, their_mems, strict=True):
        assert mx.array_equal(a, b)
    for s in ours[1::2]:
        assert 0.02 < _rate(s) < 0.9
    for a, b in zip(mlp.layers[1::2], loaded.layers[1::2], strict=True):
        assert (a.reset, a.reset_timing, a.detach_reset) == (
            b.reset,
            b.reset_timing,
            b.detach_reset,
        )
        assert a.surrogate == b.surrogate
        assert np.array_equal(np.asarray(a.beta, np.float32), np.asarray(b.beta, np.float32))
        assert np.array_equal(
            np.asarray(a.threshold, np.float32), np.asarray(b.threshold, np.float32)
        )
    assert "bias" not in loaded.layers[2]


def _dyadic_mnist_convnet(rng):
    net = snn.models.mnist_convnet()
    for block, scale in ((net.block1, 0.5), (net.block2, 0.125)):
        conv, bn = block.conv.module, block.bn.module
        c = conv.weight.shape[0]
        conv.weight = _dyadic(rng, conv.weight.shape, scale)
        conv.bias = _dyadic(rng, (c,), 0.25)
        bn.weight = _dyadic(rng, (c,), 2.0) + 2.0
        bn.bias = _dyadic(rng, (c,), 0.5)
        bn.running_mean = _dyadic(rng, (c,), 0.5)
        # var + eps == 1 exactly in fp32, so BN and the folded conv are both exact
        bn.running_var = mx.full((c,), np.float32(1.0) - np.float32(bn.eps))
    net.fc1.weight = _dyadic(rng, net.fc1.weight.shape, 0.125)
    net.fc2.weight = _dyadic(rng, net.fc2.weight.shape, 0.5)
    return net


def _mnist_layers(net):
    """The baseline network's layers in call order (BN separate)."""
    b1, b2 = net.block1, net.block2
    return [b1.conv, b1.bn, b1.lif, b1.pool, b2.conv, b2.bn, b2.lif, b2.pool,
            snn.nir.layers.Flatten(), net.fc1, net.lif1, net.fc2, net.lif2]  # fmt: skip


def test_mnist_convnet_round_trip_through_file_gives_identical_spikes(nir, tmp_path):
    rng = np.random.default_rng(1)
    net = _dyadic_mnist_convnet(rng)
    x = _spikes(rng, (6, 2, 28, 28, 1), p=0.3)
    graph = snn.nir.export(net, x)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds == ["Input", "Conv2d", "LIF", "SumPool2d", "Threshold", "Conv2d", "LIF",
                     "SumPool2d", "Threshold", "Flatten", "Affine", "LIF", "Affine", "LIF",
                     "Output"]  # fmt: skip
    assert list(graph.nodes["input"].input_type["input"]) == [1, 28, 28]
    loaded = _through_file(nir, graph, tmp_path)

    net.eval()  # export describes the network in eval mode (BN with running statistics)
    ours, our_mems = _run_layers(_mnist_layers(net), x)
    theirs, their_mems = _run_layers(loaded.layers, x)
    ours = ours[1:4] + ours[5:]  # conv+BN outputs compare with the folded convs
    assert mx.array_equal(net(x), loaded(x))
    for a, b in zip(ours, theirs, strict=True):
        assert mx.array_equal(a, b)
    for a, b in zip(our_mems, their_mems, strict=True):
        assert mx.array_equal(a, b)
    for s in (ours[1], ours[4], ours[8], ours[10]):
        assert 0.01 < _rate(s) < 0.9


def test_batchnorm_folding_matches_conv_then_batchnorm_to_fp32(nir):
    rng = np.random.default_rng(2)
    conv, bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm(8)
    bn.weight = mx.array(rng.uniform(0.5, 2.0, 8).astype(np.float32))
    bn.bias = mx.array(rng.normal(0.3, 0.3, 8).astype(np.float32))
    bn.running_mean = mx.array(rng.normal(0, 0.2, 8).astype(np.float32))
    bn.running_var = mx.array(rng.uniform(0.1, 3.0, 8).astype(np.float32))
    lif = snn.LIF(beta=0.8)
    net = nn.Sequential(snn.SeqToBatch(conv), snn.SeqToBatch(bn), lif)
    x = mx.array(rng.uniform(0, 1, (16, 2, 10, 10, 3)).astype(np.float32))
    loaded = snn.nir.load(snn.nir.export(net, x))
    assert len(loaded.layers) == 2
    net.eval()
    s, out = lif(net.layers[1](net.layers[0](x)), return_state=True)
    s2, out2 = loaded.layers[1](loaded.layers[0](x), return_state=True)
    mem, mem2 = np.array(out.mem), np.array(out2.mem)
    assert np.max(np.abs(mem - mem2)) <= 1e-5 * max(1.0, np.max(np.abs(mem)))
    clear = np.abs(mem - 1.0) > 1e-4
    assert np.array_equal(np.array(s)[clear], np.array(s2)[clear])
    assert 0.05 < _rate(s) < 0.9


def test_voting_layer_state_leaky_and_parallel_lif_are_restored(nir, tmp_path):
    rng = np.random.default_rng(3)
    net = nn.Sequential(
        nn.Linear(12, 40),
        snn.ParallelLIF(beta=0.85, chunk=16),
        nn.Dropout(0.5),
        nn.Linear(40, 30),
        snn.StateLeaky(beta=0.6, threshold=0.5),
        snn.VotingLayer(10),
    )
    net.layers[0].weight = net.layers[0].weight * 4.0
    x = mx.array(rng.uniform(0, 1, (40, 2, 12)).astype(np.float32))
    graph = snn.nir.export(net, x)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds == ["Input", "Affine", "LIF", "Affine", "LI", "Threshold", "Linear", "Output"]
    loaded = _through_file(nir, graph, tmp_path)
    expected = [nn.Linear, snn.ParallelLIF, nn.Linear, snn.StateLeaky, snn.VotingLayer]
    assert [type(m) for m in loaded.layers] == expected
    assert loaded.layers[1].chunk == 16
    net.eval()
    assert mx.array_equal(net(x), loaded(x))
    assert 0.02 < _rate(net.layers[1](net.layers[0](x))) < 0.9


def test_subtract_reset_and_delayed_timing_travel_in_metadata(nir, tmp_path):
    mlp = nn.Sequential(nn.Linear(4, 6), snn.LIF(beta=0.75, reset_timing="delayed"))
    graph = snn.nir.export(mlp, mx.ones((3, 1, 4)), dt=0.5)
    lif = graph.nodes["layers.1"]
    assert lif.metadata["mlx_snn.reset"] == "subtract"
    assert lif.metadata["mlx_snn.reset_timing"] == "delayed"
    assert lif.metadata["mlx_snn.dt"] == 0.5
    loaded = _through_file(nir, graph, tmp_path)
    assert (loaded.layers[1].reset, loaded.layers[1].reset_timing) == ("subtract", "delayed")
    override = snn.nir.load(graph, reset="zero", reset_timing="immediate")
    assert (override.layers[1].reset, override.layers[1].reset_timing) == ("zero", "immediate")


# -- the mapping -------------------------------------------------------------------------------
def test_lif_maps_to_nir_lif_by_forward_euler(nir):
    mlp = nn.Sequential(nn.Linear(3, 5), snn.LIF(beta=0.9, threshold=1.5, reset="zero"))
    node = snn.nir.export(mlp, mx.zeros((2, 1, 3)), dt=0.5).nodes["layers.1"]
    assert isinstance(node, nir.LIF)
    np.testing.assert_allclose(node.tau, np.full(5, 5.0), rtol=1e-12)  # dt / (1 - beta)
    np.testing.assert_allclose(node.r, np.full(5, 10.0), rtol=1e-12)  # tau / dt: gain 1
    np.testing.assert_array_equal(node.v_threshold, np.full(5, 1.5))
    np.testing.assert_array_equal(node.v_leak, np.zeros(5))
    np.testing.assert_array_equal(node.v_reset, np.zeros(5))


def test_beta_one_maps_to_if_and_reset_none_to_li_plus_threshold(nir):
    net = nn.Sequential(
        nn.Linear(3, 4), snn.LIF(beta=1.0), nn.Linear(4, 4), snn.LIF(beta=1.0, reset="none")
    )
    graph = snn.nir.export(net, mx.zeros((2, 1, 3)))
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds == ["Input", "Affine", "IF", "Affine", "I", "Threshold", "Output"]
    np.testing.assert_array_equal(graph.nodes["layers.1"].r, np.ones(4))
    loaded = snn.nir.load(graph)
    assert [m.beta for m in loaded.layers[1::2]] == [1.0, 1.0]
    assert loaded.layers[3].reset == "none"


def test_conv_weights_and_flatten_order_follow_nir_channels_first_semantics(nir):
    """Simulate the exported graph in numpy with NIR's (C, H, W) conventions."""
    rng = np.random.default_rng(4)
    # square kernel: nir 1.0.8 infers shapes from the kernel height alone
    conv = nn.Conv2d(2, 3, 3, stride=(2, 1), padding=(1, 0))
    fc = nn.Linear(3 * 3 * 3, 5)
    net = nn.Sequential(snn.SeqToBatch(conv), snn.nir.layers.Flatten(), fc)
    x = mx.array(rng.normal(size=(1, 2, 5, 5, 2)).astype(np.float32))
    graph = snn.nir.export(net, x)
    c, f = graph.nodes["layers.0.module"], graph.nodes["layers.2"]
    assert c.weight.shape == (3, 2, 3, 3) and tuple(c.stride) == (2, 1)
    xc = np.pad(np.array(x[0]).transpose(0, 3, 1, 2), ((0, 0), (0, 0), (1, 1), (0, 0)))
    y = np.zeros((2, 3, 3, 3))
    for i in range(3):
        for j in range(3):
            patch = xc[:, :, 2 * i : 2 * i + 3, j : j + 3]
            y[:, :, i, j] = np.einsum("bchw,ochw->bo", patch, c.weight) + c.bias
    expected = y.reshape(2, -1) @ f.weight.T + f.bias  # channels-first flatten
    np.testing.assert_allclose(np.array(net(x))[0], expected, rtol=1e-5, atol=1e-5)


def test_flatten_at_the_output_is_reordered_to_nir_order(nir):
    net = nn.Sequential(snn.SeqToBatch(nn.MaxPool2d(1)), snn.nir.layers.Flatten())
    x = mx.array(np.arange(2 * 3 * 2, dtype=np.float32).reshape(1, 1, 2, 3, 2))
    with pytest.raises(ValueError, match="MaxPool2d"):
        snn.nir.export(net, x)
    net = nn.Sequential(snn.SeqToBatch(nn.AvgPool2d(1)), snn.nir.layers.Flatten())
    graph = snn.nir.export(net, x)
    assert type(list(graph.nodes.values())[-2]).__name__ == "Linear"  # the reorder
    loaded = snn.nir.load(graph)
    assert mx.array_equal(loaded(x), net(x))


# -- foreign graphs ------------------------------------------------------------------------------
def _graph(nir, nodes, input_shape):
    """A chain input -> n0 -> n1 ... -> output (shapes not checked: type_check=False)."""
    names = ["input", *[f"n{i}" for i in range(len(nodes))], "output"]
    all_nodes = {
        "input": nir.Input(np.array(input_shape)),
        **dict(zip(names[1:-1], nodes, strict=True)),
    }
    all_nodes["output"] = nir.Output(np.array(input_shape))
    edges = list(itertools.pairwise(names))
    return nir.NIRGraph(nodes=all_nodes, edges=edges, type_check=False)


def test_foreign_lif_needs_dt_and_its_gain_becomes_a_scale(nir):
    lif = nir.LIF(tau=np.full(3, 10.0), r=np.full(3, 1.0), v_leak=np.zeros(3),
                  v_threshold=np.ones(3), v_reset=np.zeros(3))  # fmt: skip
    graph = _graph(nir, [lif], [3])
    with pytest.raises(ValueError, match="pass dt="):
        snn.nir.load(graph)
    loaded = snn.nir.load(graph, dt=1.0)
    scale, neuron = loaded.layers
    assert isinstance(scale, snn.nir.layers.Scale) and scale.scale == pytest.approx(0.1)
    assert neuron.beta == pytest.approx(0.9) and neuron.reset == "zero"
    assert neuron.reset_timing == "immediate"
    with pytest.raises(ValueError, match="beta = 1 - dt/tau"):
        snn.nir.load(graph, dt=20.0)


def test_foreign_nodes_without_closer_match_load_as_nir_layers(nir):
    li = nir.LI(tau=np.full(4, 2.0), r=np.full(4, 2.0), v_leak=np.zeros(4))
    net = snn.nir.load(
        _graph(nir, [nir.Scale(np.full(4, 2.0)), li, nir.Threshold(np.full(4, 0.5))], [4]),
        dt=1.0,
    )
    assert isinstance(net.layers[1], snn.LIF) and net.layers[1].reset == "none"
    x = mx.ones((3, 1, 4))
    # scale 2, beta 0.5: h = 2, 3, 3.5 -> all above 0.5
    assert mx.array_equal(net(x), mx.ones((3, 1, 4)))
    li_only = snn.nir.load(_graph(nir, [li], [4]), dt=1.0)
    np.testing.assert_allclose(np.array(li_only(x))[:, 0, 0], [1.0, 1.5, 1.75])
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                         padding=np.array([0, 0]))  # fmt: skip
    pooled = snn.nir.load(_graph(nir, [pool], [1, 4, 4]))
    assert mx.array_equal(pooled(mx.ones((1, 1, 4, 4, 1))), mx.full((1, 1, 2, 2, 1), 4.0))


def test_loaded_foreign_graph_exports_again_to_the_same_network(nir, tmp_path):
    rng = np.random.default_rng(5)
    w = rng.uniform(-0.1, 0.15, (6, 8)).astype(np.float32)
    nodes = [
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                      padding=np.array([0, 0])),
        nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
        nir.Scale(np.linspace(0.5, 2.0, 8)),
        nir.LI(tau=np.full(8, 4.0), r=np.full(8, 4.0), v_leak=np.zeros(8)),
        nir.Affine(weight=w, bias=np.zeros(6, np.float32)),
        nir.LIF(tau=np.full(6, 5.0), r=np.full(6, 2.0), v_leak=np.zeros(6),
                v_threshold=np.full(6, 0.3), v_reset=np.zeros(6)),
        nir.Threshold(np.full(6, 0.5)),
    ]  # fmt: skip
    net = snn.nir.load(_graph(nir, nodes, [2, 4, 4]), dt=1.0)
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["SeqToBatch", "Flatten", "Scale", "LeakyIntegrator", "Linear", "Scale",
                     "LIF", "Threshold"]  # fmt: skip
    x = mx.array(rng.uniform(0, 1, (20, 3, 4, 4, 2)).astype(np.float32))
    again = _through_file(nir, snn.nir.export(net, x), tmp_path)
    assert [type(m).__name__ for m in again.layers] == kinds
    assert mx.array_equal(again(x), net(x))
    assert 0.02 < _rate(net(x)) < 0.9


@pytest.mark.slow
def test_dvs_gesture_net_round_trip_restores_voting_and_detached_reset(nir):
    net = snn.models.dvs_gesture_net()
    x = _spikes(np.random.default_rng(6), (2, 1, 64, 64, 2), p=0.3)
    loaded = snn.nir.load(snn.nir.export(net, x))
    assert isinstance(loaded.layers[-1], snn.VotingLayer) and loaded.layers[-1].voters == 10
    lifs = [m for m in loaded.layers if isinstance(m, snn.LIF)]
    assert len(lifs) == 7 and all(m.detach_reset and m.beta == 0.5 for m in lifs)
    assert all(m.surrogate == snn.surrogate.atan(2.0) for m in lifs)
    net.eval()
    assert mx.array_equal(net(x), loaded(x))


# -- what raises ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [("tac", 2), ("tactp", 2)])
def test_tac_models_raise_naming_the_module(nir, mode):
    net = snn.models.mnist_convnet(tac=mode)
    name = "TAC" if mode[0] == "tac" else "TACTP"
    with pytest.raises(ValueError, match=rf"block1\.conv \({name}\).*time step"):
        snn.nir.export(net, mx.zeros((4, 1, 28, 28, 1)))


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        (nn.ReLU(), "ReLU"),
        (snn.AMOS(), "AMOS"),
        (nn.GELU(), "GELU"),
    ],
)
def test_layers_without_nir_node_raise_naming_them(nir, layer, name):
    net = nn.Sequential(nn.Linear(3, 3), layer)
    with pytest.raises(ValueError, match=rf"layers\.1 \({name}\)"):
        snn.nir.export(net, mx.zeros((2, 1, 3)))


def test_arrangements_nir_cannot_express_raise(nir):
    x = mx.zeros((2, 1, 6, 6, 2))
    conv = snn.SeqToBatch(nn.Conv2d(2, 2, 3))
    with pytest.raises(ValueError, match=r"MaxPool2d.*not spikes"):
        snn.nir.export(nn.Sequential(conv, snn.SeqToBatch(nn.MaxPool2d(2))), x)
    with pytest.raises(ValueError, match=r"BatchNorm.*not a Conv2d or Linear"):
        snn.nir.export(nn.Sequential(conv, snn.LIF(), snn.SeqToBatch(nn.BatchNorm(2))), x)
    oblong = snn.SeqToBatch(nn.Conv2d(2, 2, (3, 1)))
    with pytest.raises(ValueError, match=r"layers\.0\.module \(Conv2d\).*non-square"):
        snn.nir.export(nn.Sequential(oblong, snn.LIF()), x)
    mixed = snn.LIF(beta=mx.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="beta is 1 for some neurons"):
        snn.nir.export(nn.Sequential(conv, mixed), x)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.lif = snn.LIF()

    def __call__(self, x):
        return self.lif(self.fc(x) + x)


class _Stateful(nn.Module):
    def __init__(self):
        super().__init__()
        self.lif = snn.LIF()

    def __call__(self, x):
        return self.lif(x, state=mx.ones(x.shape[1:]))


def test_models_that_are_not_chains_raise(nir):
    x = mx.ones((3, 2, 4))
    with pytest.raises(ValueError, match="not a chain"):
        snn.nir.export(_Residual(), x)
    with pytest.raises(ValueError, match=r"lif \(LIF\) was called with extra arguments"):
        snn.nir.export(_Stateful(), x)


def test_export_restores_training_mode_and_class_calls(nir):
    net = nn.Sequential(nn.Linear(4, 4), snn.LIF())
    calls = {cls: cls.__dict__.get("__call__") for cls in (nn.Linear, snn.LIF, nn.MaxPool2d)}
    snn.nir.export(net, mx.ones((2, 1, 4)))
    assert net.training
    assert {cls: cls.__dict__.get("__call__") for cls in calls} == calls
    with pytest.raises(ValueError):
        snn.nir.export(_Residual(), mx.ones((2, 1, 4)))
    assert {cls: cls.__dict__.get("__call__") for cls in calls} == calls


def test_bad_export_arguments_raise(nir):
    net = nn.Sequential(nn.Linear(4, 4), snn.LIF())
    with pytest.raises(ValueError, match="sample_input must have at least 3 dimensions"):
        snn.nir.export(net, mx.ones((2, 4)))
    with pytest.raises(TypeError, match="sample_input must have a floating dtype"):
        snn.nir.export(net, mx.ones((2, 1, 4), dtype=mx.int32))
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        snn.nir.export(net, mx.ones((2, 1, 4)), dt=0.0)
    with pytest.raises(TypeError, match=r"model must be an mlx\.nn\.Module"):
        snn.nir.export(lambda x: x, mx.ones((2, 1, 4)))


def test_graphs_mlx_snn_cannot_load_raise(nir):
    lif = dict(v_threshold=np.ones(3), v_reset=np.zeros(3))
    cuba = nir.CubaLIF(tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3),
                       v_leak=np.zeros(3), **lif)  # fmt: skip
    with pytest.raises(ValueError, match=r"'n0' \(CubaLIF\) has no mlx-snn equivalent"):
        snn.nir.load(_graph(nir, [cuba], [3]), dt=0.1)
    leaky = nir.LIF(tau=np.full(3, 2.0), r=np.full(3, 2.0), v_leak=np.ones(3), **lif)
    with pytest.raises(ValueError, match="v_leak"):
        snn.nir.load(_graph(nir, [leaky], [3]), dt=1.0)
    hard = nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.full(3, -1.0))
    with pytest.raises(ValueError, match="v_reset"):
        snn.nir.load(_graph(nir, [hard], [3]), dt=1.0)
    branch = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3])), "a": nir.Scale(np.ones(3)),
               "b": nir.Scale(np.ones(3)), "output": nir.Output(np.array([3]))},
        edges=[("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")],
    )  # fmt: skip
    with pytest.raises(ValueError, match="outgoing edges"):
        snn.nir.load(branch)
    with pytest.raises(ValueError, match="reset must be one of"):
        snn.nir.load(_graph(nir, [nir.Scale(np.ones(3))], [3]), reset="soft")
    with pytest.raises(TypeError, match=r"graph must be a nir\.NIRGraph"):
        snn.nir.load({"nodes": {}})
