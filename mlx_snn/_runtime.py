"""Process-wide MLX settings that the library applies: the CPU buffer cache and CPU streams.

**Buffer cache.** MLX's CPU allocator keeps at most 32 MiB of freed buffers for
reuse. A spiking layer's ``[T, B, N]`` arrays are larger than that, so every such
array would go back to the operating system and be page-faulted in again on the
next step (measured here: an elementwise op on a 52 MB array runs about 7x
slower). On the CPU backend, and only while the limit is still MLX's default,
``import mlx_snn`` raises the cache limit to a quarter of MLX's memory limit (at
most 4 GiB). Set ``MLX_SNN_KEEP_CACHE_LIMIT=1`` to leave MLX's setting alone;
``mlx-snn info`` reports what is in effect.

**CPU streams.** MLX runs each CPU op on one thread (the thread of the op's
stream). The step loops of the LIF neuron (forward and backward) and of the linear
scan split their independent lanes (batch rows, else features) into parts and run
each part on its own CPU stream, so that the parts run on different cores; the
results are bit for bit those of one stream. :func:`mlx_snn.set_cpu_streams` (or the
environment variable ``MLX_SNN_CPU_STREAMS``, read at import) sets how many
streams; the default is the number of cores this process may use, at most
``MAX_DEFAULT_CPU_STREAMS``. ``1`` turns the split off. Splits happen only
when the default device is the CPU and each part has at least
``MIN_PART_ELEMENTS`` elements per time step.
"""

from __future__ import annotations

import os
import queue
import threading

import mlx.core as mx

MLX_CPU_DEFAULT_CACHE_LIMIT = 32 << 20
MAX_CACHE_LIMIT = 4 << 30
CPU_STREAMS_ENV = "MLX_SNN_CPU_STREAMS"
MAX_DEFAULT_CPU_STREAMS = 8
# below this many elements per part and time step a stream's dispatch and
# synchronisation cost more than the part's work. Measured on the 2-core test
# machine (LIF fwd+bwd, T=64, N=1024, 2026-12-05): two streams were 1.76x slower
# than one at 8,192 elements per step, 1.12x slower at 65,536, 0.91x at 131,072
# and 0.84x at T=25/B=128/N=4096 (524,288); bench/lif_profile.py
MIN_PART_ELEMENTS = 1 << 16

cache_limit_raised = False
_cpu_streams: int | None = None  # None: the default (environment, else core count)
_local = threading.local()  # MLX streams belong to the thread that made them
_jobs: queue.SimpleQueue | None = None
_WORKER_NAME = "mlx_snn-graph"
_worker_lock = threading.Lock()


def raise_cpu_cache_limit() -> bool:
    """Raise MLX's CPU buffer-cache limit if it is still the default; return whether."""
    global cache_limit_raised
    if os.environ.get("MLX_SNN_KEEP_CACHE_LIMIT", "") not in ("", "0"):
        return False
    if mx.default_device() != mx.cpu:
        return False
    target = min(mx.get_memory_limit() // 4, MAX_CACHE_LIMIT)
    previous = mx.set_cache_limit(target)
    if previous != MLX_CPU_DEFAULT_CACHE_LIMIT or target <= previous:
        mx.set_cache_limit(previous)
        return False
    cache_limit_raised = True
    return True


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _check_streams(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int >= 1; got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name} must be an int >= 1; got {n}")
    return n


def _default_cpu_streams() -> int:
    env = os.environ.get(CPU_STREAMS_ENV, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{CPU_STREAMS_ENV} must be an int >= 1; got {env!r}")
        return value
    return max(1, min(_usable_cores(), MAX_DEFAULT_CPU_STREAMS))


def cpu_streams() -> int:
    """How many CPU streams the step loops split their lanes across (see the module docs)."""
    return _default_cpu_streams() if _cpu_streams is None else _cpu_streams


def set_cpu_streams(n: int | None) -> int:
    """Set how many MLX CPU streams the LIF and linear-scan step loops use.

    Splitting the lanes (batch rows, else features) of a step loop across ``n``
    CPU streams runs the parts on ``n`` threads; results are identical bit for
    bit for every ``n``. It applies only while the default device is the CPU, and
    only to loops with at least ``MIN_PART_ELEMENTS`` elements per part and
    step. Arrays produced while ``n > 1`` may come from any of those streams; MLX
    synchronises them wherever they are used.

    Args:
        n: number of streams (``>= 1``; ``1`` turns the split off), or ``None``
            for the default: ``MLX_SNN_CPU_STREAMS`` if set, else the number of
            cores this process may use (at most ``MAX_DEFAULT_CPU_STREAMS``).

    Returns:
        The number in effect before the call.

    Raises:
        TypeError: ``n`` is not an int or ``None``.
        ValueError: ``n < 1``.
    """
    global _cpu_streams
    previous = cpu_streams()
    _cpu_streams = None if n is None else _check_streams("n", n)
    return previous


def _thread_streams(count: int) -> list[mx.Stream]:
    """The calling thread's extra CPU streams, at least ``count`` of them."""
    extra = getattr(_local, "streams", None)
    if extra is None:
        extra = _local.streams = []
    while len(extra) < count:
        extra.append(mx.new_stream(mx.cpu))
    return extra


def lane_streams(parts: int) -> list[mx.Stream]:
    """Internal: ``parts`` CPU streams, the current default stream first.

    The extra streams are made once per calling thread (an MLX stream can only be
    evaluated on the thread that made it); on the graph-building thread of
    :func:`on_worker` they are those of the thread that called it.
    """
    return [mx.default_stream(mx.cpu), *_thread_streams(parts - 1)[: parts - 1]]


def on_worker(fn, *args):
    """Internal: ``fn(*args)`` built on the library's graph-building thread; its result.

    MLX keeps its transformation state per thread: while ``mx.grad`` traces a
    function or runs a backward pass, every array of that thread counts as traced,
    and ``mx.compile``d functions then run op by op instead of as one fused kernel.
    On this one long-lived thread (the compile cache lives with it) the same
    compiled functions are fused. The graph is built with the caller's default
    stream and device and the caller's CPU streams, so the caller evaluates it as
    usual; the caller waits, so graph building stays sequential. Only for graphs
    that no transformation will look inside (see
    ``functional/_untraced.py``).
    """
    if threading.current_thread().name == _WORKER_NAME:
        return fn(*args)  # already on the graph-building thread
    stream = mx.default_stream(mx.default_device())
    streams = _thread_streams(cpu_streams() - 1)
    result: list = []
    done = threading.Event()

    def run():
        _local.streams = streams
        try:
            with mx.stream(stream):
                result.append((True, fn(*args)))
        except BaseException as err:  # handed to the caller
            result.append((False, err))
        finally:
            _local.streams = None
            done.set()

    _worker_jobs().put(run)
    done.wait()
    ok, value = result[0]
    if not ok:
        raise value
    return value


def _worker_jobs() -> queue.SimpleQueue:
    """The job queue of the graph-building thread, started on first use.

    A daemon thread that lives as long as the process: MLX's per-thread state
    (compile cache, streams) must outlive every array built on it, including
    unevaluated ones still alive at interpreter exit.
    """
    global _jobs
    with _worker_lock:
        if _jobs is None:
            jobs = queue.SimpleQueue()

            def serve():
                while True:
                    jobs.get()()

            threading.Thread(target=serve, name=_WORKER_NAME, daemon=True).start()
            _jobs = jobs
    return _jobs


def split_count(lanes: int, lane_elements: int) -> int:
    """Internal: into how many parts to split ``lanes`` lanes of ``lane_elements`` each.

    1 unless the default device is the CPU and :func:`cpu_streams` allows more;
    never more parts than lanes, and every part keeps at least
    ``MIN_PART_ELEMENTS`` elements per step.
    """
    n = cpu_streams()
    if n <= 1 or lanes <= 1 or mx.default_device() != mx.cpu:
        return 1
    return max(1, min(n, lanes, (lanes * lane_elements) // MIN_PART_ELEMENTS))
