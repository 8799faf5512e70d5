"""NIR exchange with snnTorch (skipped unless torch, snntorch, nirtorch and nir are installed).

snnTorch is never a dependency. Its ``export_to_nir`` writes ``tau = dt/(1-beta)``,
``r = tau/dt`` with ``dt = 1e-4`` and a zero ``v_reset`` whatever its reset
mechanism, and its ``Leaky`` resets one step late; so its graphs load here with
``dt=1e-4, reset_timing="delayed"`` (and ``reset="subtract"`` for a subtracting
``Leaky``, which the graph cannot say). Its ``import_from_nir`` builds
zero-reset ``Leaky(reset_delay=False)`` neurons with ``dt = 1e-4``: our
``reset="zero"`` LIF exported with ``dt=1e-4``. Spikes must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snntorch = pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")
pytest.importorskip("nir")

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402
from snntorch.utils import reset as reset_hidden  # noqa: E402

import mlx_snn as snn  # noqa: E402

T, B, N_IN, N_HID, N_OUT = 60, 4, 10, 32, 8


def _input(seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, (T, B, N_IN)).astype(np.float32)


def _run_torch(net, x):
    reset_hidden(net)
    spikes = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out = net(torch.from_numpy(x[t]))
            spikes.append(out[0] if isinstance(out, tuple) else out)
    return torch.stack(spikes).numpy()


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_snntorch_export_loads_here_with_the_same_spikes(reset):
    torch.manual_seed(0)

    def leaky(n, beta, **kw):
        # per-neuron beta/threshold: snnTorch writes 0-d arrays for scalars,
        # which NIR's type check rejects
        return snntorch.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n),
                              init_hidden=True, reset_mechanism=reset, **kw)  # fmt: skip

    net = torch.nn.Sequential(
        torch.nn.Linear(N_IN, N_HID),
        leaky(N_HID, 0.8),
        torch.nn.Linear(N_HID, N_OUT),
        leaky(N_OUT, 0.9, output=True),
    )
    with torch.no_grad():
        net[0].weight *= 4.0
        net[2].weight *= 4.0
    graph = export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0])
    x = _input()
    expected = _run_torch(net, x)

    override = {"reset": "subtract"} if reset == "subtract" else {}
    ours = snn.nir.load(graph, dt=1e-4, reset_timing="delayed", **override)
    lifs = ours.layers[1::2]
    assert [(m.reset, m.reset_timing) for m in lifs] == [(reset, "delayed")] * 2
    assert [m.beta for m in lifs] == [pytest.approx(0.8), pytest.approx(0.9)]
    np.testing.assert_array_equal(np.array(ours(mx.array(x))), expected)
    hidden = snn.nir.load(graph, dt=1e-4, reset_timing="delayed", **override).layers[:2]
    assert 0.05 < float(mx.mean(nn.Sequential(*hidden)(mx.array(x))).item()) < 0.9
    assert 0.02 < expected.mean() < 0.9


def test_our_export_loads_in_snntorch_with_the_same_spikes():
    mx.random.seed(0)
    mlp = nn.Sequential(
        nn.Linear(N_IN, N_HID),
        snn.LIF(beta=0.8, reset="zero"),
        nn.Linear(N_HID, N_OUT),
        snn.LIF(beta=0.9, threshold=0.5, reset="zero"),
    )
    mlp.layers[0].weight = mlp.layers[0].weight * 4.0
    mlp.layers[2].weight = mlp.layers[2].weight * 4.0
    x = _input(1)
    ours = np.array(mlp(mx.array(x)))
    hidden = np.array(nn.Sequential(*mlp.layers[:2])(mx.array(x)))
    assert 0.05 < hidden.mean() < 0.9
    assert 0.02 < ours.mean() < 0.9

    # snnTorch's importer assumes dt = 1e-4
    theirs = import_from_nir(snn.nir.export(mlp, mx.array(x), dt=1e-4))
    np.testing.assert_array_equal(_run_torch(theirs, x), ours)
