"""Train the TAC paper's MNIST convolutional SNN (baseline, TAC or TAC-TP) with its recipe.

Recipe (Collapse-or-Preserve paper, section 5.1 and Appendix E): Poisson rate coding with
``T = 25`` steps, batch 128, Adam with cosine annealing over all steps, 15 epochs,
cross-entropy on output spike counts. The learning rate is lost from our copy of the paper's
text; 1e-3 (``--lr``) is our choice. Adam is bias-corrected as in PyTorch (the paper's
framework); MLX's ``optim.Adam`` skips the correction by default, which makes its first few
hundred updates about 3x larger and, here, silences the output layer early.

    python examples/mnist.py --mode tac --group 4 --data-dir ../shared/data/mnist --out runs/tac4

Writes to ``--out``: ``metrics.json`` (config and per-epoch train loss / accuracy, test
accuracy and seconds), ``checkpoint.safetensors`` after every epoch (weights, BatchNorm
statistics, Adam state, epoch, config and metrics so far), ``curves.png``; with ``--plots``
the spike figures of ``mlx_snn.viz`` in ``plots/``.

Exact resume: every random draw of epoch ``e`` (the shuffle, the Poisson encodings and the
global MLX generator, reseeded each epoch) comes from ``(seed, e)``, never from a generator
running across epochs, so ``--resume`` continues bit-for-bit: 2 epochs in one go give the
same weights as ``--stop-after 1`` then ``--resume``. ``--epochs`` fixes the cosine schedule;
``--stop-after`` ends a run early.
``--compile`` wraps the train step in ``mx.compile`` (off by default: no measurable gain on the
CPU backend, where the convolutions dominate; see examples/results/mnist.md).
``--dtype bfloat16|float16`` trains in half precision: the model's parameters and the input
frames are cast (so the layers compute in that dtype, Adam's moments live in it, and there is
no float32 master copy of the weights); the neurons keep their membranes in float32 (see
``mlx_snn/_precision.py``). Default ``float32``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

import mlx_snn as snn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_spike_plots

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.json"
CURVES = "curves.png"
# config fields that must agree between a checkpoint and the run resuming it
SCHEDULE_FIELDS = (
    "mode",
    "group",
    "num_steps",
    "epochs",
    "limit",
    "batch_size",
    "lr",
    "seed",
    "dataset",
    "dtype",
)


@dataclass
class Config:
    mode: str = "baseline"
    group: int = 4
    num_steps: int = 25
    epochs: int = 15
    stop_after: int | None = None
    limit: int | None = None
    test_limit: int | None = None
    batch_size: int = 128
    eval_batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    dataset: str = "mnist"
    data_dir: str | None = None
    out: str = "runs/mnist"
    resume: bool = False
    compile: bool = False
    quiet: bool = False
    plots: bool = False
    dtype: str = "float32"


def derived_key(seed: int, *path: int) -> mx.array:
    """An MLX random key that depends only on ``(seed, *path)``."""
    state = np.random.SeedSequence([seed, *path]).generate_state(1, np.uint32)
    return mx.random.key(int(state[0]))


def load_split(cfg: Config, split: str, limit: int | None) -> tuple[mx.array, mx.array]:
    """Images ``[N, 28, 28, 1]`` of ``cfg.dtype`` in [0, 1] and labels ``[N]`` int32."""
    images, labels = snn.data.mnist(split, data_dir=cfg.data_dir, dataset=cfg.dataset)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = mx.array(images[..., None].astype(np.float32) / 255.0).astype(getattr(mx, cfg.dtype))
    return x, mx.array(labels.astype(np.int32))


def counts_correct(spikes: mx.array, labels: mx.array) -> mx.array:
    """Number of samples whose most-spiking output is the label (ties: lowest index)."""
    return mx.sum(mx.argmax(spikes.sum(axis=0), axis=-1) == labels)


def make_train_step(model: nn.Module, optimizer: optim.Optimizer, use_compile: bool):
    """``step(frames [T, B, 28, 28, 1], labels [B]) -> (loss, correct)``; updates in place."""

    def loss_fn(frames, labels):
        spikes = model(frames)
        return snn.loss.ce_count(spikes, labels), counts_correct(spikes, labels)

    grad_fn = nn.value_and_grad(model, loss_fn)

    def step(frames, labels):
        (loss, correct), grads = grad_fn(frames, labels)
        optimizer.update(model, grads)
        return loss, correct

    if not use_compile:
        return step
    state = [model.state, optimizer.state, mx.random.state]
    return mx.compile(step, inputs=state, outputs=state)


def evaluate(model: nn.Module, x: mx.array, y: mx.array, cfg: Config) -> float:
    """Test accuracy with fixed encoding keys (the same draws every epoch)."""
    model.eval()
    correct, n = 0, x.shape[0]
    keys = mx.random.split(derived_key(cfg.seed, 1), max(1, math.ceil(n / cfg.eval_batch_size)))
    for i, start in enumerate(range(0, n, cfg.eval_batch_size)):
        xb = x[start : start + cfg.eval_batch_size]
        frames = snn.encode.rate(xb, cfg.num_steps, key=keys[i])
        correct += counts_correct(model(frames), y[start : start + cfg.eval_batch_size]).item()
    model.train()
    return correct / n


def save_checkpoint(path: Path, model, optimizer, epoch: int, cfg: Config, history) -> None:
    arrays = {f"model.{k}": v for k, v in tree_flatten(model.parameters())}
    arrays.update({f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)})
    meta = {
        "epoch": str(epoch),
        "config": json.dumps(dataclasses.asdict(cfg)),
        "history": json.dumps(history),
    }
    tmp = path.with_name(f".{path.stem}.tmp.safetensors")
    mx.save_safetensors(str(tmp), arrays, metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, optimizer, cfg: Config) -> tuple[int, list]:
    """Restore everything saved by :func:`save_checkpoint`; return ``(epoch, history)``."""
    arrays, meta = mx.load(str(path), return_metadata=True)
    saved = json.loads(meta["config"])
    diff = [
        f"{k}: checkpoint {saved.get(k, getattr(Config, k))!r}, now {getattr(cfg, k)!r}"
        for k in SCHEDULE_FIELDS
        if saved.get(k, getattr(Config, k)) != getattr(cfg, k)
    ]
    if diff:
        raise SystemExit(f"--resume: {path} was made with other settings ({'; '.join(diff)})")
    model.load_weights([(k[6:], v) for k, v in arrays.items() if k.startswith("model.")])
    opt = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    if sorted(opt) != sorted(k for k, _ in tree_flatten(optimizer.state)):
        raise SystemExit(f"--resume: the optimizer state in {path} does not fit this model")
    optimizer.state = tree_map_with_path(lambda key, _: opt[key], optimizer.state)
    return int(meta["epoch"]), json.loads(meta["history"])


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel="train loss (CE on spike counts)")
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * h["test_acc"] for h in history], "s-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(cfg: Config) -> dict:
    """Run the recipe described by ``cfg``; return the metrics written to ``metrics.json``."""
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train = load_split(cfg, "train", cfg.limit)
    x_test, y_test = load_split(cfg, "test", cfg.test_limit)
    n = x_train.shape[0]
    steps = math.ceil(n / cfg.batch_size)

    mx.random.seed(cfg.seed)
    model = snn.models.mnist_convnet(mode=cfg.mode, group=cfg.group, num_steps=cfg.num_steps)
    model.set_dtype(getattr(mx, cfg.dtype))
    # bias-corrected, as PyTorch's Adam: see the module docstring
    schedule = optim.cosine_decay(cfg.lr, cfg.epochs * steps)
    optimizer = optim.Adam(learning_rate=schedule, bias_correction=True)
    optimizer.init(model.trainable_parameters())
    start_epoch, history = 0, []
    if cfg.resume and (out / CHECKPOINT).exists():
        start_epoch, history = load_checkpoint(out / CHECKPOINT, model, optimizer, cfg)
    elif cfg.resume:
        raise SystemExit(f"--resume: no {CHECKPOINT} in {out}")
    mx.eval(model.parameters(), optimizer.state)
    model.train()
    step = make_train_step(model, optimizer, cfg.compile)

    last = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    for epoch in range(start_epoch, last):
        perm = mx.array(np.random.default_rng([cfg.seed, 2, epoch]).permutation(n))
        # draws from the global generator (none in this model) also depend on (seed, epoch) only
        mx.random.seed(int(np.random.SeedSequence([cfg.seed, 3, epoch]).generate_state(1)[0]))
        keys = mx.random.split(derived_key(cfg.seed, 0, epoch), steps)
        loss_sum, correct = 0.0, 0
        tic = time.perf_counter()
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=cfg.quiet)
        step_seconds = []
        for i in bar:
            t_step = time.perf_counter()
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            frames = snn.encode.rate(x_train[idx], cfg.num_steps, key=keys[i])
            loss, hits = step(frames, y_train[idx])
            mx.eval(loss, hits, model.state, optimizer.state)
            loss_sum += loss.item() * idx.shape[0]
            correct += hits.item()
            step_seconds.append(time.perf_counter() - t_step)
            seen = min((i + 1) * cfg.batch_size, n)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        train_seconds = time.perf_counter() - tic
        tic = time.perf_counter()
        test_acc = evaluate(model, x_test, y_test, cfg)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": loss_sum / n,
                "train_acc": correct / n,
                "test_acc": test_acc,
                "train_seconds": train_seconds,
                "first_step_seconds": step_seconds[0],
                "median_step_seconds": float(np.median(step_seconds[1:] or step_seconds)),
                "test_seconds": time.perf_counter() - tic,
            }
        )
        save_checkpoint(out / CHECKPOINT, model, optimizer, epoch + 1, cfg, history)
        if not cfg.quiet:
            print(json.dumps(history[-1]), file=sys.stderr)

    metrics = {
        "config": dataclasses.asdict(cfg),
        "train_samples": n,
        "test_samples": int(x_test.shape[0]),
        "steps_per_epoch": steps,
        "conv_frames_per_sample": list(model.conv_steps(cfg.num_steps)),
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
        "history": history,
    }
    (out / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    if history:
        title = f"{cfg.dataset} {cfg.mode}" + (f" g={cfg.group}" if cfg.mode != "baseline" else "")
        plot_curves(history, out / CURVES, title)
        if cfg.plots:
            frames = snn.encode.rate(
                x_test[: cfg.eval_batch_size], cfg.num_steps, key=mx.random.key(0)
            )
            write_spike_plots(model, frames, out / "plots", title)
    return metrics


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=snn.models.MODES, default="baseline")
    p.add_argument("--group", type=int, default=4, help="TAC group size g")
    p.add_argument("--num-steps", type=int, default=25, help="rate-coding steps T")
    p.add_argument("--epochs", type=int, default=15, help="length of the cosine schedule")
    p.add_argument("--stop-after", type=int, default=None, help="end after this many epochs")
    p.add_argument("--limit", type=int, default=None, help="use the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="use the first N test images")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    p.add_argument("--data-dir", default=None, help="folder of the IDX files (default: cache)")
    p.add_argument("--out", default="runs/mnist", help="folder for metrics and checkpoints")
    p.add_argument("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT}")
    p.add_argument("--compile", action="store_true", help="mx.compile the train step")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--plots", action="store_true", help="write spike plots to --out/plots")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    args = p.parse_args(argv)
    for name in ("group", "num_steps", "epochs", "batch_size", "eval_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    for name in ("stop_after", "limit", "test_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    return Config(**vars(args))


def main(argv: list[str] | None = None) -> int:
    metrics = train(parse_args(argv))
    if metrics["history"]:
        last = metrics["history"][-1]
        print(f"epoch {last['epoch']}: test accuracy {100 * last['test_acc']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
