"""The pages benchmark still runs (a tiny --quick run), so it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_pages.py"


@pytest.mark.postgres
def test_bench_pages_quick_run(pg_admin_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--rows", "3000", "--requests", "2",
         "--pg-admin-url", pg_admin_url, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads((tmp_path / "pages.quick.json").read_text())
    assert doc["seed"]["rows"] == 3000
    assert sum(s["n"] for s in doc["seed"]["spread"]) == 3000
    for name in ("first_page", "filtered"):
        figures = doc["results"][name]
        assert figures["rows_on_page"] > 0
        assert figures["p95_ms"] >= figures["p50_ms"] > 0
        assert figures["queries"]["statements"] > 0
    assert (tmp_path / "pages.quick.md").read_text().startswith("# Job Queue Entries page")
