"""The documentation: every Python block of the README and the docs pages runs, every public
name has a docstring, and the benchmark tables come from ``bench/results/*.json``."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.fixture(scope="module")
def ext():
    """The docs build's own extensions (``docs/_ext``), imported without Sphinx."""
    sys.path.insert(0, str(DOCS / "_ext"))
    sys.path.insert(0, str(ROOT))
    try:
        import bench_tables
        import public_api

        yield types.SimpleNamespace(public_api=public_api, bench_tables=bench_tables)
    finally:
        sys.path.remove(str(DOCS / "_ext"))
        sys.path.remove(str(ROOT))


def test_the_docs_pages_exist():
    names = {p.stem for p in DOCS.glob("*.md")}
    expected = {"index", "quickstart", "semantics", "parallel", "tac", "kernels", "benchmarks"}
    assert expected | {"examples", "api", "data", "monitor", "nir"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_python_block_runs(page):
    """The blocks of one page run in order in one namespace, as a reader would paste them."""
    blocks = BLOCK.findall(page.read_text())
    scope: dict = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page.name}[python block {i}]", "exec"), scope)
        except Exception as exc:
            raise AssertionError(f"{page.name}, python block {i} fails:\n{block}") from exc


def test_readme_and_pages_have_python_blocks():
    for page in (ROOT / "README.md", DOCS / "quickstart.md", DOCS / "parallel.md"):
        assert BLOCK.findall(page.read_text()), page


def test_every_public_name_has_a_docstring(ext):
    assert ext.public_api.missing_docstrings() == []


def test_the_docstring_check_finds_a_missing_one(ext, monkeypatch):
    module = types.ModuleType("fake_public", "A documented module.")

    def documented():
        """Has one."""

    def bare():
        pass

    class Thing:
        """A class."""

        def method(self):
            pass

    module.__all__ = ["documented", "bare", "Thing", "CONSTANT"]
    module.documented, module.bare, module.Thing, module.CONSTANT = documented, bare, Thing, 3
    monkeypatch.setitem(sys.modules, "fake_public", module)
    assert ext.public_api.missing_docstrings(("fake_public",)) == [
        "fake_public.Thing.method",
        "fake_public.bare",
    ]


def test_the_reference_check_finds_an_undocumented_name(ext, monkeypatch):
    module = types.ModuleType("fake_public", "A documented module.")

    def shown():
        """In the reference."""

    def hidden():
        """Not in the reference."""

    class Moved:
        """Documented under the path it is defined at (autodoc's canonical name)."""

    Moved.__module__, Moved.__qualname__ = "fake_private", "Moved"
    module.__all__ = ["shown", "hidden", "Moved", "CONSTANT"]
    module.shown, module.hidden, module.Moved, module.CONSTANT = shown, hidden, Moved, 3
    monkeypatch.setitem(sys.modules, "fake_public", module)
    documented = {"fake_public.shown", "fake_private.Moved"}
    check = ext.public_api.missing_from_reference
    assert check(documented, {"fake_public"}, ("fake_public",)) == ["fake_public.hidden"]
    assert check(documented, set(), ("fake_public",)) == ["fake_public", "fake_public.hidden"]


def test_every_public_module_is_on_the_api_page(ext):
    page = (DOCS / "api.md").read_text()
    for modname in ext.public_api.PUBLIC_MODULES:
        assert f"automodule:: {modname}\n" in page, modname


def test_benchmark_tables_are_generated_from_the_result_files(ext):
    text = ext.bench_tables.render()
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert results
    for path in results:
        assert f"## `{path.name}`" in text
    suite = json.loads((ROOT / "bench" / "results" / "cpu-vm.json").read_text())
    from bench.harness import fmt_time

    first_timed = next(r for r in suite["records"] if "median_s" in r)
    assert fmt_time(first_timed["median_s"]) in text


def test_benchmark_tables_tolerate_new_result_files(ext, tmp_path):
    """Files with the shapes the bench scripts write, and odd ones, render; a broken one is
    named on the page and reported, never skipped silently."""
    suite = json.loads((ROOT / "bench" / "results" / "cpu-vm.json").read_text())
    files = {
        "suite-cuda-gpu.json": {  # a suite-schema file from another machine
            "schema": 1,
            "machine": {"platform": "Linux", "mlx_device": "Device(gpu, 0)"},
            "records": suite["records"][:3],
        },
        "odd_records-cpu-vm.json": {  # schema but records of another shape: its table is used
            "schema": 1,
            "records": [{"op": "lif"}],
            "table": "# LIF kernels\n\n| op | ms |\n|---|---|\n| lif | 1.0 |",
        },
        "nested-cpu-vm.json": {  # plain records with nested values and a pipe
            "machine": "a GPU box",
            "note": "first\nrun",
            "results": [{"case": "a | b", "params": {"T": 8}, "ms": 1.23456, "ok": True}],
        },
        "bare_list-cpu-vm.json": [{"case": "x", "ms": 2.0}, 3],
        "empty-cpu-vm.json": {},
        "broken-cpu-vm.json": "{not json",
    }
    for name, payload in files.items():
        text = payload if isinstance(payload, str) else json.dumps(payload)
        (tmp_path / name).write_text(text)
    warnings: list[str] = []
    page = ext.bench_tables.render(tmp_path, warn=warnings.append)
    for name in files:
        assert f"## `{name}`" in page
    assert "### 1. LIF layer" in page  # re-rendered from the suite records
    assert "### LIF kernels" in page and "\n# LIF" not in page  # heading moved under the file
    assert '| a \\| b | {"T":8} | 1.23 | True |' in page
    assert "Machine: a GPU box." in page and "Note: first run" in page
    assert "| x | 2 |  |" in page and "|  |  | 3 |" in page
    assert "(no table in this file)" in page
    assert len(warnings) == 1 and "broken-cpu-vm.json" in warnings[0]
    assert "(not shown: " in page
