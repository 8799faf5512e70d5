"""The CPU benchmark suite: workloads 1-5 of ../shared/design/bench.md in one process.

Usage: python bench/suite.py [--quick] [--only NAME ...] [--out DIR] [--reps N] [--install-peers]
(also ``mlx-snn bench ...`` from a source checkout). Prints one markdown table per
workload (cells: median, ratio to the row's first column, extra peak memory), writes
``<out>/cpu-<host>.json`` (raw records) and ``.md`` (the tables), and a PNG of time vs
T for the scaling workloads. Each workload is also a script: ``python bench/<name>.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from bench.harness import RESULTS, SCHEMA_VERSION, result_path, save, shown, tables_by_workload

WORKLOADS = ("lif_layer", "lif_scaling", "amos_layer", "tac_conv", "mnist_step")


def parser(prog: str | None = None, workloads: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="mlx-snn CPU benchmark suite")
    p.add_argument("--quick", action="store_true", help="small shapes, few reps (minutes)")
    if workloads:
        p.add_argument(
            "--only",
            nargs="+",
            choices=WORKLOADS,
            metavar="NAME",
            help=f"run only these workloads: {', '.join(WORKLOADS)}",
        )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per cell")
    p.add_argument("--note", default="", help="free text stored with the results (conditions)")
    p.add_argument(
        "--install-peers",
        action="store_true",
        help="pip-install missing peers first (python bench/peers.py install)",
    )
    return p


def peer_versions() -> dict:
    return {name: info["version"] or info["note"] for name, info in peers.status().items()}


def run_workloads(
    names, quick: bool, reps: int | None, checkpoint=None
) -> tuple[list[dict], dict, dict]:
    """Run the workloads; ``checkpoint(records, columns, plots)`` is called after each one."""
    records, columns, extras = [], {}, {}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        start = time.perf_counter()
        print(f"-- {module.TITLE}", flush=True)
        out = module.run(quick=quick, reps=reps)
        print(f"   {time.perf_counter() - start:.0f} s", flush=True)
        records += out["records"]
        columns[module.TITLE] = out.get("columns", [])
        if "plot" in out:
            extras[name] = out["plot"]
        if checkpoint is not None:
            checkpoint(records, columns, extras)
    return records, columns, extras


def write(name: str, records, columns, quick: bool, out: Path, plots: dict, note: str = "") -> Path:
    table = tables_by_workload(records, columns)
    if note:
        table = f"Note: {note}\n\n{table}"
    print("\n" + table + "\n")
    payload = {
        "schema": SCHEMA_VERSION,
        "quick": quick,
        "note": note,
        "peers": peer_versions(),
        "torch_threads": _torch_threads(),
        "records": records,
        "table": table,
    }
    path = save(name, payload, kind="cpu", out=out)
    for key, spec in plots.items():
        png = path.with_name(path.stem + f"-{key}.png")
        if plot_scaling(records, spec, png):
            print(f"wrote {shown(png)}")
    print(f"wrote {shown(path)} and {shown(path.with_suffix('.md'))}")
    return path


def _torch_threads() -> int | None:
    torch = peers.load("torch")
    return None if torch is None else torch.get_num_threads()


def plot_scaling(records: list[dict], spec: dict, png: Path) -> bool:
    """Log-log time vs T, one line per column, for the records of ``spec["workload"]``.

    ``spec``: ``{"workload": title, "x": param name (default "T"), "group": optional
    param name splitting the lines (e.g. "width")}``. Returns False without matplotlib.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xkey, group = spec.get("x", "T"), spec.get("group")
    lines: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r["workload"] != spec["workload"] or "median_s" not in r:
            continue
        label = r["col"] if group is None else f"{r['col']} ({group}={r['params'][group]})"
        lines.setdefault(label, []).append((r["params"][xkey], r["median_s"]))
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, pts in lines.items():
        pts.sort()
        ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=xkey,
        ylabel="median time of one fwd+bwd (s)",
        title=spec["workload"],
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return True


def standalone(module: ModuleType, argv: list[str] | None = None) -> Path:
    """``main()`` of a single workload script."""
    args = parser(prog=f"python bench/{module.NAME}.py", workloads=False).parse_args(argv)
    if args.install_peers:
        peers.install()
    out = module.run(quick=args.quick, reps=args.reps)
    plots = {module.NAME: out["plot"]} if "plot" in out else {}
    name = module.NAME + ("-quick" if args.quick else "")
    columns = {module.TITLE: out.get("columns", [])}
    return write(name, out["records"], columns, args.quick, args.out, plots, args.note)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog=prog).parse_args(argv)
    if args.install_peers:
        peers.install()
    print("peers:", ", ".join(f"{k} {v}" for k, v in peer_versions().items()), flush=True)
    start = time.perf_counter()
    names = args.only or WORKLOADS
    suffix = "-quick" if args.quick else ""
    name = (("" if not args.only else "+".join(names)) + suffix).lstrip("-")

    def checkpoint(recs, cols, plots):
        # partial results survive a crash or a kill in a later workload
        save(
            name + "-partial" if name else "partial",
            {"schema": SCHEMA_VERSION, "note": args.note, "records": recs},
            kind="cpu",
            out=args.out,
        )

    records, columns, plots = run_workloads(names, args.quick, args.reps, checkpoint)
    write(name, records, columns, args.quick, args.out, plots, args.note)
    partial = result_path(name + "-partial" if name else "partial", "cpu", args.out)
    partial.unlink(missing_ok=True)
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
