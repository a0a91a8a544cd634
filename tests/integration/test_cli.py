"""The ``longops`` command, run as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from procs import wait_for

APP = "longops.demo.app:app"


def longops(
    *args: str, db: str, app: str | None = APP, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "longops.cli.main", "--database-url", db]
    if app:
        cmd += ["--app", app]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database without schema of the same dialect as ``db_url``."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'cli.db'}"
    return str(request.getfixturevalue("empty_pg_url"))


def test_db_commands(fresh_url: str) -> None:
    status = longops("db", "status", db=fresh_url)
    assert status.returncode == 1
    assert "0001_initial: pending" in status.stdout
    upgrade = longops("db", "upgrade", db=fresh_url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "applied 0001_initial, 0002_security" in upgrade.stdout
    assert "up to date" in longops("db", "upgrade", db=fresh_url).stdout
    done = longops("db", "status", "--json", db=fresh_url)
    assert done.returncode == 0
    assert json.loads(done.stdout) == [
        {"version": 1, "name": "initial", "state": "applied"},
        {"version": 2, "name": "security", "state": "applied"},
    ]
    sql = longops("db", "sql", db=fresh_url)
    assert "CREATE TABLE longops_operations" in sql.stdout


def test_enqueue_show_act_and_list(db_url: str) -> None:
    made = longops(
        "enqueue", "demo.render_report", "--kwargs", '{"pages": 2}', "--on-hold", db=db_url
    )
    assert made.returncode == 0, made.stderr
    op_id = made.stdout.strip().splitlines()[-1]
    assert uuid.UUID(op_id)

    shown = json.loads(longops("ops", "show", op_id, "--json", db=db_url).stdout)
    assert shown["status"] == "on_hold"
    assert shown["kwargs"] == {"pages": 2}
    assert shown["attempts"] == []

    assert "Ready" in longops("ops", "ready", op_id, "--user", "alice", db=db_url).stdout
    assert "On Hold" in longops("ops", "hold", op_id, db=db_url).stdout
    assert "Cancelled" in longops("ops", "cancel", op_id, "--reason", "test", db=db_url).stdout
    assert "Ready" in longops("ops", "restart", op_id, db=db_url).stdout
    listed = json.loads(longops("ops", "list", "--status", "ready", "--json", db=db_url).stdout)
    assert [o["id"] for o in listed] == [op_id]
    assert listed[0]["user"] is None or listed[0]["user"] == "alice"
    as_json = json.loads(longops("enqueue", "demo.clean_up", "--json", db=db_url).stdout)
    assert as_json["status"] == "ready"
    assert as_json["task"] == "demo.clean_up"
    assert longops("ops", "hold", op_id, db=db_url).returncode == 0
    assert "deleted" in longops("ops", "delete", op_id, db=db_url).stdout
    gone = longops("ops", "show", op_id, db=db_url)
    assert gone.returncode == 1
    assert "not found" in gone.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["enqueue", "demo.render_report", "--args", "[1, 2, 3, 4]"], "args"),
        (["enqueue", "demo.render_report", "--args", "{not json"], "args"),
        (["enqueue", "demo.render_report", "--max-attempts", "0"], "max_attempts"),
        (["enqueue", "demo.render_report", "--rerun-delay", "4000"], "rerun_delay"),
        (["enqueue", "no.such.task"], "task"),
        (["enqueue", "demo.clean_up", "--recurrence", "whenever"], "recurrence"),
        (["enqueue", "demo.clean_up", "--company", "ACME"], "company"),
        (["ops", "list", "--status", "sleeping"], "status"),
        (["ops", "show", "not-a-uuid"], "id"),
    ],
)
def test_bad_input_exits_2_naming_the_field(db_url: str, args: list[str], field: str) -> None:
    result = longops(*args, db=db_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{field}:" in result.stderr
    listed = json.loads(longops("ops", "list", "--json", db=db_url).stdout)
    assert listed == []


def test_refused_action_exits_1(db_url: str) -> None:
    op_id = longops("enqueue", "demo.clean_up", db=db_url).stdout.strip().splitlines()[-1]
    result = longops("ops", "ready", op_id, db=db_url)
    assert result.returncode == 1
    assert "cannot set ready" in result.stderr
    assert "ready" in result.stderr


def test_worker_runs_operations_and_drains_on_sigterm(db_url: str) -> None:
    env = dict(os.environ)
    worker = subprocess.Popen(
        [sys.executable, "-m", "longops.cli.main", "--app", APP, "--database-url", db_url,
         "worker", "--concurrency", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        op_id = longops("enqueue", "demo.post_invoices", "--args", '["B-1", 1]', db=db_url)
        assert op_id.returncode == 2
        assert "category:" in op_id.stderr
        assert longops("categories", "set", "POSTING", db=db_url).returncode == 0
        made = longops("enqueue", "demo.post_invoices", "--args", '["B-1", 1]', db=db_url)
        oid = made.stdout.strip().splitlines()[-1]

        def finished() -> bool:
            shown = json.loads(longops("ops", "show", oid, "--json", db=db_url).stdout)
            return bool(shown["status"] == "finished")

        wait_for(finished, timeout=60, interval=0.2, what="operation finished")
        shown = json.loads(longops("ops", "show", oid, "--json", db=db_url).stdout)
        assert shown["result"] == 1
        assert [a["outcome"] for a in shown["attempts"]] == ["success"]
        sessions = json.loads(longops("sessions", "list", "--active", "--json", db=db_url).stdout)
        assert len(sessions) == 1
        assert sessions[0]["concurrency"] == 2
        flaky = longops(
            "enqueue", "demo.sync_catalogue", "--kwargs", '{"fail_times": 1}', db=db_url
        )
        fid = flaky.stdout.strip().splitlines()[-1]

        def flaky_finished() -> bool:
            shown = json.loads(longops("ops", "show", fid, "--json", db=db_url).stdout)
            return bool(shown["status"] == "finished")

        wait_for(flaky_finished, timeout=60, interval=0.2, what="retried operation finished")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "attempt 1 failed with ConnectionError; retry at" in err
    assert "supplier timed out" not in err, "error text stays out of logs at info level"
    assert "draining" in err
    assert "stopped; 0 run(s) handed back" in err
    events = json.loads(longops("sessions", "events", "--json", db=db_url).stdout)
    assert [e["type"] for e in events][:3] == ["logoff", "drain_started", "logon"]


def test_worker_without_app_explains(db_url: str) -> None:
    result = longops("worker", db=db_url, app=None)
    assert result.returncode == 1
    assert "--app" in result.stderr


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "longops.cli.main", "demo", "--for", "90"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "All demo operations settled." in result.stdout
    assert "demo.sync_catalogue" in result.stdout
    # The flaky task needed its retries; the category batches ran in priority order.
    assert "synced" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if "demo.post_invoices" in line]
    assert lines
    assert all("Finished" in line for line in lines[-4:])


def test_operations_can_be_named_by_entry_number(db_url: str) -> None:
    longops("enqueue", "demo.clean_up", "--on-hold", db=db_url)
    shown = json.loads(longops("ops", "show", "1", "--json", db=db_url).stdout)
    assert shown["entry_no"] == 1
    assert shown["status"] == "on_hold"
    assert "Ready" in longops("ops", "ready", "1", db=db_url).stdout
    missing = longops("ops", "show", "99", db=db_url)
    assert missing.returncode == 1
    assert "entry number 99 not found" in missing.stderr


def test_companies_and_tasks_commands(db_url: str) -> None:
    added = longops("companies", "add", "CRONUS-UK", "--time-zone", "Europe/London", db=db_url)
    assert added.returncode == 0, added.stderr
    listed = json.loads(longops("companies", "list", "--json", db=db_url).stdout)
    assert {c["name"]: c["time_zone"] for c in listed} == {
        "CRONUS-UK": "Europe/London",
        "default": "UTC",
    }
    made = longops("enqueue", "demo.clean_up", "--company", "CRONUS-UK", "--json", db=db_url)
    assert json.loads(made.stdout)["company"] == "CRONUS-UK"
    bad = longops("companies", "add", "X", "--time-zone", "Mars/Olympus", db=db_url)
    assert bad.returncode == 2
    assert "time_zone:" in bad.stderr
    tasks = json.loads(longops("tasks", "--json", db=db_url).stdout)
    names = {t["name"] for t in tasks}
    assert {"demo.render_report", "demo.post_invoices", "demo.clean_up"} <= names


def test_missing_schema_and_bad_urls_are_explained(fresh_url: str, tmp_path: Path) -> None:
    no_schema = longops("ops", "list", db=fresh_url)
    assert no_schema.returncode == 1
    assert "longops db upgrade" in no_schema.stderr
    assert "Traceback" not in no_schema.stderr
    cases = [
        ("sqlite:/relative.db", 2, "database_url:"),
        ("mysql://host/db", 2, "database_url:"),
        (f"sqlite:///{tmp_path}/no/such/dir/x.db", 1, "cannot open SQLite database"),
        ("postgresql://root@127.0.0.1:1/x", 1, "cannot connect to PostgreSQL"),
    ]
    for url, code, text in cases:
        result = longops("ops", "list", db=url)
        assert result.returncode == code, (url, result.stderr)
        assert text in result.stderr
        assert "Traceback" not in result.stderr


def test_enqueue_without_an_app_says_so(db_url: str) -> None:
    result = longops("enqueue", "demo.clean_up", db=db_url, app=None)
    assert result.returncode == 1
    assert "--app" in result.stderr


def test_queues_pause_list_resume(db_url: str) -> None:
    assert longops("queues", "pause", "exports", db=db_url).returncode == 0
    listed = json.loads(longops("queues", "list", "--json", db=db_url).stdout)
    assert listed == {"paused": ["exports"]}
    assert longops("queues", "resume", "exports", db=db_url).returncode == 0
    assert "paused: none" in longops("queues", "list", db=db_url).stdout
    bad = longops("queues", "pause", "no spaces", db=db_url)
    assert bad.returncode == 2
    assert "queue:" in bad.stderr
