"""bench/kernels.py runs here (MLX path only, no kernel backend) and writes its JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import kernels as bench_kernels  # noqa: E402
from mlx_snn import backends  # noqa: E402


def test_kernel_bench_quick_runs_and_says_which_paths_ran(tmp_path, capsys):
    assert bench_kernels.main(["--quick", "--reps", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (path,) = tmp_path.glob("kernels_quick-*.json")
    payload = json.loads(path.read_text())
    paths = {r["path"] for r in payload["records"]}
    assert paths == {"mlx", *backends.kernel_backends()}
    if not backends.kernel_backends():
        assert "no kernel backend is present here" in out
    assert all(r["gbs"] > 0 and r["bytes"] > 0 for r in payload["records"])
