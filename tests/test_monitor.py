"""snn.monitor: counts checked by hand, exact conv fan-out, TAC's division of the per-frame
counts, outputs and gradients untouched, and clear errors (or a "not counted" line)."""

from __future__ import annotations

import json
import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from example_scripts import load_example

import mlx_snn as snn
from mlx_snn.monitor import EnergyCosts, Monitor, conv_fan_out


class TwoLayer(nn.Module):
    """Linear(3->4) LIF Linear(4->2, no bias) LIF, weights chosen for spikes known by hand."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc1.weight = mx.array([[2.0, 0, 0], [0, 2, 0], [0, 0, 2], [0, 0, 0]])
        self.fc1.bias = mx.zeros((4,))
        self.lif1 = snn.LIF(beta=0.5, threshold=1.0, reset="subtract")
        self.fc2 = nn.Linear(4, 2, bias=False)
        self.fc2.weight = mx.array([[1.0, 1, 0, 0], [0, 0, 0, 0]])
        self.lif2 = snn.LIF(beta=0.5, threshold=1.0, reset="subtract")

    def __call__(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


# x [T=2, B=2, 3]: 6 input events
TWO_LAYER_X = mx.array(
    [[[1.0, 0, 1], [0, 0, 0]], [[1.0, 1, 1], [0, 1, 0]]],
)


def random_spikes(shape: tuple[int, ...], p: float, seed: int) -> mx.array:
    return (mx.random.uniform(shape=shape, key=mx.random.key(seed)) < p).astype(mx.float32)


def rows(report):
    return {s.path: s for s in report.layers}


def test_two_layer_counts_match_a_hand_count():
    model = TwoLayer()
    mon = Monitor(model)
    out = mon(TWO_LAYER_X)
    # by hand (see TwoLayer): lif1 spikes t0 [1,0,1,0] | [0,0,0,0], t1 [1,1,1,0] | [0,1,0,0];
    # lif2 unit 0 gets s0 + s1: sample 0 -> 1, 2 (spikes both steps), sample 1 -> 0, 1
    np.testing.assert_array_equal(np.array(out[..., 0]), [[1, 0], [1, 1]])
    r = rows(mon.report())
    assert mon.report().samples == 2 and mon.report().forwards == 1

    fc1 = r["fc1"]
    assert (fc1.frames, fc1.in_events, fc1.synops, fc1.graded_calls) == (4, 6, 24, 0)
    # 24 synaptic ACs + 4 frames x 4 bias adds; each op reads a weight and updates a target
    assert fc1.snn == {
        "ac": 40,
        "mac": 0,
        "mult": 0,
        "weight_read": 160,
        "state_read": 160,
        "state_write": 160,
    }
    # the ANN: 2 samples x 12 MACs, 2 x 4 bias adds; input operand per MAC; outputs once
    assert fc1.ann == {
        "ac": 8,
        "mac": 24,
        "mult": 0,
        "weight_read": 128,
        "state_read": 96,
        "state_write": 32,
    }
    assert fc1.dense_mac == 4 * 12

    lif1 = r["lif1"]
    assert (lif1.spikes, lif1.neuron_steps, lif1.neurons) == (6, 16, 4)
    assert lif1.spikes_by_step == [2, 4] and lif1.neurons_by_step == [8, 8]
    assert lif1.fired_pairs == 4 and lif1.sample_neurons == 8  # silent: 4 of 8 pairs
    np.testing.assert_array_equal(lif1.spikes_by_neuron[(4,)], [2, 2, 2, 0])  # unit 3 dead
    # 16 leak-integrate MACs, 6 subtract-reset adds; membrane+input read, membrane written
    assert lif1.snn == {
        "ac": 6,
        "mac": 16,
        "mult": 0,
        "weight_read": 0,
        "state_read": 128,
        "state_write": 64,
    }
    assert lif1.ann == dict.fromkeys(lif1.ann, 0)

    fc2 = r["fc2"]
    assert (fc2.in_events, fc2.synops) == (6, 12)
    assert fc2.snn["ac"] == 12 and fc2.snn["weight_read"] == 48
    assert fc2.ann["mac"] == 16 and fc2.ann["ac"] == 0

    lif2 = r["lif2"]
    assert (lif2.spikes, lif2.fired_pairs, lif2.sample_neurons) == (3, 2, 4)

    d = mon.report().to_dict()
    layer = {x["path"]: x for x in d["layers"]}
    assert layer["lif1"]["rate"] == 6 / 16
    assert layer["lif1"]["rate_by_step"] == [0.25, 0.5]
    assert layer["lif1"]["silent_fraction"] == 0.5
    assert layer["lif1"]["dead_fraction"] == 0.25
    assert layer["lif2"]["dead_fraction"] == 0.5

    energy = mon.report().energy()
    ac, mac = 40 + 6 + 12 + 3, 16 + 8
    assert energy["snn"]["compute_pj"] == pytest.approx((ac * 0.9 + mac * 4.6) / 2)
    snn_bytes = 3 * 160 + 128 + 64 + 3 * 48 + 64 + 32
    assert energy["snn"]["memory_pj"] == pytest.approx(snn_bytes * 1.25 / 2)
    assert energy["ann"]["compute_pj"] == pytest.approx((8 * 0.9 + 40 * 4.6) / 2)
    assert energy["ann"]["memory_pj"] == pytest.approx((256 + 64 + 64 + 16) * 1.25 / 2)
    custom = mon.report().energy(EnergyCosts(add_pj=1, mac_pj=0, mult_pj=0, memory_pj_per_byte=0))
    assert custom["snn"]["total_pj"] == ac / 2


def test_counts_add_up_over_forwards_and_reset_clears_them():
    model = TwoLayer()
    mon = Monitor(model)
    with mon:
        model(TWO_LAYER_X)
        model(TWO_LAYER_X)
    r = mon.report()
    assert (r.samples, r.forwards, rows(r)["fc1"].synops, rows(r)["fc1"].ann["mac"]) == (
        4,
        2,
        48,
        48,
    )
    mon.reset()
    assert mon.report().samples == 0 and mon.report().layers == []


def test_per_step_calls_count_the_ann_once_per_forward():
    """A layer called once per step (a hand loop) is one ANN layer per sample."""

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 5)

        def __call__(self, x):
            return mx.stack([self.fc(x[t]) for t in range(x.shape[0])])

    model = Loop()
    mon = Monitor(model)
    x = random_spikes((4, 2, 3), 0.5, seed=0)
    mon(x)
    fc = rows(mon.report())["fc"]
    assert fc.calls == 4 and fc.frames == 8
    assert fc.synops == int(np.count_nonzero(np.array(x))) * 5
    assert fc.ann["mac"] == 2 * 15


def test_one_neuron_module_used_at_two_places_is_one_row():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)
            self.lif = snn.LIF()

        def __call__(self, x):
            return self.lif(self.fc2(self.lif(self.fc1(x))))

    model = Shared()
    mon = Monitor(model)
    out = mon(TWO_LAYER_X)
    data = {d["path"]: d for d in mon.report().to_dict()["layers"]}
    lif = rows(mon.report())["lif"]
    assert lif.calls == 2 and lif.neurons == 6 and lif.neuron_steps == 2 * 2 * 6
    assert sorted(lif.spikes_by_neuron) == [(2,), (4,)]
    dead = sum(int((c == 0).sum()) for c in lif.spikes_by_neuron.values())
    assert data["lif"]["dead_fraction"] == dead / 6
    assert out.shape == (2, 2, 2)


def brute_force_synops(conv: nn.Module, x: mx.array) -> int:
    """Sum over outputs of the nonzero inputs each reads: a conv of the mask with ones."""
    ones = mx.ones(conv.weight.shape)
    mask = (x != 0).astype(mx.float32)
    conv_fn = {3: mx.conv1d, 4: mx.conv2d, 5: mx.conv3d}[conv.weight.ndim]
    y = conv_fn(mask, ones, conv.stride, conv.padding, conv.dilation, conv.groups or 1)
    return int(np.array(y, dtype=np.float64).sum())


def test_conv_fan_out_is_exact_at_the_edges():
    conv = nn.Conv2d(1, 1, 3, padding=1)
    fan, out = conv_fan_out((3, 3), conv)
    # corner taps 2x2, edge 2x3, centre 3x3 of the 3x3 kernel read each position
    np.testing.assert_array_equal(fan, [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    assert out == (3, 3)
    strided = nn.Conv2d(1, 2, 3, stride=2)
    fan, out = conv_fan_out((5, 5), strided)
    assert out == (2, 2)
    # rows 0..4 are read by taps (o=0: 0,1,2), (o=1: 2,3,4): counts 1,1,2,1,1; x 2 channels
    np.testing.assert_array_equal(fan, 2 * np.outer([1, 1, 2, 1, 1], [1, 1, 2, 1, 1]))


@pytest.mark.parametrize(
    "conv, shape",
    [
        (nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (3, 9, 8, 4)),
        (nn.Conv2d(2, 3, (3, 2), stride=(1, 3), padding=(2, 0)), (2, 7, 10, 2)),
        (nn.Conv1d(3, 4, 5, stride=2, padding=3), (5, 11, 3)),
    ],
)
def test_conv_synops_equal_a_brute_force_count(conv, shape):
    x = (mx.random.uniform(shape=shape, key=mx.random.key(3)) < 0.4).astype(mx.float32)
    model = snn.SeqToBatch(conv)
    mon = Monitor(model)
    mon(x[None])  # [T=1, B, ...]
    stats = rows(mon.report())["module"]
    assert stats.synops == brute_force_synops(conv, x)
    per_frame = brute_force_synops(conv, mx.ones(shape[1:])[None])
    assert stats.ann["mac"] == shape[0] * per_frame  # the same exact taps, dense
    assert stats.dense_mac == shape[0] * per_frame


def group_repeated(frames: mx.array, group: int) -> mx.array:
    """Each frame repeated ``group`` times: every TAC group holds identical frames."""
    return mx.repeat(frames, group, axis=0)


@pytest.mark.parametrize("make", [snn.TAC, snn.TACTP])
def test_tac_counts_are_the_per_frame_counts_divided_by_the_group(make):
    g, b = 4, 3
    conv = nn.Conv2d(2, 5, 3, padding=1)
    frames = random_spikes((2, b, 6, 6, 2), 0.3, seed=1)
    x = group_repeated(frames, g)  # T = 8, G = 2
    base = Monitor(snn.SeqToBatch(conv))
    base(x)
    tac = Monitor(make(conv, g, beta=1.0))
    tac(x)
    per_frame = rows(base.report())["module"]
    grouped = rows(tac.report())["layer"]
    # the group mean of identical spike frames is that frame: still spikes, a quarter of them
    assert grouped.graded_calls == 0 and per_frame.graded_calls == 0
    assert grouped.frames * g == per_frame.frames == 8 * b
    assert grouped.per_frame_frames == per_frame.frames
    assert grouped.synops * g == per_frame.synops
    assert grouped.dense_mac * g == per_frame.dense_mac
    assert grouped.snn["ac"] * g == per_frame.snn["ac"]
    assert grouped.snn["weight_read"] * g == per_frame.snn["weight_read"]
    assert grouped.ann == per_frame.ann  # one non-spiking network for both
    agg = rows(tac.report())[make.__name__]
    assert agg.kind == "aggregate"
    assert agg.snn["ac"] == int(np.count_nonzero(np.array(x)))  # one add per input event
    assert (agg.frames, agg.per_frame_frames) == (2 * b, 8 * b)


def test_tac_with_a_short_last_group_runs_ceil_t_over_g_frames():
    conv = nn.Linear(4, 3)
    x = random_spikes((7, 2, 4), 0.5, seed=2)
    mon = Monitor(snn.TAC(conv, 4, beta=0.5))
    mon(x)
    layer = rows(mon.report())["layer"]
    assert (layer.frames, layer.per_frame_frames) == (2 * 2, 7 * 2)
    assert layer.graded_calls == 1  # decay-weighted means of spikes are graded: MACs
    assert layer.snn["mac"] == layer.synops and layer.snn["ac"] == 2 * 2 * 3  # bias adds
    assert mon.report().layers[0].snn["mac"] == int(np.count_nonzero(np.array(x)))


@pytest.mark.parametrize("mode", ["baseline", "tac", "tactp"])
def test_paper_model_conv_frames_match_conv_steps(mode):
    t, b = 9, 2
    model = snn.models.mnist_convnet(mode=mode, group=4, num_steps=t)
    x = random_spikes((t, b, 28, 28, 1), 0.3, seed=4)
    mon = Monitor(model)
    mon(x)
    convs = [s for s in mon.report().layers if s.type == "Conv2d"]
    assert [s.frames // b for s in convs] == list(model.conv_steps(t))
    table = mon.report().table()
    assert "not counted" in table and "BatchNorm" in table and "MaxPool2d" in table
    if mode != "baseline":
        assert f"{model.conv_steps(t)[0]} of {t}" in table


@pytest.mark.parametrize("mode", ["baseline", "tac", "tactp"])
def test_monitor_changes_neither_outputs_nor_gradients(mode):
    model = snn.models.mnist_convnet(mode=mode, group=2, num_steps=4)
    x = random_spikes((4, 3, 28, 28, 1), 0.4, seed=5)
    labels = mx.array([1, 2, 3])
    classes = {path: type(m) for path, m in model.named_modules()}

    def loss_fn(frames, y):
        return snn.loss.ce_count(model(frames), y)

    grad_fn = nn.value_and_grad(model, loss_fn)
    loss0, grads0 = grad_fn(x, labels)
    out0 = model(x)
    mon = Monitor(model)
    with mon:
        loss1, grads1 = grad_fn(x, labels)
        out1 = model(x)
    assert mx.array_equal(out0, out1)
    assert mx.array_equal(loss0, loss1)
    flat0, flat1 = flatten(grads0), flatten(grads1)
    assert sorted(flat0) == sorted(flat1)
    for k in flat0:
        assert mx.array_equal(flat0[k], flat1[k]), k
    assert {path: type(m) for path, m in model.named_modules()} == classes
    assert mon.report().forwards == 2


def flatten(tree) -> dict:
    from mlx.utils import tree_flatten

    return dict(tree_flatten(tree))


def test_classes_are_restored_when_the_forward_raises():
    model = TwoLayer()
    classes = [type(m) for _, m in model.named_modules()]
    mon = Monitor(model)
    with pytest.raises(ValueError), mon:
        model(mx.zeros((2, 2, 5)))  # wrong feature size: the Linear raises
    assert [type(m) for _, m in model.named_modules()] == classes
    assert mon.report().forwards == 0  # a failed forward adds nothing
    mon(TWO_LAYER_X)
    assert mon.report().forwards == 1


def test_unknown_layers_are_listed_as_not_counted_or_raise_when_strict():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = mx.array(2.0)
            self.fc = nn.Linear(3, 3)

        def __call__(self, x):
            return self.fc(x) * self.scale

    model = nn.Sequential(Custom(), nn.ReLU(), nn.LayerNorm(3))
    mon = Monitor(model)
    mon(TWO_LAYER_X)
    report = mon.report()
    listed = {s.path: s for s in report.not_counted}
    assert set(listed) == {"layers.0", "layers.1", "layers.2"}
    assert "scale" in listed["layers.0"].note
    assert listed["layers.2"].calls == 1
    table = report.table()
    assert "not counted" in table and "LayerNorm: layers.2 (1 call)" in table
    assert [s.path for s in report.layers] == ["layers.0.fc"]
    assert json.loads(report.to_json())["not_counted"][1]["type"] == "ReLU"
    with pytest.raises(TypeError, match=r"layers\.2 \(LayerNorm"):
        Monitor(model, strict=True)


def test_plain_callables_inside_tac_are_reported_not_counted():
    tac = snn.TAC(lambda f: f * 2.0, 2)
    mon = Monitor(tac)
    mon(mx.ones((4, 1, 3)))
    assert [s.path for s in mon.report().not_counted] == ["TAC.layer"]
    assert "plain callable" in mon.report().table()
    with pytest.raises(TypeError, match="plain callable"):
        Monitor(tac, strict=True)


def test_layers_that_never_ran_are_listed():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(3, 2)
            self.unused = nn.Linear(3, 2)

        def __call__(self, x):
            return self.used(x)

    mon = Monitor(Branch())
    mon(TWO_LAYER_X)
    assert [s.path for s in mon.report().not_called] == ["unused"]
    assert "not called: unused (Linear)" in mon.report().table()


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match=r"model must be an mlx\.nn\.Module"):
        Monitor(lambda x: x)
    with pytest.raises(TypeError, match="strict must be a bool"):
        Monitor(TwoLayer(), strict="yes")
    with pytest.raises(ValueError, match="batch_axis must be >= 0"):
        Monitor(TwoLayer(), batch_axis=-1)
    with pytest.raises(ValueError, match="batch axis 1"):
        Monitor(nn.Linear(3, 2))(mx.ones((3,)))
    with pytest.raises(ValueError, match="add_pj must be a finite number >= 0"):
        EnergyCosts(add_pj=-1.0)
    with pytest.raises(TypeError, match="mac_pj must be a number"):
        EnergyCosts(mac_pj="4.6")
    empty = Monitor(TwoLayer()).report()
    assert "no forward pass recorded" in empty.table()
    with pytest.raises(ValueError, match="no forward pass was recorded"):
        empty.energy()
    with pytest.raises(TypeError, match="costs must be an EnergyCosts"):
        mon = Monitor(TwoLayer())
        mon(TWO_LAYER_X)
        mon.report().energy({"add_pj": 1})


def test_one_model_one_monitor_at_a_time():
    model = TwoLayer()
    with Monitor(model), pytest.raises(RuntimeError, match="already being recorded"):
        Monitor(model).__enter__()
    mon = Monitor(model)
    with mon, pytest.raises(RuntimeError, match="already active"):
        mon.__enter__()
    assert type(model.fc1) is nn.Linear


def test_compiled_forward_raises_instead_of_counting_nothing():
    model = TwoLayer()
    with Monitor(model), pytest.raises(RuntimeError, match=r"mx\.compile"):
        mx.compile(model)(TWO_LAYER_X)
    assert type(model.lif1) is snn.LIF
    relu = nn.Sequential(nn.ReLU())  # not counted only: still refuses to record nothing
    with Monitor(relu), pytest.raises(RuntimeError, match=r"mx\.compile"):
        mx.compile(relu)(TWO_LAYER_X)
    with Monitor(model), pytest.raises(RuntimeError, match=r"mx\.vmap"):
        mx.vmap(model, in_axes=2)(mx.stack([TWO_LAYER_X] * 2, axis=2))


def test_json_export_round_trips(tmp_path):
    model = TwoLayer()
    mon = Monitor(model)
    mon(TWO_LAYER_X)
    path = tmp_path / "cost.json"
    text = mon.report().to_json(path)
    data = json.loads(path.read_text())
    assert json.loads(text) == data
    assert data["samples"] == 2
    assert [x["path"] for x in data["layers"]] == ["fc1", "lif1", "fc2", "lif2"]
    assert data["layers"][0]["synops"] == 24
    assert data["energy_pj_per_sample"]["costs"]["mac_pj"] == 4.6
    assert set(data["energy_pj_per_sample"]["snn"]) == {"compute_pj", "memory_pj", "total_pj"}
    assert math.isclose(
        sum(x["energy_pj_per_sample"]["snn"]["total_pj"] for x in data["layers"]),
        data["energy_pj_per_sample"]["snn"]["total_pj"],
    )


def test_other_neurons_are_counted():
    x = random_spikes((5, 2, 6), 0.5, seed=6)
    for neuron, mult in ((snn.StateLeaky(), 0), (snn.AMOS(), 60), (snn.ParallelLIF(), 0)):
        mon = Monitor(nn.Sequential(nn.Linear(6, 6), neuron))
        out = mon(x)
        stats = rows(mon.report())["layers.1"]
        assert stats.spikes == int(np.count_nonzero(np.array(out)))
        assert stats.snn["mac"] == 60 and stats.snn["mult"] == mult
    assoc = snn.AssociativeLeaky(6, key_dim=3, value_dim=4)
    mon = Monitor(assoc)
    mon(x)
    r = rows(mon.report())
    assert r["AssociativeLeaky"].snn["mac"] == 2 * 3 * 4 * 10
    assert {"q_proj", "k_proj", "v_proj", "decay_proj"} <= set(r)
    dec = snn.TemporalSelectorDecoder(6, 3)
    mon = Monitor(dec)
    mon(x)
    r = rows(mon.report())
    assert r["TemporalSelectorDecoder"].snn["mac"] == 5 * 2 * 3
    assert r["linear"].synops == int(np.count_nonzero(np.array(x))) * 3


def test_mnist_example_cost_flag_prints_the_table(mnist_dir, tmp_path, capsys):
    example = load_example("mnist")
    argv = ["--data-dir", str(mnist_dir), "--out", str(tmp_path), "--quiet", "--cost"]
    argv += ["--mode", "tac", "--group", "2", "--num-steps", "4", "--epochs", "1"]
    argv += ["--limit", "16", "--test-limit", "8", "--batch-size", "8"]
    assert example.main(argv) == 0
    printed = capsys.readouterr().out
    assert "snn.monitor: 8 samples" in printed and "2 of 4" in printed
    assert "non-spiking (ANN)" in printed
    data = json.loads((tmp_path / "cost.json").read_text())
    assert data["samples"] == 8
