"""The peers benchmark's longops half still runs (``--quick --only longops``: no peer is
installed, nothing downloaded), and its exactly-once check catches a job run twice or never.
The peers' half runs only when ``benchmarks/bench_peers.py`` itself is run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_peers

BENCHMARKS = Path(bench_peers.__file__).parent


def write_marks(folder: Path, lines: list[str]) -> None:
    (folder / "123.txt").write_text("".join(f"{line}\n" for line in lines))


def test_marks_check_passes_only_when_every_job_ran_exactly_once(tmp_path: Path) -> None:
    write_marks(tmp_path, ["0 1.0 1.5", "1 1.0 1.25", "2 1.0 1.75"])
    assert bench_peers.Marks(tmp_path).started(0, 3) == {
        0: (1.0, 1.5),
        1: (1.0, 1.25),
        2: (1.0, 1.75),
    }
    write_marks(tmp_path, ["0 1.0 1.5", "1 1.0 1.25", "1 1.0 1.3", "2 1.0 1.75"])
    with pytest.raises(bench_peers.InvalidRunError, match="1 twice"):
        bench_peers.Marks(tmp_path).started(0, 3)
    write_marks(tmp_path, ["0 1.0 1.5", "2 1.0 1.75"])
    with pytest.raises(bench_peers.InvalidRunError, match="2 distinct ran"):
        bench_peers.Marks(tmp_path).started(0, 3)


def test_marks_read_incrementally_keep_a_half_written_line_for_later(tmp_path: Path) -> None:
    marks = bench_peers.Marks(tmp_path)
    path = tmp_path / "7.txt"
    path.write_text("0 1.0 1.5\n1 1.0")
    assert marks.poll() == 1
    with path.open("a") as f:
        f.write(" 1.25\n")
    assert marks.poll() == 2
    assert marks.started(0, 2)[1] == (1.0, 1.25)


@pytest.mark.slow
@pytest.mark.postgres
def test_bench_peers_quick_longops_half(pg_admin_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_peers.py"), "--quick", "--only", "longops",
         "--jobs", "60", "--pg-admin-url", pg_admin_url, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads((tmp_path / "peers.quick.json").read_text())
    assert doc["systems"] == ["longops"]
    figures = doc["results"]
    expected = {f.key for f in bench_peers.FIGURES}
    assert set(figures) == expected
    for key in expected:
        assert set(figures[key]) == {"longops"}
    for key in ("pg_drain_one", "pg_drain_recommended", "sqlite_drain"):
        drain = figures[key]["longops"]
        assert drain["verified"] == "60 jobs, each run exactly once"
        assert drain["jobs_per_s"] > 0
    assert figures["pg_drain_recommended"]["longops"]["workers"][-1] == "8"
    assert figures["pg_latency"]["longops"]["p50_ms"] > 0
    assert doc["ratios"] == []  # no peer ran
    assert (tmp_path / "peers.quick.md").read_text().startswith("# longops beside its")
