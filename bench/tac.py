"""TAC / TAC-TP speed: full training step of the paper's MNIST net, and the conv layers alone.

Usage: python bench/tac.py [--batch 128] [--reps 5] [--quick] [--no-layers]

Part 1 times one training step (forward + backward + Adam update, cross-entropy
on spike counts) of ``snn.models.mnist_convnet`` at T=25 in baseline, TAC
g in {2, 4, 8, 16} and TAC-TP g in {2, 4, 8} modes, all in one process, on the
same rate-coded input. Those modes make one batched call per conv layer; what
changes is the number of frames through it (per sample: conv1 + conv2, the
paper's "conv calls") and the steps the LIF layers run. One more row is the
paper's baseline literally (one conv call per time step, 2*T calls).

Part 2 times the conv layer alone, forward + backward (loss = sum(out * c),
gradients for the weights): SeqToBatch(conv) on T*B frames in one call, the
per-step loop (T calls of B frames), and TAC(conv) on ceil(T/g)*B frames, for
Conv2d(1->32, 3) on 28x28, T=25, B=--batch and Conv2d(2->128, 3, pad 1) on
64x64, T=16, B=16.

``--quick``: B=32 (MNIST), B=8 (DVS layer), 3 reps, 1 warm-up. Prints markdown
tables of medians and speed-ups (baseline median / row median, against both the
merged-call and the per-step-loop baseline) and writes
bench/results/tac-cpu-<host>.json (tac_quick-... with --quick; .md next to it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import markdown_table, save, shown, time_fn

MODES = [("baseline", 1), ("loop", 1)]
MODES += [("tac", g) for g in (2, 4, 8, 16)] + [("tactp", g) for g in (2, 4, 8)]
LAYER_OPS = ["merged", "loop", 2, 4, 8, 16]
LAYERS = [  # name, conv, T, frame shape, which batch size
    ("Conv2d(1->32,3) 28x28 T=25", lambda: nn.Conv2d(1, 32, 3), 25, (28, 28, 1), "mnist"),
    (
        "Conv2d(2->128,3,p1) 64x64 T=16",
        lambda: nn.Conv2d(2, 128, 3, padding=1),
        16,
        (64, 64, 2),
        "dvs",
    ),
]


class PerStepLoop(nn.Module):
    """The paper's baseline (its eq. 1): one call of ``module`` per time step."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def __call__(self, x):
        return mx.stack([self.module(x[t]) for t in range(x.shape[0])])


def _add_ratios(rows: list[list], medians: list[float]) -> None:
    """Append speed-ups vs the merged-call baseline (row 0) and the per-step loop (row 1)."""
    for row, m in zip(rows, medians, strict=True):
        row += [f"{medians[0] / m:.2f}x", f"{medians[1] / m:.2f}x"]


def _timed(step, reps: int, warmup: int) -> dict:
    mx.reset_peak_memory()
    t = time_fn(step, reps=reps, warmup=warmup)
    t["peak_memory_bytes"] = mx.get_peak_memory()
    return t


def _model(mode: str, g: int, T: int):
    """The model for a row and its conv calls per forward."""
    model = snn.models.mnist_convnet(
        mode="baseline" if mode == "loop" else mode, group=g, num_steps=T
    )
    if mode != "loop":
        return (
            model,
            2,
            mode if mode == "baseline" else f"{mode.upper().replace('TP', '-TP')} g={g}",
        )
    for block in (model.block1, model.block2):
        block.conv = PerStepLoop(block.conv.module)
    return model, 2 * T, "baseline, per-step conv loop"


def bench_model(batch: int, reps: int, warmup: int) -> tuple[list[dict], str]:
    T = 25
    images = mx.random.uniform(shape=(batch, 28, 28, 1), key=mx.random.key(0))
    x = snn.encode.rate(images, T, key=mx.random.key(1))
    y = mx.random.randint(0, 10, (batch,), key=mx.random.key(2))
    records, rows = [], []
    for mode, g in MODES:
        mx.random.seed(0)
        model, calls, label = _model(mode, g, T)
        opt = optim.Adam(1e-3, bias_correction=True)
        loss_and_grad = nn.value_and_grad(model, lambda a, b, m=model: snn.loss.ce_count(m(a), b))

        def step(model=model, opt=opt, loss_and_grad=loss_and_grad):
            loss, grads = loss_and_grad(x, y)
            opt.update(model, grads)
            mx.eval(loss, model.parameters(), opt.state)

        t = _timed(step, reps, warmup)
        steps = model.conv_steps()
        t_out = model(x).shape[0]
        rows.append(
            [
                label,
                calls,
                f"{steps[0]} + {steps[1]} = {sum(steps)}",
                sum(steps) * batch,
                t_out,
                f"{t['median_s'] * 1e3:.0f}",
                f"{t['min_s'] * 1e3:.0f}",
                f"{t['peak_memory_bytes'] / 2**20:.0f}",
            ]
        )
        records.append(
            {
                "mode": mode,
                "group": g,
                "conv_calls": calls,
                "conv_steps": steps,
                "output_steps": t_out,
                **t,
            }
        )
        print(f"  {label}: {t['median_s'] * 1e3:.0f} ms", file=sys.stderr)
    header = [
        f"mnist_convnet train step, T={T}, B={batch}",
        "conv calls",
        "conv frames / sample (conv1 + conv2)",
        "conv frames / batch",
        "output steps",
        "median ms",
        "min ms",
        "peak MiB",
        "speed-up vs baseline",
        "vs per-step loop",
    ]
    _add_ratios(rows, [r["median_s"] for r in records])
    return records, markdown_table(header, rows)


def _layer(conv, op):
    if op == "merged":
        return snn.SeqToBatch(conv), 1, "per-step frames, one merged call (SeqToBatch)"
    if op == "loop":
        return PerStepLoop(conv), None, "per-step loop (T calls)"
    return snn.TAC(conv, op, beta=0.9), 1, f"TAC g={op}"


def bench_layers(batches: dict, reps: int, warmup: int) -> tuple[list[dict], str]:
    records, rows = [], []
    for name, make, T, frame, which in LAYERS:
        b = batches[which]
        x = mx.random.bernoulli(0.2, (T, b, *frame), key=mx.random.key(3)).astype(mx.float32)
        conv = make()
        layer_rows, medians = [], []
        for op in LAYER_OPS:
            layer, calls, label = _layer(conv, op)
            out_shape = layer(x).shape
            c = mx.random.normal(out_shape, key=mx.random.key(4))
            grad_fn = nn.value_and_grad(layer, lambda a, m=layer, c=c: (m(a) * c).sum())

            def step(grad_fn=grad_fn, x=x):
                mx.eval(grad_fn(x))

            t = _timed(step, reps, warmup)
            medians.append(t["median_s"])
            calls = calls or T
            frames = out_shape[0] * b
            layer_rows.append(
                [f"{name}, B={b}", label, calls, frames, f"{t['median_s'] * 1e3:.1f}"]
            )
            records.append(
                {"layer": name, "batch": b, "op": op, "calls": calls, "frames": frames, **t}
            )
            print(f"  {name} {label}: {t['median_s'] * 1e3:.1f} ms", file=sys.stderr)
        _add_ratios(layer_rows, medians)
        rows += layer_rows
    header = ["conv layer (fwd + bwd)", "operator", "calls", "frames", "median ms"]
    header += ["speed-up vs merged call", "vs per-step loop"]
    return records, markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=None, help="MNIST batch (default 128)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 5)")
    parser.add_argument("--quick", action="store_true", help="B=32, 3 reps: a smoke run")
    parser.add_argument("--no-layers", action="store_true", help="skip the conv-layer timings")
    args = parser.parse_args()
    batch = args.batch or (32 if args.quick else 128)
    reps = args.reps or (3 if args.quick else 5)
    warmup = 1 if args.quick else 2
    print(f"mlx {mx.__version__}, device {mx.default_device()}", file=sys.stderr)
    model_records, model_table = bench_model(batch, reps, warmup)
    tables = [model_table]
    layer_records = []
    if not args.no_layers:
        batches = {"mnist": batch, "dvs": 8 if args.quick else 16}
        layer_records, layer_table = bench_layers(batches, reps, warmup)
        tables.append(layer_table)
    table = "\n\n".join(tables)
    print(table)
    path = save(
        "tac_quick" if args.quick else "tac",
        {
            "workload": "TAC / TAC-TP training step (mnist_convnet) and conv layers",
            "settings": {"batch": batch, "reps": reps, "warmup": warmup, "quick": args.quick},
            "model": model_records,
            "layers": layer_records,
            "table": table,
        },
    )
    print(f"\nwrote {shown(path)}")


if __name__ == "__main__":
    main()
