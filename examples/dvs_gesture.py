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
``checkpoint.safetensors`` after every epoch (weights, BatchNorm statistics, Adam state, epoch,
config, history), ``confusion.png`` at the end, and with ``--plots`` the figures of
``mlx_snn.viz`` in ``plots/``. ``--resume`` continues bit-for-bit: the batch order of epoch
``e`` and MLX's generator are drawn from ``(seed, e)`` alone, so ``--stop-after 1`` then
``--resume`` ends with the same weights as one uninterrupted run. ``--epochs`` fixes the
schedule; ``--stop-after`` ends a run early.

Data parallel, unchanged: ``mlx.launch -n 2 python examples/dvs_gesture.py ...`` (README,
"Training on several processes, Macs or GPUs"). ``--batch-size`` is per rank (global batch
``batch_size * ranks``); each rank trains on its share of every global batch of the epoch's
order (the last ``n % ranks`` samples of that order are left out) and evaluates its share of
the test set; gradients and BatchNorm statistics are averaged, metrics summed over the ranks.
Learning rate ``--lr * sqrt(ranks)`` (``mlx_snn.distributed.scaled_lr``). Only rank 0 writes
``--out``; the data, frame cache and ``--resume``'s checkpoint must be at the same paths on
every host; a run resumes only with the number of ranks it was saved with.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

import mlx_snn as snn
from mlx_snn import distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    CHECKPOINT,
    load_checkpoint,
    save_checkpoint,
    seed_epoch,
    write_spike_plots,
)

METRICS = "metrics.json"
CONFUSION = "confusion.png"
SIZE = 64
# config fields that must agree between a checkpoint and the run resuming it
SCHEDULE_FIELDS = (
    "mode",
    "group",
    "num_bins",
    "epochs",
    "limit",
    "batch_size",
    "lr",
    "restart_epochs",
    "seed",
    "synthetic",
    "ranks",
)


@dataclass
class Config:
    mode: str = "baseline"
    group: int = 2
    num_bins: int = 16
    epochs: int = 256
    stop_after: int | None = None
    limit: int | None = None
    test_limit: int | None = None
    batch_size: int = 16
    eval_batch_size: int = 16
    lr: float = 1e-3
    restart_epochs: int = 64
    seed: int = 0
    data_dir: str | None = None
    download: bool = False
    cache_dir: str | None = None
    no_cache: bool = False
    synthetic: bool = False
    out: str = "runs/dvs_gesture"
    resume: bool = False
    compile: bool = False
    plots: bool = False
    prefetch: int = 2
    quiet: bool = False
    ranks: int = 1  # processes of the run (set from mlx.launch's group, not an option)


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


def make_train_step(model: nn.Module, optimizer: optim.Optimizer, use_compile: bool):
    """``step(frames [T, B, 64, 64, 2], labels [B]) -> (loss, correct)``; updates in place."""

    def loss_fn(frames, labels):
        rates = model(frames)
        loss = snn.loss.mse_rate(rates, labels)
        return loss, mx.sum(mx.argmax(rates.mean(axis=0), axis=-1) == labels)

    grad_fn = nn.value_and_grad(model, loss_fn)

    def step(frames, labels):
        (loss, correct), grads = grad_fn(frames, labels)
        # under mlx.launch: the mean over the ranks, BatchNorm statistics in the same all-reduce
        grads, stats = dist.all_mean((grads, dist.running_stats(model)))
        model.update(stats)
        optimizer.update(model, grads)
        return loss, correct

    if not use_compile:
        return step
    state = [model.state, optimizer.state, mx.random.state]
    return mx.compile(step, inputs=state, outputs=state)


def evaluate(model: nn.Module, loader: snn.data.FrameLoader) -> tuple[float, float, np.ndarray]:
    """Test loss, accuracy and confusion matrix ``[true, predicted]`` (eval-mode BatchNorm).

    Under ``mlx.launch`` each rank's ``loader`` holds its share of the test set and the sums
    are taken over the ranks.
    """
    model.eval()
    confusion = np.zeros((11, 11), dtype=np.int64)
    loss_sum, n = 0.0, 0
    for frames, labels in loader.epoch(0):
        rates = model(frames)
        loss_sum += snn.loss.mse_rate(rates, labels).item() * labels.shape[0]
        predicted = np.array(mx.argmax(rates.mean(axis=0), axis=-1))
        np.add.at(confusion, (np.array(labels), predicted), 1)
        n += labels.shape[0]
    model.train()
    confusion = dist.all_sum(confusion).astype(np.int64)
    loss_sum, n = dist.all_sum([loss_sum, n])
    return float(loss_sum / n), float(np.trace(confusion) / n), confusion


def subset(n: int, limit: int | None) -> range:
    return range(n if limit is None else min(n, limit))


def rank_loader(loader: snn.data.FrameLoader, epoch: int) -> snn.data.FrameLoader:
    """The batches this rank trains on in ``epoch``: its share of each global batch of
    ``loader.order(epoch)`` (``batch_size * ranks`` samples; the last ``n % ranks`` samples of
    the order are left out, so that all ranks run the same steps on equal batches). One
    process: ``loader``'s own batches of that epoch, read with ``.epoch(0)``."""
    return snn.data.FrameLoader(
        loader.dataset,
        loader.batch_size,
        shuffle=False,
        prefetch=loader.prefetch,
        indices=dist.shard(loader.order(epoch), drop_remainder=True),
    )


def train(cfg: Config) -> dict:
    """Run the recipe described by ``cfg``; return the metrics written to ``metrics.json``."""
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, ranks=dist.size())
    train_set, test_set = load_data(cfg, out)
    loader = snn.data.FrameLoader(
        train_set,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        prefetch=cfg.prefetch,
        indices=subset(len(train_set), cfg.limit),
    )
    test_loader = snn.data.FrameLoader(
        test_set,
        cfg.eval_batch_size,
        shuffle=False,
        prefetch=cfg.prefetch,
        indices=dist.shard(subset(len(test_set), cfg.test_limit)),  # this rank's share
    )
    if len(loader.indices) < cfg.ranks:
        raise SystemExit(
            f"{len(loader.indices)} training samples cannot be shared by {cfg.ranks} ranks"
        )
    steps = len(rank_loader(loader, 0))

    mx.random.seed(cfg.seed)
    model = snn.models.dvs_gesture_net(mode=cfg.mode, group=cfg.group, num_steps=cfg.num_bins)
    # sqrt(ranks) * lr: see mlx_snn.distributed.scaled_lr
    schedule = warm_restarts(dist.scaled_lr(cfg.lr), steps, cfg.restart_epochs, cfg.epochs)
    optimizer = optim.Adam(learning_rate=schedule, bias_correction=True)
    optimizer.init(model.trainable_parameters())
    config = dataclasses.asdict(cfg)
    start_epoch, history = 0, []
    if cfg.resume and (out / CHECKPOINT).exists():
        start_epoch, history = load_checkpoint(
            out / CHECKPOINT, model, optimizer, config, SCHEDULE_FIELDS
        )
    elif cfg.resume:
        raise SystemExit(f"--resume: no {CHECKPOINT} in {out}")
    mx.eval(model.parameters(), optimizer.state)
    checksum = sum(mx.sum(mx.abs(v)).item() for _, v in tree_flatten(model.parameters()))
    dist.check_same([start_epoch, checksum], "the starting model (or checkpoint)")
    model.train()
    step = make_train_step(model, optimizer, cfg.compile)
    metrics = {
        "config": config,
        "train_samples": len(loader.indices),
        "test_samples": len(subset(len(test_set), cfg.test_limit)),
        "steps_per_epoch": steps,
        "global_batch_size": cfg.batch_size * cfg.ranks,
        "conv_frames_per_sample": list(model.conv_steps(cfg.num_bins)),
        "frame_cache": str(train_set.cache_dir),
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
        "history": history,
    }

    last = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    for epoch in range(start_epoch, last):
        seed_epoch(cfg.seed, epoch)
        loss_sum, correct, seen = 0.0, 0, 0
        step_seconds = []
        tic = time.perf_counter()
        bar = tqdm(
            rank_loader(loader, epoch).epoch(0), total=steps,
            desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=cfg.quiet or not dist.is_main(),
        )  # fmt: skip
        t_step = time.perf_counter()
        for frames, labels in bar:
            loss, hits = step(frames, labels)
            mx.eval(loss, hits, model.state, optimizer.state)
            b = labels.shape[0]
            sums = dist.all_sum([b, loss.item() * b, hits.item()])  # over the ranks
            seen += int(sums[0])
            loss_sum += float(sums[1])
            correct += int(sums[2])
            step_seconds.append(time.perf_counter() - t_step)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
            t_step = time.perf_counter()
        train_seconds = time.perf_counter() - tic
        tic = time.perf_counter()
        test_loss, test_acc, confusion = evaluate(model, test_loader)
        history.append(
            {
                "epoch": epoch + 1,
                "lr": float(schedule(mx.array(epoch * steps))),
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "train_seconds": train_seconds,
                "first_step_seconds": step_seconds[0],
                "median_step_seconds": float(np.median(step_seconds[1:] or step_seconds)),
                "test_seconds": time.perf_counter() - tic,
            }
        )
        if not dist.is_main():  # rank 0 writes checkpoints, metrics and logs
            continue
        save_checkpoint(out / CHECKPOINT, model, optimizer, epoch + 1, config, history)
        metrics["frame_cache_stats"] = dataclasses.asdict(train_set.cache_stats)
        (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        if not cfg.quiet:
            print(json.dumps(history[-1]), file=sys.stderr)

    if history:
        if start_epoch >= last:  # nothing trained in this run: evaluate the checkpoint
            _, _, confusion = evaluate(model, test_loader)
        if not dist.is_main():
            return metrics
        metrics["test_confusion"] = confusion.tolist()
        (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        title = f"DVS-Gesture {cfg.mode}" + (f" g={cfg.group}" if cfg.mode != "baseline" else "")
        title += " (synthetic data)" if cfg.synthetic else ""
        snn.viz.confusion_matrix(
            confusion,
            out / CONFUSION,
            class_names=test_set.classes,
            title=f"{title}: test accuracy {100 * np.trace(confusion) / confusion.sum():.2f}%",
        )
        if cfg.plots:
            batches = test_loader.epoch(0)
            frames, _ = next(batches)
            batches.close()
            write_spike_plots(model, frames, out / "plots", title)
    return metrics


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=snn.models.MODES, default="baseline")
    p.add_argument("--group", type=int, default=2, help="TAC group size g")
    p.add_argument("--num-bins", type=int, default=16, help="time bins T per recording")
    p.add_argument("--epochs", type=int, default=256, help="length of the schedule")
    p.add_argument("--stop-after", type=int, default=None, help="end after this many epochs")
    p.add_argument("--limit", type=int, default=None, help="use the first N training samples")
    p.add_argument("--test-limit", type=int, default=None, help="use the first N test samples")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--restart-epochs", type=int, default=64, help="warm-restart period (0: one cosine)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="tonic's save_to folder (default: cache)")
    p.add_argument("--download", action="store_true", help="let tonic download missing data")
    p.add_argument("--cache-dir", default=None, help="folder of the binned-frame cache")
    p.add_argument("--no-cache", action="store_true", help="bin the events every epoch")
    p.add_argument("--synthetic", action="store_true", help="train on generated fake data")
    p.add_argument("--out", default="runs/dvs_gesture", help="folder for metrics, checkpoints")
    p.add_argument("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT}")
    p.add_argument("--compile", action="store_true", help="mx.compile the train step")
    p.add_argument("--plots", action="store_true", help="write spike plots to --out/plots")
    p.add_argument("--prefetch", type=int, default=2, help="batches read ahead by a thread")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for name in ("group", "num_bins", "epochs", "batch_size", "eval_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    for name in ("stop_after", "limit", "test_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    for name in ("restart_epochs", "prefetch"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0; got {getattr(args, name)}")
    return Config(**vars(args))


def main(argv: list[str] | None = None) -> int:
    metrics = train(parse_args(argv))
    if metrics["history"] and dist.is_main():
        last = metrics["history"][-1]
        print(f"epoch {last['epoch']}: test accuracy {100 * last['test_acc']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
