"""Every memory limit takes the same sizes (``worker.memory.parse_size``): the worker's
``--max-memory`` and ``--max-memory-per-child``, a task's ``max_memory_per_child`` (as text;
a whole number is bytes). A real worker process takes ``--max-memory-per-child 64MiB``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from apps.stress_app import stress_app_on
from longops import Longops, ValidationError
from procs import APPS


def test_a_task_takes_a_size_or_bytes() -> None:
    app = Longops()
    sized = app.registry.add(lambda: None, name="sized", max_memory_per_child="1.5GiB")
    assert sized.max_memory_per_child == 3 * 2**29
    decimal = app.registry.add(lambda: None, name="decimal", max_memory_per_child="800MB")
    assert decimal.max_memory_per_child == 800 * 10**6
    exact = app.registry.add(lambda: None, name="exact", max_memory_per_child=1)
    assert exact.max_memory_per_child == 1
    for bad in ("2 lots", "512", -1, 1.5, True):
        with pytest.raises(ValidationError) as caught:
            app.registry.add(lambda: None, name="bad", max_memory_per_child=bad)  # type: ignore[arg-type]
        assert caught.value.field == "max_memory_per_child"


def _worker(url: str, *options: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(APPS)}
    return subprocess.Popen(
        [sys.executable, "-m", "longops.cli.main", "--app", "stress_app:app",
         "--database-url", url, "worker", "--poll-interval", "0.2", *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("size", "rule"),
    [("2 lots", "must be a size such as 512MiB"), ("512", "must be at least 16MiB")],
)
def test_the_worker_refuses_a_bad_child_size_naming_the_option(
    tmp_path: Path, size: str, rule: str
) -> None:
    worker = _worker(f"sqlite:///{tmp_path / 'x.db'}", "--max-memory-per-child", size)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 2, stderr
    assert "--max-memory-per-child" in stderr
    assert rule in stderr


def test_the_worker_takes_a_child_size_with_units(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with stress_app_on(url):
        pass
    worker = _worker(url, "--max-memory-per-child", "64MiB", "--max-memory", "1G")
    try:
        assert worker.stderr is not None
        seen = ""
        for line in worker.stderr:  # until it announces itself (or ends: EOF)
            seen += line
            if "serving" in line:
                break
        assert "serving" in seen, seen
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    # It took the size (it served), and drained on the TERM sent as it announced itself.
    assert worker.returncode == 0
