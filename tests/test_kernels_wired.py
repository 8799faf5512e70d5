"""The kernel backends wired into mlx_snn.functional and the modules: with the Metal
device reported present and the kernels built as CPU shims (the ``shim_metal``
fixture), ``backend="metal"`` and ``backend="auto"`` run the kernels through the
public API, and the results match the float64 reference and the MLX path.

Tolerances as in the kernel tests they reuse (tests/test_kernels_lif.py,
tests/test_kernels_scan.py, tests/test_kernels_amos.py): float32 outputs within
1e-5 * max(1, |ref|), gradients within 1e-4; float16 outputs 2e-3, gradients 4e-3
(the LIF and scan float16 tolerances; the kernels accumulate in float32). Spikes
and first-spike indices are identical. Kernel vs MLX path (both float32): 1e-5 for
values, 1e-4 for gradients.
"""

from __future__ import annotations

import dataclasses

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import reference as ref
import test_kernels_lif
import test_kernels_scan
from conftest import assert_close, to_np
from reference import amos as ref_amos
from reference import state_leaky as ref_leaky
from test_kernels_amos import make as amos_inputs

import mlx_snn as snn
from mlx_snn import backends, cli
from mlx_snn.kernels import registry


@pytest.fixture
def launched(shim_metal, monkeypatch):
    """The names of the kernels run (in order), on the CPU shim standing in for Metal."""
    names = []
    launch = registry.launch

    def spy(name, *args, **kwargs):
        names.append(name)
        return launch(name, *args, **kwargs)

    monkeypatch.setattr(registry, "launch", spy)
    return names


def lif_entry(wired):
    """functional.lif_sequence on backend ``wired``, with the signature of
    kernels.lif_sequence (whose ``backend="metal"`` from run_case it replaces)."""

    def entry(x, v0, beta, threshold, *, backend, **options):
        out = snn.functional.lif_sequence(x, beta, threshold, v0=v0, backend=wired, **options)
        # the library returns the state in the carry dtype (float32 for half inputs, as
        # on MLX: test_lif_state_in_float32_on_metal); run_case compares it in x's dtype
        return out.spikes, out.mem, out.state.astype(x.dtype)

    return entry


def scan_entry(wired):
    """functional.linear_scan on backend ``wired``, with the signature of kernels.linear_scan."""

    def entry(a, b, h0, *, reverse, method, backend):
        return snn.functional.linear_scan(a, b, h0, reverse, backend=wired, method=method)

    return entry


def close(a, b, tol, name):
    assert_close(a, to_np(b), tol, name)


def grads_of(module, loss, *args):
    value, grads = nn.value_and_grad(module, lambda *a: loss(module, *a))(*args)
    return value, dict(nn.utils.tree_flatten(grads))


# --- backend resolution ---------------------------------------------------------


def test_auto_picks_metal_for_every_wired_op(launched):
    assert backends.kernel_backends() == ("metal",)
    assert backends.resolve("auto") == "metal"
    x = mx.random.normal((6, 2, 3), key=mx.random.key(0))
    snn.functional.lif_sequence(x)
    snn.functional.linear_scan(0.9, x)
    snn.functional.amos(x)
    snn.functional.first_spike(x)
    assert launched == ["lif_forward", "linear_scan", "amos_forward", "first_spike"]
    assert set(registry.WIRED) == {"lif_sequence", "linear_scan", "amos", "first_spike"}
    assert {k for names in registry.WIRED.values() for k in names} == set(registry.SPECS)


def test_auto_kernels_switch_keeps_auto_on_mlx(launched, monkeypatch):
    monkeypatch.setenv(backends.AUTO_KERNELS_ENV, "0")
    assert backends.resolve("auto") == "mlx"
    x = mx.random.normal((6, 2, 3), key=mx.random.key(0))
    snn.functional.lif_sequence(x)
    assert launched == []
    snn.functional.lif_sequence(x, backend="metal")  # an explicit backend still runs
    assert launched == ["lif_forward"]


def test_mlx_backend_and_empty_inputs_never_launch_a_kernel(launched):
    x = mx.random.normal((6, 2, 3), key=mx.random.key(1))
    snn.functional.lif_sequence(x, backend="mlx")
    snn.functional.linear_scan(0.9, x, backend="mlx")
    snn.functional.amos(x, backend="mlx")
    snn.functional.first_spike(x, backend="mlx")
    empty = mx.zeros((6, 0, 3))
    assert snn.functional.lif_sequence(empty, backend="metal").spikes.shape == (6, 0, 3)
    assert snn.functional.linear_scan(0.9, empty, backend="metal").shape == (6, 0, 3)
    assert snn.functional.amos(empty, backend="metal").t_first.shape == (0, 3)
    assert snn.functional.first_spike(empty, backend="metal").t_first.shape == (0, 3)
    assert launched == []


@dataclasses.dataclass(frozen=True)
class Bump(snn.surrogate.Surrogate):
    """A surrogate without a kernel-side derivative."""

    name = "bump"

    def derivative(self, x):
        return mx.exp(-x * x)


def test_calls_the_kernels_do_not_run_stay_on_mlx_under_auto(launched):
    x = mx.random.normal((30, 2, 4), key=mx.random.key(2)) + 0.3
    for kwargs in ({"surrogate": Bump()}, {"algorithm": "parallel"}):
        auto = snn.functional.lif_sequence(x, **kwargs)
        mlx = snn.functional.lif_sequence(x, backend="mlx", **kwargs)
        np.testing.assert_array_equal(np.array(auto.mem), np.array(mlx.mem))
    snn.ParallelLIF()(x)
    snn.LIF(surrogate=Bump())(x)
    for method in ("loop", "strided", "doubling"):
        snn.functional.linear_scan(0.9, x, method=method)
    for kwargs in ({"surrogate": Bump()}, {"method": "parallel"}, {"method": "sequential"}):
        snn.functional.amos(x, **kwargs)
    snn.AMOS(method="sequential")(x)
    assert launched == []


def test_a_kernel_backend_named_for_a_call_the_kernels_do_not_run_raises(shim_metal):
    x = mx.zeros((5, 2, 3))
    cases = [
        (lambda: snn.functional.lif_sequence(x, surrogate=Bump(), backend="metal"), "Bump"),
        (lambda: snn.functional.lif_sequence(x, algorithm="parallel", backend="metal"), ""),
        (lambda: snn.functional.parallel_lif_sequence(x, backend="metal"), "parallel"),
        (lambda: snn.ParallelLIF(backend="metal"), "algorithm='parallel'"),
        (lambda: snn.LIF(surrogate=Bump(), backend="metal"), "kernel-side derivative"),
        (lambda: snn.functional.linear_scan(0.9, x, method="strided", backend="metal"), ""),
        (lambda: snn.functional.amos(x, method="sequential", backend="metal"), "sequential"),
        (lambda: snn.AMOS(surrogate=Bump(), backend="metal"), "Bump"),
    ]
    for call, detail in cases:
        with pytest.raises(ValueError, match=f"backend='metal' cannot run this call.*{detail}"):
            call()


def test_a_kernel_backend_without_its_device_raises_for_every_wired_op():
    if backends.metal_device():
        pytest.skip("a Metal device is present")
    x = mx.zeros((5, 2, 3))
    calls = [
        lambda: snn.functional.lif_sequence(x, backend="metal"),
        lambda: snn.functional.linear_scan(0.9, x, backend="metal"),
        lambda: snn.functional.amos(x, backend="metal"),
        lambda: snn.functional.first_spike(x, backend="metal"),
        lambda: snn.functional.state_leaky(x, backend="metal"),
        lambda: snn.functional.temporal_selector(x, backend="metal"),
        lambda: snn.LIF(backend="metal"),
        lambda: snn.StateLeaky(backend="metal"),
        lambda: snn.AMOS(backend="metal"),
        lambda: snn.TemporalSelectorDecoder(3, 2, backend="metal"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"backend 'metal' is not available here \(no metal"):
            call()


# --- LIF ------------------------------------------------------------------------


@pytest.mark.parametrize("reset,timing,detach", test_kernels_lif.MODES)
@pytest.mark.parametrize("T", [1, 1024])
def test_lif_sequence_on_metal_matches_the_reference_and_the_mlx_path(
    launched, reset, timing, detach, T
):
    test_kernels_lif.run_case((T, 2, 5), 4090, reset, timing, detach, entry=lif_entry("metal"))
    assert launched == ["lif_forward", "lif_backward"]
    test_kernels_lif.run_case((T, 2, 5), 4090, reset, timing, detach, entry=lif_entry("mlx"))
    assert launched == ["lif_forward", "lif_backward"]


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "triangle"])
def test_lif_sequence_on_metal_with_other_surrogates(launched, surrogate):
    test_kernels_lif.run_case(
        (25, 3, 13), 2, "subtract", "immediate", False, surrogate, entry=lif_entry("metal")
    )
    assert launched == ["lif_forward", "lif_backward"]


def test_lif_sequence_on_metal_in_float16(launched):
    test_kernels_lif.run_case(
        (40, 2, 11), 3, "zero", "immediate", True, "atan", "float16", entry=lif_entry("metal")
    )
    assert launched == ["lif_forward", "lif_backward"]


def test_lif_state_in_float32_on_metal(launched):
    x = mx.ones((5, 2, 3), mx.bfloat16)
    for backend in ("metal", "mlx"):
        out = snn.functional.lif_sequence(x, 0.9, 1.5, backend=backend)
        assert (out.spikes.dtype, out.mem.dtype, out.state.dtype) == (
            mx.bfloat16,
            mx.bfloat16,
            mx.float32,
        ), backend


@pytest.mark.parametrize("algorithm", ["auto", "loop"])
def test_lif_module_on_metal_matches_mlx_with_learned_parameters(launched, algorithm):
    rng = np.random.default_rng(11)
    x = mx.array(rng.normal(0.3, 0.6, (300, 3, 4)).astype(np.float32))
    state = mx.array(rng.normal(0.0, 0.3, (3, 4)).astype(np.float32))
    w = mx.array(rng.normal(size=(300, 3, 4)).astype(np.float32))
    beta = rng.uniform(0.7, 0.95, 4).astype(np.float32)

    def loss(model, x_, state_):
        spikes, out = model(x_, state_, return_state=True)
        return (spikes * w).sum() + 0.1 * (out.mem * w).sum() + out.state.sum()

    results = {}
    for backend in ("metal", "mlx"):
        options = {"learn_beta": True, "learn_threshold": True, "algorithm": algorithm}
        model = snn.LIF(beta, 1.1, surrogate="atan", backend=backend, **options)
        results[backend] = grads_of(model, loss, x, state)
    assert launched == ["lif_forward", "lif_backward"]
    (v_k, g_k), (v_m, g_m) = results["metal"], results["mlx"]
    close(v_k, v_m, 1e-5, "loss")
    assert set(g_k) == set(g_m) == {"beta", "threshold"}
    for name in g_k:
        close(g_k[name], g_m[name], 1e-4, name)


# --- linear scan and StateLeaky -------------------------------------------------


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [1, 1024])
def test_linear_scan_on_metal_matches_the_reference_and_the_mlx_path(
    launched, T, reverse, per_step
):
    test_kernels_scan.run_case(T, 3, per_step, reverse, "auto", seed=T, entry=scan_entry("metal"))
    # two launches: the scan and its transpose; few lanes x long T run the chunked kernel
    assert launched == ["linear_scan_chunked" if T >= 256 else "linear_scan"] * 2
    test_kernels_scan.run_case(T, 3, per_step, reverse, "auto", seed=T, entry=scan_entry("mlx"))
    assert len(launched) == 2


def test_linear_scan_on_metal_in_float16(launched):
    test_kernels_scan.run_case(
        300, 5, True, False, "auto", 4, mx.float16, (4e-3, 4e-3), scan_entry("metal")
    )
    assert launched == ["linear_scan_chunked"] * 2


@pytest.mark.parametrize("T", [1, 1024])
def test_state_leaky_on_metal_matches_the_reference_and_the_mlx_path(launched, T):
    rng = np.random.default_rng(T)
    shape = (T, 2, 6)
    x = rng.normal(0.1, 0.4, shape).astype(np.float32)
    beta = rng.uniform(0.8, 0.99, 6).astype(np.float32)
    h0 = rng.normal(0.0, 0.3, shape[1:]).astype(np.float32)
    fw = ref_leaky.state_leaky_forward(x, beta, 1.0, h0)
    assert np.min(np.abs(fw["mem"] - 1.0)) > 1e-6, "near-tie at the threshold"
    g_s, g_m = rng.normal(size=shape), 0.1 * rng.normal(size=shape)
    g_v = rng.normal(size=shape[1:])
    want = ref_leaky.state_leaky_backward(
        x, g_s, g_m, g_v, beta, 1.0, lambda u: ref.surrogate_derivative("atan", u, alpha=2.0), h0
    )
    primals = [mx.array(v) for v in (x, beta, h0)]
    cot = [mx.array(v.astype(np.float32)) for v in (g_s, g_m, g_v)]
    for backend in ("metal", "mlx"):

        def f(x_, b_, h_, backend=backend):
            return tuple(snn.functional.state_leaky(x_, b_, 1.0, "atan", h_, backend))

        (spikes, mem, state), grads = mx.vjp(f, primals, cot)
        np.testing.assert_array_equal(to_np(spikes), fw["spikes"])
        assert_close(mem, fw["mem"], 1e-5, "mem")
        assert_close(state, fw["state"], 1e-5, "state")
        for name, g in zip(("x", "beta", "h0"), grads, strict=True):
            assert_close(g, want[name], 1e-4, f"{backend} grad {name}")
    scan = "linear_scan_chunked" if T >= 256 else "linear_scan"
    assert launched == [scan, scan]
    spikes = [
        snn.StateLeaky(primals[1], backend=b)(primals[0], primals[2]) for b in ("metal", "mlx")
    ]
    np.testing.assert_array_equal(np.array(spikes[0]), np.array(spikes[1]))
    assert launched == [scan] * 3


def test_associative_leaky_runs_its_chunk_scan_on_metal_under_auto(launched, monkeypatch):
    x = mx.random.normal((40, 2, 6), key=mx.random.key(4))
    layer = snn.AssociativeLeaky(6, 4, 3)

    def loss(model, x_):
        spikes, out = model(x_, return_state=True)
        return spikes.sum() + out.mem.sum() + out.state.sum()

    v_k, g_k = grads_of(layer, loss, x)
    assert launched and set(launched) == {"linear_scan"}
    monkeypatch.setattr(registry, "device_present", lambda backend: False)  # auto -> mlx
    v_m, g_m = grads_of(layer, loss, x)
    close(v_k, v_m, 1e-5, "loss")
    for name in g_k:
        close(g_k[name], g_m[name], 1e-4, name)


# --- AMOS, first spike, temporal selector ---------------------------------------


@pytest.mark.parametrize(
    "T,surrogate,dtype,tol",
    [
        (1, "atan", mx.float32, (1e-5, 1e-4)),
        (1024, "atan", mx.float32, (1e-5, 1e-4)),
        (1024, "fast_sigmoid", mx.float32, (1e-5, 1e-4)),
        (40, "atan", mx.float16, (2e-3, 4e-3)),
    ],
)
def test_amos_on_metal_matches_the_reference_and_the_mlx_path(launched, T, surrogate, dtype, tol):
    tau = 50.0 if T > 1 else 2.0
    x, th, rng = amos_inputs((T, 2, 7), 3, dtype)
    fw = ref_amos.amos_forward(x, tau, th)
    assert np.min(np.abs(fw["mem"] - th)) > 1e-6, "near-tie at the threshold"
    g_s = to_np(mx.array(rng.normal(size=x.shape).astype(np.float32)).astype(dtype))
    g_h = to_np(mx.array(0.1 * rng.normal(size=x.shape).astype(np.float32)).astype(dtype))
    params = test_kernels_lif.SURROGATES[surrogate]
    want = ref_amos.amos_backward(x, g_s, g_h, tau, th, surrogate, **params)
    surr = snn.surrogate.NAMES[surrogate](**params)
    x_in, th_in = mx.array(x).astype(dtype), mx.array(th)
    cot = [mx.array(g).astype(dtype) for g in (g_s, g_h)]
    for backend in ("metal", "mlx") if dtype == mx.float32 else ("metal",):

        def f(x_, backend=backend):
            return tuple(snn.functional.amos(x_, tau, th_in, surr, backend=backend)[:2])

        (spikes, mem), (g_x,) = mx.vjp(f, [x_in], cot)
        assert spikes.dtype == mem.dtype == dtype
        np.testing.assert_array_equal(to_np(spikes), fw["spikes"])
        assert_close(mem, fw["mem"], tol[0], "mem")
        assert_close(g_x, want, tol[1], f"{backend} grad x")
        t_first = snn.functional.amos(x_in, tau, th_in, surr, backend=backend).t_first
        np.testing.assert_array_equal(np.array(t_first), fw["t_first"])
    assert launched == ["amos_forward", "amos_backward", "amos_forward"]


def test_amos_module_on_metal_matches_mlx(launched):
    x = mx.random.normal((64, 3, 5), key=mx.random.key(3)) + 0.2
    metal, out_k = snn.AMOS(tau=4.0, backend="metal")(x, return_mem=True)
    mlx, out_m = snn.AMOS(tau=4.0, backend="mlx")(x, return_mem=True)
    np.testing.assert_array_equal(np.array(metal), np.array(mlx))
    np.testing.assert_array_equal(np.array(out_k.t_first), np.array(out_m.t_first))
    close(out_k.mem, out_m.mem, 1e-5, "mem")
    assert launched == ["amos_forward"]


@pytest.mark.parametrize("T", [1, 1024])
def test_first_spike_on_metal_matches_the_mlx_path(launched, T):
    rng = np.random.default_rng(T)
    h = mx.array(rng.normal(0.0, 0.5, (T, 3, 9)).astype(np.float32))
    th = mx.array(rng.uniform(1.0, 2.0, 9).astype(np.float32))
    metal = snn.functional.first_spike(h, th, backend="metal")
    mlx = snn.functional.first_spike(h, th, backend="mlx")
    for got, want in zip(metal, mlx, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(np.array(got), np.array(want))
    assert launched == ["first_spike"]


def test_temporal_selector_decoder_on_metal_matches_the_reference_and_mlx(launched):
    rng = np.random.default_rng(5)
    x = mx.array((rng.random((1024, 4, 6)) < 0.1).astype(np.float32))
    g = mx.array(rng.normal(size=(4, 3)).astype(np.float32))

    def loss(model, x_):
        return (model(x_) * g).sum()

    results = {}
    for backend in ("metal", "mlx"):
        model = snn.TemporalSelectorDecoder(6, 3, threshold=0.3, tau=30.0, backend=backend)
        if backend == "metal":
            params = model.parameters()
        else:
            model.update(params)
        results[backend] = grads_of(model, loss, x)
    assert launched == ["linear_scan_chunked", "first_spike", "linear_scan_chunked"]
    (v_k, g_k), (v_m, g_m) = results["metal"], results["mlx"]
    weight, bias = np.array(params["linear"]["weight"]), np.array(params["linear"]["bias"])
    tau = to_np(1.0 / mx.sigmoid(params["w"]))
    fw = ref_amos.selector_forward(to_np(x), weight, bias, tau, 0.3)
    assert_close(v_k, (fw["logits"] * to_np(g)).sum(), 1e-4, "loss")
    close(v_k, v_m, 1e-5, "loss vs mlx")
    for name in g_k:
        close(g_k[name], g_m[name], 1e-4, name)


# --- mlx-snn info ---------------------------------------------------------------


def test_info_lists_the_wired_ops_and_the_executors_that_run_them_here(shim_metal):
    info = cli.info()
    assert info["wired ops"] == (
        "lif_sequence (lif_forward, lif_backward), "
        "linear_scan (linear_scan, linear_scan_chunked), "
        "amos (amos_forward, amos_backward), first_spike (first_spike)"
    )
    assert info["kernel executors"] == "metal: ready, cuda: no device"
    assert info["custom kernels"] == "metal"
    assert info["backend for 'auto'"] == "metal"
    assert info["kernel surrogates"] == "fast_sigmoid, atan, sigmoid, triangle, straight_through"
