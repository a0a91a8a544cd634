"""Apps, rolling deploys and the schema guard, with real worker processes, on both
databases (issue 15): a worker claims only the tasks it has; an operation whose task no
live session has waits with ``no_worker_for_task`` and runs once a worker with it joins;
two apps share one database and queue; the schema guard refuses an older schema (exit
code and message), stops claiming on an incompatible newer one and keeps running on a
compatible one; apps are found by entry point without ``--app``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cli_inprocess import run_longops
from longops import Longops, Status
from longops.domain.apps import EXIT_SCHEMA_OLDER
from longops.domain.operation import Session
from longops.domain.waiting import WaitCode
from longops.store.migrate import load_migrations
from procs import APPS, stop_workers, wait_for

pytestmark = pytest.mark.slow

CODE_SCHEMA = max(m.version for m in load_migrations("sqlite"))


def start(
    db_url: str,
    log: Path,
    app: str | None,
    *,
    path: tuple[Path, ...] = (APPS,),
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A ``longops worker`` process; its log goes to ``log`` (read while it runs)."""
    environ = dict(os.environ)
    environ.pop("LONGOPS_APP", None)
    environ["PYTHONPATH"] = os.pathsep.join([*map(str, path), environ.get("PYTHONPATH", "")])
    environ.update(env or {})
    cmd = [sys.executable, "-m", "longops.cli.main", "--database-url", db_url]
    if app is not None:
        cmd += ["--app", app]
    cmd += [
        "worker", "--concurrency", "2", "--heartbeat-interval", "0.5",
        "--session-timeout", "5", "--grace-period", "5", "--poll-interval", "0.2",
        "--rescuer-interval", "0.5",
    ]  # fmt: skip
    with log.open("wb") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, env=environ, stdout=handle, stderr=subprocess.STDOUT)


def cli(db_url: str, *args: str, path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The command in this process unless it starts one (``serve``): these tests are about
    what it prints and its exit code."""
    environ = dict(os.environ)
    environ.pop("LONGOPS_APP", None)
    environ["PYTHONPATH"] = os.pathsep.join([*map(str, path), environ.get("PYTHONPATH", "")])
    return run_longops(["--database-url", db_url, *args], env=environ)


def sql(db_url: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    if db_url.startswith("postgresql"):
        with psycopg.connect(db_url) as conn:
            conn.execute(statement.replace("?", "%s"), params)
    else:
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(statement, params)
        conn.close()


def enqueuer(db_url: str, *tasks: str) -> Longops:
    """An app that knows the task names (new code that enqueues), running none of them."""
    app = Longops(db_url)
    for name in tasks:
        app.registry.add(lambda *a, **k: None, name=name)
    return app


def live(app: Longops, task: str) -> Session | None:
    for s in app.sessions.list_sessions(active_only=True):
        if s.tasks is not None and task in s.tasks:
            return s
    return None


def status(app: Longops, op_id: object) -> Status:
    return app.get(str(op_id)).status


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop_workers(started)


def test_rolling_deploy_old_worker_never_claims_the_new_task(
    db_url: str, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    app = enqueuer(db_url, "shop.greet", "shop.shout")
    procs.append(start(db_url, tmp_path / "v1.log", "shop_v1:app"))
    old = wait_for(lambda: live(app, "shop.greet"), timeout=60, what="the v1 worker")
    assert old.tasks == ("shop.greet",)
    assert old.code_version is not None
    assert "shop 1" in old.code_version
    assert old.schema_version == CODE_SCHEMA

    greets = [app.enqueue("shop.greet", f"g{i}").id for i in range(5)]
    shouts = [app.enqueue("shop.shout", f"s{i}").id for i in range(5)]
    wait_for(
        lambda: all(status(app, i) is Status.FINISHED for i in greets),
        timeout=60,
        what="v1 runs its own task",
    )
    # The old worker is idle with work ready: the new task's operations wait, and say why.
    for op_id in shouts:
        handle = app.get(str(op_id))
        assert handle.status is Status.READY
        reason = handle.wait_reason()
        assert reason is not None
        assert reason.code is WaitCode.NO_WORKER_FOR_TASK
        assert "shop.shout" in reason.message
    shown = cli(db_url, "ops", "show", str(shouts[0]))
    assert shown.returncode == 0, shown.stderr
    assert "no live worker session has task shop.shout" in " ".join(shown.stdout.split())

    procs.append(start(db_url, tmp_path / "v2.log", "shop_v2:app"))
    new = wait_for(lambda: live(app, "shop.shout"), timeout=60, what="the v2 worker")
    assert new.code_version is not None
    assert "shop 2" in new.code_version
    wait_for(
        lambda: all(status(app, i) is Status.FINISHED for i in shouts),
        timeout=60,
        what="the new task's operations finish once v2 joins",
    )
    for op_id in shouts:
        [attempt] = app.read_models.list_attempts("default", operation_id=op_id)
        assert attempt.attempt.session_id == new.id  # never the old worker
    # `apps list` says, per serving session, its code and the tasks it lacks.
    listed = cli(db_url, "apps", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [shop] = [a for a in json.loads(listed.stdout) if a["name"] == "shop"]
    by_session = {s["session"]: s for s in shop["serving"]}
    assert by_session[str(old.id)]["missing_tasks"] == ["shop.shout"]
    assert "shop 1" in by_session[str(old.id)]["code_version"]
    assert by_session[str(new.id)]["missing_tasks"] == []
    text = " ".join(cli(db_url, "apps", "list").stdout.split())
    assert f"{old.id} ({old.code_version}; lacks shop.shout)" in text
    assert f"{new.id} ({new.code_version}; all tasks)" in text
    assert app.service.count_operations().get(Status.ERROR, 0) == 0
    assert stop_workers(procs) == [0, 0]
    app.close()


def test_two_apps_share_one_database_and_queue(
    db_url: str, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    app = enqueuer(db_url, "shop.greet", "crm.sync")
    procs.append(start(db_url, tmp_path / "shop.log", "shop_v1:app"))
    procs.append(start(db_url, tmp_path / "crm.log", "crm_app:app"))
    shop = wait_for(lambda: live(app, "shop.greet"), timeout=60, what="the shop worker")
    crm = wait_for(lambda: live(app, "crm.sync"), timeout=60, what="the crm worker")
    ops = {}
    for i in range(20):
        ops[app.enqueue("shop.greet", f"g{i}").id] = shop.id
        ops[app.enqueue("crm.sync", i).id] = crm.id
    wait_for(
        lambda: all(status(app, i) is Status.FINISHED for i in ops),
        timeout=90,
        what="every operation finishes",
    )
    for op_id, session in ops.items():
        attempts = app.read_models.list_attempts("default", operation_id=op_id)
        assert [a.attempt.session_id for a in attempts] == [session]
    listed = cli(db_url, "apps", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {a["name"]: a for a in json.loads(listed.stdout)}
    assert by_name["shop"]["version"] == "1"
    assert [t["name"] for t in by_name["crm"]["tasks"]] == ["crm.long", "crm.sync"]
    assert by_name["shop"]["served_by"] == [str(shop.id)]
    assert by_name["crm"]["served_by"] == [str(crm.id)]
    sessions = cli(db_url, "sessions", "list", "--active")
    assert "crm 3.1" in sessions.stdout
    assert f"schema {CODE_SCHEMA}" in sessions.stdout
    assert stop_workers(procs) == [0, 0]
    app.close()


def test_worker_refuses_an_older_schema(db_url: str, tmp_path: Path) -> None:
    # The newest migration "not applied": the schema is one version older than the code.
    sql(db_url, "DELETE FROM longops_migrations WHERE version = ?", (CODE_SCHEMA,))
    log = tmp_path / "old.log"
    proc = start(db_url, log, "shop_v1:app")
    assert proc.wait(timeout=60) == EXIT_SCHEMA_OLDER
    text = " ".join(log.read_text().split())
    assert f"at version {CODE_SCHEMA - 1}" in text
    assert f"needs version {CODE_SCHEMA}" in text
    assert "longops db upgrade" in text
    assert "serving" not in text  # refused before its start banner
    served = cli(db_url, "--app", "shop_v1:app", "serve", "--port", "1", path=(APPS,))
    assert served.returncode == EXIT_SCHEMA_OLDER
    assert "needs version" in served.stderr
    assert "longops on http" not in served.stderr  # refused before its start banner
    app = Longops(db_url)
    assert app.sessions.list_sessions() == []  # nothing started
    app.close()


def test_schema_guard_on_a_newer_schema(
    db_url: str, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    app = enqueuer(db_url, "shop.greet")
    log = tmp_path / "w.log"
    procs.append(start(db_url, log, "shop_v1:app", env={"LONGOPS_SCHEMA_CHECK_INTERVAL": "0.2"}))
    wait_for(lambda: live(app, "shop.greet"), timeout=60, what="the worker")
    future = CODE_SCHEMA + 1

    def logged(text: str) -> bool:
        return text in " ".join(log.read_text().split())

    # A newer migration declared compatible (expand): the older code keeps running.
    sql(
        db_url,
        "INSERT INTO longops_migrations (version, name, checksum, flags) VALUES (?, ?, ?, ?)",
        (future, "future_expand", "x", "compatible,online"),
    )
    wait_for(lambda: logged("declared compatible with older code"), timeout=30, what="guard")
    first = app.enqueue("shop.greet", "a").id
    wait_for(lambda: status(app, first) is Status.FINISHED, timeout=30, what="still claims")

    # The same migration not compatible (contract): the older code stops claiming.
    sql(db_url, "UPDATE longops_migrations SET flags = NULL WHERE version = ?", (future,))
    wait_for(lambda: logged("not declared compatible"), timeout=30, what="guard stops")
    second = app.enqueue("shop.greet", "b").id
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert status(app, second) is Status.READY  # not claimed while it is there
        time.sleep(0.1)
    # Not only in its log: the session, `sessions list` and the wait reason say why.
    stopped = wait_for(
        lambda: (s := live(app, "shop.greet")) and s.claim_stopped and s,
        timeout=30,
        what="the session records that it stopped claiming",
    )
    assert "not declared compatible" in stopped.claim_stopped
    reason = app.get(str(second)).wait_reason()
    assert reason is not None
    assert reason.code is WaitCode.NO_WORKER
    assert "stopped claiming" in reason.message
    assert "not declared compatible" in reason.message
    assert "stopped claiming" in cli(db_url, "sessions", "list", "--active").stdout

    # Gone again (rolled back): it claims again.
    sql(db_url, "DELETE FROM longops_migrations WHERE version = ?", (future,))
    wait_for(lambda: status(app, second) is Status.FINISHED, timeout=30, what="claims again")
    assert logged("claiming again")
    wait_for(
        lambda: (s := live(app, "shop.greet")) and s.claim_stopped is None,
        timeout=30,
        what="the session records that it claims again",
    )
    assert stop_workers(procs) == [0]
    app.close()


TINY_APP = """
from longops import Longops

app = Longops()


@app.task(name="tiny.echo")
def echo(text: str) -> str:
    return text
"""


def test_worker_finds_an_app_by_entry_point(
    db_url: str, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    site = tmp_path / "site"
    (site / "tinyapp").mkdir(parents=True)
    (site / "tinyapp" / "__init__.py").write_text(TINY_APP)
    info = site / "tinyapp-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyapp\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[longops.apps]\ntiny = tinyapp:app\n")
    (info / "RECORD").write_text("")

    app = enqueuer(db_url, "tiny.echo")
    procs.append(start(db_url, tmp_path / "tiny.log", None, path=(site,)))
    session = wait_for(lambda: live(app, "tiny.echo"), timeout=60, what="the discovered app")
    assert session.code_version is not None
    assert "tiny 1.2.3" in session.code_version
    op = app.enqueue("tiny.echo", "found")
    assert op.wait(timeout=60).status is Status.FINISHED
    [recorded] = [a for a in app.apps.list_apps() if a.name == "tiny"]
    assert recorded.version == "1.2.3"
    assert [t.name for t in recorded.tasks] == ["tiny.echo"]
    assert recorded.served_by == (str(session.id),)
    assert stop_workers(procs) == [0]
    app.close()
