"""Run kernel bodies from metal/ on the CPU: g++ against shim.h, ctypes on numpy arrays.

:class:`ShimKernel` has the constructor and call signature of
``mx.fast.metal_kernel``: it writes the kernel source exactly as MLX would
(:func:`codegen.metal_source`), appends a driver that runs every thread of the
grid, compiles the lot with g++ (cached by source hash in a per-session temporary
folder) and calls it on numpy copies of the inputs. Threadgroups run one after
another; where the body calls ``threadgroup_barrier`` each thread of a group runs
as a ``std::thread`` sharing a ``std::barrier``, otherwise threads run in a loop.
``semantics="metal"`` dispatches exactly ``grid`` threads (partial threadgroups at
the edge, as Metal's dispatch_threads); ``"cuda"`` rounds the grid up to whole
threadgroups, as ``mx.fast.cuda_kernel`` does, so bodies must guard their tails.
Outputs start filled with NaN (floats) or a sentinel (ints) to expose unwritten
elements.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlx.core as mx
import numpy as np

from . import codegen

SHIM_DIR = Path(__file__).resolve().parent
CACHE_DIR = Path(tempfile.mkdtemp(prefix="mlx_snn_shim_"))
CXX = shutil.which("g++")
CXX_FLAGS = ["-std=c++20", "-O1", "-fPIC", "-pthread", "-Wno-attributes"]

MX_NAMES = {
    mx.float32: "float32",
    mx.float16: "float16",
    mx.bfloat16: "bfloat16",
    mx.uint8: "uint8",
    mx.int32: "int32",
    mx.bool_: "bool",
}
NP_STORAGE = {
    "float32": np.float32,
    "float16": np.float16,
    "bfloat16": np.uint16,
    "uint8": np.uint8,
    "int32": np.int32,
    "bool": np.bool_,
}
UNWRITTEN = {"float32": np.nan, "float16": np.nan, "bfloat16": 0x7FC0, "uint8": 77, "int32": -777}

ATTRIBUTE_ARGS = {
    "thread_position_in_grid": "gid",
    "thread_position_in_threadgroup": "tid",
    "threadgroup_position_in_grid": "tgid",
    "threads_per_threadgroup": "tgsize",
    "threads_per_grid": "gsize",
    "grid_size": "gsize",
}

compiled_sources: set[str] = set()  # metal/ bodies the shim has built this session


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _driver(kernel_name, params, template_args, inputs, output_dtypes, barrier: bool) -> str:
    n_in = len(inputs)
    args = []
    for p in params:
        if p.kind == "input":
            ctype = codegen.METAL_TYPES[inputs[p.index].dtype]
            ptr = f"(const {ctype}*)c.bufs[{p.index}]"
            args.append(f"*{ptr}" if inputs[p.index].ndim == 0 else ptr)
        elif p.kind == "shape":
            args.append(f"c.shapes[{p.index}]")
        elif p.kind == "strides":
            args.append(f"c.strides[{p.index}]")
        elif p.kind == "ndim":
            args.append(f"c.ndims[{p.index}]")
        elif p.kind == "output":
            ctype = codegen.METAL_TYPES[output_dtypes[p.index]]
            args.append(f"({ctype}*)c.bufs[{n_in + p.index}]")
        else:
            if p.name not in ATTRIBUTE_ARGS:
                raise NotImplementedError(f"the shim does not provide {p.name}")
            args.append(ATTRIBUTE_ARGS[p.name])
    call = kernel_name
    if template_args:
        call += (
            "<"
            + ", ".join(codegen._template_value(v, codegen.METAL_TYPES) for _, v in template_args)
            + ">"
        )
    return f"""
namespace {{
struct ShimCtx {{
  void** bufs;
  const int* const* shapes;
  const int64_t* const* strides;
  const int* ndims;
}};
void shim_thread(const ShimCtx& c, uint3 gid, uint3 tid, uint3 tgid, uint3 tgsize, uint3 gsize) {{
  (void)gid; (void)tid; (void)tgid; (void)tgsize; (void)gsize;
  {call}({", ".join(args)});
}}
}}  // namespace
extern "C" void shim_run(void** bufs, const int* const* shapes, const int64_t* const* strides,
                         const int* ndims, const uint* grid, const uint* tg, int cuda) {{
  ShimCtx c{{bufs, shapes, strides, ndims}};
  uint3 gsize{{grid[0], grid[1], grid[2]}};
  uint3 groups{{(grid[0] + tg[0] - 1) / tg[0], (grid[1] + tg[1] - 1) / tg[1],
               (grid[2] + tg[2] - 1) / tg[2]}};
  for (uint gz = 0; gz < groups.z; ++gz)
  for (uint gy = 0; gy < groups.y; ++gy)
  for (uint gx = 0; gx < groups.x; ++gx) {{
    uint3 tgid{{gx, gy, gz}};
    std::vector<uint3> pos, loc;
    for (uint z = 0; z < tg[2]; ++z)
    for (uint y = 0; y < tg[1]; ++y)
    for (uint x = 0; x < tg[0]; ++x) {{
      uint3 p{{gx * tg[0] + x, gy * tg[1] + y, gz * tg[2] + z}};
      if (!cuda && (p.x >= grid[0] || p.y >= grid[1] || p.z >= grid[2])) continue;
      pos.push_back(p);
      loc.push_back(uint3{{x, y, z}});
    }}
    uint3 tgsize{{tg[0], tg[1], tg[2]}};
    if ({"true" if barrier else "false"}) {{
      std::barrier<> bar(static_cast<std::ptrdiff_t>(pos.size()));
      std::vector<shim_worker> workers;
      for (size_t k = 0; k < pos.size(); ++k) {{
        workers.emplace_back([&, k] {{
          shim_barrier = &bar;
          shim_thread(c, pos[k], loc[k], tgid, tgsize, gsize);
        }});
      }}
      for (auto& w : workers) w.join();
    }} else {{
      for (size_t k = 0; k < pos.size(); ++k) shim_thread(c, pos[k], loc[k], tgid, tgsize, gsize);
    }}
  }}
}}
"""


def _include_dir() -> Path:
    """A copy of shim.h with its precompiled header (parsing <barrier>, <thread> and
    <cmath> is most of a build; the PCH cuts each build about threefold)."""
    header = CACHE_DIR / "shim.h"
    if not header.exists():
        shutil.copy(SHIM_DIR / "shim.h", header)
        subprocess.run(
            [CXX, *CXX_FLAGS, "-x", "c++-header", str(header), "-o", f"{header}.gch"],
            capture_output=True,
        )
    return CACHE_DIR


def build(text: str) -> ctypes.CDLL:
    """Compile a C++ translation unit into a shared library (cached by content)."""
    if CXX is None:
        raise RuntimeError("g++ is not installed: the kernel shim tests need it")
    include = _include_dir()
    key = hashlib.sha1(text.encode()).hexdigest()[:20]
    so = CACHE_DIR / f"k{key}.so"
    if not so.exists():
        src = CACHE_DIR / f"k{key}.cpp"
        src.write_text(text)
        res = subprocess.run(
            [CXX, *CXX_FLAGS, "-shared", f"-I{include}", "-o", str(so), str(src)],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise RuntimeError(f"g++ failed on {src}:\n{res.stderr[-4000:]}")
    return ctypes.CDLL(str(so))


def run(lib, inputs, input_infos, output_shapes, output_dtypes, grid, threadgroup, semantics):
    """Call ``shim_run`` on numpy arrays; returns the outputs as numpy arrays."""
    arrays = [np.ascontiguousarray(a) for a in inputs]
    outs = [
        np.full(shape, UNWRITTEN.get(d, 0), dtype=NP_STORAGE[d])
        for shape, d in zip(output_shapes, output_dtypes, strict=True)
    ]
    n = len(arrays) + len(outs)
    bufs = (ctypes.c_void_p * n)(*[a.ctypes.data for a in arrays + outs])
    shapes = [np.array(a.shape or (0,), np.int32) for a in arrays]
    strides = [np.array([s // a.itemsize for s in a.strides] or [0], np.int64) for a in arrays]
    shape_ptrs = (ctypes.c_void_p * len(arrays))(*[s.ctypes.data for s in shapes])
    stride_ptrs = (ctypes.c_void_p * len(arrays))(*[s.ctypes.data for s in strides])
    ndims = np.array([a.ndim for a in arrays], np.int32)
    g = np.array(grid, np.uint32)
    t = np.array(threadgroup, np.uint32)
    lib.shim_run(
        bufs,
        shape_ptrs,
        stride_ptrs,
        ndims.ctypes.data_as(ctypes.c_void_p),
        g.ctypes.data_as(ctypes.c_void_p),
        t.ctypes.data_as(ctypes.c_void_p),
        ctypes.c_int(1 if semantics == "cuda" else 0),
    )
    return outs


def to_numpy(a: mx.array) -> np.ndarray:
    if a.dtype == mx.bfloat16:
        return np.array(a.view(mx.uint16))
    return np.array(a)


def to_mlx(a: np.ndarray, dtype: str) -> mx.array:
    if dtype == "bfloat16":
        return mx.array(a).view(mx.bfloat16)
    return mx.array(a)


class ShimKernel:
    """A stand-in for ``mx.fast.metal_kernel`` that runs the body on the CPU."""

    semantics = "metal"

    def __init__(
        self,
        name,
        input_names,
        output_names,
        source,
        header="",
        ensure_row_contiguous=True,
        atomic_outputs=False,
    ):
        if atomic_outputs:
            raise NotImplementedError("the shim has no atomic outputs")
        self.name = name
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.source = source
        self.header = header

    def build(self, infos, output_dtypes, template_args):
        text, kernel_name, params = codegen.metal_source(
            self.name,
            self.input_names,
            infos,
            self.output_names,
            output_dtypes,
            template_args,
            self.source,
            self.header,
        )
        barrier = "threadgroup_barrier" in self.source
        driver = _driver(kernel_name, params, template_args, infos, output_dtypes, barrier)
        lib = build('#include "shim.h"\n' + text + driver)
        compiled_sources.add(self.name)
        return lib

    def __call__(
        self,
        *,
        inputs,
        grid,
        threadgroup,
        output_shapes,
        output_dtypes,
        template=None,
        init_value=None,
        verbose=False,
        stream=None,
    ):
        template_args = [
            (n, MX_NAMES[v] if isinstance(v, mx.Dtype) else v) for n, v in (template or [])
        ]
        out_names = [MX_NAMES[d] for d in output_dtypes]
        np_inputs = [to_numpy(a) for a in inputs]
        infos = [codegen.ArrayInfo(MX_NAMES[a.dtype], a.ndim, a.size) for a in inputs]
        lib = self.build(infos, out_names, template_args)
        outs = run(
            lib, np_inputs, infos, output_shapes, out_names, grid, threadgroup, self.semantics
        )
        if init_value is not None:
            raise NotImplementedError("init_value: no kernel here uses it")
        return [to_mlx(o, d) for o, d in zip(outs, out_names, strict=True)]
