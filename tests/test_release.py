"""Release files: what the wheel and the sdist contain, and one version everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import mlx_snn
from mlx_snn.kernels import registry

ROOT = Path(__file__).resolve().parents[1]


def test_one_version_in_package_pyproject_and_citation():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    citation = re.search(r"^version: (\S+)$", (ROOT / "CITATION.cff").read_text(), re.M)
    assert mlx_snn.__version__ == pyproject == citation.group(1)


def test_changelog_has_an_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog") and "## [Unreleased]" in text


def build(kind: str, out: Path) -> Path:
    """Build an sdist or a wheel with the installed setuptools (no network, no isolation)."""
    pytest.importorskip("setuptools")
    code = f"from setuptools import build_meta as b; print(b.build_{kind}({str(out)!r}))"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"could not build the {kind} here: {res.stderr[-300:]}")
    return out / res.stdout.strip().splitlines()[-1]


def unwanted(names: list[str]) -> list[str]:
    return [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo", ".so"))]


@pytest.mark.slow
def test_wheel_holds_the_package_data_and_notices_only(tmp_path):
    names = zipfile.ZipFile(build("wheel", tmp_path)).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"mlx_snn", f"mlx_snn-{mlx_snn.__version__}.dist-info"}, tops
    for required in ("mlx_snn/data/mnist_subset.npz", "mlx_snn/data/MNIST_LICENSE.txt"):
        assert required in names
    kernels = {f"mlx_snn/metal/{f}" for f in registry.source_files()}
    assert kernels <= set(names), sorted(kernels - set(names))
    licences = {n.rsplit("/", 1)[-1] for n in names if "/licenses/" in n}
    assert licences == {"LICENSE", "NOTICE"}
    assert not unwanted(names)
    assert not [n for n in names if "/tests/" in n or "/bench/" in n or "results" in n]


@pytest.mark.slow
def test_sdist_holds_the_whole_test_tree_and_it_collects(tmp_path):
    sdist = build("sdist", tmp_path)
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
        tar.extractall(tmp_path / "src", filter="data")
    tests = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")}
    assert tests <= set(names), sorted(tests - set(names))
    for required in ("tests/conftest.py", "tests/reference/__init__.py", "examples/mnist.py"):
        assert required in names
    for required in ("NOTICE", "CITATION.cff", "CHANGELOG.md", "CONTRIBUTING.md", "LICENSE"):
        assert required in names
    for f in registry.source_files():  # the kernel sources, and through the package's link
        assert f"metal/{f}" in names and f"mlx_snn/metal/{f}" in names, f
    assert not unwanted(names)
    (root,) = (tmp_path / "src").iterdir()
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


def test_ci_runs_the_readme_test_command_verbatim():
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    test_command = lines[3]
    assert test_command.endswith("&& pytest")
    assert f"({test_command})" in (ROOT / ".ci" / "run").read_text()
