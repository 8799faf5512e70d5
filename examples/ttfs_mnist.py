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

    pip install ".[cpu,examples]"   # tqdm and matplotlib; on an NVIDIA GPU: ".[cuda,examples]"
    python examples/ttfs_mnist.py --arch mlp --data-dir ../shared/data/mnist --out runs/ttfs

Each epoch is evaluated with early exit: the decision is read at ``t_1st`` (a network run
step by step could stop there), and ``metrics.json`` gets the test accuracy, how many test
samples are decided at each step and their accuracy (the paper's Table 5), and the mean
number of spikes per neuron up to the exit step and over the whole window. After the last
epoch the evaluation is repeated for each ``--sweep-thresholds`` value (same weights) and
``t_first.png`` shows the histogram of ``t_1st``; ``curves.png`` the loss and accuracy.

``checkpoint.safetensors`` is written after every epoch and every ``--checkpoint-every``
steps (weights, BatchNorm statistics, Adam state, position in the run, config, metrics so
far); Ctrl-C saves one after the step in flight and exits with one line (a second Ctrl-C
stops at once). The encoding has no randomness, the shuffle of epoch ``e`` comes from
``(seed, e)`` and MLX's generator is reseeded before each step from ``(seed, e, step)``, so
``--resume`` continues bit-for-bit from an epoch's end or from the middle of an epoch: two
epochs in one go give the same weights as ``--stop-after 1`` (or a Ctrl-C anywhere) then
``--resume``. Paths in the result files are relative to the repository. ``--plots`` writes
the input spikes, the last hidden layer's raster and the firing rate of every layer for one
test batch to ``plots/``; ``--cost`` evaluates once more under ``snn.monitor.Monitor`` (over
the whole window, no early exit) and prints its table, also written to ``cost.json``.

Data parallel, unchanged: ``mlx.launch -n 2 python examples/ttfs_mnist.py ...`` (README,
"Training on several processes, Macs or GPUs"), as ``examples/mnist.py``: ``--batch-size``
is per rank, gradients and BatchNorm statistics are averaged, the learning rate is
``--lr * sqrt(ranks)``, the test set is split between the ranks and the counts summed, and
only rank 0 writes ``--out``.
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
import numpy as np

import mlx_snn as snn
from mlx_snn import distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

HISTOGRAM = "t_first.png"
# config fields that must agree between a checkpoint and the run resuming it
SCHEDULE_FIELDS = (
    *common.SCHEDULE_FIELDS,
    *("arch", "hidden", "time_steps", "epochs_per_stage", "dataset", "threshold"),
    *("neuron_threshold", "tau", "decoder_tau", "force_last", "encoder_tau", "encoder_threshold"),
)


@dataclass
class Config(common.RunConfig):
    """The recipe (module docstring); the settings every example has are in RunConfig."""

    arch: str = "mlp"
    hidden: tuple[int, ...] | None = None
    time_steps: tuple[int, ...] = (1, 2, 4, 8)
    epochs_per_stage: tuple[int, ...] = (4, 3, 2, 2)
    epochs: int | None = None
    eval_batch_size: int = 500
    threshold: float = 1.0
    neuron_threshold: float = 1.0
    tau: float = 2.0
    decoder_tau: float = 2.0
    force_last: bool = False
    encoder_tau: float = 2.0
    encoder_threshold: float = 0.25
    sweep_thresholds: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
    dataset: str = "mnist"
    out: str = "runs/ttfs_mnist"

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


def loss_fn(model: nn.Module, spikes: mx.array, labels: mx.array):
    """Cross-entropy on the decoder membranes at ``t_1st``; and (hits, sum of ``t_1st``)."""
    logits, t_first, _ = model(spikes, return_spikes=True)
    loss = nn.losses.cross_entropy(logits, labels, reduction="mean")
    return loss, (mx.sum(mx.argmax(logits, axis=-1) == labels), mx.sum(t_first))


def evaluate(model, x: mx.array, y: mx.array, cfg: Config, num_steps: int, shard=True) -> dict:
    """Early-exit evaluation at ``num_steps`` steps.

    Returns ``accuracy``; ``t_first``: per step, the samples decided there (``counts``,
    ``fraction``, ``cumulative``) and their ``accuracy`` (None where no sample);
    ``mean_t_first``; ``spikes_per_neuron``: per hidden AMOS layer and over all of them,
    the mean spikes per neuron up to and including each sample's exit step
    (``early_exit``) and over all ``T`` steps (``full_window``); the same for the input
    pixels. Under ``mlx.launch`` each rank evaluates its :func:`~mlx_snn.distributed.shard`
    of the samples and the counts are summed (``shard=False``: all samples, no
    communication).
    """
    model.eval()
    T, n = num_steps, x.shape[0]
    samples = np.arange(n)
    mine = dist.shard(samples) if shard else samples
    steps = mx.arange(T).reshape(T, 1)
    counts = None
    for start in range(0, len(mine), cfg.eval_batch_size):
        idx = mx.array(mine[start : start + cfg.eval_batch_size])
        spikes_in = encode(cfg, x[idx], T)
        out = model(spikes_in, return_spikes=True)
        before_exit = (steps <= out.t_first[None]).astype(mx.float32)  # [T, B]

        def totals(s, before_exit=before_exit):
            per_step = s.reshape(T, s.shape[1], -1).sum(axis=2)  # [T, B]
            return mx.sum(per_step * before_exit), mx.sum(per_step)

        spikes = [totals(s) for s in (spikes_in, *out.spikes)]  # input, then each layer
        correct = mx.argmax(out.logits, axis=-1) == y[idx]
        mx.eval(out.t_first, correct, spikes)
        if counts is None:
            counts, hits = np.zeros(T, np.int64), np.zeros(T, np.int64)
            exit_sums, full_sums = np.zeros(len(spikes), np.int64), np.zeros(len(spikes), np.int64)
            sizes = [math.prod(s.shape[2:]) for s in (spikes_in, *out.spikes)]
        t_first = np.array(out.t_first)
        counts += np.bincount(t_first, minlength=T)
        hits += np.bincount(t_first, weights=np.array(correct), minlength=T).astype(np.int64)
        exit_sums += [int(e.item()) for e, _ in spikes]
        full_sums += [int(f.item()) for _, f in spikes]
    model.train()
    if shard:  # spike counts are whole numbers: summed over the ranks exactly
        summed = dist.all_sum(np.concatenate([counts, hits, exit_sums, full_sums]))
        counts, hits, exit_sums, full_sums = np.split(summed, np.cumsum([T, T, len(sizes)]))

    def per_neuron(i: int) -> dict:
        size = sizes[i]
        return {
            "neurons": size,
            "early_exit": exit_sums[i] / (n * size),
            "full_window": full_sums[i] / (n * size),
        }

    hidden = sum(sizes[1:])
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
            "layers": [per_neuron(i) for i in range(1, len(sizes))],
            "all_hidden": {
                "neurons": hidden,
                "early_exit": float(exit_sums[1:].sum() / (n * hidden)),
                "full_window": float(full_sums[1:].sum() / (n * hidden)),
            },
            "input": per_neuron(0),
        },
    }


def plot_t_first(evaluation: dict, path: Path, title: str) -> None:
    """Bar chart of the fraction of test samples decided at each step, accuracy on top."""
    from matplotlib.figure import Figure

    decided = evaluation["t_first"]
    steps = np.arange(len(decided["fraction"]))
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(steps, 100 * np.array(decided["fraction"]), color="tab:blue")
    for bar, acc in zip(bars, decided["accuracy"], strict=True):
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
    fig.savefig(path, dpi=100)


def write_plots(model, cfg: Config, x: mx.array, num_steps: int, folder: Path, title: str):
    """``--plots``: input spikes, last hidden layer's raster, firing rate per layer."""
    frames = encode(cfg, x[: cfg.eval_batch_size], num_steps)
    model.eval()
    out = model(frames, return_spikes=True)
    model.train()
    spikes = {"input": frames, **{f"hidden{i + 1}": s for i, s in enumerate(out.spikes)}}
    return common.write_spike_plots(folder, title, frames, spikes)


def train(cfg: Config) -> dict:
    """Run the recipe described by ``cfg``; return the metrics written to ``metrics.json``.

    Raises ``_common.Interrupted`` after saving a checkpoint when Ctrl-C was pressed.
    """
    cfg, out = common.prepare(cfg)
    (x_train, y_train), (x_test, y_test) = common.load_mnist(cfg)
    n, n_test = x_train.shape[0], int(x_test.shape[0])
    common.check_ranks(n_test, "test images")  # evaluate() gives each rank some
    steps = common.steps_per_epoch(n, cfg.batch_size)

    mx.random.seed(cfg.seed)
    model = build_model(cfg)
    # sqrt(ranks) * lr: see mlx_snn.distributed.scaled_lr
    schedule = optim.cosine_decay(dist.scaled_lr(cfg.lr), cfg.epochs * steps)
    run = common.Run(cfg, model, schedule, loss_fn, SCHEDULE_FIELDS)  # --resume: restores

    def train_batch(batch, T: int) -> dict[str, float]:
        _, idx = batch
        loss, (hits, t_sum) = run.step(encode(cfg, x_train[idx], T), y_train[idx])
        b = idx.shape[0]
        return {
            "samples": b,
            "loss": loss.item() * b,
            "correct": hits.item(),
            "t_first": t_sum.item(),
        }

    facts = common.run_facts(cfg, n, n_test, steps)

    def metrics(history: list[dict], final: dict | None = None) -> dict:
        return {**facts, "history": history, "final": final}

    with run:
        for epoch in run.epochs():
            T = cfg.steps_at(epoch)
            batches = common.epoch_batches(cfg.seed, epoch, n, cfg.batch_size, run.progress.step)
            desc = f"epoch {epoch + 1}/{cfg.epochs} T={T}"
            run.train_epoch(epoch, steps, batches, functools.partial(train_batch, T=T), desc)
            tic = time.perf_counter()
            test = evaluate(model, x_test, y_test, cfg, T)
            record = {
                "epoch": epoch + 1,
                "num_steps": T,
                **run.progress.summary(),
                "train_mean_t_first": run.progress.mean("t_first"),
                "test_acc": test["accuracy"],
                "test_seconds": time.perf_counter() - tic,
            }
            run.history.append({**record, "test": test})
            run.end_epoch(metrics, {**record, "t_first_counts": test["t_first"]["counts"]})

    final = None
    if run.history and run.history[-1]["epoch"] == cfg.epochs:
        T = cfg.steps_at(cfg.epochs - 1)
        sweep = []
        for value in cfg.sweep_thresholds:
            model.set_decoder_threshold(value)
            sweep.append(evaluate(model, x_test, y_test, cfg, T))
        model.set_decoder_threshold(cfg.threshold)
        final = {"evaluation": run.history[-1]["test"], "threshold_sweep": sweep}
    if not dist.is_main():  # rank 0 writes the results
        return {"history": run.history}
    result = run.write_metrics(lambda history: metrics(history, final))
    T = cfg.steps_at(run.epoch - 1) if run.history else cfg.time_steps[0]
    if cfg.cost:
        everything = functools.partial(evaluate, model, x_test, y_test, cfg, T, shard=False)
        common.cost_report(model, everything, out / "cost.json")
    if run.history:
        title = f"{cfg.dataset} TTFS {cfg.arch}"
        common.plot_curves(
            run.history, out / common.CURVES, title, "CE at t_1st", lambda h: f"T={h['num_steps']}"
        )
        if final is not None:
            title = f"{cfg.dataset} {cfg.arch}, T={T}, V_th={cfg.threshold}"
            plot_t_first(final["evaluation"], out / HISTOGRAM, title)
        if cfg.plots:
            write_plots(model, cfg, x_test, T, out / "plots", f"{cfg.dataset} TTFS {cfg.arch}")
    return result


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def parse_args(argv: list[str] | None = None) -> Config:
    p = common.parser(__doc__)
    p.add_argument("--arch", choices=snn.models.ARCHS, help="AMOS MLP or conv net")
    p.add_argument("--hidden", type=_ints, help="hidden widths, e.g. 800 or 400,400")
    p.add_argument("--time-steps", type=_ints, help="T of each stage")
    p.add_argument("--epochs-per-stage", type=_ints, help="one value, or one per stage")
    p.add_argument("--epochs", type=int, help="default: the stages' sum")
    p.add_argument("--threshold", type=float, help="decoder confidence threshold V_th")
    p.add_argument("--neuron-threshold", type=float, help="hidden AMOS threshold")
    p.add_argument("--tau", type=float, help="hidden AMOS time constant")
    p.add_argument("--decoder-tau", type=float, help="initial decoder tau")
    p.add_argument("--force-last", action="store_true", help="forced spike at T-1 (eq. 7)")
    p.add_argument("--encoder-tau", type=float, help="TTFS input coding time constant")
    p.add_argument("--encoder-threshold", type=float, help="TTFS input coding threshold")
    p.add_argument("--sweep-thresholds", type=_floats, help="V_th values after the last epoch")
    p.add_argument("--dataset", choices=("mnist", "fashion"), help="MNIST or Fashion-MNIST")
    p.add_argument("--data-dir", help="folder of the IDX files (default: cache)")
    common.add_run_flags(p, "about 4 per epoch of the full recipe")
    args = common.parse_flags(p, Config, argv)
    if not args.time_steps:
        p.error("--time-steps must list at least one number of time steps, e.g. 1,2,4,8")
    if not args.epochs_per_stage:
        p.error("--epochs-per-stage must hold one value or one per stage, e.g. 3")
    try:
        return Config(**vars(args))
    except (ValueError, TypeError) as err:
        p.error(str(err))


def summary(last: dict) -> str:
    test = last["test"]
    return (
        f"epoch {last['epoch']} (T={last['num_steps']}): test accuracy "
        f"{100 * test['accuracy']:.2f}%, mean t_1st {test['mean_t_first']:.2f}, "
        f"spikes per hidden neuron {test['spikes_per_neuron']['all_hidden']['early_exit']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    return common.main("examples/ttfs_mnist.py", train, parse_args(argv), summary)


if __name__ == "__main__":
    sys.exit(main())
