"""Workload 5: one full training step of the TAC paper's MNIST network, ours vs peers, on CPU.

Usage: python bench/mnist_step.py [--quick] [--reps N] [--out DIR]
Network (paper, section 5): Conv(1->32,3)-BN-LIF-Pool(2)-Conv(32->64,3)-BN-LIF-Pool(2)-
FC(1600->128)-LIF-FC(128->10)-LIF, beta 0.9, fast-sigmoid surrogate (slope 25),
cross-entropy on spike counts, Adam (lr 1e-3). T=25, B=128 (--quick: B=16) of
Bernoulli(0.3) frames. A step = forward + backward + optimizer update.

Columns: ours ``snn.models.mnist_convnet(mode=...)`` (baseline, TAC g=4, TAC-TP g=4);
the same network written per step with mlx-snn 0.5.0's ``Leaky`` on mlx.nn layers,
and with snnTorch's ``Leaky`` on torch.nn layers (BatchNorm per step, the usual way
in those libraries; ours runs BN over the merged T*B frames). Initialisations differ
between libraries, so the outputs are not compared: this row times the step only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.runner import Impl, run_row

NAME = "mnist_step"
TITLE = "5. MNIST ConvNet training step (CPU)"
COLUMNS = ["ours baseline", "ours TAC g=4", "ours TAC-TP g=4", "mlx-snn 0.5.0", "snnTorch"]


def batch(T, B, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((T, B, 28, 28, 1)) < 0.3).astype(np.float32)
    y = rng.integers(0, 10, B).astype(np.int32)
    return x, y


def _mlx_step(model, forward, x_np, y_np) -> Impl:
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    x, y = mx.array(x_np), mx.array(y_np)
    opt = optim.Adam(learning_rate=1e-3, bias_correction=True)  # as torch's Adam

    def loss_fn(x_, y_):
        return nn.losses.cross_entropy(forward(x_).sum(0), y_, reduction="mean")

    grad = nn.value_and_grad(model, loss_fn)

    def step():
        loss, grads = grad(x, y)
        opt.update(model, grads)
        mx.eval(loss, model.parameters(), opt.state)

    return Impl(step, lambda: (), "mlx")


def ours(x, y, mode: str) -> Impl | str:
    import mlx_snn as snn

    if not hasattr(snn, "models"):
        return "snn.models is not in this tree yet"
    model = snn.models.mnist_convnet(mode=mode, group=4, num_steps=x.shape[0])
    model.train()
    return _mlx_step(model, model, x, y)


def mlxsnn(x, y) -> Impl | str:
    lib = peers.load("mlxsnn")
    if lib is None:
        return peers.missing_note("mlxsnn")
    import mlx.core as mx
    import mlx.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(1, 32, 3), nn.BatchNorm(32)
            self.c2, self.b2 = nn.Conv2d(32, 64, 3), nn.BatchNorm(64)
            self.f1, self.f2 = nn.Linear(1600, 128), nn.Linear(128, 10)
            self.lifs = [lib.Leaky(beta=0.9, surrogate_fn="fast_sigmoid") for _ in range(4)]
            self.pool = nn.MaxPool2d(2)

        def __call__(self, xs):
            B = xs.shape[1]
            shapes = [(B, 26, 26, 32), (B, 11, 11, 64), (B, 128), (B, 10)]
            states = [lif.init_state(*s) for lif, s in zip(self.lifs, shapes, strict=True)]
            out = []
            for t in range(xs.shape[0]):
                h = self.b1(self.c1(xs[t]))
                s, states[0] = self.lifs[0](h, states[0])
                h = self.b2(self.c2(self.pool(s)))
                s, states[1] = self.lifs[1](h, states[1])
                h = self.f1(self.pool(s).reshape(B, -1))
                s, states[2] = self.lifs[2](h, states[2])
                s, states[3] = self.lifs[3](self.f2(s), states[3])
                out.append(s)
            return mx.stack(out)

    net = Net()
    net.train()
    return _mlx_step(net, net, x, y)


def snntorch(x_np, y_np, device: str = "cpu") -> Impl | str:
    if peers.load("torch") is None:
        return peers.missing_note("torch")
    lib = peers.load("snntorch")
    if lib is None:
        return peers.missing_note("snntorch")
    import torch
    from torch import nn

    grad = lib.surrogate.fast_sigmoid(slope=25)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32)
            self.c2, self.b2 = nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64)
            self.f1, self.f2 = nn.Linear(1600, 128), nn.Linear(128, 10)
            self.lifs = nn.ModuleList(lib.Leaky(beta=0.9, spike_grad=grad) for _ in range(4))
            self.pool = nn.MaxPool2d(2)

        def forward(self, xs):
            mems = [lif.init_leaky() for lif in self.lifs]
            out = []
            for t in range(xs.shape[0]):
                s, mems[0] = self.lifs[0](self.b1(self.c1(xs[t])), mems[0])
                s, mems[1] = self.lifs[1](self.b2(self.c2(self.pool(s))), mems[1])
                s, mems[2] = self.lifs[2](self.f1(self.pool(s).flatten(1)), mems[2])
                s, mems[3] = self.lifs[3](self.f2(s), mems[3])
                out.append(s)
            return torch.stack(out)

    net = Net().to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.tensor(x_np, device=device).permute(0, 1, 4, 2, 3).contiguous()
    y = torch.tensor(y_np, device=device).long()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(net(x).sum(0), y)
        loss.backward()
        opt.step()
        sync()

    return Impl(step, lambda: (), "torch_cuda" if device.startswith("cuda") else "rss")


def run(quick: bool = False, reps: int | None = None) -> dict:
    T, B = (25, 16) if quick else (25, 128)
    x, y = batch(T, B)
    records = run_row(
        TITLE,
        f"T={T}, B={B}, 28x28",
        {
            "ours baseline": lambda: ours(x, y, "baseline"),
            "ours TAC g=4": lambda: ours(x, y, "tac"),
            "ours TAC-TP g=4": lambda: ours(x, y, "tactp"),
            "mlx-snn 0.5.0": lambda: mlxsnn(x, y),
            "snnTorch": lambda: snntorch(x, y),
        },
        reps=reps or 3,
        params={"T": T, "B": B},
    )
    return {"records": records, "columns": COLUMNS}


if __name__ == "__main__":
    from bench.suite import standalone

    standalone(sys.modules[__name__])
