"""Train the TAC paper's DVS128-Gesture SNN (baseline, TAC or TAC-TP) with its recipe.

Recipe (Collapse-or-Preserve paper, section 5.3 and Appendices E, F): events binned into
``T = 16`` frames of 64 x 64 x 2 (``mlx_snn.data.dvs_gesture``: log(1 + count) per bin, pixel
and polarity), ``snn.models.dvs_gesture_net`` (5 conv blocks, LIF beta 0.5 with atan surrogate,
10 voters per class), batch 16, 256 epochs, Adam, cosine schedule with warm restarts every 64
epochs, MSE between each class's voting-layer firing rate and the one-hot label, 11 classes.
The learning rate is lost from our copy of the paper's text; 1e-3 (``--lr``) is our choice.
Adam is bias-corrected, as in PyTorch. Seeds in the paper: 0, 42, 123.

    pip install "mlx-snn[dvs,examples]"
    python examples/dvs_gesture.py --mode tactp --group 2 --data-dir ~/data --out runs/tactp2
    python examples/dvs_gesture.py --synthetic --epochs 1 --limit 4 --test-limit 4 \\
        --num-bins 2 --batch-size 2 --plots       # a smoke run on generated data

``--data-dir`` is tonic's ``save_to`` folder (see ``mlx_snn.data.dvs_gesture``): put tonic's
archives ``ibmGestureTrain.tar.gz`` / ``ibmGestureTest.tar.gz`` or the folders extracted from
them in ``<data-dir>/DVSGesture/``, or pass ``--download`` to let tonic fetch them. The first
epoch bins the events and caches the frames (``--cache-dir``); later epochs read the cache.
``--synthetic`` writes a small fake dataset in tonic's layout into ``<out>/synthetic_data`` and
trains on it (tests and smoke runs; its accuracy means nothing).

Accuracy on the real DVS128-Gesture has NOT been measured by this project: our machines have
no copy of it (and no internet). The paper reports 96.30% (baseline), 95.13% (TAC-TP g=2) and
91.3% (TAC g=2) test accuracy.

Writes to ``--out``: ``metrics.json`` after every epoch (config, per-epoch train loss and
accuracy, test loss and accuracy, seconds; at the end the test confusion matrix),
``checkpoint.safetensors`` after every epoch and every ``--checkpoint-every`` steps (weights,
BatchNorm statistics, Adam state, position in the run, config and metrics so far),
``curves.png`` and ``confusion.png`` at the end, and with ``--plots`` the figures of
``mlx_snn.viz`` in ``plots/``. Ctrl-C saves a checkpoint after the step in flight and exits
with one line (a second Ctrl-C stops at once). Paths are stored relative to the repository.
``--resume`` continues bit-for-bit from an epoch's end or from the middle of an epoch: the
batch order of epoch ``e`` comes from ``(seed, e)`` and MLX's generator is reseeded before
each step from ``(seed, e, step)``, so ``--stop-after 1`` (or a Ctrl-C anywhere) then
``--resume`` ends with the same weights as one uninterrupted run. ``--epochs`` fixes the
schedule; ``--stop-after`` ends a run early. ``--cost`` evaluates once more under
``snn.monitor.Monitor`` and prints its table, also written to ``cost.json``.

Data parallel, unchanged: ``mlx.launch -n 2 python examples/dvs_gesture.py ...`` (README,
"Training on several processes, Macs or GPUs"). ``--batch-size`` is per rank (global batch
``batch_size * ranks``); each rank trains on its share of every global batch of the epoch's
order (the last ``n % ranks`` samples of that order are left out) and evaluates its share of
the test set; gradients and BatchNorm statistics are averaged, metrics summed over the ranks.
Learning rate ``--lr * sqrt(ranks)`` (``mlx_snn.distributed.scaled_lr``). Only rank 0 writes
``--out``; the data, frame cache and ``--resume``'s checkpoint must be at the same paths on
every host; a run resumes only with the number of ranks it was saved with; Ctrl-C on any rank
stops all of them after the same step.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np

import mlx_snn as snn
from mlx_snn import distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

CONFUSION = "confusion.png"
SIZE = 64
# config fields that must agree between a checkpoint and the run resuming it
SCHEDULE_FIELDS = (
    *common.SCHEDULE_FIELDS,
    *("mode", "group", "num_bins", "restart_epochs", "synthetic"),
)


@dataclass
class Config(common.RunConfig):
    """The recipe (module docstring); the settings every example has are in RunConfig."""

    mode: str = "baseline"
    group: int = 2
    num_bins: int = 16
    epochs: int = 256
    batch_size: int = 16
    eval_batch_size: int = 16
    restart_epochs: int = 64
    download: bool = False
    cache_dir: str | None = None
    no_cache: bool = False
    synthetic: bool = False
    out: str = "runs/dvs_gesture"
    checkpoint_every: int = 20
    prefetch: int = 2


def warm_restarts(lr: float, steps_per_epoch: int, restart_epochs: int, epochs: int):
    """Cosine annealing with warm restarts, constant within an epoch (PyTorch's
    ``CosineAnnealingWarmRestarts(T_0=restart_epochs)`` stepped once per epoch):
    ``lr * (1 + cos(pi * (e mod P) / P)) / 2`` in epoch ``e``, ``P = restart_epochs`` (0: the
    whole run, one cosine)."""
    period = restart_epochs or epochs

    def schedule(step):
        epoch = step // steps_per_epoch
        return lr * 0.5 * (1.0 + mx.cos((math.pi / period) * mx.remainder(epoch, period)))

    return schedule


def load_data(cfg: Config, out: Path):
    """Train and test :class:`mlx_snn.data.DVSGestureFrames`."""
    data_dir, cache = cfg.data_dir, True
    if cfg.synthetic:
        data_dir = out / "synthetic_data"
        if dist.is_main() and not (data_dir / "DVSGesture").exists():
            snn.data.synthetic_dvs_gesture(data_dir)
        dist.barrier()  # the other ranks read what rank 0 wrote
        cache = data_dir / "frames"
    if cfg.no_cache:
        cache = False
    elif cfg.cache_dir is not None:
        cache = cfg.cache_dir
    with warnings.catch_warnings():
        if cfg.synthetic:  # it is a small subset on purpose
            warnings.filterwarnings("ignore", message=".*recordings; tonic's")
        return [
            snn.data.dvs_gesture(
                split, data_dir, cfg.num_bins, SIZE, cache=cache, download=cfg.download
            )
            for split in ("train", "test")
        ]


def predictions(rates: mx.array) -> mx.array:
    """The class whose voters fire most over time, from ``rates [T, B, 11]``."""
    return mx.argmax(rates.mean(axis=0), axis=-1)


def loss_fn(model: nn.Module, frames: mx.array, labels: mx.array):
    """MSE on the voting layer's firing rates for ``frames [T, B, 64, 64, 2]``; and the hits."""
    rates = model(frames)
    return snn.loss.mse_rate(rates, labels), mx.sum(predictions(rates) == labels)


def evaluate(
    model: nn.Module, loader: snn.data.FrameLoader, reduce: bool = True
) -> tuple[float, float, np.ndarray]:
    """Test loss, accuracy and confusion matrix ``[true, predicted]`` (eval-mode BatchNorm).

    Under ``mlx.launch`` each rank's ``loader`` holds its share of the test set and the sums
    are taken over the ranks (``reduce=False``: this process's ``loader`` alone).
    """
    model.eval()
    confusion = np.zeros((11, 11), dtype=np.int64)
    loss_sum, n = 0.0, 0
    for frames, labels in loader.epoch(0):
        rates = model(frames)
        loss_sum += snn.loss.mse_rate(rates, labels).item() * labels.shape[0]
        np.add.at(confusion, (np.array(labels), np.array(predictions(rates))), 1)
        n += labels.shape[0]
    model.train()
    if reduce:
        confusion = dist.all_sum(confusion).astype(np.int64)
        loss_sum, n = dist.all_sum([loss_sum, n])
    return float(loss_sum / n), float(np.trace(confusion) / n), confusion


def subset(n: int, limit: int | None) -> range:
    return range(n if limit is None else min(n, limit))


def rank_batches(loader: snn.data.FrameLoader, epoch: int, start: int):
    """This rank's batches of ``epoch`` from step ``start`` on: its share of each global batch
    of ``loader.order(epoch)`` (``batch_size * ranks`` samples; the last ``n % ranks`` samples
    of the order are left out, so that all ranks run the same steps on equal batches). One
    process: ``loader``'s own batches of that epoch."""
    mine = dist.shard(loader.order(epoch), drop_remainder=True)[start * loader.batch_size :]
    return snn.data.FrameLoader(
        loader.dataset, loader.batch_size, shuffle=False, prefetch=loader.prefetch, indices=mine
    ).epoch(0)


def train(cfg: Config) -> dict:
    """Run the recipe described by ``cfg``; return the metrics written to ``metrics.json``.

    Raises ``_common.Interrupted`` after saving a checkpoint when Ctrl-C was pressed.
    """
    cfg, out = common.prepare(cfg)
    train_set, test_set = load_data(cfg, out)
    loader = snn.data.FrameLoader(
        train_set,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        prefetch=cfg.prefetch,
        indices=subset(len(train_set), cfg.limit),
    )
    test_samples = subset(len(test_set), cfg.test_limit)

    def test_loader(samples) -> snn.data.FrameLoader:
        return snn.data.FrameLoader(
            test_set, cfg.eval_batch_size, shuffle=False, prefetch=cfg.prefetch, indices=samples
        )

    my_test = test_loader(dist.shard(test_samples))  # this rank's share
    n = len(loader.indices)
    common.check_ranks(n, "training samples")
    steps = common.steps_per_epoch(n, cfg.batch_size)

    mx.random.seed(cfg.seed)
    model = snn.models.dvs_gesture_net(mode=cfg.mode, group=cfg.group, num_steps=cfg.num_bins)
    # sqrt(ranks) * lr: see mlx_snn.distributed.scaled_lr
    schedule = warm_restarts(dist.scaled_lr(cfg.lr), steps, cfg.restart_epochs, cfg.epochs)
    run = common.Run(cfg, model, schedule, loss_fn, SCHEDULE_FIELDS)  # --resume: restores

    def train_batch(batch) -> dict[str, float]:
        frames, labels = batch
        loss, hits = run.step(frames, labels)
        b = labels.shape[0]
        return {"samples": b, "loss": loss.item() * b, "correct": hits.item()}

    facts = common.run_facts(cfg, n, len(test_samples), steps)

    def metrics(history: list[dict]) -> dict:
        return {
            **facts,
            "conv_frames_per_sample": list(model.conv_steps(cfg.num_bins)),
            "frame_cache": common.portable_path(train_set.cache_dir),
            "frame_cache_stats": dataclasses.asdict(train_set.cache_stats),
            "history": history,
        }

    confusion = None
    with run:
        for epoch in run.epochs():
            batches = rank_batches(loader, epoch, run.progress.step)
            run.train_epoch(epoch, steps, batches, train_batch)
            tic = time.perf_counter()
            test_loss, test_acc, confusion = evaluate(model, my_test)
            run.history.append(
                {
                    "epoch": epoch + 1,
                    "lr": float(schedule(mx.array(epoch * steps))),
                    **run.progress.summary(),
                    "test_loss": test_loss,
                    "test_acc": test_acc,
                    "test_seconds": time.perf_counter() - tic,
                }
            )
            run.end_epoch(metrics)
    if not run.history:
        return {"history": []}
    if confusion is None:  # nothing trained in this run: evaluate the checkpoint
        _, _, confusion = evaluate(model, my_test)
    if not dist.is_main():  # rank 0 writes the results
        return {"history": run.history}
    result = run.write_metrics(
        lambda history: {**metrics(history), "test_confusion": confusion.tolist()}
    )
    if cfg.cost:
        everything = functools.partial(evaluate, model, test_loader(test_samples), reduce=False)
        common.cost_report(model, everything, out / "cost.json")
    title = f"DVS-Gesture {cfg.mode}" + (f" g={cfg.group}" if cfg.mode != "baseline" else "")
    title += " (synthetic data)" if cfg.synthetic else ""
    common.plot_curves(run.history, out / common.CURVES, title, "MSE on firing rates")
    snn.viz.confusion_matrix(
        confusion,
        out / CONFUSION,
        class_names=test_set.classes,
        title=f"{title}: test accuracy {100 * np.trace(confusion) / confusion.sum():.2f}%",
    )
    if cfg.plots:
        batches = my_test.epoch(0)
        frames, _ = next(batches)
        batches.close()
        common.plot_paper_net(model, frames, out / "plots", title)
    return result


def parse_args(argv: list[str] | None = None) -> Config:
    p = common.parser(__doc__)
    common.add_tac_flags(p)
    p.add_argument("--num-bins", type=int, help="time bins T per recording")
    p.add_argument("--epochs", type=int, help="length of the schedule")
    p.add_argument("--restart-epochs", type=int, help="warm-restart period (0: one cosine)")
    p.add_argument("--data-dir", help="tonic's save_to folder (default: cache)")
    p.add_argument("--download", action="store_true", help="let tonic download missing data")
    p.add_argument("--cache-dir", help="folder of the binned-frame cache")
    p.add_argument("--no-cache", action="store_true", help="bin the events every epoch")
    p.add_argument("--synthetic", action="store_true", help="train on generated fake data")
    p.add_argument("--prefetch", type=int, help="batches read ahead by a thread")
    common.add_run_flags(p, "about 3 per epoch of the full dataset")
    args = common.parse_flags(p, Config, argv)
    common.check_at_least(p, args, 0, ["restart_epochs", "prefetch"])
    common.check_at_least(p, args, 1, ["group", "num_bins"])
    return Config(**vars(args))


def summary(last: dict) -> str:
    return f"epoch {last['epoch']}: test accuracy {100 * last['test_acc']:.2f}%"


def main(argv: list[str] | None = None) -> int:
    modules = ("tqdm", "matplotlib", "tonic")
    return common.main("examples/dvs_gesture.py", train, parse_args(argv), summary, modules)


if __name__ == "__main__":
    sys.exit(main())
