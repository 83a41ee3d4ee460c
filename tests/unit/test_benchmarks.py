"""The benchmark scripts still run and write the JSON the paper reads (smoke runs; nothing here
is timed: the numbers are not checked, only that every implementation produced them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def test_training_step_benchmark_smoke_run(tmp_path):
    out = tmp_path / "step.json"
    r = _run(
        ["benchmarks/bench_training_step.py", "--cases", "100", "--impls", "spikeloc,tutorial",
         "--reps", "2", "--burst", "2", "--warmup", "0", "--settle-ms", "0", "--out", str(out)]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    rows = {row["impl"]: row for row in data["cases"]}
    assert set(rows) == {"spikeloc", "tutorial"}
    assert rows["spikeloc"]["ratio_vs_spikeloc"] == 1.0
    for row in rows.values():
        assert row["T"] == 100 and row["H"] == 30
        # 2 rounds x bursts of at most 2 (the benchmark shortens a burst when a step is slow)
        assert row["rounds"] == 2 and 2 <= row["reps"] <= 4
        assert row["median_ms"] > 0 and row["peak_mem_mb"] > 0 and row["first_step_s"] > 0
    assert data["threads"] == 2 and data["burst"] == 2


def test_training_step_benchmark_rejects_an_unknown_implementation(tmp_path):
    r = _run(["benchmarks/bench_training_step.py", "--impls", "spikeloc,brian2"])
    assert r.returncode == 2 and "unknown implementation 'brian2'" in r.stderr


def test_gpu_benchmark_script_runs_on_the_cpu(tmp_path):
    """``--device cpu`` exercises the GPU script's code paths (no CUDA timing)."""
    out = tmp_path / "gpu.json"
    r = _run(
        ["benchmarks/bench_gpu.py", "--device", "cpu", "--cases", "100", "--reps", "1",
         "--warmup", "0", "--impls", "spikeloc,spikeloc-reference", "--out", str(out)]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["cases"]
    assert [row["impl"] for row in rows] == ["spikeloc", "spikeloc-reference"]
    assert all(row["median_ms"] > 0 for row in rows)
