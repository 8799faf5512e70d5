"""Train a time-to-first-spike network (PTTFS) on MNIST: AMOS neurons, temporal selector decoder.

Recipe (PTTFS paper, "Temporal Selector Decoder"; the details it leaves to its unavailable
supplementary material are our choices, marked *):

- input: TTFS encoding ``snn.encode.ttfs`` (each pixel an AMOS neuron charged by its
  intensity; *tau 2, threshold 0.25, pixels that never cross stay silent), one spike per
  pixel at most;
- network: ``snn.models.ttfs_convnet(arch=...)`` (``--arch conv`` or the AMOS MLP
  ``--arch mlp``; layer by layer in :mod:`mlx_snn.models.ttfs`);
- loss: cross-entropy on the decoder's membranes at the first output spike ``t_1st``;
  ``--threshold`` is the decoder's confidence threshold ``V_th``;
- incremental time steps: epoch ``e`` trains with
  ``T = snn.training.incremental_time_steps(e, --time-steps, --epochs-per-stage)``, each
  stage starting from the previous stage's weights; *by default T = 1, 2, 4, 8 for 4, 3,
  2, 2 epochs (11 epochs; the run in examples/results/ttfs_mnist.md);
- *Adam (bias-corrected, as PyTorch's) with cosine decay over the whole run, batch 128.

    python examples/ttfs_mnist.py --arch mlp --data-dir ../shared/data/mnist --out runs/ttfs

Each epoch is evaluated with early exit: the decision is read at ``t_1st`` (a network run
step by step could stop there), and ``metrics.json`` gets the test accuracy, how many test
samples are decided at each step and their accuracy (the paper's Table 5), and the mean
number of spikes per neuron up to the exit step and over the whole window. After the last
epoch the evaluation is repeated for each ``--sweep-thresholds`` value (same weights) and
``t_first.png`` shows the histogram of ``t_1st``; ``curves.png`` the loss and accuracy.

``checkpoint.safetensors`` is written after every epoch (weights, BatchNorm statistics,
Adam state, config, metrics so far). The encoding has no randomness and the shuffle of
epoch ``e`` comes from ``(seed, e)``, so ``--resume`` continues bit-for-bit: two epochs in
one go give the same weights as ``--stop-after 1`` then ``--resume``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from training_utils import (
    check_optional_imports,
    load_checkpoint,
    load_images,
    portable_path,
    save_checkpoint,
    write_json,
)

import mlx_snn as snn

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.json"
CURVES = "curves.png"
HISTOGRAM = "t_first.png"
# config fields that must agree between a checkpoint and the run resuming it
SCHEDULE_FIELDS = (
    "arch",
    "hidden",
    "time_steps",
    "epochs_per_stage",
    "epochs",
    "limit",
    "batch_size",
    "lr",
    "seed",
    "dataset",
    "threshold",
    "neuron_threshold",
    "tau",
    "decoder_tau",
    "force_last",
    "encoder_tau",
    "encoder_threshold",
)


@dataclass
class Config:
    arch: str = "mlp"
    hidden: tuple[int, ...] | None = None
    time_steps: tuple[int, ...] = (1, 2, 4, 8)
    epochs_per_stage: tuple[int, ...] = (4, 3, 2, 2)
    epochs: int | None = None
    stop_after: int | None = None
    limit: int | None = None
    test_limit: int | None = None
    batch_size: int = 128
    eval_batch_size: int = 500
    lr: float = 1e-3
    seed: int = 0
    threshold: float = 1.0
    neuron_threshold: float = 1.0
    tau: float = 2.0
    decoder_tau: float = 2.0
    force_last: bool = False
    encoder_tau: float = 2.0
    encoder_threshold: float = 0.25
    sweep_thresholds: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
    dataset: str = "mnist"
    data_dir: str | None = None
    out: str = "runs/ttfs_mnist"
    resume: bool = False
    compile: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        """Check the schedule and thresholds before any data is loaded."""
        stages = self.stage_epochs()
        if self.epochs is None:
            self.epochs = sum(stages)
        snn.training.incremental_time_steps(0, self.time_steps, stages)
        for name in ("threshold", "neuron_threshold", "encoder_threshold"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
        for value in self.sweep_thresholds:
            if not 0 < value < math.inf:
                raise ValueError(f"sweep_thresholds must be finite numbers > 0; got {value!r}")

    def stage_epochs(self) -> tuple[int, ...]:
        """Epochs of each stage: one value for all stages, or one per stage."""
        if len(self.epochs_per_stage) == 1:
            return self.epochs_per_stage * len(self.time_steps)
        return self.epochs_per_stage

    def steps_at(self, epoch: int) -> int:
        """Time steps ``T`` of epoch ``epoch`` (0-based)."""
        return snn.training.incremental_time_steps(epoch, self.time_steps, self.stage_epochs())

    def stored(self) -> dict:
        """As written to ``metrics.json`` and checkpoints: JSON values, portable paths."""
        saved = json.loads(json.dumps(dataclasses.asdict(self)))
        saved["data_dir"], saved["out"] = portable_path(self.data_dir), portable_path(self.out)
        return saved


def build_model(cfg: Config) -> nn.Module:
    return snn.models.ttfs_convnet(
        arch=cfg.arch,
        hidden=cfg.hidden,
        tau=cfg.tau,
        threshold=cfg.neuron_threshold,
        decoder_threshold=cfg.threshold,
        decoder_tau=cfg.decoder_tau,
        force_last=cfg.force_last,
    )


def encode(cfg: Config, images: mx.array, num_steps: int) -> mx.array:
    """TTFS input spikes ``[T, B, 28, 28, 1]``: at most one per pixel, brighter is earlier."""
    return snn.encode.ttfs(
        images, num_steps, tau=cfg.encoder_tau, threshold=cfg.encoder_threshold, force_last=False
    )


def make_train_step(model: nn.Module, optimizer: optim.Optimizer, use_compile: bool):
    """``step(spikes [T, B, ...], labels [B]) -> (loss, correct, sum of t_1st)``."""

    def loss_fn(spikes, labels):
        logits, t_first, _ = model(spikes, return_spikes=True)
        loss = nn.losses.cross_entropy(logits, labels, reduction="mean")
        return loss, (mx.sum(mx.argmax(logits, axis=-1) == labels), mx.sum(t_first))

    grad_fn = nn.value_and_grad(model, loss_fn)

    def step(spikes, labels):
        (loss, (correct, t_sum)), grads = grad_fn(spikes, labels)
        optimizer.update(model, grads)
        return loss, correct, t_sum

    if not use_compile:
        return step
    state = [model.state, optimizer.state]
    return mx.compile(step, inputs=state, outputs=state)


def evaluate(model, x: mx.array, y: mx.array, cfg: Config, num_steps: int) -> dict:
    """Early-exit evaluation at ``num_steps`` steps.

    Returns ``accuracy``; ``t_first``: per step, the samples decided there (``counts``,
    ``fraction``, ``cumulative``) and their ``accuracy`` (None where no sample);
    ``mean_t_first``; ``spikes_per_neuron``: per hidden AMOS layer and over all of them,
    the mean spikes per neuron up to and including each sample's exit step
    (``early_exit``) and over all ``T`` steps (``full_window``); the same for the input
    pixels.
    """
    model.eval()
    T = num_steps
    counts, hits = np.zeros(T, np.int64), np.zeros(T, np.int64)
    layer_exit, layer_full, layer_size = None, None, None
    input_exit = input_full = 0.0
    n = x.shape[0]
    steps = mx.arange(T).reshape(T, 1)
    for start in range(0, n, cfg.eval_batch_size):
        xb, yb = x[start : start + cfg.eval_batch_size], y[start : start + cfg.eval_batch_size]
        spikes_in = encode(cfg, xb, T)
        out = model(spikes_in, return_spikes=True)
        before_exit = (steps <= out.t_first[None]).astype(mx.float32)  # [T, B]

        def totals(s, before_exit=before_exit):
            per_step = s.reshape(T, s.shape[1], -1).sum(axis=2)  # [T, B]
            return mx.sum(per_step * before_exit), mx.sum(per_step)

        layers = [totals(s) for s in out.spikes]
        inputs = totals(spikes_in)
        correct = mx.argmax(out.logits, axis=-1) == yb
        mx.eval(out.t_first, correct, layers, inputs)
        t_first = np.array(out.t_first)
        counts += np.bincount(t_first, minlength=T)
        hits += np.bincount(t_first, weights=np.array(correct), minlength=T).astype(np.int64)
        if layer_exit is None:
            layer_exit, layer_full = np.zeros(len(layers)), np.zeros(len(layers))
            layer_size = [math.prod(s.shape[2:]) for s in out.spikes]
        layer_exit += [e.item() for e, _ in layers]
        layer_full += [f.item() for _, f in layers]
        input_exit += inputs[0].item()
        input_full += inputs[1].item()
    model.train()
    neurons = sum(layer_size)
    return {
        "num_steps": T,
        "threshold": float(model.decoder_threshold),
        "accuracy": float(hits.sum() / n),
        "mean_t_first": float(np.dot(np.arange(T), counts) / n),
        "t_first": {
            "counts": counts.tolist(),
            "fraction": (counts / n).tolist(),
            "cumulative": (np.cumsum(counts) / n).tolist(),
            "accuracy": [float(h / c) if c else None for h, c in zip(hits, counts, strict=True)],
        },
        "spikes_per_neuron": {
            "layers": [
                {"neurons": size, "early_exit": e / (n * size), "full_window": f / (n * size)}
                for size, e, f in zip(layer_size, layer_exit, layer_full, strict=True)
            ],
            "all_hidden": {
                "neurons": neurons,
                "early_exit": float(layer_exit.sum() / (n * neurons)),
                "full_window": float(layer_full.sum() / (n * neurons)),
            },
            "input": {
                "neurons": math.prod(x.shape[1:]),
                "early_exit": input_exit / (n * math.prod(x.shape[1:])),
                "full_window": input_full / (n * math.prod(x.shape[1:])),
            },
        },
    }


def plot_t_first(evaluation: dict, path: Path, title: str) -> None:
    """Bar chart of the fraction of test samples decided at each step, accuracy on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dist = evaluation["t_first"]
    steps = np.arange(len(dist["fraction"]))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(steps, 100 * np.array(dist["fraction"]), color="tab:blue")
    for bar, acc in zip(bars, dist["accuracy"], strict=True):
        if acc is not None:
            ax.annotate(
                f"{100 * acc:.1f}%",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set(
        xlabel="decision step t_1st",
        ylabel="test samples (%)",
        xticks=steps,
        title=f"{title}: accuracy {100 * evaluation['accuracy']:.2f}% "
        f"(labels: accuracy at that step)",
    )
    ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel="train loss (CE at t_1st)")
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * h["test"]["accuracy"] for h in history], "s-", label="test")
    for h in history:
        ax_acc.annotate(f"T={h['num_steps']}", (h["epoch"], 100 * h["test"]["accuracy"]), size=7)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_metrics(out: Path, cfg: Config, n: int, n_test: int, steps: int, history, final):
    metrics = {
        "config": cfg.stored(),
        "train_samples": n,
        "test_samples": n_test,
        "steps_per_epoch": steps,
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
        "history": history,
        "final": final,
    }
    write_json(out / METRICS, metrics)
    return metrics


def train(cfg: Config) -> dict:
    """Run the recipe described by ``cfg``; return the metrics written to ``metrics.json``."""
    check_optional_imports("examples/ttfs_mnist.py")
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train = load_images("train", cfg.data_dir, cfg.dataset, cfg.limit)
    x_test, y_test = load_images("test", cfg.data_dir, cfg.dataset, cfg.test_limit)
    n, n_test = x_train.shape[0], int(x_test.shape[0])
    steps = math.ceil(n / cfg.batch_size)

    mx.random.seed(cfg.seed)
    model = build_model(cfg)
    optimizer = optim.Adam(
        learning_rate=optim.cosine_decay(cfg.lr, cfg.epochs * steps), bias_correction=True
    )
    optimizer.init(model.trainable_parameters())
    start_epoch, history = 0, []
    if cfg.resume and (out / CHECKPOINT).exists():
        meta = load_checkpoint(out / CHECKPOINT, model, optimizer, cfg.stored(), SCHEDULE_FIELDS)
        start_epoch, history = meta["epoch"], meta["history"]
    elif cfg.resume:
        raise SystemExit(f"--resume: no {CHECKPOINT} in {out}")
    mx.eval(model.parameters(), optimizer.state)
    model.train()
    step = make_train_step(model, optimizer, cfg.compile)

    last = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    for epoch in range(start_epoch, last):
        T = cfg.steps_at(epoch)
        perm = mx.array(np.random.default_rng([cfg.seed, 2, epoch]).permutation(n))
        loss_sum, correct, t_sum = 0.0, 0, 0
        tic = time.perf_counter()
        desc = f"epoch {epoch + 1}/{cfg.epochs} T={T}"
        bar = tqdm(range(steps), desc=desc, disable=cfg.quiet)
        for i in bar:
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            loss, hits, t_batch = step(encode(cfg, x_train[idx], T), y_train[idx])
            mx.eval(loss, hits, t_batch, model.state, optimizer.state)
            loss_sum += loss.item() * idx.shape[0]
            correct += hits.item()
            t_sum += t_batch.item()
            seen = min((i + 1) * cfg.batch_size, n)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        train_seconds = time.perf_counter() - tic
        tic = time.perf_counter()
        test = evaluate(model, x_test, y_test, cfg, T)
        history.append(
            {
                "epoch": epoch + 1,
                "num_steps": T,
                "train_loss": loss_sum / n,
                "train_acc": correct / n,
                "train_mean_t_first": t_sum / n,
                "test": test,
                "train_seconds": train_seconds,
                "test_seconds": time.perf_counter() - tic,
            }
        )
        meta = {"epoch": epoch + 1, "config": cfg.stored(), "history": history}
        save_checkpoint(out / CHECKPOINT, model, optimizer, meta)
        write_metrics(out, cfg, n, n_test, steps, history, None)
        if not cfg.quiet:
            summary = {k: v for k, v in history[-1].items() if k != "test"}
            summary["test_acc"] = test["accuracy"]
            summary["t_first_counts"] = test["t_first"]["counts"]
            print(json.dumps(summary), file=sys.stderr)

    final = None
    if history and history[-1]["epoch"] == cfg.epochs:
        T = cfg.steps_at(cfg.epochs - 1)
        sweep = []
        for value in cfg.sweep_thresholds:
            model.set_decoder_threshold(value)
            sweep.append(evaluate(model, x_test, y_test, cfg, T))
        model.set_decoder_threshold(cfg.threshold)
        final = {"evaluation": history[-1]["test"], "threshold_sweep": sweep}
        title = f"{cfg.dataset} {cfg.arch}, T={T}, V_th={cfg.threshold}"
        plot_t_first(history[-1]["test"], out / HISTOGRAM, title)
    metrics = write_metrics(out, cfg, n, n_test, steps, history, final)
    if history:
        plot_curves(history, out / CURVES, f"{cfg.dataset} TTFS {cfg.arch}")
    return metrics


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=snn.models.ARCHS, default="mlp")
    p.add_argument("--hidden", type=_ints, default=None, help="hidden widths, e.g. 800 or 400,400")
    p.add_argument("--time-steps", type=_ints, default=(1, 2, 4, 8), help="T of each stage")
    p.add_argument(
        "--epochs-per-stage", type=_ints, default=(4, 3, 2, 2), help="one value, or one per stage"
    )
    p.add_argument("--epochs", type=int, default=None, help="default: the stages' sum")
    p.add_argument("--stop-after", type=int, default=None, help="end after this many epochs")
    p.add_argument("--limit", type=int, default=None, help="use the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="use the first N test images")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-batch-size", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threshold", type=float, default=1.0, help="decoder confidence threshold V_th")
    p.add_argument("--neuron-threshold", type=float, default=1.0, help="hidden AMOS threshold")
    p.add_argument("--tau", type=float, default=2.0, help="hidden AMOS time constant")
    p.add_argument("--decoder-tau", type=float, default=2.0, help="initial decoder tau")
    p.add_argument("--force-last", action="store_true", help="forced spike at T-1 (eq. 7)")
    p.add_argument("--encoder-tau", type=float, default=2.0)
    p.add_argument("--encoder-threshold", type=float, default=0.25)
    p.add_argument(
        "--sweep-thresholds",
        type=_floats,
        default=(0.5, 1.0, 2.0, 5.0),
        help="V_th values evaluated after the last epoch",
    )
    p.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    p.add_argument("--data-dir", default=None, help="folder of the IDX files (default: cache)")
    p.add_argument("--out", default="runs/ttfs_mnist", help="folder for metrics, checkpoints")
    p.add_argument("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT}")
    p.add_argument("--compile", action="store_true", help="mx.compile the train step")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if not args.time_steps:
        p.error("--time-steps must list at least one number of time steps, e.g. 1,2,4,8")
    if not args.epochs_per_stage:
        p.error("--epochs-per-stage must hold one value or one per stage, e.g. 3")
    for name in ("epochs", "stop_after", "limit", "test_limit", "batch_size", "eval_batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    try:
        return Config(**vars(args))
    except (ValueError, TypeError) as err:
        p.error(str(err))


def main(argv: list[str] | None = None) -> int:
    metrics = train(parse_args(argv))
    if metrics["history"]:
        last = metrics["history"][-1]
        test = last["test"]
        print(
            f"epoch {last['epoch']} (T={last['num_steps']}): test accuracy "
            f"{100 * test['accuracy']:.2f}%, mean t_1st {test['mean_t_first']:.2f}, "
            f"spikes per hidden neuron {test['spikes_per_neuron']['all_hidden']['early_exit']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
