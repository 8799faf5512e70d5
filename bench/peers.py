"""Peer libraries the benchmarks time against: detection, loading and installation.

Usage:
    python bench/peers.py status     # which peers import, with versions
    python bench/peers.py install    # pip-install the missing ones into this environment

Peers (../shared/design/bench.md):
- ``torch``        ``pip install torch==2.13.0`` (a CPU build where that is the local wheel)
- ``snntorch``     ``pip install snntorch``
- ``spikingjelly`` ``pip install --no-deps spikingjelly loguru tqdm``: its metadata asks for
  torchvision/torchaudio, which would replace a CPU torch with a multi-GB CUDA build.
- ``mlxsnn``       mlx-snn 0.5.0 (GPL; timed as a peer only). It has the same distribution name
  as this package, so it goes into ``bench/.peers`` (``pip install --target bench/.peers
  --no-deps mlx-snn==0.5.0``) and that folder is appended to ``sys.path`` when loaded.

A missing peer is not an error: :func:`load` returns ``None`` and :func:`status` says why, so each
benchmark skips that column with a note.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import subprocess
import sys
from pathlib import Path
from types import ModuleType

PEERS_DIR = Path(__file__).resolve().parent / ".peers"
NAMES = ("torch", "snntorch", "spikingjelly", "mlxsnn")
LABELS = {
    "torch": "PyTorch",
    "snntorch": "snnTorch",
    "spikingjelly": "SpikingJelly",
    "mlxsnn": "mlx-snn 0.5.0",
}
MLXSNN_VERSION = "0.5.0"
INSTALL = {
    "torch": [["install", "torch==2.13.0"]],
    "snntorch": [["install", "snntorch"]],
    "spikingjelly": [["install", "--no-deps", "spikingjelly", "loguru", "tqdm"]],
    "mlxsnn": [["install", "--target", str(PEERS_DIR), "--no-deps", f"mlx-snn=={MLXSNN_VERSION}"]],
}
NEEDS = {"snntorch": ("torch",), "spikingjelly": ("torch",)}
_errors: dict[str, str] = {}


def _import(name: str) -> ModuleType:
    if name == "mlxsnn" and str(PEERS_DIR) not in sys.path:
        # appended, not prepended: our own mlx_snn must stay first on the path
        sys.path.append(str(PEERS_DIR))
    if name in ("torch", "snntorch", "spikingjelly"):
        # torch logs "Triton not available" at import on CPU-only machines; not an error here
        logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    if name == "spikingjelly":
        module = importlib.import_module("spikingjelly")
        importlib.import_module("spikingjelly.activation_based.neuron")
        return module
    return importlib.import_module(name)


def load(name: str) -> ModuleType | None:
    """Import peer ``name`` (one of :data:`NAMES`), or return ``None`` and remember why."""
    if name not in NAMES:
        raise ValueError(f"peer name must be one of {NAMES}; got {name!r}")
    try:
        return _import(name)
    except Exception as exc:  # a broken peer install must not stop the suite
        _errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
        return None


def version(name: str) -> str | None:
    module = load(name)
    if module is None:
        return None
    found = getattr(module, "__version__", None)
    if found is None:
        try:
            from importlib.metadata import version as dist_version

            found = dist_version(name)
        except Exception:
            found = "unknown"
    return str(found)


def missing_note(name: str) -> str:
    """Why peer ``name`` is unavailable, with the command that installs it."""
    why = _errors.get(name, "not installed")
    return f"{LABELS[name]} unavailable ({why}); install: python bench/peers.py install"


def status() -> dict[str, dict]:
    """``{name: {"available": bool, "version": str | None, "note": str}}`` for every peer."""
    out = {}
    for name in NAMES:
        ver = version(name)
        out[name] = {
            "available": ver is not None,
            "version": ver,
            "note": "" if ver is not None else missing_note(name),
        }
    return out


def install(names: list[str] | None = None, dry_run: bool = False) -> list[list[str]]:
    """pip-install the peers in ``names`` (default: all missing ones); return the commands."""
    wanted = list(names or [n for n in NAMES if load(n) is None])
    for name in list(wanted):
        for dep in NEEDS.get(name, ()):
            if dep not in wanted and load(dep) is None:
                wanted.insert(0, dep)
    commands = [
        [sys.executable, "-m", "pip", *args]
        for name in NAMES
        if name in wanted
        for args in INSTALL[name]
    ]
    for cmd in commands:
        print("+", " ".join(cmd), flush=True)
        if not dry_run:
            subprocess.run(cmd, check=True)
    importlib.invalidate_caches()
    _errors.clear()
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark peers: status and installation")
    parser.add_argument("action", choices=("status", "install"))
    parser.add_argument("names", nargs="*", choices=[[], *NAMES], help="peers (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the pip commands only")
    args = parser.parse_args(argv)
    if args.action == "install":
        install(args.names or None, dry_run=args.dry_run)
        if args.dry_run:
            return 0
    for name, info in status().items():
        shown = info["version"] if info["available"] else info["note"]
        print(f"{LABELS[name]:>14}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
