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
to the repository (see ``_common.portable_path``), never as this machine's absolute paths.

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
``--dtype bfloat16|float16`` trains in half precision: the model's parameters and the input
frames are cast (so the layers compute in that dtype, Adam's moments live in it, and there is
no float32 master copy of the weights); the neurons keep their membranes in float32 (see
``mlx_snn/_precision.py``). Default ``float32``.

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

import functools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

import mlx_snn as snn
from mlx_snn import distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

# config fields that must agree between a checkpoint and the run resuming it
SCHEDULE_FIELDS = (*common.SCHEDULE_FIELDS, "mode", "group", "num_steps", "dataset", "dtype")


@dataclass
class Config(common.RunConfig):
    """The recipe (module docstring); the settings every example has are in RunConfig."""

    mode: str = "baseline"
    group: int = 4
    num_steps: int = 25
    epochs: int = 15
    dataset: str = "mnist"
    out: str = "runs/mnist"
    dtype: str = "float32"


def counts_correct(spikes: mx.array, labels: mx.array) -> mx.array:
    """Number of samples whose most-spiking output is the label (ties: lowest index)."""
    return mx.sum(mx.argmax(spikes.sum(axis=0), axis=-1) == labels)


def loss_fn(model: nn.Module, frames: mx.array, labels: mx.array):
    """Cross-entropy on output spike counts of ``frames [T, B, 28, 28, 1]``; and the hits."""
    spikes = model(frames)
    return snn.loss.ce_count(spikes, labels), counts_correct(spikes, labels)


def evaluate(model: nn.Module, x: mx.array, y: mx.array, cfg: Config, shard: bool = True) -> float:
    """Test accuracy with fixed encoding keys (the same draws every epoch).

    Under ``mlx.launch`` each rank evaluates its :func:`~mlx_snn.distributed.shard` of the
    batches (``shard=False``: all of them, no communication) and the counts are summed, so
    the accuracy is the one process's, whatever the number of ranks.
    """
    model.eval()
    correct, n = 0, x.shape[0]
    batches = range(math.ceil(n / cfg.eval_batch_size))
    keys = mx.random.split(common.derived_key(cfg.seed, 1), max(1, len(batches)))
    for i in dist.shard(batches) if shard else batches:
        start = i * cfg.eval_batch_size
        xb = x[start : start + cfg.eval_batch_size]
        frames = snn.encode.rate(xb, cfg.num_steps, key=keys[i])
        correct += counts_correct(model(frames), y[start : start + cfg.eval_batch_size]).item()
    model.train()
    return int(dist.all_sum(correct) if shard else correct) / n


def train(cfg: Config) -> dict:
    """Run the recipe described by ``cfg``; return the metrics written to ``metrics.json``.

    Raises ``_common.Interrupted`` after saving a checkpoint when Ctrl-C was pressed.
    """
    cfg, out = common.prepare(cfg)
    (x_train, y_train), (x_test, y_test) = common.load_mnist(cfg)
    x_train, x_test = (x.astype(getattr(mx, cfg.dtype)) for x in (x_train, x_test))
    n, n_test = x_train.shape[0], int(x_test.shape[0])
    steps = common.steps_per_epoch(n, cfg.batch_size)

    mx.random.seed(cfg.seed)
    model = snn.models.mnist_convnet(mode=cfg.mode, group=cfg.group, num_steps=cfg.num_steps)
    model.set_dtype(getattr(mx, cfg.dtype))
    # sqrt(ranks) * lr: see the module docstring
    schedule = optim.cosine_decay(dist.scaled_lr(cfg.lr), cfg.epochs * steps)
    run = common.Run(cfg, model, schedule, loss_fn, SCHEDULE_FIELDS)  # --resume: restores

    def batches(epoch: int, start: int):
        """``(key, indices)`` of this rank's batches; each rank draws its own Poisson spikes
        from the step's key."""
        keys = mx.random.split(common.derived_key(cfg.seed, 0, epoch), steps)
        for i, idx in common.epoch_batches(cfg.seed, epoch, n, cfg.batch_size, start):
            key = keys[i] if cfg.ranks == 1 else mx.random.split(keys[i], cfg.ranks)[dist.rank()]
            yield key, idx

    def train_batch(batch) -> dict[str, float]:
        key, idx = batch
        frames = snn.encode.rate(x_train[idx], cfg.num_steps, key=key)
        loss, hits = run.step(frames, y_train[idx])
        return {"samples": idx.shape[0], "loss": loss.item() * idx.shape[0], "correct": hits.item()}

    facts = common.run_facts(cfg, n, n_test, steps)

    def metrics(history: list[dict]) -> dict:
        frames = list(model.conv_steps(cfg.num_steps))
        return {**facts, "conv_frames_per_sample": frames, "history": history}

    with run:
        for epoch in run.epochs():
            run.train_epoch(epoch, steps, batches(epoch, run.progress.step), train_batch)
            tic = time.perf_counter()
            test_acc = evaluate(model, x_test, y_test, cfg)
            record = {"epoch": epoch + 1, **run.progress.summary(), "test_acc": test_acc}
            run.history.append({**record, "test_seconds": time.perf_counter() - tic})
            run.end_epoch(metrics)
    if not dist.is_main():  # rank 0 writes the results
        return {"history": run.history}
    result = run.write_metrics(metrics)
    if cfg.cost:
        everything = functools.partial(evaluate, model, x_test, y_test, cfg, shard=False)
        common.cost_report(model, everything, out / "cost.json")
    if run.history:
        title = f"{cfg.dataset} {cfg.mode}" + (f" g={cfg.group}" if cfg.mode != "baseline" else "")
        common.plot_curves(run.history, out / common.CURVES, title, "CE on spike counts")
        if cfg.plots:
            frames = snn.encode.rate(
                x_test[: cfg.eval_batch_size], cfg.num_steps, key=mx.random.key(0)
            )
            common.plot_paper_net(model, frames, out / "plots", title)
    return result


def parse_args(argv: list[str] | None = None) -> Config:
    p = common.parser(__doc__)
    common.add_tac_flags(p)
    p.add_argument("--num-steps", type=int, help="rate-coding steps T")
    p.add_argument("--epochs", type=int, help="length of the cosine schedule")
    p.add_argument("--dataset", choices=("mnist", "fashion"), help="MNIST or Fashion-MNIST")
    p.add_argument("--data-dir", help="folder of the IDX files (default: cache)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="training dtype")
    common.add_run_flags(p, "about 4 per epoch of the full recipe")
    args = common.parse_flags(p, Config, argv)
    common.check_at_least(p, args, 1, ["group", "num_steps"])
    return Config(**vars(args))


def summary(last: dict) -> str:
    return f"epoch {last['epoch']}: test accuracy {100 * last['test_acc']:.2f}%"


def main(argv: list[str] | None = None) -> int:
    return common.main("examples/mnist.py", train, parse_args(argv), summary)


if __name__ == "__main__":
    sys.exit(main())
