"""Offline demo: train a small spiking MLP on the bundled MNIST subset.

Network: ``Linear(784, 256) -> LIF -> Linear(256, 10) -> leaky readout`` over ``T``
steps of constant-current input (the pixel intensities). The hidden layer spikes;
the readout is a non-spiking leaky integrator (``LIF(reset="none")``) whose
time-averaged membrane gives the logits. Cross-entropy, Adam with a cosine
schedule, fixed seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from ._progress import progress
from .data import bundled_mnist
from .nn import LIF


class SpikingMLP(nn.Module):
    """``[B, 784]`` images -> logits ``[B, 10]`` (time-mean readout membrane)."""

    def __init__(self, hidden: int = 256, num_steps: int = 8, beta: float = 0.9):
        super().__init__()
        self.num_steps = num_steps
        self.fc1 = nn.Linear(784, hidden)
        self.lif1 = LIF(beta=beta)
        self.fc2 = nn.Linear(hidden, 10)
        self.readout = LIF(beta=beta, reset="none")

    def hidden_spikes(self, images: mx.array) -> mx.array:
        """Hidden-layer spikes ``[T, B, hidden]``."""
        # constant input current: the first layer's output is the same every step
        current = self.fc1(images)
        return self.lif1(mx.broadcast_to(current, (self.num_steps, *current.shape)))

    def __call__(self, images: mx.array) -> mx.array:
        _, out = self.readout(self.fc2(self.hidden_spikes(images)), return_state=True)
        return out.mem.mean(axis=0)


@dataclass
class DemoResult:
    test_accuracy: float
    epoch_seconds: list[float]
    hidden_rate: float


def run_demo(
    epochs: int = 8,
    batch_size: int = 128,
    num_steps: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    limit: int | None = None,
    verbose: bool = True,
    show_progress: bool = True,
) -> DemoResult:
    """Train on the bundled subset and return test accuracy and seconds per epoch.

    ``verbose`` prints the result; ``show_progress`` reports each epoch on stderr (a live bar
    in a terminal, one line per epoch into a pipe or file).
    """
    mx.random.seed(seed)
    rng = np.random.default_rng(seed)
    x_train, y_train = bundled_mnist("train")
    x_test, y_test = bundled_mnist("test")
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    x_train = mx.array(x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0)
    x_test = mx.array(x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0)
    y_train, y_test = mx.array(y_train.astype(np.int32)), mx.array(y_test.astype(np.int32))

    n = x_train.shape[0]
    steps = (n + batch_size - 1) // batch_size
    model = SpikingMLP(num_steps=num_steps)
    optimizer = optim.Adam(learning_rate=optim.cosine_decay(lr, epochs * steps))

    def loss_fn(images, labels):
        logits = model(images)
        return nn.losses.cross_entropy(logits, labels, reduction="mean"), logits

    state = [model.state, optimizer.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def train_step(images, labels):
        (loss, logits), grads = nn.value_and_grad(model, loss_fn)(images, labels)
        optimizer.update(model, grads)
        correct = (logits.argmax(axis=1) == labels).sum()
        return loss, correct

    @mx.compile
    def predict(images):
        return model(images).argmax(axis=1), model.hidden_spikes(images).mean()

    epoch_seconds = []
    for epoch in range(epochs):
        order = mx.array(rng.permutation(n))
        start = time.perf_counter()
        desc = f"epoch {epoch + 1}/{epochs}"
        bar = progress(range(steps), total=steps, desc=desc, enabled=show_progress)
        total_loss, total_correct = 0.0, 0
        for i in bar:
            idx = order[i * batch_size : (i + 1) * batch_size]
            loss, correct = train_step(x_train[idx], y_train[idx])
            mx.eval(state, loss, correct)
            total_loss += loss.item() * idx.size
            total_correct += correct.item()
            seen = min((i + 1) * batch_size, n)
            bar.set_postfix_str(f"loss {total_loss / seen:.3f} acc {total_correct / seen:.3f}")
        epoch_seconds.append(time.perf_counter() - start)
    correct, rates = 0, []
    for i in range(0, x_test.shape[0], 500):
        pred, rate = predict(x_test[i : i + 500])
        correct += (pred == y_test[i : i + 500]).sum().item()
        rates.append(rate.item())
    acc = correct / x_test.shape[0]
    result = DemoResult(acc, epoch_seconds, float(np.mean(rates)))
    if verbose:
        per_epoch = ", ".join(f"{s:.1f}" for s in epoch_seconds)
        print(
            f"test accuracy {acc:.2%} on {x_test.shape[0]} held-out MNIST images "
            f"(hidden firing rate {result.hidden_rate:.3f})\n"
            f"seconds per epoch: {per_epoch} ({n} training images, T={num_steps}, "
            f"batch {batch_size}, first epoch includes compilation)"
        )
    return result
