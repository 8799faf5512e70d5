"""What the three training examples share: one implementation of each piece.

Used by ``examples/mnist.py``, ``examples/dvs_gesture.py`` and ``examples/ttfs_mnist.py``,
which put this folder on ``sys.path`` so that it is found however they are started.

- Start-up: :class:`RunConfig` (the settings every example has; each example's ``Config``
  extends it), the command line (:func:`parser`, :func:`add_run_flags`,
  :func:`add_tac_flags`, :func:`parse_flags`: every default from the ``Config``
  dataclass), :func:`check_optional_imports` (a one-line hint when an extra is missing),
  :func:`main` (runs the example; Ctrl-C ends it with one line and status 130),
  :func:`prepare`, :func:`load_mnist`.
- Result files: :func:`portable_path` and :func:`stored_config` (repository-relative paths
  only, never this machine's absolute ones), :func:`run_facts`, :func:`write_json` (never
  half-written).
- Exact resume: every random draw comes from ``(seed, epoch, step)`` (:func:`seed_step`,
  :func:`derived_key`, :func:`epoch_batches`); :func:`save_checkpoint` /
  :func:`load_checkpoint` keep weights, BatchNorm statistics, optimizer state, the position
  in the run, the config and the metrics so far in one safetensors file.
- The training loop: :class:`Run` (bias-corrected Adam, the train step of
  :func:`make_train_step`, resume, one epoch step by step with mid-epoch checkpoints and
  Ctrl-C handling, a checkpoint and ``metrics.json`` after every epoch). Under
  ``mlx.launch`` (:mod:`mlx_snn.distributed`) gradients and BatchNorm statistics are
  averaged and metrics summed over the ranks, every rank stops after the same step on
  Ctrl-C, and only rank 0 writes files or shows progress.
- Figures and costs: :func:`plot_curves`, :func:`write_spike_plots` and
  :func:`plot_paper_net` (``--plots``, through :mod:`mlx_snn.viz`), :func:`cost_report`
  (``--cost``, through :mod:`mlx_snn.monitor`).
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

import mlx_snn as snn
from mlx_snn import distributed as dist

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.json"
CURVES = "curves.png"
# optional module -> the extra of pyproject.toml that installs it
EXTRAS = {"tqdm": "examples", "matplotlib": "examples", "tonic": "dvs"}
# config fields holding paths (stored relative to the repository)
PATH_FIELDS = ("data_dir", "cache_dir", "out")


# --- start-up -------------------------------------------------------------------------------


@dataclass
class RunConfig:
    """The settings every example has (the flags of :func:`add_run_flags`, and
    ``--data-dir``, ``--epochs``); an example's ``Config`` adds its own and may give these
    other defaults."""

    epochs: int = 1
    stop_after: int | None = None
    limit: int | None = None
    test_limit: int | None = None
    batch_size: int = 128
    eval_batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    data_dir: str | None = None
    out: str = "runs/example"
    resume: bool = False
    compile: bool = False
    quiet: bool = False
    checkpoint_every: int = 100
    plots: bool = False
    cost: bool = False
    ranks: int = 1  # processes of the run (set from mlx.launch's group, not an option)


# the settings of RunConfig that must agree between a checkpoint and the run resuming it
SCHEDULE_FIELDS = ("epochs", "limit", "batch_size", "lr", "seed", "ranks")


def prepare(cfg: RunConfig) -> tuple[RunConfig, Path]:
    """Make the ``--out`` folder; return ``cfg`` with ``ranks`` set from the launched group
    (1 without ``mlx.launch``) and the folder."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(cfg, ranks=dist.size()), out


def check_ranks(n: int, what: str) -> None:
    """Exit when ``n`` samples are too few to give every rank one."""
    if n < dist.size():
        raise SystemExit(f"{n} {what} cannot be shared by {dist.size()} ranks")


def check_optional_imports(script: str, modules: Iterable[str] = ("tqdm", "matplotlib")) -> None:
    """Exit with a one-line hint when a module of an optional extra is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        extras = ",".join(sorted({EXTRAS[m] for m in missing}))
        raise SystemExit(
            f"{script} needs {' and '.join(missing)}: "
            f'pip install ".[{extras}]" from the repository root'
        )


def main(
    script: str,
    train: Callable[[object], dict],
    cfg,
    summary: Callable[[dict], str],
    modules: Iterable[str] = ("tqdm", "matplotlib"),
) -> int:
    """Run ``train(cfg)`` as the script ``script``; return its exit status.

    Checks the optional imports first; prints ``summary(last epoch's record)`` at the end
    (rank 0). Ctrl-C (:class:`Interrupted`, after a checkpoint) prints one line and returns
    130, as does a second Ctrl-C that stops at once.
    """
    check_optional_imports(script, modules)
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
        print(summary(metrics["history"][-1]))
    return 0


class _ShowDefaults(argparse.HelpFormatter):
    """``--help`` gives each flag's default (not ``None`` or off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        shown = all(action.default is not v for v in (None, False, argparse.SUPPRESS))
        return (action.help or "") + (" (default: %(default)s)" if shown else "")


def parser(doc: str) -> argparse.ArgumentParser:
    """The command line of an example: its docstring's first paragraph, defaults shown."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=_ShowDefaults)


def add_run_flags(p: argparse.ArgumentParser, checkpoint_every: str) -> None:
    """The flags of :class:`RunConfig` but ``--epochs`` and ``--data-dir`` (whose help is the
    example's own). ``checkpoint_every`` says what the default interval amounts to for the
    example's recipe. Defaults: :func:`parse_flags`."""
    p.add_argument("--stop-after", type=int, help="end after this many epochs")
    p.add_argument("--limit", type=int, help="use the first N training samples")
    p.add_argument("--test-limit", type=int, help="use the first N test samples")
    p.add_argument("--batch-size", type=int, help="per rank")
    p.add_argument("--eval-batch-size", type=int, help="test batch")
    p.add_argument("--lr", type=float, help="learning rate (times sqrt(ranks))")
    p.add_argument("--seed", type=int, help="seed of the weights, data order and encodings")
    p.add_argument("--out", help="folder for metrics and checkpoints")
    p.add_argument("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT}")
    p.add_argument("--compile", action="store_true", help="mx.compile the train step")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="also save a checkpoint every N steps within an epoch (0: at epoch ends only; "
        f"the default is {checkpoint_every})",
    )
    p.add_argument("--plots", action="store_true", help="write spike plots to --out/plots")
    p.add_argument("--cost", action="store_true", help="print snn.monitor's cost table")


def add_tac_flags(p: argparse.ArgumentParser) -> None:
    """``--mode`` and ``--group`` of the TAC paper's networks (``snn.models.MODES``)."""
    p.add_argument("--mode", choices=snn.models.MODES, help="conv layers: plain, TAC or TAC-TP")
    p.add_argument("--group", type=int, help="TAC group size g")


def parse_flags(p: argparse.ArgumentParser, config: type, argv: list[str] | None):
    """Parse ``argv`` with every default taken from the fields of the dataclass ``config``
    (the one place for them), and check the bounds of the flags every example has."""
    p.set_defaults(**{f.name: f.default for f in dataclasses.fields(config)})
    args = p.parse_args(argv)
    check_at_least(p, args, 0, ["checkpoint_every"])
    check_at_least(p, args, 1, ["epochs", "stop_after", "limit", "test_limit"])
    check_at_least(p, args, 1, ["batch_size", "eval_batch_size"])
    return args


def check_at_least(
    p: argparse.ArgumentParser, args: argparse.Namespace, minimum: int, names: Iterable[str]
) -> None:
    """``p.error`` naming the flag when a set value of ``names`` is below ``minimum``."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            p.error(f"--{name.replace('_', '-')} must be >= {minimum}; got {value}")


# --- result files ---------------------------------------------------------------------------


def portable_path(path: str | os.PathLike | None) -> str | None:
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


def stored_config(cfg) -> dict:
    """The dataclass ``cfg`` as written to ``metrics.json`` and checkpoints: JSON values
    (tuples become lists), the paths of :data:`PATH_FIELDS` made portable."""
    saved = json.loads(json.dumps(dataclasses.asdict(cfg)))
    for name in PATH_FIELDS:
        if name in saved:
            saved[name] = portable_path(saved[name])
    return saved


def run_facts(cfg: RunConfig, train_samples: int, test_samples: int, steps: int) -> dict:
    """The head of every example's ``metrics.json``: the stored config, the data sizes, steps
    per epoch, the global batch (all ranks), MLX's version and device."""
    return {
        "config": stored_config(cfg),
        "train_samples": train_samples,
        "test_samples": test_samples,
        "steps_per_epoch": steps,
        "global_batch_size": cfg.batch_size * cfg.ranks,
        "mlx_version": mx.__version__,
        "device": str(mx.default_device()),
    }


def write_json(path: Path, obj: object) -> None:
    """Write ``obj`` as indented JSON through a temporary file (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


# --- exact resume ---------------------------------------------------------------------------


def derived_key(seed: int, *position: int) -> mx.array:
    """An MLX random key that depends only on ``(seed, *position)``."""
    state = np.random.SeedSequence([seed, *position]).generate_state(1, np.uint32)
    return mx.random.key(int(state[0]))


def seed_step(seed: int, epoch: int, step: int) -> None:
    """Reseed MLX's global generator from ``(seed, epoch, step)`` alone, so that a run resumed
    anywhere draws what an uninterrupted one drew (dropout, noise: whatever a model draws)."""
    mx.random.seed(int(np.random.SeedSequence([seed, 3, epoch, step]).generate_state(1)[0]))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Steps of one epoch: batches of ``batch_size`` in each rank's ``n // ranks`` samples
    (the global batch is ``batch_size * ranks``; the last ``n % ranks`` samples of an epoch's
    order are left out, so that all ranks run the same steps on equal batches)."""
    return math.ceil(n // dist.size() / batch_size)


def epoch_batches(
    seed: int, epoch: int, n: int, batch_size: int, start: int = 0
) -> Iterator[tuple[int, mx.array]]:
    """``(step, sample numbers)`` of this rank's batches of ``epoch``, from step ``start`` on.

    The epoch's order of ``range(n)`` is drawn from ``(seed, epoch)`` alone; under
    ``mlx.launch`` each rank takes its share of every global batch of that order
    (:func:`mlx_snn.distributed.shard`, see :func:`steps_per_epoch`).
    """
    order = np.random.default_rng([seed, 2, epoch]).permutation(n)
    mine = mx.array(dist.shard(order, drop_remainder=True))
    for i in range(start, steps_per_epoch(n, batch_size)):
        yield i, mine[i * batch_size : (i + 1) * batch_size]


def save_checkpoint(path: Path, model: nn.Module, optimizer: optim.Optimizer, meta: dict) -> None:
    """``model.parameters()`` (BatchNorm statistics included), ``optimizer.state`` and ``meta``
    (JSON values) in one safetensors file, written to a temporary name and renamed."""
    arrays = {f"model.{k}": v for k, v in tree_flatten(model.parameters())}
    arrays.update({f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)})
    tmp = path.with_name(f".{path.stem}.tmp.safetensors")
    mx.save_safetensors(str(tmp), arrays, metadata={k: json.dumps(v) for k, v in meta.items()})
    os.replace(tmp, path)


def load_checkpoint(
    path: Path, model: nn.Module, optimizer: optim.Optimizer, cfg, must_match: Sequence[str]
) -> dict:
    """Restore what :func:`save_checkpoint` saved into ``model`` and ``optimizer``; return the
    decoded ``meta``.

    ``meta["config"]`` must agree with the dataclass ``cfg`` on every field of ``must_match``
    (a field an older file lacks counts as its default), else ``SystemExit`` names the
    differences; so does optimizer state that does not fit the model.
    """
    arrays, raw = mx.load(str(path), return_metadata=True)
    meta = {k: json.loads(v) for k, v in raw.items()}
    now = stored_config(cfg)
    fields = dataclasses.fields(cfg)
    defaults = {f.name: None if f.default is dataclasses.MISSING else f.default for f in fields}
    defaults = json.loads(json.dumps(defaults))
    saved = {**defaults, **meta["config"]}
    diff = [
        f"{k}: checkpoint {saved[k]!r}, now {now[k]!r}" for k in must_match if saved[k] != now[k]
    ]
    if diff:
        raise SystemExit(f"--resume: {path} was made with other settings ({'; '.join(diff)})")
    model.load_weights([(k[6:], v) for k, v in arrays.items() if k.startswith("model.")])
    opt = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    if sorted(opt) != sorted(k for k, _ in tree_flatten(optimizer.state)):
        raise SystemExit(f"--resume: the optimizer state in {path} does not fit this model")
    optimizer.state = tree_map_with_path(lambda key, _: opt[key], optimizer.state)
    return meta


# --- the training loop ----------------------------------------------------------------------


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


@dataclass
class EpochProgress:
    """The epoch in progress (kept in mid-epoch checkpoints): steps done, the running sums of
    the steps' metrics over all ranks (``samples``, ``loss``: loss times samples,
    ``correct``, and any an example adds) and the seconds spent."""

    step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    step_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def mean(self, name: str) -> float:
        """``sums[name]`` per training sample."""
        return self.sums[name] / self.sums["samples"]

    def summary(self) -> dict:
        """The training half of an epoch's ``metrics.json`` record."""
        seconds = self.step_seconds
        return {
            "train_loss": self.mean("loss"),
            "train_acc": self.mean("correct"),
            "train_seconds": self.seconds,
            "first_step_seconds": seconds[0],
            "median_step_seconds": float(np.median(seconds[1:] or seconds)),
        }


def make_train_step(
    model: nn.Module, optimizer: optim.Optimizer, loss_fn: Callable, use_compile: bool
) -> Callable:
    """``step(*batch) -> (loss, aux)``, one update of ``model`` in place.

    ``loss_fn(model, *batch) -> (loss, aux)``. Under ``mlx.launch`` the gradients are
    averaged over the ranks and the BatchNorm running statistics in the same all-reduce.
    ``use_compile`` wraps the step in ``mx.compile``.
    """
    grad_fn = nn.value_and_grad(model, functools.partial(loss_fn, model))

    def step(*batch):
        (loss, aux), grads = grad_fn(*batch)
        grads, stats = dist.all_mean((grads, dist.running_stats(model)))
        model.update(stats)
        optimizer.update(model, grads)
        return loss, aux

    if not use_compile:
        return step
    state = [model.state, optimizer.state, mx.random.state]
    return mx.compile(step, inputs=state, outputs=state)


class Run:
    """One training run, the same in every example: optimizer, train step, resume,
    checkpoints, ``metrics.json``, Ctrl-C.

    The optimizer is Adam with PyTorch's bias correction (MLX's ``optim.Adam`` skips it by
    default, which makes its first few hundred updates about 3x larger) on the learning-rate
    ``schedule``. With ``cfg.resume`` the model, the optimizer, the history and the position
    in the run are restored from ``cfg.out/checkpoint.safetensors`` (refusing one made with
    other ``must_match`` settings); then every rank must start from the same model, and the
    train step is made (:func:`make_train_step` with ``loss_fn``, after the restore, which
    replaces the optimizer state a compiled step captures). Active as a context manager,
    Ctrl-C only asks the loop to stop after the step in flight (:class:`StopOnInterrupt`)::

        run = Run(cfg, model, schedule, loss_fn, SCHEDULE_FIELDS)
        with run:
            for epoch in run.epochs():
                run.train_epoch(epoch, steps, batches, train_batch)  # calls run.step
                run.history.append({"epoch": epoch + 1, **run.progress.summary(), ...})
                run.end_epoch(metrics)
    """

    def __init__(
        self,
        cfg: RunConfig,
        model: nn.Module,
        schedule: Callable | float,
        loss_fn: Callable,
        must_match: Sequence[str],
    ):
        self.cfg, self.model = cfg, model
        self.optimizer = optim.Adam(learning_rate=schedule, bias_correction=True)
        self.optimizer.init(model.trainable_parameters())
        self.out = Path(cfg.out)
        self.checkpoint = self.out / CHECKPOINT
        self.epoch, self.history, self.progress = 0, [], EpochProgress()  # epochs done
        if cfg.resume:
            if not self.checkpoint.exists():
                raise SystemExit(f"--resume: no {CHECKPOINT} in {self.out}")
            meta = load_checkpoint(self.checkpoint, model, self.optimizer, cfg, must_match)
            self.epoch, self.history = meta["epoch"], meta["history"]
            if meta.get("partial"):
                try:
                    self.progress = EpochProgress(**meta["partial"])
                except TypeError:  # written before the examples shared this module
                    raise SystemExit(
                        f"--resume: {self.checkpoint} holds a mid-epoch position in an older "
                        "format; resume from an epoch-end checkpoint or start again"
                    ) from None
        mx.eval(model.parameters(), self.optimizer.state)
        checksum = sum(mx.sum(mx.abs(v)).item() for _, v in tree_flatten(model.parameters()))
        dist.check_same(
            [self.epoch, self.progress.step, checksum], "the starting model (or checkpoint)"
        )
        model.train()
        self._step = make_train_step(model, self.optimizer, loss_fn, cfg.compile)
        self.last = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
        self.stop = StopOnInterrupt()

    def step(self, *batch) -> tuple[mx.array, object]:
        """One update on ``batch`` (``loss_fn``'s arguments after the model); returns
        ``(loss, aux)`` with them, the model and the optimizer state evaluated."""
        loss, aux = self._step(*batch)
        mx.eval(loss, aux, self.model.state, self.optimizer.state)
        return loss, aux

    def __enter__(self) -> Run:
        self.stop.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.__exit__(*exc)

    def epochs(self) -> range:
        """The epochs (0-based) this run trains: from the checkpoint's position to
        ``--stop-after`` or ``--epochs``."""
        return range(self.epoch, self.last)

    def save(self, partial: EpochProgress | None = None) -> None:
        """Checkpoint after :attr:`epoch` whole epochs and, mid-epoch, ``partial`` of the next
        (rank 0 writes; every rank waits for it, so none ends before it is written)."""
        if dist.is_main():
            meta = {
                "epoch": self.epoch,
                "config": stored_config(self.cfg),
                "history": self.history,
                "partial": None if partial is None else dataclasses.asdict(partial),
            }
            save_checkpoint(self.checkpoint, self.model, self.optimizer, meta)
        dist.barrier()

    def agree_to_stop(self) -> bool:
        """True on every rank when Ctrl-C reached any rank (every rank calls it at the same
        point)."""
        self.stop.requested = bool(dist.all_sum(self.stop.requested))
        return self.stop.requested

    def train_epoch(
        self,
        epoch: int,
        steps: int,
        batches: Iterable,
        train_batch: Callable[[object], Mapping[str, float]],
        desc: str | None = None,
    ) -> None:
        """Train epoch ``epoch`` from step ``progress.step`` to ``steps``.

        ``batches`` yields one batch per remaining step; ``train_batch(batch)`` trains on it
        (:meth:`step`) and returns this rank's sums for the step (``samples``, ``loss``,
        ``correct``, ...) as numbers. Before each step MLX's generator is reseeded
        (:func:`seed_step`). Saves a checkpoint every ``cfg.checkpoint_every`` steps and, when
        Ctrl-C was pressed on any rank, after the step in flight; then raises
        :class:`Interrupted`.
        """
        from tqdm import tqdm

        cfg, progress, stop = self.cfg, self.progress, self.stop
        desc = f"epoch {epoch + 1}/{cfg.epochs}" if desc is None else desc
        quiet = cfg.quiet or not dist.is_main()
        bar = tqdm(desc=desc, total=steps, initial=progress.step, disable=quiet)
        tic = time.perf_counter() - progress.seconds
        t_step = time.perf_counter()  # a step's time includes waiting for its batch
        try:
            for batch in batches:
                seed_step(cfg.seed, epoch, progress.step)
                sums = train_batch(batch)
                *totals, stops = dist.all_sum([*sums.values(), stop.requested])  # over ranks
                stop.requested = bool(stops)
                for name, total in zip(sums, totals, strict=True):
                    progress.sums[name] = progress.sums.get(name, 0.0) + float(total)
                progress.step += 1
                progress.step_seconds.append(time.perf_counter() - t_step)
                progress.seconds = time.perf_counter() - tic
                bar.update()
                bar.set_postfix(
                    loss=f"{progress.mean('loss'):.4f}", acc=f"{progress.mean('correct'):.4f}"
                )
                due = cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0
                if progress.step < steps and (due or stop.requested):
                    self.save(progress)
                    if stop.requested:
                        raise Interrupted(
                            f"interrupted at step {progress.step}/{steps} of epoch {epoch + 1};"
                            f" saved {self.checkpoint}, continue with --resume"
                        )
                t_step = time.perf_counter()
        finally:
            bar.close()
            if hasattr(batches, "close"):  # a generator: stop its reader thread, if any
                batches.close()

    def write_metrics(self, metrics: Callable[[list[dict]], dict]) -> dict | None:
        """Rank 0: write ``metrics(history)`` to ``metrics.json`` and return it; other ranks:
        ``None``."""
        if not dist.is_main():
            return None
        content = metrics(self.history)
        write_json(self.out / METRICS, content)
        return content

    def end_epoch(self, metrics: Callable[[list[dict]], dict], line: dict | None = None) -> None:
        """After the epoch's record was appended to :attr:`history`: save the checkpoint,
        write ``metrics(history)`` to ``metrics.json``, print ``line`` (default: the record) unless
        ``--quiet``; raise :class:`Interrupted` if Ctrl-C was pressed and epochs remain."""
        self.epoch += 1
        self.progress = EpochProgress()
        self.save()
        if self.write_metrics(metrics) is not None and not self.cfg.quiet:
            print(json.dumps(self.history[-1] if line is None else line), file=sys.stderr)
        if self.agree_to_stop() and self.epoch < self.last:
            raise Interrupted(
                f"interrupted after epoch {self.epoch}; saved {self.checkpoint}, "
                "continue with --resume"
            )


# --- data -----------------------------------------------------------------------------------


def load_mnist(cfg: RunConfig) -> tuple[tuple[mx.array, mx.array], tuple[mx.array, mx.array]]:
    """The training and test splits of MNIST or Fashion-MNIST (``cfg.dataset``, through
    :func:`mlx_snn.data.mnist`): the first ``cfg.limit`` / ``cfg.test_limit`` (all when
    ``None``) images ``[N, 28, 28, 1]`` float32 in ``[0, 1]`` and labels ``[N]`` int32.
    Exits when there are fewer training images than ranks."""
    splits = []
    for split, limit in (("train", cfg.limit), ("test", cfg.test_limit)):
        images, labels = snn.data.mnist(split, data_dir=cfg.data_dir, dataset=cfg.dataset)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        x = mx.array(images[..., None].astype(np.float32) / 255.0)
        splits.append((x, mx.array(labels.astype(np.int32))))
    check_ranks(splits[0][0].shape[0], "training images")
    return splits[0], splits[1]


# --- figures and costs ----------------------------------------------------------------------


def plot_curves(
    history: list[dict],
    path: Path,
    title: str,
    loss: str,
    label: Callable[[dict], str] | None = None,
) -> None:
    """Train loss, train and test accuracy per epoch (``curves.png``); ``loss`` names the
    loss on the axis, ``label(record)`` annotates each test point."""
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel=f"train loss ({loss})")
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * h["test_acc"] for h in history], "s-", label="test")
    for h in history if label else ():
        ax_acc.annotate(label(h), (h["epoch"], 100 * h["test_acc"]), size=7)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
    ax_acc.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def record_layers(model: nn.Module, x: mx.array) -> tuple[dict[str, mx.array], mx.array]:
    """Spikes of every layer of a TAC paper network (``mnist_convnet`` or
    ``dvs_gesture_net``) and the output LIF's membrane, for input ``x [T, B, H, W, C]``.

    Runs the model's own layers in its order (conv blocks, then FC + LIF); returns
    ``({layer name: spikes [T_l, B, ...]}, membrane [T_out, B, N_out])``.
    """
    blocks = model.blocks if hasattr(model, "blocks") else [model.block1, model.block2]
    spikes, h = {}, x
    for i, block in enumerate(blocks):
        h = block(h)
        spikes[f"conv{i + 1}"] = h
    h = model.lif1(model.fc1(h.reshape(*h.shape[:2], -1)))
    spikes["fc1"] = h
    out, state = model.lif2(model.fc2(h), return_state=True)
    spikes["fc2"] = out
    return spikes, state.mem


def write_spike_plots(
    folder: Path,
    title: str,
    frames: mx.array,
    spikes: Mapping[str, mx.array],
    membrane: mx.array | None = None,
    threshold: float | None = None,
) -> list[Path]:
    """``--plots``: the input frames, the raster of the last layer of ``spikes``, its
    ``membrane`` (when given), and the firing rate of every layer, for sample 0.

    ``frames [T, B, H, W, C]``; ``spikes``: layer name -> ``[T_l, B, ...]``, in order.
    """
    from mlx_snn import viz

    folder.mkdir(parents=True, exist_ok=True)
    last = list(spikes)[-1]
    paths = [folder / "input_frames.png", folder / "output_raster.png"]
    viz.frame_grid(frames, paths[0], title=f"{title}: input, sample 0")
    viz.spike_raster(spikes[last], paths[1], title=f"{title}: {last} spikes, sample 0")
    if membrane is not None:
        paths.append(folder / "output_membrane.png")
        viz.membrane_trace(
            membrane,
            paths[-1],
            spikes=spikes[last],
            threshold=threshold,
            title=f"{title}: {last} membrane, sample 0",
        )
    paths.append(folder / "firing_rates.png")
    viz.firing_rates(spikes, paths[-1], title=f"{title}: firing rate per layer")
    return paths


def plot_paper_net(model: nn.Module, frames: mx.array, folder: Path, title: str) -> list[Path]:
    """:func:`write_spike_plots` of a TAC paper network (:func:`record_layers`, eval mode)."""
    model.eval()
    spikes, mem = record_layers(model, frames)
    model.train()
    return write_spike_plots(folder, title, frames, spikes, mem, float(model.lif2.threshold))


def cost_report(model: nn.Module, evaluate: Callable[[], object], path: Path) -> None:
    """``--cost``: run ``evaluate()`` (uncompiled, this process's data only) under
    :class:`mlx_snn.monitor.Monitor`; print the report's table and write it to ``path``."""
    with snn.monitor.Monitor(model) as monitor:
        evaluate()
    report = monitor.report()
    report.to_json(path)
    print(report.table())
