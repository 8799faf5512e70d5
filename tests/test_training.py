"""Training over long sequences: Stateful networks, run_chunked (checkpoint=) and tbptt.

Tolerances: chunked forward passes of LIF(algorithm="loop") networks and of the paper
network in eval mode equal the unchunked pass bit for bit (asserted with
array_equal). tbptt with chunk = T equals nn.value_and_grad on the whole sequence bit
for bit. Truncated gradients against the float64 reference (tests/reference/lif.py,
run chunk by chunk from the exact carried state): within 1e-4 * max(1, max |ref|)
(fp32 vs float64), inputs checked to keep every membrane 1e-4 away from the threshold.
Checkpointed and chunked gradients against the plain unchunked ones: within
1e-5 * max(1, max |g|) (fp32; the chunked weight gradients sum in another order).
"""

from __future__ import annotations

import itertools

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import reference as ref
from conftest import assert_close
from mlx.utils import tree_flatten

import mlx_snn as snn
from mlx_snn.training import Stateful, run_chunked, tbptt, time_granularity

RTOL_REF = 1e-4
RTOL_CHUNKS = 1e-5


def mlp(seed: int = 0, sizes=(12, 16, 16, 5)) -> Stateful:
    mx.random.seed(seed)
    layers = []
    for a, b in itertools.pairwise(sizes):
        linear = nn.Linear(a, b)
        linear.weight = linear.weight * 3.0  # enough drive for every layer to spike
        layers += [linear, snn.LIF(beta=0.9, algorithm="loop")]
    net = Stateful(*layers)
    mx.eval(net.parameters())
    return net


def spikes_in(T, B, F, seed=0, rate=0.3):
    return (mx.random.uniform(shape=(T, B, F), key=mx.random.key(seed)) < rate).astype(mx.float32)


def grads_of(net, loss):
    _, g = nn.value_and_grad(net, loss)()
    return dict(tree_flatten(g))


# ----------------------------------------------------------------------------
# Forward passes in chunks
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 64, 300, 1000])
def test_chunked_forward_equals_unchunked_bit_for_bit(chunk):
    net = mlp()
    x = spikes_in(300, 4, 12)
    y_full, s_full = net(x)
    y, s = run_chunked(net, x, chunk)
    assert np.array_equal(np.array(y), np.array(y_full))
    assert float(mx.sum(y)) > 0
    for a, b in zip(s, s_full, strict=True):
        if a is not None:
            assert np.array_equal(np.array(a), np.array(b))


@pytest.mark.parametrize("tac", [None, ("tac", 2), ("tactp", 2)])
def test_paper_network_in_eval_mode_runs_in_chunks_exactly(tac):
    mx.random.seed(1)
    model = snn.models.mnist_convnet(tac=tac)
    model.eval()
    x = (mx.random.uniform(shape=(12, 2, 28, 28, 1)) < 0.5).astype(mx.float32)
    y_full, s_full = model(x, return_state=True)
    chunk = max(4, time_granularity(model))  # a multiple of the TAC groups
    y, s = run_chunked(Stateful(model), x, chunk)
    assert np.array_equal(np.array(y), np.array(y_full))
    for a, b in zip(s[0], s_full, strict=True):
        assert np.array_equal(np.array(a), np.array(b))


def test_time_granularity_counts_cascaded_tac_groups():
    assert time_granularity(snn.models.mnist_convnet()) == 1
    assert time_granularity(snn.models.mnist_convnet(tac=("tac", 4))) == 16
    assert time_granularity(snn.models.mnist_convnet(tac=("tactp", 4))) == 4
    assert time_granularity(lambda x, s: (x, s)) == 1


def test_stateful_threads_each_neurons_state():
    leaky = snn.StateLeaky(beta=0.8)
    net = Stateful(nn.Sequential(nn.Linear(3, 4), leaky, snn.VotingLayer(2)))
    x = mx.random.normal((10, 2, 3))
    y, state = net(x)
    assert y.shape == (10, 2, 2)
    assert state[0] is None and state[2] is None and state[1].shape == (2, 4)
    y2, _ = net(x, state)
    expected = leaky(net.layers[0](x), state=state[1])
    assert np.array_equal(np.array(y2), np.array(net.layers[2](expected)))


# ----------------------------------------------------------------------------
# Truncated BPTT
# ----------------------------------------------------------------------------


def test_tbptt_with_one_chunk_is_full_bptt_exactly():
    net = mlp()
    x = spikes_in(64, 4, 12)
    g_out = mx.random.normal((64, 4, 5), key=mx.random.key(3))

    def loss_fn(y):
        return mx.sum(y * g_out)

    res = tbptt(net, loss_fn, x, chunk=64)
    full_loss, full = nn.value_and_grad(net, lambda: loss_fn(net(x)[0]))()
    assert float(res.loss) == float(full_loss)
    for k, v in tree_flatten(full):
        assert np.array_equal(np.array(dict(tree_flatten(res.grads))[k]), np.array(v)), k


def tie_free_inputs(T, B, F, N, seed, W):
    for s in range(seed, seed + 40):
        rng = np.random.default_rng(s)
        inp = rng.normal(0.3, 1.0, size=(T, B, F)).astype(np.float32)
        current = np.einsum("tbf,nf->tbn", inp.astype(np.float64), W.astype(np.float64))
        mem = ref.lif_forward(current, 0.9, 1.0)["mem"]
        if np.min(np.abs(mem - 1.0)) > 1e-4:
            return inp, rng
    raise AssertionError("no tie-free input found")


@pytest.mark.parametrize(("T", "chunk"), [(40, 16), (1024, 100)])
def test_tbptt_gradients_match_the_float64_chunk_by_chunk_reference(T, chunk):
    B, F, N = 2, 3, 4
    W = np.random.default_rng(7).normal(0.0, 0.6, size=(N, F)).astype(np.float32)
    inp, rng = tie_free_inputs(T, B, F, N, 11, W)
    g_s = rng.normal(size=(T, B, N)).astype(np.float32)
    linear = nn.Linear(F, N, bias=False)
    linear.weight = mx.array(W)
    net = Stateful(linear, snn.LIF(beta=0.9, algorithm="loop"))

    res = tbptt(net, lambda y, g: mx.sum(y * g), mx.array(inp), chunk, targets=mx.array(g_s))

    current = np.einsum("tbf,nf->tbn", inp.astype(np.float64), W.astype(np.float64))
    full = ref.lif_forward(current, 0.9, 1.0)
    g_w, loss = np.zeros((N, F)), 0.0
    for start in range(0, T, chunk):
        span = slice(start, start + chunk)
        v0 = full["v_prev"][start]  # the exact state entering the chunk, no gradient
        back = ref.lif_backward(current[span], g_s[span], v0=v0)
        g_w += np.einsum("tbn,tbf->nf", back["x"], inp[span].astype(np.float64))
        loss += float(np.sum(g_s[span] * full["spikes"][span]))
    assert_close(res.grads["layers"][0]["weight"], g_w, RTOL_REF, "dL/dW")
    assert abs(float(res.loss) - loss) <= RTOL_REF * max(1.0, abs(loss))
    np.testing.assert_array_equal(np.array(res.outputs), full["spikes"])
    assert_close(res.state[1], full["state"], RTOL_REF, "state")


def test_tbptt_state_continues_the_sequence():
    net = mlp()
    x = spikes_in(90, 3, 12)
    labels = mx.array([0, 1, 2])
    first = tbptt(net, lambda y: snn.loss.ce_count(y, labels), x[:50], 16)
    second = tbptt(net, lambda y: snn.loss.ce_count(y, labels), x[50:], 16, first.state)
    y_full, _ = net(x)
    outputs = mx.concatenate([first.outputs, second.outputs])
    assert np.array_equal(np.array(outputs), np.array(y_full))


# ----------------------------------------------------------------------------
# Checkpointed BPTT
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("T", [200, 1024])
def test_checkpointed_gradients_equal_the_plain_ones(T):
    net = mlp(sizes=(12, 24, 5))
    x = spikes_in(T, 3, 12)
    labels = mx.array([0, 3, 4])

    def loss(chunk, checkpoint):
        def f():
            y, _ = run_chunked(net, x, chunk, checkpoint=checkpoint)
            return snn.loss.ce_count(y, labels)

        return f

    plain = grads_of(net, loss(None, False))
    chunked = grads_of(net, loss(64, False))
    ckpt = grads_of(net, loss(64, True))
    assert max(float(mx.abs(v).max()) for v in plain.values()) > 0
    for k, v in plain.items():
        expected = np.array(v, dtype=np.float64)
        assert_close(chunked[k], expected, RTOL_CHUNKS, f"chunked {k}")
        assert_close(ckpt[k], expected, RTOL_CHUNKS, f"checkpointed {k}")


def test_checkpoint_recomputes_with_the_fused_loop_and_stays_exact_under_compile(monkeypatch):
    # the recomputation builds the LIF loop's fused graphs (on the graph-building
    # thread) without reading values; under mx.compile it falls back to op-by-op graphs
    from mlx_snn.functional import _untraced

    calls = []

    def counting(fn, *args):
        calls.append(fn)
        return _runtime_on_worker(fn, *args)

    _runtime_on_worker = _untraced.on_worker
    monkeypatch.setattr(_untraced, "on_worker", counting)
    net = mlp(sizes=(12, 24, 5))
    x = spikes_in(96, 3, 12)
    labels = mx.array([0, 3, 4])

    def loss(checkpoint):
        def f():
            y, _ = run_chunked(net, x, 32, checkpoint=checkpoint)
            return snn.loss.ce_count(y, labels)

        return f

    plain = grads_of(net, loss(False))
    calls.clear()
    ckpt = grads_of(net, loss(True))
    assert calls, "the checkpointed recomputation did not use the fused loop"

    params = net.trainable_parameters()

    def compiled_loss(p):
        net.update(p)
        return loss(True)()

    calls.clear()
    compiled = dict(tree_flatten(mx.compile(mx.grad(compiled_loss))(params)))
    net.update(params)
    assert not calls, "mx.compile tracing must not take the fused (evaluating) path"
    for k, v in plain.items():
        expected = np.array(v, dtype=np.float64)
        assert_close(ckpt[k], expected, RTOL_CHUNKS, f"checkpointed {k}")
        assert_close(compiled[k], expected, RTOL_CHUNKS, f"compiled {k}")


def test_checkpoint_restores_batchnorm_statistics_and_matches_chunked_training():
    mx.random.seed(2)
    model = snn.models.mnist_convnet()
    x = (mx.random.uniform(shape=(8, 2, 28, 28, 1)) < 0.5).astype(mx.float32)
    labels = mx.array([1, 7])
    start = model.parameters()
    results = []
    for checkpoint in (False, True):
        model.update(start)

        def f(checkpoint=checkpoint):
            y, _ = run_chunked(Stateful(model), x, 4, checkpoint=checkpoint, module=model)
            return snn.loss.ce_count(y, labels)

        loss, g = nn.value_and_grad(model, f)()
        mx.eval(loss, g, model.parameters())
        stats = dict(tree_flatten(model.block1.bn.module.parameters()))
        results.append((float(loss), dict(tree_flatten(g)), stats))
    (l0, g0, s0), (l1, g1, s1) = results
    assert l0 == l1
    for k in g0:
        assert_close(g1[k], np.array(g0[k], np.float64), RTOL_CHUNKS, k)
    for k in ("running_mean", "running_var"):
        assert np.array_equal(np.array(s0[k]), np.array(s1[k])), k


def checkpoint_peak(net, x, chunk, checkpoint):
    labels = mx.zeros((x.shape[1],), mx.int32)

    def f():
        y, _ = run_chunked(net, x, chunk, checkpoint=checkpoint)
        return snn.loss.ce_count(y, labels)

    mx.eval(net.parameters(), x)
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    out = nn.value_and_grad(net, f)()
    mx.eval(out, net.parameters())
    return mx.get_peak_memory() - before


def test_checkpoint_keeps_about_one_chunk_of_activations():
    net = mlp(sizes=(64, 256, 256, 10))
    x = spikes_in(512, 8, 64)
    plain, ckpt = checkpoint_peak(net, x, None, False), checkpoint_peak(net, x, 32, True)
    assert ckpt < 0.3 * plain, (ckpt, plain)


def test_checkpoint_memory_does_not_grow_with_batchnorm_statistics():
    # BatchNorm in training mode on 2048 features: were its running statistics left
    # lazy, each chunk's [32, 8, 2048] input (2 MiB) would stay alive to the end
    net = Stateful(
        nn.Linear(16, 2048), snn.SeqToBatch(nn.BatchNorm(2048)), snn.LIF(), nn.Linear(2048, 4)
    )
    short, long = spikes_in(64, 8, 16), spikes_in(512, 8, 16)
    growth = checkpoint_peak(net, long, 32, True) - checkpoint_peak(net, short, 32, True)
    assert growth < 4 * 2**20, growth  # 14 more chunks: 28 MiB if they were pinned


# ----------------------------------------------------------------------------
# The chunking marker
# ----------------------------------------------------------------------------


def test_every_public_temporal_module_says_how_it_chunks():
    import inspect

    from mlx_snn.nn.temporal import CHUNKINGS, TemporalModule

    classes = [
        getattr(mod, n)
        for mod in (snn, snn.nn, snn.models)
        for n in mod.__all__
        if inspect.isclass(getattr(mod, n)) and issubclass(getattr(mod, n), TemporalModule)
    ]
    assert len(classes) >= 12
    for cls in classes:
        assert cls.chunking in CHUNKINGS, cls
        params = inspect.signature(cls.__call__).parameters
        takes_state = "state" in params and "return_state" in params
        assert takes_state == (cls.chunking == "state"), cls


# ----------------------------------------------------------------------------
# bench/memory.py runs (a smoke run: no timing assertions)
# ----------------------------------------------------------------------------


def test_memory_bench_quick_run_writes_its_table(tmp_path):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import memory

    assert memory.main(["--quick", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("memory_quick-*.json")
    payload = json.loads(path.read_text())
    modes = {r["mode"] for r in payload["records"]}
    assert modes == {"plain", "checkpoint", "tbptt"}
    assert all(r["peak_bytes"] > 0 for r in payload["records"])
    assert "largest T in 8 GiB" in payload["table"]


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------


def test_bad_arguments_raise_with_the_argument_named():
    net = mlp()
    x = spikes_in(8, 2, 12)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        run_chunked(net, x, 0)
    with pytest.raises(TypeError, match="chunk must be an int"):
        run_chunked(net, x, 2.0)
    with pytest.raises(TypeError, match="checkpoint must be True or False"):
        run_chunked(net, x, 2, checkpoint=1)
    with pytest.raises(ValueError, match="pass module="):
        run_chunked(lambda a, s: net(a, s), x, 2, checkpoint=True)
    with pytest.raises(TypeError, match="net must be callable"):
        run_chunked(3, x, 2)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        run_chunked(net, x[0, 0], 2)
    with pytest.raises(ValueError, match="multiple of 16"):
        run_chunked(
            Stateful(snn.models.mnist_convnet(tac=("tac", 4))), mx.zeros((32, 1, 28, 28, 1)), 8
        )
    with pytest.raises(ValueError, match="state must be None or hold one entry per layer"):
        net(x, [None])
    with pytest.raises(ValueError, match="depends on the whole sequence"):
        Stateful(nn.Linear(3, 3), snn.AMOS())
    with pytest.raises(ValueError, match="TemporalSelectorDecoder"):
        Stateful(snn.TemporalSelectorDecoder(3, 2))
    with pytest.raises(ValueError, match="contains LIF"):
        Stateful(nn.Sequential(nn.Linear(3, 3), nn.Sequential(snn.LIF())))
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        tbptt(net, None, x, 2)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        tbptt(net, lambda y: y, x, 4)
    with pytest.raises(ValueError, match="state must be None or a list of 4 layer states"):
        snn.models.mnist_convnet()(mx.zeros((2, 1, 28, 28, 1)), state=[None])
