"""One benchmark cell in its own process, driven over stdin/stdout by bench/isolated.py.

Usage (by :class:`bench.isolated.Cell`, not by hand):
    python -m bench.cell '{"module": "bench.lif_impls", "inputs": ["inputs", [T, B, N]],
                           "builder": "spikingjelly", "kwargs": {}}'

The process imports only what its builder imports (a torch peer never shares a
process with MLX work, and keeps torch's default thread settings), builds the
:class:`bench.runner.Impl` from ``module.<inputs>(*args)``, prints one JSON line
describing it (or why it is skipped) and then answers one JSON line per command:

- ``{"cmd": "outputs", "path": p}``: saves ``impl.outputs()`` to ``p`` (``.npz``),
- ``{"cmd": "memory"}``: peak memory of one step (``bench.harness.MEMORY``),
- ``{"cmd": "time", "reps": n}``: ``n`` timed steps, ``{"times_s": [...]}``,
- ``{"cmd": "exit"}``.

Anything the libraries print goes to stderr, so stdout carries only the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _serve(spec: dict, reply) -> None:
    import numpy as np

    from bench.harness import MEMORY

    module = importlib.import_module(spec["module"])
    name, args = spec["inputs"]
    inputs = getattr(module, name)(*args)
    impl = getattr(module, spec["builder"])(*inputs, **spec.get("kwargs", {}))
    if isinstance(impl, str):
        reply({"skipped": impl})
        return
    info = {"reference": impl.reference, "compare_grad": impl.compare_grad, "note": impl.note}
    reply({"ready": True, "memory": impl.memory, **info})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "exit":
            return
        if cmd["cmd"] == "outputs":
            np.savez(cmd["path"], *impl.outputs())
            reply({"ok": True})
        elif cmd["cmd"] == "memory":
            peak, method = MEMORY[impl.memory](impl.step)
            reply({"peak_bytes": peak, "memory_method": method})
        elif cmd["cmd"] == "time":
            times = []
            for _ in range(cmd["reps"]):
                start = time.perf_counter()
                impl.step()
                times.append(time.perf_counter() - start)
            reply({"times_s": times})
        else:
            reply({"error": f"unknown command {cmd['cmd']!r}"})


def main() -> int:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # library prints must not mix with the protocol

    def reply(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    try:
        _serve(json.loads(sys.argv[1]), reply)
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        reply({"error": last[:300]})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
