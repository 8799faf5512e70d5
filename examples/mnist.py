"""Train the TAC paper's MNIST convolutional SNN (baseline, TAC or TAC-TP) with its recipe.

Recipe (Collapse-or-Preserve paper, section 5.1 and Appendix E): Poisson rate coding with
``T = 25`` steps, batch 128, Adam with cosine annealing over all steps, 15 epochs,
cross-entropy on output spike counts. The learning rate is lost from our copy of the paper's
text; 1e-3 (``--lr``) is our choice. Adam is bias-corrected as in PyTorch (the paper's
framework); MLX's ``optim.Adam`` skips the correction by default, which makes its first few
hundred updates about 3x larger and, here, silences the output layer early.

    pip install ".[cpu,examples]"   # tqdm and matplotlib; on an NVIDIA GPU: ".[cuda,examples]"
    python examples/mnist.py --mode tac --group 4 --data-dir ../shared/data/mnist --out runs/tac4

Writes to ``--out``: ``metrics.json`` after every epoch (config and per-epoch train loss /
accuracy, test accuracy and seconds), ``checkpoint.safetensors`` after every epoch and every
``--checkpoint-every`` steps (weights, BatchNorm statistics, Adam state, position in the run,
config and metrics so far), ``curves.png`` at the end; with ``--plots`` the spike figures of
``mlx_snn.viz`` in ``plots/``. Ctrl-C saves a checkpoint after the step
in flight and exits with one line (a second Ctrl-C stops at once). Paths are stored relative
to the repository (see :func:`portable_path`), never as this machine's absolute paths.

Exact resume: every random draw of epoch ``e`` (the shuffle and the Poisson encodings) comes
from ``(seed, e)`` and the global MLX generator is reseeded before each step from
``(seed, e, step)``, never from a generator running across steps, so ``--resume`` continues
bit-for-bit from an epoch's end or from the middle of an epoch: 2 epochs in one go give the
same weights as ``--stop-after 1`` then ``--resume``, or as a Ctrl-C anywhere then
``--resume``. ``--epochs`` fixes the cosine schedule; ``--stop-after`` ends a run early.
``--cost`` evaluates once more under ``snn.monitor.Monitor`` and prints its table (spikes,
synaptic operations, bytes, energy next to the non-spiking network; TAC's conv rows show
``G of T`` frames per sample), also written to ``cost.json``.
``--compile`` wraps the train step in ``mx.compile`` (off by default: no measurable gain on the
CPU backend, where the convolutions dominate; see examples/results/mnist.md).

Data parallel, unchanged (README, "Training on several processes, Macs or GPUs")::

    mlx.launch -n 2 python examples/mnist.py --mode tac --group 4 --out runs/tac4x2

runs one process per rank through :mod:`mlx_snn.distributed`: ``--batch-size`` is per rank
(global batch ``batch_size * ranks``), each rank trains on its share of every global batch of
the epoch's order (the last ``n % ranks`` samples of that order are left out), gradients and
BatchNorm statistics are averaged over the ranks, the test set is split between them and the
counts summed. Learning rate: ``--lr * sqrt(ranks)``, the square-root rule for Adam
(``mlx_snn.distributed.scaled_lr``); the cosine schedule spans the run's steps. Only rank 0
writes ``--out`` and shows progress; every rank reads ``--resume``'s checkpoint, which must
be at the same path on every host; a run resumes only with the number of ranks it was saved
with. One process (no launcher) trains exactly as before.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

import mlx_snn as snn
from mlx_snn import distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_spike_plots

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.json"
CURVES = "curves.png"
OPTIONAL_MODULES = ("tqdm", "matplotlib")
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
    "ranks",
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
    checkpoint_every: int = 100
    plots: bool = False
    cost: bool = False
    ranks: int = 1  # processes of the run (set from mlx.launch's group, not an option)


class Interrupted(Exception):
    """Ctrl-C stopped training after a checkpoint was saved; ``str()`` is the one-line report."""


class StopOnInterrupt:
    """While active, the first SIGINT (Ctrl-C) only sets :attr:`requested`; a second one raises.

    The training loop checks :attr:`requested` between steps, so a checkpoint never holds a
    half-applied update. Outside the main thread (where Python cannot take signals), or
    where SIGINT is ignored (a ``nohup`` or background job), it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)

    def __enter__(self) -> StopOnInterrupt:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            return self
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            return self
        if self.previous is None:  # a handler not installed from Python
            self.previous = signal.default_int_handler
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def check_optional_imports() -> None:
    """Exit with a one-line hint when the ``examples`` extra is not installed."""
    missing = [m for m in OPTIONAL_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"examples/mnist.py needs {' and '.join(missing)}: "
            'pip install ".[examples]" from the repository root'
        )


def portable_path(path: str | None) -> str | None:
    """``path`` as stored in result files: relative to the repository root.

    A path in the repository or beside it (``runs/tac4``, ``../shared/data/mnist``) is
    stored relative to the root; one elsewhere keeps only its last component, so no
    absolute path of this machine is written.
    """
    if path is None:
        return None
    for candidate in (os.path.abspath(path), os.path.realpath(path)):  # as given, then resolved
        try:
            rel = os.path.relpath(candidate, ROOT)
        except ValueError:  # another drive on Windows
            continue
        if not rel.startswith(os.pardir + os.sep + os.pardir):
            return rel
    return Path(path).name


def stored_config(cfg: Config) -> dict:
    """``cfg`` as written to ``metrics.json`` and checkpoints (portable paths)."""
    saved = dataclasses.asdict(cfg)
    saved["data_dir"], saved["out"] = portable_path(cfg.data_dir), portable_path(cfg.out)
    return saved


def derived_key(seed: int, *path: int) -> mx.array:
    """An MLX random key that depends only on ``(seed, *path)``."""
    state = np.random.SeedSequence([seed, *path]).generate_state(1, np.uint32)
    return mx.random.key(int(state[0]))


def load_split(cfg: Config, split: str, limit: int | None) -> tuple[mx.array, mx.array]:
    """Images ``[N, 28, 28, 1]`` float32 in [0, 1] and labels ``[N]`` int32."""
    images, labels = snn.data.mnist(split, data_dir=cfg.data_dir, dataset=cfg.dataset)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = mx.array(images[..., None].astype(np.float32) / 255.0)
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
        # under mlx.launch: the mean over the ranks, BatchNorm statistics in the same all-reduce
        grads, stats = dist.all_mean((grads, dist.running_stats(model)))
        model.update(stats)
        optimizer.update(model, grads)
        return loss, correct

    if not use_compile:
        return step
    state = [model.state, optimizer.state, mx.random.state]
    return mx.compile(step, inputs=state, outputs=state)


def evaluate(model: nn.Module, x: mx.array, y: mx.array, cfg: Config, shard: bool = True) -> float:
    """Test accuracy with fixed encoding keys (the same draws every epoch).

    Under ``mlx.launch`` each rank evaluates its :func:`~mlx_snn.distributed.shard` of the
    batches (``shard=False``: all of them, no communication) and the counts are summed, so
    the accuracy is the one process's, whatever the number of ranks.
    """
    model.eval()
    correct, n = 0, x.shape[0]
    batches = range(math.ceil(n / cfg.eval_batch_size))
    keys = mx.random.split(derived_key(cfg.seed, 1), max(1, len(batches)))
    for i in dist.shard(batches) if shard else batches:
        start = i * cfg.eval_batch_size
        xb = x[start : start + cfg.eval_batch_size]
        frames = snn.encode.rate(xb, cfg.num_steps, key=keys[i])
        correct += counts_correct(model(frames), y[start : start + cfg.eval_batch_size]).item()
    model.train()
    return int(dist.all_sum(correct) if shard else correct) / n


def cost_report(model: nn.Module, x: mx.array, y: mx.array, cfg: Config, path: Path) -> str:
    """The test evaluation again under ``snn.monitor.Monitor``: its table, saved as JSON."""
    with snn.monitor.Monitor(model) as monitor:
        evaluate(model, x, y, cfg, shard=False)
    report = monitor.report()
    report.to_json(path)
    return report.table()


def save_checkpoint(
    path: Path, model, optimizer, epoch: int, cfg: Config, history, partial: dict | None = None
) -> None:
    """Save the run after ``epoch`` whole epochs and, mid-epoch, ``partial`` of the next.

    ``partial`` holds ``step`` (steps of epoch ``epoch + 1`` done) and that epoch's running
    sums; ``None`` at an epoch's end.
    """
    arrays = {f"model.{k}": v for k, v in tree_flatten(model.parameters())}
    arrays.update({f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)})
    meta = {
        "epoch": str(epoch),
        "config": json.dumps(stored_config(cfg)),
        "history": json.dumps(history),
        "partial": json.dumps(partial),
    }
    tmp = path.with_name(f".{path.stem}.tmp.safetensors")
    mx.save_safetensors(str(tmp), arrays, metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, optimizer, cfg: Config) -> tuple[int, list, dict | None]:
    """Restore everything saved by :func:`save_checkpoint`; return ``(epoch, history, partial)``."""
    arrays, meta = mx.load(str(path), return_metadata=True)
    saved = json.loads(meta["config"])
    diff = [
        f"{k}: checkpoint {saved.get(k, getattr(Config, k))!r}, now {getattr(cfg, k)!r}"
        for k in SCHEDULE_FIELDS
        if saved.get(k, getattr(Config, k)) != getattr(cfg, k)  # older files: the default
    ]
    if diff:
        raise SystemExit(f"--resume: {path} was made with other settings ({'; '.join(diff)})")
    model.load_weights([(k[6:], v) for k, v in arrays.items() if k.startswith("model.")])
    opt = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    if sorted(opt) != sorted(k for k, _ in tree_flatten(optimizer.state)):
        raise SystemExit(f"--resume: the optimizer state in {path} does not fit this model")
    optimizer.state = tree_map_with_path(lambda key, _: opt[key], optimizer.state)
    return int(meta["epoch"]), json.loads(meta["history"]), json.loads(meta.get("partial", "null"))


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


def write_metrics(out: Path, cfg: Config, model, n: int, n_test: int, steps: int, history):
    """Write ``metrics.json`` (atomically) and return its content."""
    metrics = {
        "config": stored_config(cfg),
        "train_samples": n,
        "test_samples": n_test,
        "steps_per_epoch": steps,
        "global_batch_size": cfg.batch_size * cfg.ranks,
        "conv_frames_per_sample": list(model.conv_steps(cfg.num_steps)),
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
        "history": history,
    }
    tmp = out / f".{METRICS}.tmp"
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, out / METRICS)
    return metrics


@dataclass
class EpochProgress:
    """The epoch in progress: steps done and running sums (kept in mid-epoch checkpoints)."""

    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    step_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train(cfg: Config) -> dict:
    """Run the recipe described by ``cfg``; return the metrics written to ``metrics.json``.

    Raises :class:`Interrupted` after saving a checkpoint when Ctrl-C was pressed.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train = load_split(cfg, "train", cfg.limit)
    x_test, y_test = load_split(cfg, "test", cfg.test_limit)
    n, n_test = x_train.shape[0], int(x_test.shape[0])
    cfg = dataclasses.replace(cfg, ranks=dist.size())
    if n < cfg.ranks:
        raise SystemExit(f"{n} training images cannot be shared by {cfg.ranks} ranks")
    steps = steps_per_epoch(n, cfg)

    mx.random.seed(cfg.seed)
    model = snn.models.mnist_convnet(mode=cfg.mode, group=cfg.group, num_steps=cfg.num_steps)
    # bias-corrected, as PyTorch's Adam: see the module docstring; sqrt(ranks) * lr: see there
    schedule = optim.cosine_decay(dist.scaled_lr(cfg.lr), cfg.epochs * steps)
    optimizer = optim.Adam(learning_rate=schedule, bias_correction=True)
    optimizer.init(model.trainable_parameters())
    start_epoch, history, progress = 0, [], EpochProgress()
    if cfg.resume and (out / CHECKPOINT).exists():
        start_epoch, history, partial = load_checkpoint(out / CHECKPOINT, model, optimizer, cfg)
        progress = EpochProgress(**partial) if partial else progress
    elif cfg.resume:
        raise SystemExit(f"--resume: no {CHECKPOINT} in {out}")
    mx.eval(model.parameters(), optimizer.state)
    checksum = sum(mx.sum(mx.abs(v)).item() for _, v in tree_flatten(model.parameters()))
    dist.check_same([start_epoch, progress.step, checksum], "the starting model (or checkpoint)")
    model.train()
    step = make_train_step(model, optimizer, cfg.compile)

    def save(epochs_done: int, partial: EpochProgress | None) -> None:
        partial = None if partial is None else dataclasses.asdict(partial)
        if dist.is_main():
            save_checkpoint(out / CHECKPOINT, model, optimizer, epochs_done, cfg, history, partial)
        dist.barrier()  # no rank ends (Ctrl-C) before the checkpoint is written

    last = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    with StopOnInterrupt() as stop:
        for epoch in range(start_epoch, last):
            state, save_partial = [model.state, optimizer.state], functools.partial(save, epoch)
            train_epoch(cfg, epoch, step, state, (x_train, y_train), progress, save_partial, stop)
            tic = time.perf_counter()
            test_acc = evaluate(model, x_test, y_test, cfg)
            test_s, n_used = time.perf_counter() - tic, n - n % cfg.ranks  # see steps_per_epoch
            history.append(epoch_record(epoch, progress, n_used, test_acc, test_s))
            progress = EpochProgress()
            save(epoch + 1, None)
            if dist.is_main():
                write_metrics(out, cfg, model, n, n_test, steps, history)
                if not cfg.quiet:
                    print(json.dumps(history[-1]), file=sys.stderr)
            if agree_to_stop(stop) and epoch + 1 < last:
                raise Interrupted(
                    f"interrupted after epoch {epoch + 1} (test accuracy {100 * test_acc:.2f}%);"
                    f" saved {out / CHECKPOINT}, continue with --resume"
                )
    if not dist.is_main():  # rank 0 writes the results
        return {"history": history}
    metrics = write_metrics(out, cfg, model, n, n_test, steps, history)
    if cfg.cost:
        print(cost_report(model, x_test, y_test, cfg, out / "cost.json"))
    if history:
        title = f"{cfg.dataset} {cfg.mode}" + (f" g={cfg.group}" if cfg.mode != "baseline" else "")
        plot_curves(history, out / CURVES, title)
        if cfg.plots:
            frames = snn.encode.rate(
                x_test[: cfg.eval_batch_size], cfg.num_steps, key=mx.random.key(0)
            )
            write_spike_plots(model, frames, out / "plots", title)
    return metrics


def train_epoch(cfg, epoch, step, state, data, progress: EpochProgress, save, stop) -> None:
    """Train epoch ``epoch`` from step ``progress.step`` on, updating ``progress``.

    Calls ``save(progress)`` every ``cfg.checkpoint_every`` steps and, when ``stop.requested``
    (Ctrl-C), after the step in flight; then raises :class:`Interrupted`.
    """
    from tqdm import tqdm

    x_train, y_train = data
    n = x_train.shape[0]
    steps = steps_per_epoch(n, cfg)
    # under mlx.launch, this rank's share of the epoch's order (the same order on every rank)
    order = np.random.default_rng([cfg.seed, 2, epoch]).permutation(n)
    perm = mx.array(dist.shard(order, drop_remainder=True))
    keys = mx.random.split(derived_key(cfg.seed, 0, epoch), steps)
    tic = time.perf_counter() - progress.seconds
    desc = f"epoch {epoch + 1}/{cfg.epochs}"
    quiet = cfg.quiet or not dist.is_main()
    bar = tqdm(range(progress.step, steps), desc, steps, initial=progress.step, disable=quiet)
    for i in bar:
        t_step = time.perf_counter()
        # draws from the global generator (none in this model) depend on (seed, epoch, step)
        mx.random.seed(int(np.random.SeedSequence([cfg.seed, 3, epoch, i]).generate_state(1)[0]))
        idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        # each rank draws its own Poisson spikes from the step's key
        key = keys[i] if cfg.ranks == 1 else mx.random.split(keys[i], cfg.ranks)[dist.rank()]
        frames = snn.encode.rate(x_train[idx], cfg.num_steps, key=key)
        loss, hits = step(frames, y_train[idx])
        mx.eval(loss, hits, state)
        # sums over the ranks; a Ctrl-C on any rank stops all of them after this step
        loss_sum, hits, stops = dist.all_sum(
            [loss.item() * idx.shape[0], hits.item(), stop.requested]
        )
        stop.requested = bool(stops)
        progress.loss_sum += float(loss_sum)
        progress.correct += int(hits)
        progress.step_seconds.append(time.perf_counter() - t_step)
        progress.step = i + 1
        progress.seconds = time.perf_counter() - tic
        seen = min(progress.step * cfg.batch_size * cfg.ranks, n - n % cfg.ranks)
        loss_so_far, acc_so_far = progress.loss_sum / seen, progress.correct / seen
        bar.set_postfix(loss=f"{loss_so_far:.4f}", acc=f"{acc_so_far:.4f}")
        due = cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0
        if progress.step < steps and (due or stop.requested):
            save(progress)
            if stop.requested:
                bar.close()
                raise Interrupted(
                    f"interrupted at step {progress.step}/{steps} of epoch {epoch + 1}; saved "
                    f"{Path(cfg.out) / CHECKPOINT}, continue with --resume"
                )
    bar.close()


def steps_per_epoch(n: int, cfg: Config) -> int:
    """Steps of one epoch: batches of ``cfg.batch_size`` in each rank's ``n // ranks`` samples
    (the global batch is ``batch_size * ranks``; the last ``n % ranks`` samples of an epoch's
    order are left out, so that all ranks run the same steps on equal batches)."""
    return math.ceil(n // cfg.ranks / cfg.batch_size)


def agree_to_stop(stop: StopOnInterrupt) -> bool:
    """True on every rank when Ctrl-C reached any rank (every rank calls it at the same point)."""
    stop.requested = bool(dist.all_sum(stop.requested))
    return stop.requested


def epoch_record(epoch: int, progress: EpochProgress, n: int, test_acc: float, test_s: float):
    """One entry of ``metrics.json``'s ``history``."""
    seconds = progress.step_seconds
    return {
        "epoch": epoch + 1,
        "train_loss": progress.loss_sum / n,
        "train_acc": progress.correct / n,
        "test_acc": test_acc,
        "train_seconds": progress.seconds,
        "first_step_seconds": seconds[0],
        "median_step_seconds": float(np.median(seconds[1:] or seconds)),
        "test_seconds": test_s,
    }


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
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="also save a checkpoint every N steps within an epoch (0: at epoch ends only)",
    )
    p.add_argument("--plots", action="store_true", help="write spike plots to --out/plots")
    p.add_argument("--cost", action="store_true", help="print snn.monitor's cost table")
    args = p.parse_args(argv)
    if args.checkpoint_every < 0:
        p.error(f"--checkpoint-every must be >= 0; got {args.checkpoint_every}")
    for name in ("group", "num_steps", "epochs", "batch_size", "eval_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    for name in ("stop_after", "limit", "test_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    return Config(**vars(args))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    check_optional_imports()
    try:
        metrics = train(cfg)
    except Interrupted as stopped:
        if dist.is_main():
            print(stopped, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"interrupted; the last checkpoint (if any) is in {cfg.out}", file=sys.stderr)
        return 130
    if metrics["history"] and dist.is_main():
        last = metrics["history"][-1]
        print(f"epoch {last['epoch']}: test accuracy {100 * last['test_acc']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
