"""One LIF layer training step (fwd+bwd) in each library, on shared inputs.

Every implementation computes, for ``x [T, B, N]`` and fixed weights ``w [T, B, N]``,
``loss = sum(spikes(x) * w)`` and its gradient with respect to ``x``: LIF with
beta 0.9, threshold 1, subtract reset and the arctan surrogate
(alpha 2: sigma'(x) = (alpha/2) / (1 + (pi alpha x / 2)^2), one definition in ours,
snnTorch and SpikingJelly; mlx-snn 0.5.0's "arctan" differs, so only its spikes are checked).
Each returns an :class:`Impl` whose ``step()`` runs one synchronised step and whose
``outputs()`` returns ``(spikes, grad)`` as float32 numpy arrays for the
correctness guard. ``reference`` names the convention of ours it must match:
``"immediate"`` (SpikingJelly, mlx-snn 0.5.0) or ``"delayed"`` (snnTorch ``Leaky``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from bench import peers
from bench.runner import Impl

# MLX is imported inside the MLX implementations only, so that a process that
# runs a torch peer alone (bench/cell.py) never loads it

BETA, THRESHOLD, ALPHA = 0.9, 1.0, 2.0


def inputs(T: int, B: int, N: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((T, B, N)) * 0.5 + 0.3).astype(np.float32)
    w = rng.standard_normal((T, B, N)).astype(np.float32)
    return x, w


def _mlx_impl(run: Callable, x_np, w_np, reference, compiled=False):
    import mlx.core as mx

    x, w = mx.array(x_np), mx.array(w_np)
    mx.eval(x, w)
    grad = mx.grad(lambda x_: (run(x_) * w).sum())
    if compiled:
        grad = mx.compile(grad)

    def outputs():
        return np.array(run(x)), np.array(grad(x))

    return Impl(lambda: mx.eval(grad(x)), outputs, "mlx", reference)


def ours(x_np, w_np, *, variant: str = "loop", reset_timing: str = "immediate") -> Impl | str:
    """``variant``: ``"loop"`` (``snn.LIF(algorithm="loop")``), ``"compiled"`` (that under
    mx.compile), ``"parallel"`` (``snn.ParallelLIF``)."""
    import mlx_snn as snn

    kwargs = dict(beta=BETA, threshold=THRESHOLD, reset="subtract")
    surrogate = snn.surrogate.atan(ALPHA)
    if variant == "parallel":
        if not hasattr(snn, "ParallelLIF"):
            return "snn.ParallelLIF is not in this tree yet"
        layer = snn.ParallelLIF(**kwargs, surrogate=surrogate)
    else:
        if "algorithm" in inspect.signature(snn.LIF).parameters:
            kwargs["algorithm"] = "loop"  # the step loop, whatever "auto" would pick
        layer = snn.LIF(**kwargs, surrogate=surrogate, reset_timing=reset_timing)
    return _mlx_impl(layer, x_np, w_np, reset_timing, compiled=variant == "compiled")


def plain_mlx_loop(x_np, w_np) -> Impl:
    """The obvious MLX code: a Python loop over time that autograd differentiates."""
    import mlx.core as mx

    import mlx_snn as snn

    spike = snn.surrogate.atan(ALPHA)

    def run(x):
        v, out = mx.zeros(x.shape[1:]), []
        for t in range(x.shape[0]):
            h = BETA * v + x[t]
            s = spike(h - THRESHOLD)
            v = h - THRESHOLD * s
            out.append(s)
        return mx.stack(out)

    return _mlx_impl(run, x_np, w_np, "immediate")


def mlx_list_loop(x_np, w_np) -> Impl:
    """The plain MLX loop differentiated w.r.t. a list of per-step inputs ``[x_0, ...]``.

    Differentiating slices ``x[t]`` of one array costs a full-size zero array per
    step in MLX; split once into a list, the autograd loop is the reference that a
    hand-written backward must beat. The loss is ``sum_t sum(s_t * w_t)``.
    """
    import mlx.core as mx

    import mlx_snn as snn

    spike = snn.surrogate.atan(ALPHA)
    xs = [mx.array(a) for a in x_np]
    w = mx.array(w_np)
    mx.eval(xs, w)

    def spikes(xs_):
        v, out = mx.zeros(xs_[0].shape), []
        for x_t in xs_:
            h = BETA * v + x_t
            s = spike(h - THRESHOLD)
            v = h - THRESHOLD * s
            out.append(s)
        return out

    def loss(xs_):
        return (mx.stack(spikes(xs_)) * w).sum()

    grad = mx.grad(loss)

    def outputs():
        return np.array(mx.stack(spikes(xs))), np.array(mx.stack(grad(xs)))

    return Impl(lambda: mx.eval(grad(xs)), outputs, "mlx", "immediate")


def mlxsnn(x_np, w_np) -> Impl | str:
    lib = peers.load("mlxsnn")
    if lib is None:
        return peers.missing_note("mlxsnn")
    layer = lib.Leaky(
        beta=BETA,
        threshold=THRESHOLD,
        reset_mechanism="subtract",
        surrogate_fn="arctan",
        surrogate_scale=ALPHA,
    )

    import mlx.core as mx

    def run(x):
        state, out = layer.init_state(*x.shape[1:]), []
        for t in range(x.shape[0]):
            s, state = layer(x[t], state)
            out.append(s)
        return mx.stack(out)

    impl = _mlx_impl(run, x_np, w_np, "immediate")
    impl.compare_grad = False  # its "arctan" surrogate is not our atan(2); spikes must agree
    return impl


def _torch_impl(run, x_np, w_np, device, reference):
    import torch

    x = torch.tensor(x_np, device=device, requires_grad=True)
    w = torch.tensor(w_np, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step():
        x.grad = None
        (run(x) * w).sum().backward()
        sync()

    def outputs():
        x.grad = None
        spikes = run(x)
        (spikes * w).sum().backward()
        return spikes.detach().cpu().numpy(), x.grad.detach().cpu().numpy()

    memory = "torch_cuda" if device.startswith("cuda") else "rss"
    return Impl(step, outputs, memory, reference)


def snntorch(x_np, w_np, device: str = "cpu") -> Impl | str:
    if peers.load("torch") is None:
        return peers.missing_note("torch")
    lib = peers.load("snntorch")
    if lib is None:
        return peers.missing_note("snntorch")
    import torch

    layer = lib.Leaky(
        beta=BETA,
        threshold=THRESHOLD,
        reset_mechanism="subtract",
        spike_grad=lib.surrogate.atan(alpha=ALPHA),
    ).to(device)

    def run(x):
        mem, out = torch.zeros_like(x[0]), []
        for t in range(x.shape[0]):
            s, mem = layer(x[t], mem)
            out.append(s)
        return torch.stack(out)

    return _torch_impl(run, x_np, w_np, device, "delayed")


def spikingjelly(x_np, w_np, device: str = "cpu", backend: str | None = None) -> Impl | str:
    """``LIFNode(tau=10, decay_input=False, v_reset=None, step_mode="m")``: our immediate LIF.

    ``backend`` is passed only when given (SpikingJelly 2.0 picks its own path).
    """
    if peers.load("torch") is None:
        return peers.missing_note("torch")
    if peers.load("spikingjelly") is None:
        return peers.missing_note("spikingjelly")
    from spikingjelly.activation_based import neuron, surrogate

    extra = {} if backend is None else {"backend": backend}
    node = neuron.LIFNode(
        tau=1.0 / (1.0 - BETA),
        decay_input=False,
        v_threshold=THRESHOLD,
        v_reset=None,
        surrogate_function=surrogate.ATan(alpha=ALPHA),
        detach_reset=False,
        step_mode="m",
        **extra,
    ).to(device)

    def run(x):
        node.reset()
        return node(x)

    return _torch_impl(run, x_np, w_np, device, "immediate")


def guard(impl: Impl, reference: Impl) -> tuple[bool, str]:
    """Compare ``impl``'s spikes and input gradient with ours under the same convention.

    Passes when at most 1e-5 of the spikes differ and the gradient agrees to 1e-3 of
    its largest magnitude (checked only when the spikes agree exactly, since a
    flipped spike near threshold changes the gradient locally).
    """
    spikes, grad = impl.outputs()
    ref_spikes, ref_grad = reference.outputs()
    if spikes.shape != ref_spikes.shape:
        return False, f"output shape {spikes.shape} != ours {ref_spikes.shape}"
    flips = int(np.count_nonzero(spikes != ref_spikes))
    frac = flips / spikes.size
    if frac > 1e-5:
        return False, f"{frac:.2%} of spikes differ from ours ({impl.reference} reset)"
    if flips:
        return True, f"{flips} spike(s) of {spikes.size} differ"
    scale = max(float(np.abs(ref_grad).max()), 1e-12)
    err = float(np.abs(grad - ref_grad).max()) / scale
    if not impl.compare_grad:
        return True, f"spikes equal; its surrogate differs (gradient rel. diff {err:.1e})"
    if err > 1e-3:
        return False, f"spikes equal, gradient differs by {err:.1e} (relative)"
    return True, ""
