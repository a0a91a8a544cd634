"""Data classification: the registry covers the real schema of both databases exactly, and
task arguments, results and error text never reach the logs at the default level."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longops import Longops, Status
from longops.domain.classification import (
    COLUMNS,
    LOGGED_BY_DEFAULT,
    DataClass,
    classify,
    loggable,
)
from longops.store.base import Store
from longops.worker.logs import RedactingFilter
from procs import APPS, wait_for


def schema_columns(store: Store) -> set[str]:
    found: set[str] = set()
    with store._read() as cur:  # type: ignore[attr-defined]
        if store.dialect == "sqlite":
            cur.execute(
                # Views too, as PostgreSQL's information_schema lists them.
                "SELECT name FROM sqlite_master "
                "WHERE type IN ('table', 'view') AND name LIKE 'longops_%'"
            )
            for table in [r["name"] for r in cur.fetchall()]:
                cur.execute(f"PRAGMA table_info({table})")
                found |= {f"{table}.{r['name']}" for r in cur.fetchall()}
        else:
            cur.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name LIKE 'longops%%'"
            )
            found = {f"{r['table_name']}.{r['column_name']}" for r in cur.fetchall()}
    return found


def test_every_column_has_a_class_and_every_class_a_column(store: Store) -> None:
    columns = schema_columns(store)
    assert len(columns) > 100
    assert sorted(columns - set(COLUMNS)) == [], "columns without a data classification"
    assert sorted(set(COLUMNS) - columns) == [], "classified columns that do not exist"


def test_a_new_column_without_a_class_is_caught(store: Store) -> None:
    with store._tx() as cur:  # type: ignore[attr-defined]
        cur.execute("ALTER TABLE longops_operations ADD COLUMN customer_note text")
    assert schema_columns(store) - set(COLUMNS) == {"longops_operations.customer_note"}


def test_classes_follow_business_central() -> None:
    assert classify("longops_operations.args") is DataClass.CUSTOMER_CONTENT
    assert classify("longops_operations.result") is DataClass.CUSTOMER_CONTENT
    assert classify("longops_operations.user_name") is DataClass.END_USER_IDENTIFIABLE
    assert classify("longops_attempts.session_id") is DataClass.END_USER_PSEUDONYMOUS
    assert classify("longops_operations.entry_no") is DataClass.SYSTEM_METADATA
    assert classify("longops_users.password_hash") is DataClass.ACCOUNT_DATA
    assert DataClass.CUSTOMER_CONTENT not in LOGGED_BY_DEFAULT
    assert DataClass.END_USER_IDENTIFIABLE not in LOGGED_BY_DEFAULT
    with pytest.raises(KeyError):
        classify("longops_operations.nothing")


def test_loggable_and_the_redacting_filter() -> None:
    assert loggable("longops_operations.args", ["x"]) == "[redacted: CustomerContent]"
    assert loggable("longops_operations.args", ["x"], {DataClass.CUSTOMER_CONTENT}) == ["x"]
    record = logging.LogRecord("longops.worker", logging.INFO, __file__, 1, "m", None, None)
    record.__dict__.update(user="alice", task_result={"a": 1}, operation_id="0190")
    RedactingFilter().filter(record)
    assert record.__dict__["user"] == "[redacted: EndUserIdentifiableInformation]"
    assert record.__dict__["task_result"] == "[redacted: CustomerContent]"
    assert record.__dict__["operation_id"] == "0190"
    assert record.getMessage() == "m"


def test_log_fields_never_shadow_log_record_attributes() -> None:
    from longops.domain.classification import LOG_FIELDS

    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert set(LOG_FIELDS) & set(plain.__dict__) == set()


# -- task content never reaches the logs ---------------------------------------------------------


@pytest.fixture
def leaky(db_url: str) -> Iterator[Longops]:
    from apps.stress_app import tasks_into

    application = tasks_into(Longops(db_url))
    yield application
    application.close()


def _run_leaks(app: Longops, marker: str, **worker_options: Any) -> None:
    worker = app.worker(concurrency=2, poll_interval=0.05, **worker_options)
    worker.start()
    try:
        failed = app.enqueue("stress.leak", marker, fail=True)
        done = app.enqueue("stress.leak", secret=marker)
        assert failed.wait(timeout=30).status is Status.ERROR
        assert done.wait(timeout=30).result == {"posted": marker}
    finally:
        worker.stop(grace=5)


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    # The messages and every structured field of every record.
    return "\n".join(
        f"{r.getMessage()} {json.dumps(r.__dict__, default=repr)}" for r in caplog.records
    )


def test_task_content_stays_out_of_the_worker_logs(
    leaky: Longops, caplog: pytest.LogCaptureFixture
) -> None:
    marker = f"INVOICE-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)  # even at debug level, by default
    _run_leaks(leaky, marker)
    assert "attempt 1 failed with ValueError" in caplog.text
    assert marker not in _logged(caplog)


def test_the_log_check_sees_content_once_it_is_allowed(
    leaky: Longops, caplog: pytest.LogCaptureFixture
) -> None:
    # The positive control: with CustomerContent allowed, the same run logs the error text,
    # so the test above would notice content reaching the logs.
    marker = f"INVOICE-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    _run_leaks(leaky, marker, log_classes=LOGGED_BY_DEFAULT | {DataClass.CUSTOMER_CONTENT})
    assert marker in _logged(caplog)


def _worker_process(db_url: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "longops.cli.main", "--app", "stress_app:app",
           "--database-url", db_url, "worker", "--concurrency", "2", "--poll-interval", "0.1",
           *extra]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize(
    ("extra", "shows"),
    [((), False), (("--log-level", "debug", "--log-class", "CustomerContent"), True)],
)
def test_a_real_worker_logs_no_task_content_by_default(
    leaky: Longops, db_url: str, extra: tuple[str, ...], shows: bool, tmp_path: Path
) -> None:
    marker = f"INVOICE-{uuid.uuid4().hex}"
    proc = _worker_process(db_url, *extra)
    try:
        failed = leaky.enqueue("stress.leak", marker, fail=True)
        done = leaky.enqueue("stress.leak", secret=marker)
        wait_for(lambda: failed.refresh().done and done.refresh().done, timeout=60, what="runs")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "attempt 1 failed with ValueError" in err
    assert (marker in err) is shows
