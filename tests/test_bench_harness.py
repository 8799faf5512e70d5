"""The benchmark plumbing (bench/): timing helper, record/result schema, tables, peer
detection, the ``mlx-snn bench`` argument parsing and bench-folder location.

No benchmark is run and no peer library is needed: peers are simulated as missing.
Values only (no timing assertions). Runs in well under a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness, peers, runner  # noqa: E402
from mlx_snn import cli  # noqa: E402


def test_time_fn_counts_calls_and_reports_median_min():
    calls = []
    out = harness.time_fn(lambda: calls.append(1), reps=5, warmup=2)
    assert len(calls) == 7
    assert len(out["times_s"]) == 5
    assert out["min_s"] <= out["median_s"]
    assert out["median_s"] == sorted(out["times_s"])[2]
    assert isinstance(out["peak_memory_bytes"], int) and out["peak_memory_bytes"] >= 0


def test_time_fn_records_the_peak_of_its_own_case_only():
    import mlx.core as mx

    mx.eval(mx.zeros((1 << 22,)) + 1)  # 16 MiB before the case: not counted
    out = harness.time_fn(lambda: mx.eval(mx.zeros((1 << 18,)) + 1), reps=2, warmup=1)
    assert 1 << 20 <= out["peak_memory_bytes"] < 1 << 23


@pytest.mark.parametrize("reps, warmup", [(0, 1), (3, -1)])
def test_time_fn_rejects_bad_counts(reps, warmup):
    with pytest.raises(ValueError, match="reps"):
        harness.time_fn(lambda: None, reps=reps, warmup=warmup)


def test_measure_mlx_memory_and_unknown_method():
    import mlx.core as mx

    out = harness.measure(lambda: mx.eval(mx.zeros((256, 256)) + 1), memory="mlx", reps=2, warmup=1)
    assert out["memory_method"] == "mlx_peak_delta"
    assert isinstance(out["peak_bytes"], int) and out["peak_bytes"] >= 0
    with pytest.raises(ValueError, match="memory"):
        harness.measure(lambda: None, memory="gpu", reps=1, warmup=0)


def test_rss_peak_delta_is_none_or_nonnegative():
    peak, method = harness.rss_peak_delta(lambda: bytearray(1 << 20))
    assert method in ("rss_hwm_delta", "unavailable")
    assert peak is None or peak >= 0


def _timed(row, col, median, **kw):
    timing = {"median_s": median, "min_s": median, "times_s": [median], "peak_bytes": 2**20}
    return harness.record("W", row, col, timing=timing, **kw)


def test_record_schema_accepts_valid_and_rejects_invalid():
    rec = _timed("r", "ours", 0.1)
    harness.validate_record(rec)
    with pytest.raises(ValueError, match="status"):
        harness.record("W", "r", "c", status="fast", note="x")
    with pytest.raises(ValueError, match="needs a note"):
        harness.record("W", "r", "c", status="skipped")
    with pytest.raises(ValueError, match="needs a timing"):
        harness.record("W", "r", "c", status="ok")
    with pytest.raises(ValueError, match="median_s"):
        harness.validate_record({**rec, "median_s": -1.0})
    with pytest.raises(ValueError, match="peak_bytes"):
        harness.validate_record({**rec, "peak_bytes": 1.5})
    with pytest.raises(ValueError, match="row"):
        harness.validate_record({**rec, "row": 3})


def test_results_schema_and_save_roundtrip(tmp_path):
    import json

    recs = [_timed("r", "ours", 0.1), harness.record("W", "r", "peer", status="skipped", note="n")]
    payload = {"schema": harness.SCHEMA_VERSION, "records": recs, "table": "| a |"}
    path = harness.save("", payload, kind="cpu", out=tmp_path)
    assert path.name == f"cpu-{harness.host()}.json"
    loaded = json.loads(path.read_text())
    harness.validate_results(loaded)
    assert path.with_suffix(".md").read_text() == "| a |\n"
    with pytest.raises(ValueError, match="schema"):
        harness.validate_results({**loaded, "schema": 0})
    with pytest.raises(ValueError, match="records"):
        harness.validate_results({**loaded, "records": None})


def test_comparison_table_ratios_against_first_timed_column():
    recs = [
        harness.record("W", "T=8", "ours", status="skipped", note="missing"),
        _timed("T=8", "fast", 0.010),
        _timed("T=8", "slow", 0.030, note="hi"),
        _timed("T=9", "slow", 0.5, status="mismatch", note="2% differ"),
    ]
    table = harness.comparison_table(recs, columns=["ours", "fast", "slow"])
    lines = table.splitlines()
    assert lines[0] == "| case | ours | fast | slow |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| T=8 | skipped: missing | 10 ms, 1 MiB | 30 ms (3.00x), 1 MiB [hi] |"
    assert lines[3] == "| T=9 | — | — | 500 ms, 1 MiB MISMATCH: 2% differ |"


def test_tables_by_workload_and_formatters():
    recs = [_timed("r", "a", 1.5), {**_timed("r", "a", 0.2), "workload": "V"}]
    text = harness.tables_by_workload(recs)
    assert text.index("### W") < text.index("### V")
    assert harness.fmt_time(1.5) == "1.50 s"
    assert harness.fmt_time(0.0123) == "12.3 ms"
    assert harness.fmt_bytes(None) == "n/a"
    assert harness.fmt_bytes(3 * 2**30) == "3.00 GiB"


def test_missing_peer_is_none_with_install_note(monkeypatch):
    def refuse(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(peers, "_import", refuse)
    assert peers.load("snntorch") is None
    note = peers.missing_note("snntorch")
    assert "snnTorch unavailable" in note and "bench/peers.py install" in note
    info = peers.status()
    assert set(info) == set(peers.NAMES)
    assert not any(v["available"] for v in info.values())
    with pytest.raises(ValueError, match="peer name"):
        peers.load("tensorflow")


def test_install_dry_run_commands(monkeypatch):
    monkeypatch.setattr(peers, "load", lambda name: None)
    cmds = [" ".join(c) for c in peers.install(["spikingjelly", "mlxsnn"], dry_run=True)]
    assert cmds[0].endswith("pip install torch==2.13.0")  # spikingjelly needs torch
    assert any("--no-deps spikingjelly loguru tqdm" in c for c in cmds)
    assert any("--target" in c and "mlx-snn==0.5.0" in c and "--no-deps" in c for c in cmds)


def test_run_row_skips_missing_peer_and_guards(monkeypatch):
    import numpy as np

    monkeypatch.setattr(harness, "rss_peak_delta", lambda fn: (fn(), (None, "unavailable"))[1])
    ref = runner.Impl(lambda: None, lambda: (np.ones(3), np.ones(3)), "rss")
    bad = runner.Impl(lambda: None, lambda: (np.zeros(3), np.ones(3)), "rss")
    recs = runner.run_row(
        "W",
        "r",
        {
            "ours": lambda: ref,
            "peer": lambda: peers.missing_note("snntorch"),
            "bad": lambda: bad,
            "boom": lambda: 1 / 0,
        },
        references={"immediate": "ours"},
        guard=lambda i, r: (bool((i.outputs()[0] == r.outputs()[0]).all()), "differs"),
        reps=1,
        warmup=0,
    )
    by = {r["col"]: r for r in recs}
    assert by["ours"]["status"] == "ok"
    assert by["peer"]["status"] == "skipped" and "unavailable" in by["peer"]["note"]
    assert by["bad"]["status"] == "mismatch" and "median_s" in by["bad"]
    assert by["boom"]["status"] == "error" and "ZeroDivisionError" in by["boom"]["note"]


def test_run_row_budget_skips_from_estimate():
    recs = runner.run_row(
        "W",
        "r",
        {"slow": lambda: pytest.fail("must not be built")},
        reps=3,
        warmup=1,
        budget_s=10.0,
        estimates={"slow": 5.0},
    )
    assert recs[0]["status"] == "skipped" and "budget" in recs[0]["note"]
    assert runner.extrapolate({"a": (16, 1.0)}, 64) == {"a": 4.0}


def test_time_estimates_follow_the_growth_measured_between_the_last_two_sizes():
    # a quadratic peer (snnTorch's step at long T) must be estimated quadratically
    scaling = runner.Scaling()
    for size, quad, lin, sub in ((256, 1.0, 1.0, 1.0), (1024, 16.0, 4.0, 2.0)):
        scaling.add(
            size, [{"col": c, "min_s": t} for c, t in (("q", quad), ("l", lin), ("s", sub))]
        )
    est = scaling.estimates(4096)["estimates"]
    assert est["q"] == pytest.approx(256.0)
    assert est["l"] == pytest.approx(16.0)
    assert est["s"] == pytest.approx(8.0)  # never below linear


def _bench_args(argv):
    parser = argparse.ArgumentParser()
    cli.add_bench_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_cli_bench_arguments_forwarded():
    args = _bench_args(
        ["--quick", "--only", "lif_layer", "amos_layer", "--out", "r", "--reps", "2"]
    )
    assert cli.bench_argv(args) == [
        "--quick",
        "--only",
        "lif_layer",
        "amos_layer",
        "--out",
        "r",
        "--reps",
        "2",
    ]
    assert cli.bench_argv(_bench_args([])) == []
    assert cli.bench_argv(_bench_args(["--install-peers"])) == ["--install-peers"]


def test_cli_rejects_bad_reps(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--reps", "0"])
    assert "--reps must be >= 1" in capsys.readouterr().err


def test_suite_parser_rejects_unknown_workload(capsys):
    from bench import suite

    with pytest.raises(SystemExit):
        suite.parser().parse_args(["--only", "nope"])
    assert "invalid choice" in capsys.readouterr().err
    assert suite.parser().parse_args(["--only", "lif_layer"]).only == ["lif_layer"]


def test_find_bench_dir_in_checkout_and_clear_error(tmp_path, monkeypatch):
    assert cli.find_bench_dir() == ROOT / "bench"
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site" / "mlx_snn" / "cli.py"))
    with pytest.raises(FileNotFoundError, match="source checkout"):
        cli.find_bench_dir(cwd=tmp_path)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__main__.py").write_text("")
    assert cli.find_bench_dir(cwd=tmp_path) == tmp_path / "bench"


def test_cli_bench_runs_python_m_bench_from_the_checkout_root(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, cwd: calls.append((cmd, cwd)) or 0)
    # from the checkout root, as the docs say: found there also when the package is
    # installed without -e (then its own folder has no bench/ beside it)
    monkeypatch.chdir(ROOT)
    assert cli.main(["bench", "--quick", "--only", "lif_layer", "--out", str(tmp_path / "r")]) == 0
    assert cli.main(["bench", "--peers"]) == 0
    (cmd, cwd), (peers_cmd, _) = calls
    assert cwd == ROOT
    out = str(tmp_path / "r")
    assert cmd == [sys.executable, "-m", "bench", "--quick", "--only", "lif_layer", "--out", out]
    assert peers_cmd == [sys.executable, "-m", "bench.peers", "status"]


def test_cli_bench_help_says_what_it_needs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "needs a source checkout" in out and "'.[bench]'" in out and "python -m bench" in out


def test_python_m_bench_runs_the_suite():
    import subprocess

    res = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0 and "usage: python -m bench" in res.stdout


@pytest.mark.parametrize("method", ["toeplitz", "matrix"])
@pytest.mark.parametrize("kind", ["scalar", "feature", "varying"])
@pytest.mark.parametrize("T", [7, 40, 1024])
def test_bench_only_scan_methods_match_reference(method, kind, T):
    """bench/scan_methods.py's block scans (forward) against the float64 loop, 1e-4."""
    import mlx.core as mx
    import numpy as np
    import reference as ref
    from conftest import assert_close

    from bench import scan_methods

    if method == "toeplitz" and kind == "varying":
        pytest.skip("toeplitz needs a decay constant over time")
    rng = np.random.default_rng(T)
    a = {
        "scalar": np.float32(0.999),
        "feature": rng.uniform(0.0, 0.999, size=(4,)).astype(np.float32),
        "varying": rng.uniform(-1.0, 1.0, size=(T, 3, 4)).astype(np.float32),
    }[kind]
    b = rng.normal(size=(T, 3, 4)).astype(np.float32)
    got = scan_methods.scan(mx.array(a), mx.array(b), method)
    assert_close(got, ref.linear_scan(a, b), 1e-4, method)


def test_cli_bench_without_checkout_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site" / "mlx_snn" / "cli.py"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "--quick"]) == 2
    assert "source checkout" in capsys.readouterr().err


def test_cuda_compare_peak_bandwidth_table():
    from bench import cuda_compare

    assert cuda_compare.peak_bandwidth("NVIDIA H200") == 4.8e12
    assert cuda_compare.peak_bandwidth("NVIDIA H100 80GB HBM3") == 3.35e12
    assert cuda_compare.peak_bandwidth("NVIDIA A100-SXM4-80GB") == 2.039e12
    assert cuda_compare.peak_bandwidth("GeForce GTX 1080") is None


def test_run_row_memory_budget_and_scaling_estimates():
    recs = runner.run_row(
        "W",
        "r",
        {"big": lambda: pytest.fail("must not be built")},
        mem_estimates={"big": 8 * 2**30},
        mem_budget_bytes=2**30,
    )
    assert recs[0]["status"] == "skipped" and "GiB" in recs[0]["note"]
    scaling = runner.Scaling()
    scaling.add(16, [_timed("r", "a", 0.5)])
    est = scaling.estimates(64)
    assert est["estimates"] == {"a": 2.0}
    assert est["mem_estimates"] == {"a": 4 * 2**20}


def test_suite_parser_accepts_every_forwarded_option():
    from bench import suite

    args = _bench_args(
        ["--quick", "--only", "lif_layer", "--out", "o", "--reps", "2", "--note", "n"]
    )
    parsed = suite.parser().parse_args(cli.bench_argv(args))
    assert (parsed.quick, parsed.only, str(parsed.out), parsed.reps, parsed.note) == (
        True,
        ["lif_layer"],
        "o",
        2,
        "n",
    )


def test_cuda_compare_refuses_without_gpu(monkeypatch, capsys):
    from bench import cuda_compare

    monkeypatch.setattr(cuda_compare, "gpu_name", lambda: None)
    assert cuda_compare.main([]) == 2
    assert "needs an NVIDIA GPU" in capsys.readouterr().err
