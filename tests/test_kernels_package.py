"""Packaging: the kernel sources in metal/ load through importlib.resources (that the wheel
and the sdist ship them is checked with the rest of their contents in tests/test_release.py)."""

from __future__ import annotations

from pathlib import Path

from mlx_snn.kernels import registry

ROOT = Path(__file__).resolve().parents[1]


def test_kernel_sources_load_through_importlib_resources():
    files = registry.source_files()
    assert sorted(p.name for p in (ROOT / "metal").iterdir()) == files
    for name in files:
        assert registry.source(name) == (ROOT / "metal" / name).read_text()
