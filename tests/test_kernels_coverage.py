"""Every kernel source in metal/ has a spec and a shim test; the CUDA preamble and
the shim map every Metal name the bodies use."""

from __future__ import annotations

import inspect
import re

import test_kernels_amos
import test_kernels_lif
import test_kernels_scan

from mlx_snn.kernels import registry

SHIM_TEST_MODULES = (test_kernels_lif, test_kernels_scan, test_kernels_amos)


def test_every_metal_file_has_a_spec():
    bodies = {f[: -len(".metal")] for f in registry.source_files() if f.endswith(".metal")}
    assert bodies == set(registry.SPECS)
    assert "common.h" in registry.source_files()


def test_every_metal_file_has_a_shim_test():
    """A shim test is named test_shim_<kernel>... or runs it through its entry point:
    each body must appear in the source of some shim test module's test_shim_ functions."""
    tests = {
        name: inspect.getsource(module)
        for module in SHIM_TEST_MODULES
        for name, _ in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("test_shim_")
    }
    entry = {
        "lif_forward": "test_shim_lif_",
        "lif_backward": "test_shim_lif_",
        "linear_scan": "test_shim_linear_scan_lanes",
        "linear_scan_chunked": "test_shim_linear_scan_chunked",
        "amos_forward": "test_shim_amos_",
        "amos_backward": "test_shim_amos_",
        "first_spike": "test_shim_first_spike",
    }
    assert set(entry) == set(registry.SPECS), "name the shim test of every new kernel here"
    for kernel, prefix in entry.items():
        assert any(n.startswith(prefix) for n in tests), f"no shim test for {kernel}.metal"


def test_bodies_use_only_metal_names_the_preamble_and_shim_define():
    from pathlib import Path

    shim = (Path(__file__).parent / "shim" / "shim.h").read_text()
    from mlx_snn.kernels import cuda

    for f in registry.source_files():
        text = registry.source(f)
        for fn in set(re.findall(r"metal::(\w+)", text)):
            assert f"float {fn}(" in cuda.PREAMBLE and f"float {fn}(" in shim, (f, fn)
        for word in ("device", "constant", "thread"):
            code = re.sub(r"//.*", "", text)
            assert not re.search(rf"\b{word}\b\s+\w", code), f"{f}: address space {word!r}"
