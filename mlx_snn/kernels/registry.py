"""One registry for the custom kernels: specs, sources, and a cached factory.

Every kernel is a body-only source ``metal/<name>.metal`` (MLX writes the
signature) plus the shared header ``metal/common.h``. A :class:`KernelSpec` names
its inputs and outputs with their dtypes, its template parameters and its grid
rule; the same spec builds the ``mx.fast.metal_kernel`` object, the
``mx.fast.cuda_kernel`` object (the body behind the CUDA preamble of
:mod:`mlx_snn.kernels.cuda`) and, in the tests, the CPU shim's C++ wrapper and the
nvcc build, so a body that uses a name the spec does not declare fails to compile
in CI.

``metal/`` lives at the repository root; ``mlx_snn/metal`` is a symlink to it, so
the sources load through :mod:`importlib.resources` from a checkout, an editable
install and the wheel (where setuptools copies the files in).

:func:`kernel` is the factory in the shape MLX's own model code uses: it
builds one kernel object per (kernel, backend, surrogate class), caches it, and returns
``None`` where the device is absent. MLX compiles the object once per dtype and
template combination it is called with (the template values and dtypes are part
of the compiled kernel's name). The tests run the Metal path on the CPU by
replacing :func:`device_present` and ``mx.fast.metal_kernel`` (the factory
:func:`kernel` calls) with the shim's (``tests/kernel_shim.py``).

:data:`WIRED` names the :mod:`mlx_snn.functional` functions whose ``backend=``
dispatches to these kernels; :func:`kernel_limit` says which calls they cannot run
(those stay on MLX under ``backend="auto"``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import mlx.core as mx

from .. import backends
from . import cuda as _cuda
from . import surrogates as _surrogates

__all__ = [
    "EXECUTORS",
    "SPECS",
    "WIRED",
    "KernelSpec",
    "Template",
    "header",
    "kernel",
    "kernel_limit",
    "source",
]

EXECUTORS = ("metal", "cuda")

# threads per threadgroup for the one-thread-per-neuron kernels
BLOCK = 256
# largest threadgroup of the chunked scan: below the 1024 both APIs allow, since a
# Metal pipeline may offer fewer threads per threadgroup than the device maximum
MAX_CHUNKED_GROUP = 512


@dataclass(frozen=True)
class Template:
    """A template parameter: ``kind`` is ``"dtype"``, ``"int"`` or ``"bool"``;
    ``values`` is its domain (the dtype names or ints the wrappers pass)."""

    name: str
    kind: str
    values: tuple


FLOAT_TYPES = ("float32", "float16", "bfloat16")
IN_T = Template("InT", "dtype", FLOAT_TYPES)
SPIKE_T = Template("SpikeT", "dtype", (*FLOAT_TYPES, "uint8"))
RESET = Template("RESET", "int", (0, 1, 2))


def _flag(name: str) -> Template:
    return Template(name, "bool", (False, True))


def per_neuron_grid(n: int, steps: int, templates: dict):
    """One thread per neuron (``n`` of them), threadgroups of :data:`BLOCK`."""
    return (n, 1, 1), (min(BLOCK, max(n, 1)), 1, 1)


def chunked_plan(n: int, steps: int) -> tuple[int, int]:
    """Lanes per threadgroup ``LW`` and chunks ``C`` for :file:`linear_scan_chunked.metal`:
    ``LW * C <= MAX_CHUNKED_GROUP`` threads, chunks of at least 8 steps."""
    lw = min(32, 1 << max(0, math.ceil(math.log2(max(n, 1)))))
    c = 1
    while c * 2 * lw <= MAX_CHUNKED_GROUP and c * 2 * 8 <= steps:
        c *= 2
    return lw, c


def chunked_grid(n: int, steps: int, templates: dict):
    """Grid ``(LW * ceil(n / LW), C, 1)`` of threadgroups ``(LW, C, 1)``."""
    lw, c = templates["LW"], templates["C"]
    return (lw * -(-n // lw), c, 1), (lw, c, 1)


@dataclass(frozen=True)
class KernelSpec:
    """What MLX needs to build a kernel and what the wrappers pass it.

    ``inputs`` and ``outputs`` are ``(name, dtype)`` pairs, the dtype either a
    concrete name (``"float32"``, ``"int32"``, ``"bool"``) or the name of a dtype
    template (``"InT"``, ``"SpikeT"``). Every array is passed with at least one
    dimension (MLX passes 0-d arrays by reference on Metal, by pointer on CUDA).
    ``grid(n, steps, templates)`` returns ``(grid, threadgroup)`` for ``n`` neurons
    (lanes) and ``steps`` time steps.
    """

    name: str
    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, str], ...]
    templates: tuple[Template, ...]
    grid: Callable = per_neuron_grid
    surrogate: bool = False
    doc: str = ""

    @property
    def input_names(self) -> list[str]:
        return [n for n, _ in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self.outputs]

    @property
    def filename(self) -> str:
        return f"{self.name}.metal"


_SCAN_TEMPLATES = (IN_T, _flag("A_PER_STEP"), _flag("REVERSE"), _flag("TRANSPOSE"))
_SCAN_IO = (("a", "InT"), ("b", "InT"), ("h0", "InT"))

SPECS: dict[str, KernelSpec] = {
    s.name: s
    for s in (
        KernelSpec(
            "lif_forward",
            (("x", "InT"), ("v0", "InT"), ("beta", "float32"), ("threshold", "float32")),
            (("spikes", "SpikeT"), ("mem", "InT"), ("state", "InT")),
            (IN_T, SPIKE_T, RESET, _flag("DELAYED"), _flag("WRITE_MEM")),
            doc="LIF forward, every reset mode and timing",
        ),
        KernelSpec(
            "lif_backward",
            (
                ("h", "InT"),
                ("spikes", "SpikeT"),
                ("v0", "InT"),
                ("beta", "float32"),
                ("threshold", "float32"),
                ("g_spikes", "InT"),
                ("g_mem", "InT"),
                ("g_state", "InT"),
                ("params", "float32"),
            ),
            (("g_x", "InT"), ("g_v0", "InT"), ("g_beta", "float32"), ("g_threshold", "float32")),
            (
                IN_T,
                SPIKE_T,
                RESET,
                _flag("DELAYED"),
                _flag("DETACH"),
                _flag("BETA_GRAD"),
                _flag("THR_GRAD"),
            ),
            surrogate=True,
            doc="LIF backward over the saved membrane, learned beta/threshold gradients",
        ),
        KernelSpec(
            "linear_scan",
            _SCAN_IO,
            (("h", "InT"),),
            _SCAN_TEMPLATES,
            doc="linear scan, one thread per lane",
        ),
        KernelSpec(
            "linear_scan_chunked",
            _SCAN_IO,
            (("h", "InT"),),
            (
                *_SCAN_TEMPLATES,
                Template("LW", "int", (1, 2, 4, 8, 16, 32)),
                Template("C", "int", (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)),
            ),
            grid=chunked_grid,
            doc="linear scan for few lanes x long T (chunk scans, carry scan, fix-up)",
        ),
        KernelSpec(
            "amos_forward",
            (("x", "InT"), ("threshold", "float32"), ("params", "float32")),
            (("spikes", "SpikeT"), ("h", "InT"), ("t_first", "int32"), ("t_second", "int32")),
            (IN_T, SPIKE_T, _flag("WRITE_H")),
            doc="AMOS charge scan fused with first / second fake spike",
        ),
        KernelSpec(
            "amos_backward",
            (
                ("g_spikes", "InT"),
                ("g_h", "InT"),
                ("h", "InT"),
                ("t_first", "int32"),
                ("t_second", "int32"),
                ("threshold", "float32"),
                ("params", "float32"),
            ),
            (("g_x", "InT"),),
            (IN_T, _flag("HAS_GH")),
            surrogate=True,
            doc="AMOS second-fake-spike backward",
        ),
        KernelSpec(
            "first_spike",
            (("h", "InT"), ("threshold", "float32")),
            (("t_first", "int32"), ("forced", "bool"), ("t_second", "int32")),
            (IN_T,),
            doc="first / second fake spike of a given membrane",
        ),
    )
}


# the mlx_snn.functional functions that dispatch to the kernels (``backend=``), and
# the kernels each one runs
WIRED: dict[str, tuple[str, ...]] = {
    "lif_sequence": ("lif_forward", "lif_backward"),
    "linear_scan": ("linear_scan", "linear_scan_chunked"),
    "amos": ("amos_forward", "amos_backward"),
    "first_spike": ("first_spike",),
}


def _metal_dir():
    return resources.files("mlx_snn") / "metal"


def source(name: str) -> str:
    """The text of ``metal/<name>`` (a ``.metal`` body or ``common.h``)."""
    return (_metal_dir() / name).read_text(encoding="utf-8")


def source_files() -> list[str]:
    """The file names in ``metal/``."""
    return sorted(p.name for p in _metal_dir().iterdir() if p.name.endswith((".metal", ".h")))


@functools.cache
def sources_ship() -> bool:
    """True when ``common.h`` and the body of every spec are installed (checked once)."""
    return {"common.h", *(s.filename for s in SPECS.values())} <= set(source_files())


def header(spec: KernelSpec, surrogate_cls: type | None = None) -> str:
    """The Metal header of a kernel: ``common.h`` plus the surrogate's derivative."""
    text = source("common.h")
    if spec.surrogate:
        if surrogate_cls is None:
            raise ValueError(f"kernel {spec.name!r} needs a surrogate class")
        text += "\n" + _surrogates.header(surrogate_cls)
    return text


def check_executor(backend: object) -> str:
    """Return ``backend`` if it names a kernel executor, else raise ``ValueError``."""
    if backend not in EXECUTORS:
        raise ValueError(
            f"backend must be one of {', '.join(repr(b) for b in EXECUTORS)} for "
            f"mlx_snn.kernels; got {backend!r} (the pure-MLX path is mlx_snn.functional)"
        )
    return backend


def device_present(backend: str) -> bool:
    """True when the device of a kernel executor is present here."""
    return backends.metal_device() if backend == "metal" else backends.cuda_device()


def _build(spec: KernelSpec, backend: str, surrogate_cls: type | None):
    body = source(spec.filename)
    head = header(spec, surrogate_cls)
    if backend == "metal":
        return mx.fast.metal_kernel(
            name=spec.name,
            input_names=spec.input_names,
            output_names=spec.output_names,
            source=body,
            header=head,
        )
    return mx.fast.cuda_kernel(
        name=spec.name,
        input_names=spec.input_names,
        output_names=spec.output_names,
        source=body,
        header=_cuda.PREAMBLE + head,
    )


@functools.cache
def kernel(name: str, backend: str, surrogate_cls: type | None = None):
    """The kernel object for ``name`` on ``backend`` (cached), or ``None`` without the device.

    ``surrogate_cls`` is the :class:`~mlx_snn.surrogate.Surrogate` subclass whose
    derivative the header carries (kernels with ``spec.surrogate`` only).
    """
    check_executor(backend)
    spec = SPECS[name]
    if not device_present(backend):
        return None
    return _build(spec, backend, surrogate_cls if spec.surrogate else None)


def require(name: str, backend: str, surrogate_cls: type | None = None):
    """:func:`kernel`, raising ``RuntimeError`` where the device is absent."""
    k = kernel(name, check_executor(backend), surrogate_cls)
    if k is None:
        raise RuntimeError(
            f"the {backend} kernels cannot run here: no {backend} device is present "
            f"(mlx_snn.backends.available() lists the backends that can)"
        )
    return k


DTYPES = {
    "float32": mx.float32,
    "float16": mx.float16,
    "bfloat16": mx.bfloat16,
    "uint8": mx.uint8,
    "int32": mx.int32,
    "bool": mx.bool_,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def launch(
    name: str,
    backend: str,
    inputs: list[mx.array],
    output_shapes: list[tuple[int, ...]],
    templates: dict,
    *,
    n: int,
    steps: int,
    surrogate_cls: type | None = None,
) -> list[mx.array]:
    """Run kernel ``name``: check dtypes against the spec, apply its grid rule, call it.

    ``templates`` maps every template name of the spec to a value (an ``mx.Dtype``
    for dtype templates); output dtypes follow from the spec.
    """
    spec = SPECS[name]
    k = require(name, backend, surrogate_cls)
    bound = {}
    for t in spec.templates:
        value = templates[t.name]
        bound[t.name] = DTYPE_NAMES[value] if t.kind == "dtype" else value
    for (arg, rule), arr in zip(spec.inputs, inputs, strict=True):
        want = bound.get(rule, rule)
        if arr.ndim < 1 or DTYPE_NAMES.get(arr.dtype) != want:
            raise TypeError(
                f"{name}: input {arg} must be a {want} array with ndim >= 1; "
                f"got {arr.dtype} of shape {tuple(arr.shape)}"
            )
    out_dtypes = [DTYPES[bound.get(rule, rule)] for _, rule in spec.outputs]
    grid, group = spec.grid(n, steps, templates)
    return k(
        inputs=inputs,
        template=[(t.name, templates[t.name]) for t in spec.templates],
        grid=grid,
        threadgroup=group,
        output_shapes=output_shapes,
        output_dtypes=out_dtypes,
    )


def kernel_limit(surrogate: object = None, option: tuple[str, str] | None = None) -> str | None:
    """Why the kernels cannot run a call, or ``None`` when they can.

    Args:
        surrogate: the call's :class:`~mlx_snn.surrogate.Surrogate`, if it has one.
        option: ``(name, value)`` of an MLX-only choice the caller made (e.g.
            ``("algorithm", "parallel")``), or ``None``.

    The phrase completes "the kernels do not run ..." in the error of
    :func:`mlx_snn.backends.resolve`, which keeps ``backend="auto"`` on MLX for it.
    Every dtype the library accepts (float32, float16, bfloat16) runs on the kernels.
    """
    if option is not None:
        return f"{option[0]}={option[1]!r}, which names an MLX algorithm"
    if surrogate is not None and not _surrogates.supports(surrogate):
        return (
            f"surrogate {type(surrogate).__name__}, which has no kernel-side derivative "
            "(mlx_snn.kernels.surrogates.DERIVATIVES)"
        )
    return None
