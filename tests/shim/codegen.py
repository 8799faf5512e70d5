"""The kernel sources MLX generates around a body, mirrored in Python.

``metal_source`` follows ``write_signature`` / ``write_template`` in MLX's
``mlx/backend/common/metal_kernel.cpp`` (``mx.fast.metal_kernel``), and
``cuda_source`` follows ``build_kernel`` in ``mlx/backend/cuda/custom_kernel.cpp``
(``mx.fast.cuda_kernel``): the same parameter order, the ``<name>_shape`` /
``_strides`` / ``_ndim`` parameters added only when the body mentions them (typed
``const constant int*`` / ``const constant int64_t*`` / ``const constant int&`` on
Metal, ``Shape`` / ``Strides`` / ``int`` grid constants on CUDA), inputs under 8
elements in the ``constant`` address space, 0-d inputs by reference, the thread
attributes the body mentions, and the template instantiation. The shim compiles
``metal_source`` with ``shim.h`` in place of MLX's Metal headers;
``test_kernels_metal.py`` checks it against the text MLX itself prints.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CONSTANT_ARRAY_SIZE = 8

METAL_TYPES = {
    "float32": "float",
    "float16": "float16_t",
    "bfloat16": "bfloat16_t",
    "uint8": "uint8_t",
    "int32": "int32_t",
    "bool": "bool",
}
CUDA_TYPES = {
    "float32": "float",
    "float16": "__half",
    "bfloat16": "__nv_bfloat16",
    "uint8": "uint8_t",
    "int32": "int32_t",
    "bool": "bool",
}

# (attribute, type), in the order MLX declares them
METAL_ATTRIBUTES = (
    ("dispatch_quadgroups_per_threadgroup", "uint"),
    ("dispatch_simdgroups_per_threadgroup", "uint"),
    ("dispatch_threads_per_threadgroup", "uint3"),
    ("grid_origin", "uint3"),
    ("grid_size", "uint3"),
    ("quadgroup_index_in_threadgroup", "uint"),
    ("quadgroups_per_threadgroup", "uint"),
    ("simdgroup_index_in_threadgroup", "uint"),
    ("simdgroups_per_threadgroup", "uint"),
    ("thread_execution_width", "uint"),
    ("thread_index_in_quadgroup", "uint"),
    ("thread_index_in_simdgroup", "uint"),
    ("thread_index_in_threadgroup", "uint"),
    ("thread_position_in_grid", "uint3"),
    ("thread_position_in_threadgroup", "uint3"),
    ("threadgroup_position_in_grid", "uint3"),
    ("threadgroups_per_grid", "uint3"),
    ("threads_per_grid", "uint3"),
    ("threads_per_simdgroup", "uint"),
    ("threads_per_threadgroup", "uint3"),
)

CUDA_DEFAULT_HEADER = """
#include "mlx/backend/cuda/device/utils.cuh"

#include <cooperative_groups.h>

"""


@dataclass(frozen=True)
class ArrayInfo:
    """What the generated signature depends on: dtype name, ndim, size."""

    dtype: str
    ndim: int
    size: int


@dataclass(frozen=True)
class Param:
    """One parameter of the generated kernel: ``kind`` is ``input``, ``shape``,
    ``strides``, ``ndim``, ``output`` or ``attribute``; ``index`` the array's
    position among the inputs (or outputs)."""

    kind: str
    name: str
    index: int = 0


def shape_infos(source: str, input_names) -> list[tuple[bool, bool, bool]]:
    return [
        (f"{n}_shape" in source, f"{n}_strides" in source, f"{n}_ndim" in source)
        for n in input_names
    ]


def _template_value(value, types) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return types[value]


def _write_template(template_args) -> str:
    return "<" + ", ".join(_template_value(v, METAL_TYPES) for _, v in template_args) + ">"


def _template_hash(template_def: str) -> str:
    out, i = [], 0
    while i < len(template_def):
        c = template_def[i]
        if c in "<>":
            out.append("_")
        elif c == "," and i + 1 < len(template_def) and template_def[i + 1] == " ":
            out.append("_")
            i += 1
        else:
            out.append(c)
        i += 1
    return "".join(out)[:-1]


def metal_kernel_name(name, template_args, inputs, output_dtypes) -> str:
    kernel_name = "custom_kernel_" + name
    if template_args:
        kernel_name += "_" + _template_hash(_write_template(template_args))
    for arr in inputs:
        kernel_name += "_" + METAL_TYPES[arr.dtype]
        if arr.ndim == 0:
            kernel_name += "s"
        elif arr.size < MAX_CONSTANT_ARRAY_SIZE:
            kernel_name += "c"
    for dtype in output_dtypes:
        kernel_name += "_" + METAL_TYPES[dtype]
    return kernel_name


def metal_source(
    name, input_names, inputs, output_names, output_dtypes, template_args, source, header=""
):
    """Return ``(kernel_source, kernel_name, params)`` as ``mx.fast.metal_kernel`` writes them.

    ``inputs`` are :class:`ArrayInfo`; ``template_args`` ``(name, value)`` pairs with
    dtype values given by name (``"float32"``); ``params`` the signature in order.
    """
    kernel_name = metal_kernel_name(name, template_args, inputs, output_dtypes)
    infos = shape_infos(source, input_names)
    attributes = [(a, t) for a, t in METAL_ATTRIBUTES if a in source]
    lines, params = [], []
    if template_args:
        kinds = [
            "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "typename"
            for _, v in template_args
        ]
        decl = ", ".join(f"{k} {n}" for k, (n, _) in zip(kinds, template_args, strict=True))
        lines.append(f"template <{decl}>\n")
    lines.append(f"[[kernel]] void {kernel_name}(\n")
    index = 0
    for i, (n, arr) in enumerate(zip(input_names, inputs, strict=True)):
        location = "constant" if arr.size < MAX_CONSTANT_ARRAY_SIZE else "device"
        ref = "&" if arr.ndim == 0 else "*"
        lines.append(f"  const {location} {METAL_TYPES[arr.dtype]}{ref} {n} [[buffer({index})]],\n")
        params.append(Param("input", n, i))
        index += 1
        if arr.ndim > 0:
            for flag, suffix, ctype in zip(
                infos[i],
                ("shape", "strides", "ndim"),
                ("const constant int*", "const constant int64_t*", "const constant int&"),
                strict=True,
            ):
                if flag:
                    lines.append(f"  {ctype} {n}_{suffix} [[buffer({index})]],\n")
                    params.append(Param(suffix, n, i))
                    index += 1
    for i, (n, dtype) in enumerate(zip(output_names, output_dtypes, strict=True)):
        end = ",\n" if index < len(inputs) + len(output_names) - 1 or attributes else ") {\n"
        lines.append(f"  device {METAL_TYPES[dtype]}* {n} [[buffer({index})]]{end}")
        params.append(Param("output", n, i))
        index += 1
    for k, (attr, t) in enumerate(attributes):
        end = ",\n" if k < len(attributes) - 1 else ") {\n"
        lines.append(f"  {t} {attr} [[{attr}]]{end}")
        params.append(Param("attribute", attr))
    text = header + "".join(lines) + source + "\n}\n"
    if template_args:
        template_def = kernel_name + _write_template(template_args)
        text += (
            f'\ntemplate [[host_name("{kernel_name}")]] [[kernel]] '
            f"decltype({template_def}) {template_def};\n"
        )
    return text, kernel_name, params


def cuda_kernel_name(name, template_args) -> str:
    suffix = ""
    for _, v in template_args:
        if isinstance(v, bool):
            suffix += "_t" if v else "_f"
        elif isinstance(v, int):
            suffix += f"_{v}"
        else:
            suffix += "_" + METAL_TYPES[v]
    return "custom_kernel_" + name + suffix


def cuda_source(name, input_names, inputs, output_names, output_dtypes, template_args, source):
    """Return ``(prefix, kernel_part, kernel_name)``: ``prefix + header + kernel_part`` is
    the text ``mx.fast.cuda_kernel`` compiles (``prefix`` is MLX's default header)."""
    kernel_name = cuda_kernel_name(name, template_args)
    infos = shape_infos(source, input_names)
    text = "namespace mlx::core::cu {\n\nnamespace cg = cooperative_groups;\n\n"
    text += f"__global__ void {kernel_name}(\n"
    for i, (n, arr) in enumerate(zip(input_names, inputs, strict=True)):
        text += f"    const {CUDA_TYPES[arr.dtype]}* {n},\n"
        if arr.ndim > 0:
            if infos[i][0]:
                text += f"    const __grid_constant__ Shape {n}_shape,\n"
            if infos[i][1]:
                text += f"    const __grid_constant__ Strides {n}_strides,\n"
            if infos[i][2]:
                text += f"    const __grid_constant__ int {n}_ndim,\n"
    for i, (n, dtype) in enumerate(zip(output_names, output_dtypes, strict=True)):
        end = ",\n" if i < len(output_names) - 1 else ") {\n"
        text += f"    {CUDA_TYPES[dtype]}* {n}{end}"
    if template_args:
        for n, v in template_args:
            if isinstance(v, bool):
                text += f"  constexpr bool {n} = {'true' if v else 'false'};\n"
            elif isinstance(v, int):
                text += f"  constexpr int {n} = {v};\n"
            else:
                text += f"  using {n} = {CUDA_TYPES[v]};\n"
        text += "\n"
    text += source + "\n}\n\n} // namespace mlx::core::cu\n"
    return CUDA_DEFAULT_HEADER, text, kernel_name
