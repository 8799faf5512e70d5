"""CUDA executor: every kernel body compiled with nvcc as mx.fast.cuda_kernel wraps it.

The source is MLX's (mirrored in tests/shim/codegen.py from
mlx/backend/cuda/custom_kernel.cpp): its default header, then our header (the CUDA
preamble of mlx_snn/kernels/cuda.py, common.h and the surrogate), then
``__global__ void custom_kernel_<name>(...)`` with the template values as constexpr
constants. MLX compiles it with NVRTC at run time; here nvcc compiles it to PTX for
sm_90 against a stand-in for MLX's utils.cuh (tests/shim/cuda_include). One
translation unit per kernel holds every template combination (int templates with
many values: first and last) in float32, plus each dtype. Nothing runs: there is
no GPU here. Skipped, with the reason, where nvcc is absent.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
from shim import codegen, harness

import mlx_snn as snn
from mlx_snn.kernels import cuda, registry, surrogates

NVCC = shutil.which("nvcc")
INCLUDE = Path(__file__).resolve().parent / "shim" / "cuda_include"
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not found: CUDA twins not compiled")


def nvcc(text: str) -> None:
    key = hashlib.sha1(text.encode()).hexdigest()[:20]
    src = harness.CACHE_DIR / f"cuda{key}.cu"
    out = src.with_suffix(".ptx")
    if out.exists():
        return
    src.write_text(text)
    res = subprocess.run(
        [
            NVCC,
            "-std=c++17",
            "-ptx",
            "--gpu-architecture=compute_90",
            f"-I{INCLUDE}",
            "-o",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, f"nvcc failed on {src}:\n{res.stderr[-4000:]}"


def variants(spec):
    """Template combinations: every non-dtype combination in float32, plus each dtype."""

    def domain(t):
        if t.kind == "dtype":
            return ("float32",)
        return t.values if len(t.values) <= 3 else (t.values[0], t.values[-1])

    names = [t.name for t in spec.templates]
    combos = [
        dict(zip(names, c, strict=True))
        for c in itertools.product(*(domain(t) for t in spec.templates))
    ]
    base = dict(combos[0])
    for t in spec.templates:
        if t.kind == "dtype":
            for v in t.values[1:]:
                combos.append({**base, t.name: v})
    return combos


def arrays(spec, combo):
    infos = []
    for _, rule in spec.inputs:
        dtype = combo.get(rule, rule)
        big = rule in ("InT", "SpikeT")
        infos.append(codegen.ArrayInfo(dtype, 2 if big else 1, 64 if big else 4))
    outs = [combo.get(rule, rule) for _, rule in spec.outputs]
    return infos, outs


@pytest.mark.parametrize("name", list(registry.SPECS))
def test_nvcc_compiles_every_cuda_twin(name):
    spec = registry.SPECS[name]
    body = registry.source(spec.filename)
    head = cuda.PREAMBLE + registry.header(spec, snn.surrogate.ATan if spec.surrogate else None)
    parts, prefix = [], ""
    for combo in variants(spec):
        infos, outs = arrays(spec, combo)
        prefix, part, _ = codegen.cuda_source(
            spec.name,
            spec.input_names,
            infos,
            spec.output_names,
            outs,
            [(t.name, combo[t.name]) for t in spec.templates],
            body,
        )
        parts.append(part)
    assert len({p.split("(")[0] for p in parts}) == len(parts)  # distinct kernel names
    nvcc(prefix + head + "".join(parts))


def test_nvcc_compiles_every_surrogate_expression():
    text = codegen.CUDA_DEFAULT_HEADER + cuda.PREAMBLE
    for cls in surrogates.DERIVATIVES:
        text += surrogates.header(cls, name=f"sg_{cls.__name__}")
        text += (
            f"__global__ void k_{cls.__name__}(const float* x, float* y) "
            f"{{ y[threadIdx.x] = sg_{cls.__name__}(x[threadIdx.x], 2.0f, 0.0f); }}\n"
        )
    nvcc(text)
