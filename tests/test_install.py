"""Install paths: which MLX wheels each install command brings, on Linux, macOS and Windows.

MLX's Linux wheel has no compute library; ``mlx-cpu`` or ``mlx-cuda-13`` / ``mlx-cuda-12``
adds ``mlx/lib/libmlx.so``, so two of them in one environment overwrite each other. The
``cpu``, ``cuda`` and ``cuda12`` extras must each bring exactly one, and nothing else may
bring any.

The offline tests evaluate ``pyproject.toml``'s markers. The ``network`` tests ask the package
index with ``pip install --dry-run --report`` and skip when it cannot be reached. pip evaluates
environment markers for the machine it runs on, even with ``--platform``, so the
other-platform cases follow the requirements themselves: pip picks each distribution's wheel
for the target platform (``--no-deps``), and the test evaluates that wheel's
``Requires-Dist`` for the target and asks again, until no MLX distribution asks for more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
from packaging.markers import default_environment  # noqa: E402
from packaging.requirements import Requirement  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402

from mlx_snn import _install  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BACKENDS = {"mlx-cpu", "mlx-cuda-12", "mlx-cuda-13"}

MANYLINUX = [f"manylinux_2_{v}_x86_64" for v in (35, 34, 28, 27, 17)] + ["manylinux2014_x86_64"]
PLATFORMS = {
    # name: (marker environment, pip --platform tags: pip does not widen manylinux tags itself)
    "linux": ({"sys_platform": "linux", "platform_system": "Linux"}, MANYLINUX),
    "macos": (
        {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
        ["macosx_14_0_arm64"],
    ),
    "macos-intel": (
        {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "x86_64"},
        ["macosx_13_0_x86_64"],
    ),
    "windows": ({"sys_platform": "win32", "platform_system": "Windows"}, ["win_amd64"]),
}


def environment(platform: str) -> dict[str, str]:
    env = default_environment()
    env.update({"platform_machine": "x86_64", "python_version": "3.11"})
    env.update({"python_full_version": "3.11.9", "implementation_name": "cpython"})
    env.update(PLATFORMS[platform][0])
    return env


def applies(req: Requirement, env: dict[str, str], extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": e}) for e in extras | {""})


def our_requirements(platform: str, extras: set[str]) -> list[Requirement]:
    """``mlx-snn[extras]``'s direct requirements on ``platform``, markers evaluated."""
    env = environment(platform)
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in sorted(extras):
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return [r for r in reqs if applies(r, env, extras)]


def mlx_requirements(platform: str, extras: set[str]) -> list[str]:
    """The MLX requirements as ``name[extras]`` strings, sorted."""
    reqs = [r for r in our_requirements(platform, extras) if r.name == "mlx"]
    return sorted(r.name + (f"[{','.join(sorted(r.extras))}]" if r.extras else "") for r in reqs)


@pytest.mark.parametrize(
    "platform, extras, expected",
    [
        ("linux", set(), ["mlx"]),
        ("linux", {"cpu"}, ["mlx", "mlx[cpu]"]),
        ("linux", {"cuda"}, ["mlx", "mlx[cuda13]"]),
        ("linux", {"cuda12"}, ["mlx", "mlx[cuda12]"]),
        ("linux", {"cuda", "dev", "examples", "docs"}, ["mlx", "mlx[cuda13]"]),
        ("macos", set(), ["mlx"]),
        ("macos", {"cpu"}, ["mlx"]),
        ("macos", {"cuda", "dev"}, ["mlx"]),
        ("macos-intel", set(), []),
        ("windows", {"cpu"}, []),
    ],
)
def test_markers_select_one_mlx_backend(platform, extras, expected):
    assert mlx_requirements(platform, extras) == expected


def test_only_the_backend_extras_name_mlx():
    for extra, reqs in PROJECT["optional-dependencies"].items():
        names = {canonicalize_name(Requirement(r).name) for r in reqs}
        if extra in ("cpu", "cuda", "cuda12"):
            assert names == {"mlx"}, extra
        else:
            assert not names & ({"mlx"} | BACKENDS), extra


@pytest.mark.parametrize(
    "system, machine, words",
    [
        ("Linux", "x86_64", "pip install 'mlx[cpu]'"),
        ("Windows", "AMD64", "not Windows: use Linux (WSL 2 works)"),
        ("Darwin", "x86_64", "Apple silicon (arm64) Macs only"),
    ],
)
def test_import_error_says_what_to_install(system, machine, words):
    assert words in _install.install_hint(system, machine)


def test_two_backend_wheels_are_reported(tmp_path):
    for name in ("mlx-0.32.4", "mlx_cpu-0.32.4", "mlx_cuda_13-0.32.4"):
        (tmp_path / f"{name}.dist-info").mkdir()
    wheels = _install.backend_wheels(tmp_path)
    assert wheels == ["mlx-cpu", "mlx-cuda-13"]
    message = _install.conflict_message(wheels)
    assert "pip uninstall -y mlx-cpu" in message and "--no-deps mlx-cuda-13" in message
    assert _install.conflict_message(["mlx-cpu"]) is None


# --- the package index --------------------------------------------------------------------


def pip(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def index():
    """Skip unless pip can read the index (asks for the CUDA backend's versions)."""
    try:
        res = pip("index", "versions", "mlx-cuda-13", timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer within 120 s")
    if res.returncode != 0:
        pytest.skip(f"the package index cannot be reached: {res.stderr.strip()[-200:]}")


def dry_run(reqs: list[str], tmp_path: Path, *options: str) -> list[dict]:
    """``pip install --dry-run --report``'s list of what would be installed."""
    report = tmp_path / "report.json"
    cmd = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
    res = pip(*cmd, *options, *reqs)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(report.read_text())["install"]


def resolve_for(platform: str, extras: set[str], tmp_path: Path) -> dict[str, str]:
    """``{name: wheel file}`` that ``mlx-snn[extras]`` brings on ``platform``."""
    env = environment(platform)
    target = ["--target", str(tmp_path / "target"), "--no-deps", "--only-binary=:all:"]
    target += ["--python-version", "3.11"]
    for tag in PLATFORMS[platform][1]:
        target += ["--platform", tag]
    pending = our_requirements(platform, extras)
    wanted: dict[str, Requirement] = {}  # name -> requirement without marker or extras
    wanted_extras: dict[str, set[str]] = {}
    chosen: dict[str, dict] = {}
    while pending:
        for req in pending:
            name = canonicalize_name(req.name)
            if name in wanted:
                wanted[name].specifier &= req.specifier
            else:
                wanted[name] = Requirement(f"{name}{req.specifier}")
            wanted_extras.setdefault(name, set()).update(req.extras)
        items = dry_run([str(r) for r in wanted.values()], tmp_path, *target)
        pending = []
        for item in items:
            name = canonicalize_name(item["metadata"]["name"])
            chosen[name] = item
            if not name.startswith("mlx"):
                continue  # numpy's and the CUDA libraries' own dependencies do not matter here
            for dep in map(Requirement, item["metadata"].get("requires_dist", [])):
                dep_name = canonicalize_name(dep.name)
                new = dep_name not in wanted or not dep.extras <= wanted_extras[dep_name]
                if new and applies(dep, env, wanted_extras[name]):
                    pending.append(dep)
    return {n: item["download_info"]["url"].rsplit("/", 1)[-1] for n, item in chosen.items()}


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize(
    "platform, extras, backend",
    [
        ("linux", {"cuda"}, {"mlx-cuda-13"}),
        ("linux", {"cpu", "dev"}, {"mlx-cpu"}),
        ("linux", set(), set()),
        ("macos", set(), set()),
        ("macos", {"cuda"}, set()),
    ],
)
def test_index_resolution_brings_one_backend(index, tmp_path, platform, extras, backend):
    wheels = resolve_for(platform, extras, tmp_path)
    assert "mlx" in wheels and "numpy" in wheels
    assert set(wheels) & BACKENDS == backend, sorted(wheels)
    if platform == "macos":
        assert "mlx-metal" in wheels
        assert all("macosx" in f or f.endswith("-none-any.whl") for f in wheels.values()), wheels
    else:
        assert "mlx-metal" not in wheels


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="pip evaluates markers for this machine")
def test_pip_resolves_the_cuda_extra_without_mlx_cpu(index, tmp_path):
    """What ``pip install ".[cuda]"`` would install here, by pip's own resolver."""
    pytest.importorskip("setuptools")
    items = dry_run([f"{ROOT}[cuda]"], tmp_path, "--no-build-isolation")
    names = {canonicalize_name(i["metadata"]["name"]) for i in items}
    assert {"mlx", "mlx-cuda-13", "mlx-snn", "numpy"} <= names
    assert not names & {"mlx-cpu", "mlx-cuda-12", "mlx-metal"}, sorted(names)


def test_a_missing_mlx_backend_raises_import_error_with_the_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlx.core", None)  # as when libmlx.so cannot load
    with pytest.raises(ImportError, match=r"mlx_snn cannot import MLX .*pip install"):
        _install.require_mlx()
