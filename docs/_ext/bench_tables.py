"""Sphinx extension: the Benchmarks page's tables, generated from ``bench/results/*.json``.

Before the pages are read, :func:`render` writes ``docs/_generated/bench_tables.md``, which
``benchmarks.md`` includes. Suite results (with a ``schema`` and ``records``) are rendered
again from their records with ``bench.harness.tables_by_workload``; the single-workload
scripts' files carry the table their script rendered (``table``), or plain records, which
become one row each. Nothing is typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "docs" / "_generated" / "bench_tables.md"


def _records_table(records: list[dict]) -> str:
    """Plain record dicts as one markdown table (floats to 3 significant digits)."""
    columns: list[str] = []
    for rec in records:
        columns += [k for k in rec if k not in columns]

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in records]
    return "\n".join(lines)


def _machine(info: dict) -> str:
    keys = ("date", "platform", "cpu_count", "python", "mlx", "mlx_device", "mlx_snn")
    return "; ".join(f"{k} {info[k]}" for k in keys if info.get(k) not in (None, ""))


def table_for(payload: dict) -> str:
    """The markdown table(s) of one result file."""
    if payload.get("schema") is not None and isinstance(payload.get("records"), list):
        from bench.harness import tables_by_workload

        return tables_by_workload(payload["records"])
    if isinstance(payload.get("table"), str):
        return payload["table"].strip()
    if isinstance(payload.get("records"), list) and payload["records"]:
        return _records_table(payload["records"])
    return "(no table in this file)"


def render(results: Path = RESULTS) -> str:
    """The generated page section: one ``##`` part per result file, full runs first."""
    files = sorted(results.glob("*.json"), key=lambda p: ("quick" in p.name, p.name))
    parts = []
    for path in files:
        payload = json.loads(path.read_text())
        head = [f"## `{path.name}`", ""]
        if payload.get("machine"):
            head += [f"Machine: {_machine(payload['machine'])}.", ""]
        if payload.get("quick"):
            head += ["A `--quick` run (small shapes, few repetitions).", ""]
        note = payload.get("note")
        if note and not (payload.get("schema") is None and "table" in payload):
            head += [f"Note: {note}", ""]
        body = table_for(payload)
        if body.startswith("Note: "):  # the suite puts its note above its tables
            body = body.split("\n\n", 1)[-1]
        parts.append("\n".join(head).rstrip() + "\n\n" + body)
    return "\n\n".join(parts) + "\n"


def write(app=None) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = render()
    if not OUT.exists() or OUT.read_text() != text:
        OUT.write_text(text)


def setup(app):
    app.connect("builder-inited", write)
    return {"parallel_read_safe": True, "version": "1"}
