"""Metal executor: the registry builds an mx.fast.metal_kernel object for every spec
(construction works on Linux; calling needs a Metal device), the source MLX writes
around each body equals the shim's mirror (tests/shim/codegen.py), and without a
device the kernel entry points refuse clearly while backend="auto" stays on MLX.
"""

from __future__ import annotations

import mlx.core as mx
import pytest
from shim import codegen

import mlx_snn as snn
from mlx_snn import backends, kernels
from mlx_snn.kernels import registry

SURROGATE_CLASSES = [snn.surrogate.FastSigmoid, snn.surrogate.ATan]


def example_inputs(spec, dtype):
    """Small inputs of the spec's dtypes: [4, 9] arrays, [3] float32/int32 vectors."""
    out = []
    for _, rule in spec.inputs:
        if rule == "InT":
            out.append(mx.zeros((4, 9), dtype))
        elif rule == "SpikeT":
            out.append(mx.zeros((4, 9), mx.uint8))
        else:
            out.append(mx.zeros((3,), registry.DTYPES[rule]))
    return out


def example_templates(spec, dtype):
    values = {}
    for t in spec.templates:
        if t.kind == "dtype":
            values[t.name] = mx.uint8 if t.name == "SpikeT" else dtype
        else:
            values[t.name] = t.values[-1]
    return values


@pytest.mark.parametrize("name", list(registry.SPECS))
def test_metal_kernel_objects_are_built_for_every_spec(name):
    spec = registry.SPECS[name]
    for cls in SURROGATE_CLASSES if spec.surrogate else [None]:
        k = registry._build(spec, "metal", cls)
        assert callable(k)
    if not mx.metal.is_available():
        with pytest.raises(RuntimeError, match="No Metal back-end"):
            k(
                inputs=example_inputs(spec, mx.float32),
                template=list(example_templates(spec, mx.float32).items()),
                grid=(1, 1, 1),
                threadgroup=(1, 1, 1),
                output_shapes=[(1,)] * len(spec.outputs),
                output_dtypes=[mx.float32] * len(spec.outputs),
            )


@pytest.mark.parametrize("name", list(registry.SPECS))
def test_generated_metal_source_matches_the_shims_mirror(name, tmp_path, capfd):
    """Under export tracing MLX writes (and with verbose=True prints) the kernel source
    without a Metal device; the shim compiles codegen.metal_source, so they must agree."""
    spec = registry.SPECS[name]
    cls = snn.surrogate.ATan if spec.surrogate else None
    dtype = mx.bfloat16
    inputs = example_inputs(spec, dtype)
    templates = example_templates(spec, dtype)
    out_dtypes = [
        registry.DTYPES[registry.DTYPE_NAMES[templates[r]] if r in templates else r]
        for _, r in spec.outputs
    ]
    k = registry._build(spec, "metal", cls)

    def f(*args):
        return k(
            inputs=list(args),
            template=list(templates.items()),
            grid=(9, 1, 1),
            threadgroup=(9, 1, 1),
            output_shapes=[(4, 9)] * len(spec.outputs),
            output_dtypes=out_dtypes,
            verbose=True,
        )

    capfd.readouterr()
    try:
        mx.export_function(str(tmp_path / "k.mlxfn"), f, *inputs)
    except Exception as err:  # older MLX: no export of Metal kernels without a device
        pytest.skip(f"this MLX cannot trace a Metal kernel here: {err}")
    printed = capfd.readouterr().out
    text, kernel_name, _ = codegen.metal_source(
        spec.name,
        spec.input_names,
        [codegen.ArrayInfo(registry.DTYPE_NAMES[a.dtype], a.ndim, a.size) for a in inputs],
        spec.output_names,
        [registry.DTYPE_NAMES[d] for d in out_dtypes],
        [
            (n, registry.DTYPE_NAMES[v] if isinstance(v, mx.Dtype) else v)
            for n, v in templates.items()
        ],
        registry.source(spec.filename),
        registry.header(spec, cls),
    )
    assert f"```\n{text}\n```" in printed, printed[:3000]
    assert kernel_name in printed


def test_kernel_entry_points_refuse_without_a_device():
    if backends.metal_device() or backends.cuda_device():
        pytest.skip("a GPU is present")
    x = mx.zeros((4, 2, 3))
    surr = snn.surrogate.atan()
    for backend in ("metal", "cuda"):
        assert registry.kernel("lif_forward", backend) is None
        with pytest.raises(RuntimeError, match=f"no {backend} device"):
            kernels.lif_sequence(x, mx.zeros((2, 3)), 0.9, 1.0, surrogate=surr, backend=backend)
        with pytest.raises(RuntimeError, match=f"no {backend} device"):
            kernels.linear_scan(0.9, x, backend=backend)
        with pytest.raises(RuntimeError, match=f"no {backend} device"):
            kernels.amos(x, 2.0, 1.0, surr, backend=backend)
        with pytest.raises(RuntimeError, match=f"no {backend} device"):
            kernels.first_spike(x, 1.0, backend=backend)
    assert backends.resolve("auto") == "mlx"
    assert backends.kernel_backends() == ()


@pytest.mark.parametrize("backend", ["mlx", "auto", "gpu", None])
def test_kernel_entry_points_name_the_executors_they_accept(backend):
    x = mx.zeros((4, 2, 3))
    with pytest.raises(ValueError, match="backend must be one of 'metal', 'cuda'"):
        kernels.linear_scan(0.9, x, backend=backend)
    with pytest.raises(ValueError, match="backend must be one of 'metal', 'cuda'"):
        kernels.first_spike(x, 1.0, backend=backend)


def test_kernel_entry_points_check_their_options():
    x = mx.zeros((4, 2, 3))
    surr = snn.surrogate.atan()
    with pytest.raises(ValueError, match="reset must be one of"):
        kernels.lif_sequence(
            x, mx.zeros((2, 3)), 0.9, 1.0, reset="soft", surrogate=surr, backend="metal"
        )
    with pytest.raises(ValueError, match="needs detach_reset=True"):
        kernels.lif_sequence(
            x, mx.zeros((2, 3)), 0.9, 1.0, reset_timing="delayed", surrogate=surr, backend="metal"
        )
    with pytest.raises(ValueError, match="v0 must have shape"):
        kernels.lif_sequence(x, mx.zeros((3, 2)), 0.9, 1.0, surrogate=surr, backend="metal")
    with pytest.raises(ValueError, match="beta of shape"):
        kernels.lif_sequence(x, mx.zeros((2, 3)), mx.ones(4), 1.0, surrogate=surr, backend="metal")
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        kernels.amos(x.astype(mx.int32), 2.0, 1.0, surr, backend="metal")
    with pytest.raises(ValueError, match="tau must be a number > 1"):
        kernels.amos(x, 1.0, 1.0, surr, backend="metal")
    with pytest.raises(ValueError, match="method must be one of"):
        kernels.linear_scan(0.9, x, method="tree", backend="metal")
    with pytest.raises(ValueError, match="spike_dtype must be"):
        kernels.lif_sequence(
            x, mx.zeros((2, 3)), 0.9, 1.0, surrogate=surr, spike_dtype=mx.int32, backend="metal"
        )


def test_info_lists_the_kernels_and_their_executors():
    from mlx_snn import cli

    info = cli.info()
    assert info["kernels"].split(", ") == list(registry.SPECS)
    status = backends.kernel_status()
    assert set(status) == {"metal", "cuda"}
    assert info["kernel executors"] == ", ".join(f"{b}: {s}" for b, s in status.items())
    if not (backends.metal_device() or backends.cuda_device()):
        assert info["kernel executors"] == "metal: no device, cuda: no device"
        assert info["backend for 'auto'"] == "mlx"
