"""The SSE load benchmark in its ``--quick`` sizes, so it cannot rot: it must run, and every
client must see every event (the benchmark exits non-zero otherwise). No speed is asserted;
the figures are the benchmark's business."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_sse.py"


def test_quick_sse_benchmark_runs_and_every_client_sees_every_event(
    pg_admin_url: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(tmp_path),
         "--pg-admin-url", pg_admin_url, "--deadline", "120"],
        cwd=BENCH.parent, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "sse.quick.json").read_text())
    result = doc["result"]
    assert result["valid"] is True
    assert result["clients_complete"] == result["sizes"]["clients"]
    assert result["clients_with_every_event"] == result["sizes"]["clients"]
    assert result["terminal_events_expected_per_client"] == result["sizes"]["operations"]
    assert result["lag_seconds"]["max"] >= result["lag_seconds"]["p50"] >= 0
    assert (tmp_path / "sse.quick.md").read_text().startswith("# SSE load benchmark")
