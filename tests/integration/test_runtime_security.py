"""Security at run time: an operation runs on behalf of its user (whoever last set it ready).
At claim, one whose user is disabled, deleted, or no longer holds the permission set its task
requires is not started: it waits in ``ready`` with a wait reason naming the user and why,
and starts once that changes. Both databases, through the real claim."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from longops import EnqueueRequest, Longops, RunContext, Status
from longops.domain.security import PermissionSet
from longops.domain.waiting import WaitCode
from longops.testing import Runner

ADMIN, USER = PermissionSet.ADMIN, PermissionSet.USER


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    application.migrate()

    @application.task(name="sec.report")
    def report(ctx: RunContext) -> str:
        return f"ran as {ctx.user}"

    @application.task(name="sec.post", requires=ADMIN)
    def post(ctx: RunContext) -> str:
        return f"posted as {ctx.user}"

    application.add_company("CRONUS")
    application.security.add_user("alice", grants=[("CRONUS", ADMIN)])
    application.security.add_user("dave", grants=[("CRONUS", ADMIN)])
    yield application
    application.close()


def runs(app: Longops) -> int:
    runner = Runner(app)
    try:
        return runner.run_until_idle()
    finally:
        runner.close()


def reason(app: Longops, op_id: object) -> tuple[WaitCode, str]:
    op = app.service.get(op_id)  # type: ignore[arg-type]
    assert op.status is Status.READY
    wait = app.service.wait_reasons([op])[op.id]
    return wait.code, wait.message


def show(app: Longops, db_url: str, op_id: object) -> str:
    cmd = [sys.executable, "-m", "longops.cli.main", "--database-url", db_url]
    done = subprocess.run(
        [*cmd, "ops", "show", str(op_id)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_disabled_users_operation_waits_and_runs_once_re_enabled(
    app: Longops, db_url: str
) -> None:
    alice = app.as_user("alice")
    op = alice.enqueue("sec.report", company="CRONUS").id
    app.security.disable_user("alice")
    assert runs(app) == 0
    code, message = reason(app, op)
    assert code is WaitCode.USER_DISABLED
    assert message.startswith("user alice, on whose behalf it runs, is disabled")
    assert "Waiting: user_disabled (user alice, on whose behalf it runs, is disabled" in show(
        app, db_url, op
    )
    app.security.enable_user("alice")
    assert runs(app) == 1
    done = app.service.get(op)
    assert (done.status, done.result, done.attempt_count) == (Status.FINISHED, "ran as alice", 1)


def test_a_user_who_lost_the_required_permission_set_holds_it_back(app: Longops) -> None:
    alice = app.as_user("alice")
    op = alice.enqueue("sec.post", company="CRONUS").id
    free = alice.enqueue("sec.report", company="CRONUS").id  # requires nothing: runs
    app.security.revoke("alice", ADMIN, "CRONUS")
    app.security.grant("alice", USER, "CRONUS")
    assert runs(app) == 1
    assert app.service.get(free).status is Status.FINISHED
    code, message = reason(app, op)
    assert code is WaitCode.USER_LACKS_PERMISSION
    assert message == (
        "user alice, on whose behalf it runs, no longer holds JOBQUEUE-ADMIN in company "
        "CRONUS, which task sec.post requires"
    )
    app.security.grant("alice", ADMIN, "CRONUS")
    assert runs(app) == 1
    assert app.service.get(op).result == "posted as alice"


def test_a_deleted_users_operation_waits_until_someone_sets_it_ready(app: Longops) -> None:
    op = app.as_user("alice").enqueue("sec.post", company="CRONUS").id
    app.security.delete_user("alice")
    assert runs(app) == 0
    code, message = reason(app, op)
    assert code is WaitCode.USER_DELETED
    assert message.startswith("user alice, on whose behalf it runs, no longer exists")
    # Setting it ready again makes it dave's: it runs on his behalf.
    dave = app.as_user("dave")
    dave.service.hold(op)
    dave.service.set_ready(op)
    assert runs(app) == 1
    assert app.service.get(op).result == "posted as dave"


def test_a_database_without_users_checks_nothing_at_claim(db_url: str) -> None:
    with Longops(db_url) as app:
        app.migrate()

        @app.task(name="sec.named")
        def named(ctx: RunContext) -> str | None:
            return ctx.user

        # The library may name who an operation is for without managing users.
        op = app.service.enqueue(EnqueueRequest(task="sec.named", user="batch")).id
        assert runs(app) == 1
        assert app.service.get(op).result == "batch"
