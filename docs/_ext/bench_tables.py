"""Sphinx extension: the Benchmarks page's tables, generated from ``bench/results/*.json``.

Before the pages are read, :func:`render` writes ``docs/_generated/bench_tables.md``, which
``benchmarks.md`` includes. Suite results (with a ``schema`` and ``records`` in the harness's
record format) are rendered again from their records with ``bench.harness.tables_by_workload``;
the single-workload scripts' files carry the table their script rendered (``table``), or plain
records (``records``, ``results`` or ``rows``, or a bare list), which become one row each.
Nothing is typed by hand.

Any new file with one of these shapes is picked up as it is. A suite file whose records do not
follow the harness's schema falls back to its ``table``; headings inside a table text are
moved under the file's heading (``###``); a file that is not valid JSON is named on the page and
reported as a build warning (an error under ``-W``), never skipped silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "docs" / "_generated" / "bench_tables.md"
RECORD_KEYS = ("records", "results", "rows")
_HEADING = re.compile(r"^#{1,6} ")


def _cell(value) -> str:
    """One table cell: floats to 3 significant digits, containers as compact JSON, on one line
    and with ``|`` escaped so that the row stays a row."""
    if isinstance(value, bool) or value is None:
        text = "" if value is None else str(value)
    elif isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _records_table(records: list) -> str:
    """Plain records as one markdown table, one row each (columns: every key, first seen
    first); a record that is not a dict becomes a one-cell row."""
    rows = [r if isinstance(r, dict) else {"value": r} for r in records]
    columns: list[str] = []
    for rec in rows:
        columns += [str(k) for k in rec if str(k) not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += [
        "| " + " | ".join(_cell({str(k): v for k, v in r.items()}.get(c)) for c in columns) + " |"
        for r in rows
    ]
    return "\n".join(lines)


def _machine(info) -> str:
    if not isinstance(info, dict):
        return _cell(info)
    keys = ("date", "platform", "cpu_count", "python", "mlx", "mlx_device", "mlx_snn")
    return "; ".join(f"{k} {info[k]}" for k in keys if info.get(k) not in (None, ""))


def _suite_tables(records: list) -> str | None:
    """The suite's tables re-rendered from its records, or ``None`` when they do not follow
    the harness's record schema."""
    from bench.harness import tables_by_workload

    if not records or not all(isinstance(r, dict) for r in records):
        return None
    try:
        return tables_by_workload(records)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _under_file_heading(text: str) -> str:
    """Headings inside a table text become ``###``, below the file's ``##``; fenced code is
    left alone."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append(_HEADING.sub("### ", line) if not fenced else line)
    return "\n".join(out)


def table_for(payload) -> str:
    """The markdown table(s) of one result file."""
    if isinstance(payload, list):
        return _records_table(payload) if payload else "(no table in this file)"
    if not isinstance(payload, dict):
        return "(no table in this file)"
    if payload.get("schema") is not None and isinstance(payload.get("records"), list):
        tables = _suite_tables(payload["records"])
        if tables is not None:
            return tables
    if isinstance(payload.get("table"), str) and payload["table"].strip():
        return _under_file_heading(payload["table"].strip())
    for key in RECORD_KEYS:
        if isinstance(payload.get(key), list) and payload[key]:
            return _records_table(payload[key])
    return "(no table in this file)"


def render(results: Path = RESULTS, warn: Callable[[str], None] | None = None) -> str:
    """The generated page section: one ``##`` part per result file, full runs first.

    ``warn`` is called with a message for each file that cannot be read as JSON.
    """
    files = sorted(results.glob("*.json"), key=lambda p: ("quick" in p.name, p.name))
    parts = []
    for path in files:
        head = [f"## `{path.name}`", ""]
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            message = f"bench/results/{path.name} is not a readable JSON file: {err}"
            if warn is not None:
                warn(message)
            parts.append("\n".join(head) + f"(not shown: {_cell(str(err))})")
            continue
        info = payload if isinstance(payload, dict) else {}
        if info.get("machine"):
            head += [f"Machine: {_machine(info['machine'])}.", ""]
        if info.get("quick"):
            head += ["A `--quick` run (small shapes, few repetitions).", ""]
        note = info.get("note")
        if note and not (info.get("schema") is None and "table" in info):
            head += [f"Note: {_cell(note)}", ""]
        body = table_for(payload)
        if body.startswith("Note: "):  # the suite puts its note above its tables
            body = body.split("\n\n", 1)[-1]
        parts.append("\n".join(head).rstrip() + "\n\n" + body)
    return "\n\n".join(parts) + "\n"


def write(app=None) -> None:
    warn = None
    if app is not None:
        from sphinx.util import logging

        warn = logging.getLogger(__name__).warning
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = render(warn=warn)
    if not OUT.exists() or OUT.read_text() != text:
        OUT.write_text(text)


def setup(app):
    app.connect("builder-inited", write)
    return {"parallel_read_safe": True, "version": "1"}
