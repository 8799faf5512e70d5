"""Packaging: the kernel sources in metal/ ship inside the wheel and the sdist and load
through importlib.resources."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mlx_snn.kernels import registry

ROOT = Path(__file__).resolve().parents[1]


def test_kernel_sources_load_through_importlib_resources():
    files = registry.source_files()
    assert sorted(p.name for p in (ROOT / "metal").iterdir()) == files
    for name in files:
        assert registry.source(name) == (ROOT / "metal" / name).read_text()


@pytest.mark.slow
def test_wheel_and_sdist_ship_the_kernel_sources(tmp_path):
    pytest.importorskip("setuptools")
    wheel_dir = tmp_path / "wheel"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"could not build a wheel here: {res.stderr[-300:]}")
    (wheel,) = wheel_dir.glob("mlx_snn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"mlx_snn/metal/{f}" for f in registry.source_files()}
    assert expected <= names, sorted(expected - names)

    script = (
        "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "sdist")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    (sdist,) = (tmp_path / "sdist").glob("mlx_snn-*.tar.gz")
    members = {m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m}
    for f in registry.source_files():
        assert f"metal/{f}" in members and f"mlx_snn/metal/{f}" in members, f
