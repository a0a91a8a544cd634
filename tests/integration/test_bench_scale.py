"""The scale benchmark still runs (a tiny --quick run on both databases), so it cannot rot
unnoticed: it fills both sizes, times the claim through the store and writes its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scale.py"


@pytest.mark.postgres
def test_bench_scale_quick_run(pg_admin_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--dialect", "postgres", "sqlite",
         "--ready", "1000", "--finished", "3000", "--base-ready", "1000",
         "--claims", "3", "--samples", "2",
         "--pg-admin-url", pg_admin_url, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads((tmp_path / "scale.quick.json").read_text())
    assert doc["uptime_before"]
    assert doc["uptime_after"]
    for dialect, variants in (("postgres", {"shipped", "jit_off"}), ("sqlite", {"shipped"})):
        base, big = doc["results"][dialect]["sizes"]
        assert (base["label"], base["finished"]) == ("baseline", 0)
        assert (big["label"], big["ready"], big["finished"]) == ("large", 1000, 3000)
        # The fill made what it says: each finished operation with its attempt and events.
        assert big["rows"]["longops_operations"] >= 4000
        assert big["rows"]["longops_attempts"] >= 3000
        assert big["rows"]["longops_operation_events"] >= 6000
        assert set(big["figures"]) == variants
        for size in (base, big):
            for figures in size["figures"].values():
                for key in ("claim_1", "claim_16", "finish_1", "enqueue_1"):
                    assert figures[key]["p95_ms"] >= figures[key]["p50_ms"] > 0
        assert set(doc["results"][dialect]["ratios"]) == variants
    assert (tmp_path / "scale.quick.md").read_text().startswith("# Scale")
    explain = (tmp_path / "explain-claim-scale-postgres.quick.txt").read_text()
    assert "## large: 1,000 ready, 3,000 finished" in explain
