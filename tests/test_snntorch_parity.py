"""reset_timing="delayed" reproduces snnTorch's Leaky (skipped when snntorch is absent).

snnTorch is never a dependency; install it (with torch) to run this file.
Forward: spikes and membrane identical bit for bit. Backward (atan surrogate):
input gradients within 1e-5 * max(1, |g|).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snntorch = pytest.importorskip("snntorch")

import mlx.core as mx  # noqa: E402

import mlx_snn as snn  # noqa: E402


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_delayed_lif_equals_snntorch_leaky(reset):
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.6, size=(50, 4, 32)).astype(np.float32)
    w = rng.normal(size=x.shape).astype(np.float32)

    leaky = snntorch.Leaky(
        beta=0.8,
        threshold=1.0,
        spike_grad=snntorch.surrogate.atan(alpha=2.0),
        reset_mechanism=reset,
    )
    xt = torch.tensor(x, requires_grad=True)
    mem = leaky.reset_mem()
    spikes, mems = [], []
    for t in range(x.shape[0]):
        s, mem = leaky(xt[t], mem)
        spikes.append(s)
        mems.append(mem)
    spikes_t = torch.stack(spikes)
    (spikes_t * torch.tensor(w)).sum().backward()

    lif = snn.LIF(beta=0.8, threshold=1.0, surrogate="atan", reset=reset, reset_timing="delayed")
    ours, out = lif(mx.array(x), return_state=True)
    np.testing.assert_array_equal(np.array(ours), spikes_t.detach().numpy())
    np.testing.assert_array_equal(np.array(out.mem), torch.stack(mems).detach().numpy())
    assert 0.05 < float(np.array(ours).mean()) < 0.95

    g = mx.grad(lambda x_: (lif(x_) * mx.array(w)).sum())(mx.array(x))
    expected = xt.grad.numpy()
    err = np.max(np.abs(np.array(g) - expected))
    assert err <= 1e-5 * max(1.0, np.max(np.abs(expected)))
