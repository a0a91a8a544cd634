"""The ``longops`` command: in this process where it is about what a command prints and its
exit code (``cli_inprocess``), as a real process for the worker, the demo, the entry point
with standard input, and a refused action's exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cli_inprocess import run_longops
from procs import wait_for

APP = "longops.demo.app:app"


def longops(
    *args: str, db: str, app: str | None = APP, timeout: float = 60, process: bool = False
) -> subprocess.CompletedProcess[str]:
    cmd = ["--database-url", db]
    if app:
        cmd += ["--app", app]
    return run_longops([*cmd, *args], timeout=timeout, process=process)


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
    assert "applied 0001_initial, 0002_tracking, 0003_security" in upgrade.stdout
    assert "up to date" in longops("db", "upgrade", db=fresh_url).stdout
    done = longops("db", "status", "--json", db=fresh_url)
    assert done.returncode == 0
    states = json.loads(done.stdout)
    assert states[0] == {"version": 1, "name": "initial", "state": "applied"}
    assert {s["state"] for s in states} == {"applied"}
    assert len(states) >= 2
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
    result = longops("ops", "ready", op_id, db=db_url, process=True)
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
        [sys.executable, "-m", "longops.cli.main", "demo", "--terminal", "--for", "90"],
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


# -- users, permission sets, tokens, audit ---------------------------------------------------------
def test_users_permission_sets_and_acting_as_a_user(db_url: str) -> None:
    nobody = longops("users", "list", db=db_url)
    assert (nobody.returncode, nobody.stdout) == (0, "")
    assert "no users yet" in nobody.stderr  # said, not an empty screen
    assert json.loads(longops("users", "list", "--json", db=db_url).stdout) == []
    assert longops("companies", "add", "CRONUS", db=db_url).returncode == 0
    added = longops(
        "users", "add", "alice", "--company", "CRONUS", "--permission-set", "JOBQUEUE-USER",
        "--company", "default", "--permission-set", "JOBQUEUE-VIEW", db=db_url,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "JOBQUEUE-USER in CRONUS" in added.stdout
    assert longops("users", "add", "root", "--permission-set", "SUPER", db=db_url).returncode == 0
    users = json.loads(longops("users", "list", "--json", db=db_url).stdout)
    assert {u["name"]: u["super"] for u in users} == {"alice": False, "root": True}

    mine = longops("--as", "alice", "enqueue", "demo.clean_up", "--company", "CRONUS", db=db_url)
    assert mine.returncode == 0, mine.stderr
    op_id = mine.stdout.strip().splitlines()[-1]
    theirs = longops("enqueue", "demo.clean_up", "--company", "CRONUS", "--on-hold", db=db_url)
    their_id = theirs.stdout.strip().splitlines()[-1]

    shown = json.loads(longops("--as", "alice", "ops", "show", op_id, "--json", db=db_url).stdout)
    assert shown["user"] == "alice"
    assert "On Hold" in longops("--as", "alice", "ops", "hold", op_id, db=db_url).stdout
    refused = longops("--as", "alice", "ops", "ready", their_id, db=db_url)
    assert refused.returncode == 1
    assert "alice may not set ready (operation" in refused.stderr
    assert "needs JOBQUEUE-ADMIN in CRONUS, or SUPER" in refused.stderr
    assert "Traceback" not in refused.stderr
    viewer = longops("--as", "alice", "enqueue", "demo.clean_up", db=db_url)  # VIEW in default
    assert viewer.returncode == 1
    assert "alice may not enqueue an operation (company default)" in viewer.stderr
    hidden = longops("--as", "alice", "companies", "list", "--json", db=db_url)
    assert {c["name"] for c in json.loads(hidden.stdout)} == {"CRONUS", "default"}
    denied = longops("--as", "alice", "users", "list", db=db_url)
    assert denied.returncode == 1
    assert "needs SUPER" in denied.stderr
    assert longops("--as", "nobody", "ops", "list", db=db_url).returncode == 1

    listed = longops("--as", "alice", "ops", "list", db=db_url).stdout
    assert "alice" in listed
    assert longops("users", "disable", "alice", db=db_url).returncode == 0
    flagged = json.loads(longops("ops", "list", "--json", db=db_url).stdout)
    assert {o["id"]: o["user_inactive"] for o in flagged}[op_id] is True
    assert "(inactive)" in longops("ops", "list", db=db_url).stdout
    gone = longops("--as", "alice", "ops", "list", db=db_url)
    assert gone.returncode == 1
    assert "disabled" in gone.stderr


def test_root_help_says_who_acts(db_url: str) -> None:
    shown = longops("--help", db=db_url)
    assert "--as" in shown.stdout
    assert "local SUPER actor" in " ".join(shown.stdout.split())


def test_tokens_are_shown_once_and_revocable(db_url: str) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "longops.cli.main", "--database-url", db_url, "users", "add",
         "alice", "--company", "default", "--permission-set", "JOBQUEUE-ADMIN",
         "--password-stdin"],
        input="a long enough password\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = longops(
        "users", "token", "create", "alice", "--name", "ci", "--expires", "7d", db=db_url
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("lo_")
    listed = longops("--token", token, "ops", "list", "--json", db=db_url)
    assert listed.returncode == 0, listed.stderr
    tokens = json.loads(longops("users", "token", "list", "alice", "--json", db=db_url).stdout)
    assert [(t["name"], t["revoked_at"]) for t in tokens] == [("ci", None)]
    assert token not in json.dumps(tokens)
    assert longops("users", "token", "revoke", "alice", "ci", db=db_url).returncode == 0
    refused = longops("--token", token, "ops", "list", db=db_url)
    assert refused.returncode == 1
    assert "unknown, revoked or expired" in refused.stderr
    audit = json.loads(longops("audit", "list", "--json", db=db_url).stdout)
    actions = [e["action"] for e in audit]
    assert actions[:2] == ["revoke_token", "create_token"]
    # users add with a permission set records the grant in its company after the user.
    assert actions[2:4] == ["grant_permission", "add_user"]
    assert {e["front_end"] for e in audit} == {"cli"}
    assert "Audit log" in longops("audit", "list", db=db_url).stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["users", "add", "bob", "--company", "default"], "company"),
        (["users", "add", "bob", "--permission-set", "JOBQUEUE-USER"], "company"),
        (["users", "add", "bob", "--company", "default", "--permission-set", "BOSS"],
         "permission_set"),
        (["users", "add", "bob", "--company", "nowhere", "--permission-set", "JOBQUEUE-USER"],
         "company"),
        (["users", "token", "create", "known", "--expires", "soon"], "expires"),
        (["companies", "add", "X", "--max-in-process", "0"], "max_in_process"),
        (["worker", "--company", "nowhere"], "company"),
        (["worker", "--log-class", "Secret"], "log_class"),
        (["audit", "list", "--limit", "0"], "limit"),
    ],
)  # fmt: skip
def test_bad_security_input_exits_2_naming_the_field(
    db_url: str, args: list[str], field: str
) -> None:
    assert longops("users", "add", "known", db=db_url).returncode == 0
    result = longops(*args, db=db_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{field}:" in result.stderr
    users = json.loads(longops("users", "list", "--json", db=db_url).stdout)
    assert [u["name"] for u in users] == ["known"]


def test_export_forget_and_companies_disable(db_url: str) -> None:
    added = longops("companies", "add", "CRONUS", "--max-in-process", "3", db=db_url)
    assert "at most 3 in process" in added.stdout
    assert "max 3 in process" in longops("companies", "list", db=db_url).stdout
    longops("users", "add", "alice", "-c", "CRONUS", "-p", "JOBQUEUE-USER", db=db_url)
    op_id = (
        longops("--as", "alice", "enqueue", "demo.clean_up", "-c", "CRONUS", db=db_url)
        .stdout.strip()
        .splitlines()[-1]
    )
    exported = json.loads(longops("users", "export", "alice", db=db_url).stdout)
    assert exported["user"]["name"] == "alice"
    assert [o["id"] for o in exported["operations"]] == [op_id]
    forgotten = longops("users", "forget", "alice", db=db_url)
    assert forgotten.returncode == 0, forgotten.stderr
    pseudonym = forgotten.stdout.strip().split()[-1]
    assert pseudonym.startswith("forgotten-")
    shown = json.loads(longops("ops", "show", op_id, "--json", db=db_url).stdout)
    assert (shown["user"], shown["user_inactive"]) == (pseudonym, True)
    assert longops("users", "export", "alice", db=db_url).returncode == 1
    assert longops("companies", "disable", "CRONUS", db=db_url).returncode == 0
    refused = longops("enqueue", "demo.clean_up", "-c", "CRONUS", db=db_url)
    assert refused.returncode == 2
    assert "company: is disabled" in refused.stderr
    assert "(disabled)" in longops("companies", "list", db=db_url).stdout


def test_worker_needs_super(db_url: str) -> None:
    longops("users", "add", "alice", "-c", "default", "-p", "JOBQUEUE-ADMIN", db=db_url)
    result = longops("--as", "alice", "worker", db=db_url)
    assert result.returncode == 1
    assert "alice may not run a worker session: needs SUPER" in result.stderr


def test_the_installed_entry_point_runs_and_exits_with_the_commands_code(fresh_url: str) -> None:
    # The console script pip installs beside the interpreter (.venv/bin/longops), a process.
    script = Path(sys.executable).with_name("longops")
    shown = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "local SUPER actor" in " ".join(shown.stdout.split())
    pending = subprocess.run(
        [str(script), "--database-url", fresh_url, "db", "status"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert pending.returncode == 1  # not every migration applied
    assert "longops db upgrade" in pending.stderr
    refused = subprocess.run(
        [str(script), "--database-url", fresh_url, "--as", "a", "--token", "b", "ops", "list"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "error: as: give --as or --token, not both" in refused.stderr
