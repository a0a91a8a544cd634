"""Process isolation never hangs: a child that cannot load its task, breaks the protocol or
loses its reader fails the attempt with the cause and is replaced; a task defined in the
script that was run (``python myjobs.py``, under the ``__main__`` guard) works.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from longops import Longops, Status
from longops.domain.operation import Outcome
from longops.worker.isolation import Broken, ChildPool, main_guard_problem
from longops.worker.session import Worker

GHOST = "longops_test_ghost_module"


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    application.migrate()
    yield application
    application.close()


def start(app: Longops) -> Worker:
    worker = app.worker(concurrency=1, poll_interval=0.2, heartbeat_interval=0.5)
    worker.start()
    return worker


def double(x: int) -> int:
    return 2 * x


def test_a_child_that_cannot_import_its_task_fails_the_attempt_within_5_s(app: Longops) -> None:
    # A module the worker has (in sys.modules) but a fresh interpreter cannot import: the
    # child fails to load the task, as it does for a module missing on another machine.
    ghost = types.ModuleType(GHOST)

    def vanish() -> int:
        return 1

    vanish.__module__, vanish.__qualname__ = GHOST, "vanish"
    ghost.vanish = vanish  # type: ignore[attr-defined]
    sys.modules[GHOST] = ghost
    try:
        app.registry.add(vanish, name="ghost.vanish", isolation="process")
        app.registry.add(double, name="ghost.double", isolation="process")
        worker = start(app)
        try:
            began = time.monotonic()
            op = app.enqueue("ghost.vanish").wait(5)
            took = time.monotonic() - began
            # The child that failed to load was replaced: the next run gets a fresh one.
            after = app.enqueue("ghost.double", 21).wait(30)
        finally:
            worker.stop(grace=2)
    finally:
        del sys.modules[GHOST]
    assert op.status is Status.ERROR, op
    expected = (
        "child process could not load task 'ghost.vanish': "
        f"ModuleNotFoundError: No module named '{GHOST}'"
    )
    assert op.last_error == expected
    [attempt] = app.service.attempts(op.id)
    assert (attempt.outcome, attempt.error_message) == (Outcome.ERROR, expected)
    assert took < 5
    assert (after.status, after.result) == (Status.FINISHED, 42)


DOCS = Path(__file__).parents[2] / "docs" / "tracking.md"


def documented_script(db_url: str) -> str:
    """The script shown under "Tasks defined in the script that is run" in docs/tracking.md."""
    text = DOCS.read_text()
    section = text[text.index("### Tasks defined in the script that is run") :]
    block = re.search(r"```python\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, "docs/tracking.md shows no script"
    url = '"sqlite:///longops.db"'
    assert url in block.group(1)
    return block.group(1).replace(url, repr(db_url))


def run_script(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "myjobs.py"
    script.write_text(text)
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=90
    )


def test_a_process_isolated_task_in_main_of_a_guarded_script_runs(
    tmp_path: Path, db_url: str
) -> None:
    done = run_script(tmp_path, documented_script(db_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_a_script_without_the_guard_fails_the_attempt_naming_the_guard(
    tmp_path: Path, db_url: str
) -> None:
    # Without the guard the child would run the whole script again (enqueue, a worker):
    # it refuses to, and the attempt fails saying so instead of hanging.
    text = documented_script(db_url)
    guard = 'if __name__ == "__main__":'
    assert guard in text
    text = text.replace(guard, "if True:").replace(
        "print(handle.wait(timeout=60).result)", "print(handle.wait(timeout=60).last_error)"
    )
    done = run_script(tmp_path, text)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("child process could not load task 'double': RuntimeError: ")
    assert "has no 'if __name__ == \"__main__\":' guard" in done.stdout
    app = Longops(db_url)
    try:
        # The child did not run the script again: one operation, not two.
        assert sum(app.store.count_operations().values()) == 1
    finally:
        app.close()


def test_the_guard_is_recognised_in_either_order(tmp_path: Path) -> None:
    for text, ok in [
        ("if __name__ == '__main__':\n    pass\n", True),
        ("if '__main__' == __name__:\n    pass\n", True),
        ("if __name__ != '__main__':\n    pass\n", False),
        ("def f():\n    if __name__ == '__main__':\n        pass\n", False),
        ("x = 1\n", False),
    ]:
        path = tmp_path / "s.py"
        path.write_text(text)
        assert (main_guard_problem(str(path)) is None) is ok, text


def test_a_child_whose_reader_fails_says_why_and_exits() -> None:
    pool = ChildPool()
    child = pool.acquire()
    try:
        assert child.send(("nonsense", 1))
        assert child.conn.poll(10)
        message = child.conn.recv()
        child.join(10)
    finally:
        pool.close()
    assert message == Broken("ProtocolError: unexpected message from the worker: ('nonsense', 1)")
    assert child.exitcode == 70


def allocate(mib: int) -> int:
    held = b"\x01" * (mib * 2**20)  # written, so resident
    return len(held) // 2**20


def test_the_peak_memory_of_each_process_attempt_is_recorded(app: Longops) -> None:
    from longops.api.representation import attempt_json

    app.registry.add(allocate, name="mem.allocate", isolation="process")
    app.registry.add(double, name="mem.in_thread")
    worker = start(app)
    try:
        big = app.enqueue("mem.allocate", 64).wait(30)
        small = app.enqueue("mem.allocate", 1).wait(30)  # the same child, reused
        thread = app.enqueue("mem.in_thread", 1).wait(30)
    finally:
        worker.stop(grace=2)
    [big_attempt] = app.service.attempts(big.id)
    [small_attempt] = app.service.attempts(small.id)
    assert big_attempt.peak_rss is not None
    assert small_attempt.peak_rss is not None
    # The peak is the attempt's own: the reused child's earlier 64 MiB does not count.
    assert big_attempt.peak_rss >= 64 * 2**20
    assert small_attempt.peak_rss < big_attempt.peak_rss - 32 * 2**20
    assert app.service.attempts(thread.id)[0].peak_rss is None
    assert big_attempt.to_json()["peak_rss"] == big_attempt.peak_rss  # ops show --json
    assert attempt_json(big_attempt)["peakRss"] == big_attempt.peak_rss  # the API


def break_protocol() -> None:
    """Sends the worker a message the protocol does not have, then waits to be stopped."""
    import gc

    from longops.worker.isolation import _ChildSide

    [side] = [o for o in gc.get_objects() if isinstance(o, _ChildSide)]
    side.send(("gibberish", 1))
    time.sleep(60)


def test_a_child_that_breaks_the_protocol_fails_the_attempt_and_is_replaced(
    app: Longops,
) -> None:
    app.registry.add(break_protocol, name="proto.break", isolation="process")
    app.registry.add(double, name="proto.double", isolation="process")
    worker = start(app)
    try:
        began = time.monotonic()
        op = app.enqueue("proto.break").wait(10)
        took = time.monotonic() - began
        after = app.enqueue("proto.double", 4).wait(30)
    finally:
        worker.stop(grace=2)
    assert op.status is Status.ERROR
    assert op.last_error == (
        "child process broke the protocol: ('gibberish', 1) "
        "(ProtocolError: unexpected message kind 'gibberish')"
    )
    assert took < 10
    assert (after.status, after.result) == (Status.FINISHED, 8)
