"""A smoke run of `make bench` (small counts): every figure comes with its baseline.

The soak (P7) runs for 18 s here instead of ten minutes: long enough for
retention to prune every kind of row (its check says so), too short for its
slopes to mean anything, so only their presence is checked.

Speed is judged by the benchmark's own report, never by a timed test: this
checks that the harness runs end to end and that the correctness checks it
makes along the way (every callback stored, drain in order) hold.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devtools.stack import ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_benchmark_smoke_run_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    with capsys.disabled():
        print("\n" + result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    figures = [r for r in report["results"] if "value" in r]
    assert {r["id"] for r in figures} == {"P1", "P2", "P3", "P4", "P5", "P6", "P7"}
    # P1 is explained by its floors, measured in the same run: the bare POST and
    # the checks on the same server, and each store with no HTTP in front.
    explaining = [r for r in figures if r["compare"] == "ratio"]
    floors = [r["measure"] for r in explaining if r["id"] == "P1"]
    assert len(floors) == 4 and all(m.startswith("floor:") for m in floors)
    # P4 by the same drain and posts per second of the benchmark's own CPU.
    assert [r["unit"] for r in explaining if r["id"] == "P4"] == ["msg/CPU-s"]
    for figure in figures:
        # A slope (the soak's RSS and store over time) may be zero or fall.
        if not figure["unit"].endswith("/min"):
            assert figure["value"] > 0, figure
        if figure["compare"] != "value<=" or figure["unit"] != "MB":
            assert figure["baseline"] > 0, figure
    # The soak ran once, and sampled the worker and the store all along.
    soak = [r for r in figures if r["id"] == "P7"]
    assert all(r["runs"] == 1 for r in soak)
    samples = soak[0]["samples"]
    assert len(samples) > 10 and all(s["rss_mb"] > 0 for s in samples)
    checks = [r for r in report["results"] if "value" not in r]
    assert checks and all(r["ok"] for r in checks), checks
