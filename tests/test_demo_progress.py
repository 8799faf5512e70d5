"""``mlx-snn demo --quick / --quiet`` and progress reports: no carriage returns off a tty."""

from __future__ import annotations

import io
import sys

import pytest

from mlx_snn import cli
from mlx_snn._progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def consume(bar) -> None:
    for i in bar:
        bar.set_postfix_str(f"item {i}")


def test_progress_into_a_file_writes_one_line_per_loop():
    out = io.StringIO()
    consume(progress(range(5), total=5, desc="epoch 1/2", file=out))
    consume(progress(range(3), total=3, desc="epoch 2/2", file=out))
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2 5/5") and lines[0].endswith("item 4")


def test_progress_in_a_terminal_redraws_a_bar_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: the built-in bar
    out = Terminal()
    consume(progress(range(4), total=4, desc="epoch 1/1", file=out))
    assert out.getvalue().count("\r") == 4 and out.getvalue().endswith("\n")
    assert "[########################] 4/4" in out.getvalue()


def test_disabled_progress_writes_nothing():
    out = io.StringIO()
    consume(progress(range(4), total=4, file=out, enabled=False))
    assert out.getvalue() == ""


def test_demo_quick_quiet_prints_only_the_result(capsys):
    assert cli.main(["demo", "--quick", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("test accuracy ")
    assert "2000 training images" in captured.out


def test_demo_into_a_pipe_reports_one_line_per_epoch(capsys):
    assert cli.main(["demo", "--epochs", "2", "--limit", "256"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert [line.split()[:2] for line in err.splitlines()] == [["epoch", "1/2"], ["epoch", "2/2"]]


@pytest.mark.parametrize("flag", ["--epochs", "--steps", "--limit"])
def test_demo_rejects_non_positive_flags(flag, capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", flag, "0"])
    assert f"{flag} must be >= 1; got 0" in capsys.readouterr().err
