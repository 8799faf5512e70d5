"""Committed result files carry no absolute paths of the machine that wrote them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT_DIRS = ("examples/results", "bench/results")
TEXT = {".json", ".md", ".txt", ".csv"}
# a POSIX path of two or more components at the start of a token (not "GFLOP/s" or a URL),
# a Windows drive path, or a home-relative path
ABSOLUTE = re.compile(r"(?:^|[\s\"'(=,\[])(/[\w.@+-]+/[\w.@+/-]*|[A-Za-z]:\\[^\s\"']+|~/[^\s\"']+)")


def absolute_paths(text: str) -> list[str]:
    return ABSOLUTE.findall(text)


def test_the_pattern_finds_absolute_paths_only():
    found = "wrote /work/main/bench/results/x.json", '"out": "/tmp/run"', r'"C:\\runs\\x"'
    for text in found:
        assert absolute_paths(text), text
    fine = "12 GFLOP/s", "https://github.com/ml-explore/mlx", "runs/tac4 ../shared/data", "1/τ"
    for text in fine:
        assert not absolute_paths(text), text


def test_no_committed_result_file_holds_an_absolute_path():
    files = [p for d in RESULT_DIRS for p in sorted((ROOT / d).glob("**/*")) if p.suffix in TEXT]
    assert files, "no result files found"
    bad = {
        str(p.relative_to(ROOT)): hits
        for p in files
        if (hits := absolute_paths(p.read_text(encoding="utf-8")))
    }
    assert not bad, bad


def test_benchmarks_print_repository_relative_paths(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        from bench.harness import RESULTS, shown
    finally:
        sys.path.remove(str(ROOT))
    assert shown(RESULTS / "cpu-x.json") == str(Path("bench/results/cpu-x.json"))
    assert shown(tmp_path / "x.json") == str(tmp_path / "x.json")  # outside: as given
