"""DVS128-Gesture: event binning (ours vs tonic's transforms) and the paper network's train step.

Usage: python bench/dvs.py [--quick] [--batch 16] [--reps 3] [--out DIR] [--no-train]

Part 1 bins the same synthetic recordings (``snn.data.dvs_synthetic.synthetic_recording``, as
tonic hands them over: x, y, bool p, t in microseconds) into the paper's 16 frames of
64 x 64 x 2 with ``log(1 + count)``, channels-last, two ways, and reports events binned per
second and the ratio:

- ours: ``snn.data.event_frames`` (checks, tonic's ``Downsample``, one ``np.bincount``);
- tonic: ``Compose([Downsample(spatial_factor=0.5), ToFrame(sensor_size=(64, 64, 2),
  n_time_bins=16)])``, then ``log1p`` and a transpose to ``[T, H, W, P]``.

They do not compute the same thing: tonic's windows drop the end of every recording (the
events it dropped are counted in the table). Part 2 times one training step (forward, backward,
bias-corrected Adam; MSE on voting-layer rates) of ``snn.models.dvs_gesture_net`` at the paper's
shape, T=16, B=16, 64x64x2, in baseline, TAC g=2 and TAC-TP g=2 modes, in one process.

``--quick``: 8 recordings of 50k events, B=2, 2 reps; otherwise 16 recordings of 300k events,
B=16, 3 reps. Writes ``dvs-cpu-<host>.json`` (``dvs_quick-...`` with ``--quick``) and ``.md``
to ``--out`` (default bench/results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlx_snn as snn
from bench.harness import markdown_table, save, time_fn
from mlx_snn.data.dvs_synthetic import synthetic_recording

T, SIZE = 16, 64
MODES = [("baseline", 1), ("tac", 2), ("tactp", 2)]


def recordings(count: int, num_events: int) -> list[np.ndarray]:
    """Synthetic recordings in tonic's event format (t in microseconds)."""
    rng = np.random.default_rng(0)
    dtype = [("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)]
    out = []
    for k in range(count):
        raw = synthetic_recording(k % 11, rng, num_events, int(rng.integers(4000, 8000)))
        events = np.zeros(num_events, dtype=dtype)
        events["x"], events["y"], events["p"] = raw[:, 0], raw[:, 1], raw[:, 2]
        events["t"] = (raw[:, 3] * 1000).astype(np.int64)
        out.append(events)
    return out


def bench_binning(events: list[np.ndarray], reps: int) -> tuple[list[dict], str]:
    import tonic.transforms as tt

    to_frames = tt.Compose(
        [tt.Downsample(spatial_factor=SIZE / 128), tt.ToFrame((SIZE, SIZE, 2), n_time_bins=T)]
    )

    def ours():
        return [snn.data.event_frames(e, T, SIZE) for e in events]

    def theirs():
        return [np.log1p(to_frames(e).transpose(0, 2, 3, 1), dtype=np.float32) for e in events]

    total = sum(len(e) for e in events)
    lost = {
        "ours (event_frames)": [
            len(e) - int(snn.data.event_counts(e, T, SIZE).sum()) for e in events
        ],
        "tonic (Downsample + ToFrame)": [
            len(e) - int(to_frames(e).astype(np.int64).sum()) for e in events
        ],
    }
    records, rows = [], []
    for name, fn in (("ours (event_frames)", ours), ("tonic (Downsample + ToFrame)", theirs)):
        t = time_fn(fn, reps=reps, warmup=1)
        records.append({"impl": name, "events": total, "events_per_s": total / t["median_s"], **t})
    for rec in records:
        rows.append(
            [
                rec["impl"],
                f"{rec['median_s'] * 1e3:.1f}",
                f"{rec['events_per_s'] / 1e6:.1f}",
                f"{records[1]['median_s'] / rec['median_s']:.2f}x",
                f"{sum(lost[rec['impl']])} (max {max(lost[rec['impl']])} per recording)",
            ]
        )
        rec["events_dropped"] = lost[rec["impl"]]
    header = [
        f"binning {len(events)} recordings, {total} events -> [{T}, {SIZE}, {SIZE}, 2]",
        "median ms",
        "M events / s",
        "speed vs tonic",
        "events dropped",
    ]
    return records, markdown_table(header, rows)


def bench_train_step(batch: int, reps: int) -> tuple[list[dict], str]:
    x = mx.random.uniform(shape=(T, batch, SIZE, SIZE, 2), key=mx.random.key(0))
    x = mx.log1p(mx.floor(4 * x * x))
    y = mx.random.randint(0, 11, (batch,), key=mx.random.key(1))
    records, rows = [], []
    for mode, g in MODES:
        mx.random.seed(0)
        model = snn.models.dvs_gesture_net(mode=mode, group=g, num_steps=T)
        opt = optim.Adam(1e-3, bias_correction=True)
        loss_and_grad = nn.value_and_grad(model, lambda a, b, m=model: snn.loss.mse_rate(m(a), b))

        def step(model=model, opt=opt, loss_and_grad=loss_and_grad):
            loss, grads = loss_and_grad(x, y)
            opt.update(model, grads)
            mx.eval(loss, model.parameters(), opt.state)

        mx.reset_peak_memory()
        t = time_fn(step, reps=reps, warmup=1)
        t["peak_memory_bytes"] = mx.get_peak_memory()
        label = mode if mode == "baseline" else f"{mode.upper().replace('TP', '-TP')} g={g}"
        steps = model.conv_steps(T)
        records.append({"mode": mode, "group": g, "conv_steps": list(steps), **t})
        rows.append(
            [
                label,
                " + ".join(map(str, steps)) + f" = {sum(steps)}",
                f"{t['median_s'] * 1e3:.0f}",
                f"{t['min_s'] * 1e3:.0f}",
                f"{records[0]['median_s'] / t['median_s']:.2f}x",
                f"{t['peak_memory_bytes'] / 2**20:.0f}",
            ]
        )
        print(f"  {label}: {t['median_s'] * 1e3:.0f} ms", file=sys.stderr)
    header = [
        f"dvs_gesture_net train step, T={T}, B={batch}, {SIZE}x{SIZE}x2",
        "conv frames / sample",
        "median ms",
        "min ms",
        "speed-up vs baseline",
        "peak MiB",
    ]
    return records, markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--batch", type=int, default=None, help="train-step batch (default 16)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--no-train", action="store_true", help="skip the train-step timings")
    args = parser.parse_args()
    count, num_events = (8, 50_000) if args.quick else (16, 300_000)
    batch = args.batch or (2 if args.quick else 16)
    reps = args.reps or (2 if args.quick else 3)
    print(f"mlx {mx.__version__}, device {mx.default_device()}", file=sys.stderr)
    binning, table = bench_binning(recordings(count, num_events), max(reps, 5))
    tables, train = [table], []
    if not args.no_train:
        train, train_table = bench_train_step(batch, reps)
        tables.append(train_table)
    table = "\n\n".join(tables)
    print(table)
    path = save(
        "dvs_quick" if args.quick else "dvs",
        {
            "workload": "DVS-Gesture event binning and dvs_gesture_net train step",
            "settings": {
                "recordings": count,
                "events_per_recording": num_events,
                "batch": batch,
                "reps": reps,
                "quick": args.quick,
            },
            "binning": binning,
            "train_step": train,
            "table": table,
        },
        out=args.out,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
