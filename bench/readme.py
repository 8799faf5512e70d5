"""The LIF rows of README.md's performance table, regenerated from committed result JSON.

Usage: python bench/readme.py [RESULTS.json ...]
       (default: bench/results/lif_layer-cpu-<host>.json and lif_scaling-cpu-<host>.json)

Prints one markdown table per LIF workload found in the files: each cell is the
median and, in brackets, its ratio to ``ours snn.LIF`` measured in the same run
(above 1 is slower than ours), plus the note of the results file (machine
state, date). Paste it into README.md's Performance section, so that every
figure there comes from a committed file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import RESULTS, fmt_time, host, markdown_table

OURS = "ours snn.LIF"
COLUMNS = [
    OURS,
    "ours mx.compile",
    "SpikingJelly",
    "snnTorch",
    "mlx-snn 0.5.0",
    "MLX loop, grad w.r.t. list",
    "plain MLX loop",
]


def table(records: list[dict], workload: str) -> str:
    rows: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["workload"] == workload and "median_s" in r:
            rows.setdefault(r["row"], {})[r["col"]] = r
    cols = [c for c in COLUMNS if any(c in cells for cells in rows.values())]
    body = []
    for row, cells in rows.items():
        base = cells.get(OURS)
        line = [row]
        for c in cols:
            rec = cells.get(c)
            if rec is None:
                line.append("")
                continue
            text = fmt_time(rec["median_s"])
            if base is not None and rec is not base:
                text += f" ({rec['median_s'] / base['median_s']:.2f}x)"
            line.append(text)
        body.append(line)
    return markdown_table(["workload", *cols], body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = [RESULTS / f"{n}-cpu-{host()}.json" for n in ("lif_layer", "lif_scaling")]
    p.add_argument("files", nargs="*", type=Path, default=default)
    args = p.parse_args(argv)
    for path in args.files:
        if not path.is_file():
            print(f"(no {path})")
            continue
        payload = json.loads(path.read_text())
        records = payload["records"]
        date = payload.get("machine", {}).get("date", "")
        print(f"From `{path}` ({date}). {payload.get('note', '')}")
        for workload in dict.fromkeys(r["workload"] for r in records):
            if "LIF" in workload:
                print(f"\n{workload}\n\n{table(records, workload)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
