"""Workload 4: conv + LIF layer with TAC / TAC-TP vs the per-step baseline, ours and mlx-snn 0.5.0.

Usage: python bench/tac_conv.py [--quick] [--reps N] [--out DIR]
Shapes from the TAC paper: Conv2d(1->32, 3) on 28x28, T=25, B=128 (MNIST), and
Conv2d(2->128, 3) on 64x64, T=16 (DVS-like; B=8 here, the paper's B=16 on a GPU).
--quick uses B=16 and B=2 and g in {4}. A training step: forward, loss = sum of
spikes, gradient w.r.t. the conv parameters. Input: Bernoulli(0.3) spike frames.

Columns: ours per-step (SeqToBatch(Conv2d) -> LIF), ours ``TAC(conv, g, beta=0.9)``
-> LIF over ceil(T/g) steps, ours ``TACTP(conv, g, neuron=LIF)``; mlx-snn 0.5.0's
``TemporalAggregatedConv`` with chunk_size=1 (its per-step layer) and chunk_size=g
(its TAC). mlx-snn 0.5.0 has no TAC-TP. The baseline of each shape is timed once
and repeated in every g row. Guard: with our conv weights copied into the peer's
layer, its spikes are compared with ours (per-step with per-step, TAC with TAC).
The per-step layers agree exactly; mlx-snn 0.5.0's TAC is a different approximation
(a few % of spikes differ, about 1.5 % even with zero bias), so its TAC cell is
flagged MISMATCH and still timed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.runner import Impl, run_row

NAME = "tac_conv"
TITLE = "4. Conv+LIF with TAC / TAC-TP (CPU)"
BASE, TAC, TACTP = "ours per-step", "ours TAC", "ours TAC-TP"
P_BASE, P_TAC, P_TACTP = "mlx-snn 0.5.0 per-step", "mlx-snn 0.5.0 TAC", "mlx-snn 0.5.0 TAC-TP"
COLUMNS = [BASE, TAC, TACTP, P_BASE, P_TAC, P_TACTP]
BETA = 0.9


def spike_input(T, B, H, C, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((T, B, H, H, C)) < 0.3).astype(np.float32)


def _conv_weights(cin, cout, seed=1):
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(cin * 9)
    w = rng.uniform(-bound, bound, (cout, 3, 3, cin)).astype(np.float32) * 4.0
    b = rng.uniform(-bound, bound, (cout,)).astype(np.float32)
    return w, b


def _train_impl(model, call, x_np, reference: str) -> Impl:
    import mlx.core as mx
    import mlx.nn as nn

    x = mx.array(x_np)
    mx.eval(x)
    grad = nn.value_and_grad(model, lambda x_: call(x_).sum())

    def step():
        loss, grads = grad(x)
        mx.eval(loss, grads)

    def outputs():
        return (np.array(call(x)),)

    return Impl(step, outputs, "mlx", reference)


def ours(x_np, cin, cout, mode: str, g: int) -> Impl | str:
    import mlx.core as mx
    import mlx.nn as nn

    import mlx_snn as snn

    needed = {"tac": "TAC", "tactp": "TACTP"}.get(mode)
    if needed and not hasattr(snn, needed):
        return f"snn.{needed} is not in this tree yet"
    conv = nn.Conv2d(cin, cout, 3)
    w, b = _conv_weights(cin, cout)
    conv.update({"weight": mx.array(w), "bias": mx.array(b)})
    lif = snn.LIF(beta=BETA, threshold=1.0, surrogate="fast_sigmoid")
    if mode == "baseline":
        model = nn.Sequential(snn.SeqToBatch(conv), lif)
    elif mode == "tac":
        model = nn.Sequential(snn.TAC(conv, group=g, beta=BETA), lif)
    else:
        model = snn.TACTP(conv, group=g, neuron=lif, beta=BETA)
    return _train_impl(model, model, x_np, "baseline" if mode == "baseline" else mode)


def mlxsnn(x_np, cin, cout, chunk: int) -> Impl | str:
    import mlx.core as mx

    lib = peers.load("mlxsnn")
    if lib is None:
        return peers.missing_note("mlxsnn")
    layer = lib.TemporalAggregatedConv(cin, cout, 3, beta=BETA, chunk_size=chunk)
    w, b = _conv_weights(cin, cout)
    layer.update({"conv": {"weight": mx.array(w), "bias": mx.array(b)}})
    _, B, H = x_np.shape[:3]

    def call(x_):
        state = layer.init_state(batch_size=B, spatial_shape=(H - 2, H - 2))
        return layer(x_, state)[0]

    return _train_impl(layer, call, x_np, "baseline" if chunk == 1 else "tac")


def spike_guard(impl: Impl, ref: Impl) -> tuple[bool, str]:
    (s,), (r,) = impl.outputs(), ref.outputs()
    if s.shape != r.shape:
        return False, f"output shape {s.shape} != ours {r.shape}"
    frac = float(np.mean(s != r))
    return (frac <= 1e-4), ("" if frac == 0 else f"{frac:.2%} of spikes differ from ours")


def run(quick: bool = False, reps: int | None = None) -> dict:
    shapes = (
        [(1, 32, 28, 25, 16), (2, 128, 64, 16, 2)]
        if quick
        else [(1, 32, 28, 25, 128), (2, 128, 64, 16, 8)]
    )
    groups = (4,) if quick else (2, 4, 8, 16)
    n = reps or (3 if quick else 5)
    records = []
    for shape in shapes:
        records += shape_rows(*shape, groups=groups, reps=n)
    return {"records": records, "columns": COLUMNS}


def shape_rows(cin, cout, H, T, B, *, groups, reps) -> list[dict]:
    """The per-step baseline of one shape (timed once), then one row per group size."""
    x = spike_input(T, B, H, cin)
    case = f"Conv {cin}->{cout}, {H}x{H}, T={T}, B={B}"
    params = {"cin": cin, "cout": cout, "H": H, "T": T, "B": B}
    base = run_row(
        TITLE,
        case,
        {BASE: lambda: ours(x, cin, cout, "baseline", 1), P_BASE: lambda: mlxsnn(x, cin, cout, 1)},
        references={"baseline": BASE},
        guard=spike_guard,
        reps=reps,
        params=params,
    )
    records = []
    for g in groups:
        row = f"{case}, g={g}"
        for rec in base:
            records.append(
                {**rec, "row": row, "note": _shared(rec["note"]), "params": {**params, "g": 1}}
            )
        records += run_row(
            TITLE,
            row,
            {
                TAC: lambda g=g: ours(x, cin, cout, "tac", g),
                TACTP: lambda g=g: ours(x, cin, cout, "tactp", g),
                P_TAC: lambda g=g: mlxsnn(x, cin, cout, g),
                P_TACTP: lambda: "mlx-snn 0.5.0 has no TAC-TP",
            },
            references={"tac": TAC},
            guard=spike_guard,
            reps=reps,
            params={**params, "g": g},
        )
    return records


def _shared(note: str) -> str:
    return "; ".join(p for p in (note, "per-step time shared by the g rows") if p)


if __name__ == "__main__":
    from bench.suite import standalone

    standalone(sys.modules[__name__])
