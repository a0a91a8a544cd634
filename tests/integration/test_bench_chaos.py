"""The chaos benchmark's judge (``bench_chaos.analyse``) counts what it claims to: a run
recorded twice, a run done twice, an operation left behind and a killed run's recovery are
each seen, on a database whose rows say so. (tests/stress/test_chaos.py asserts these
figures are 0; this proves they are not 0 by construction.)"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_chaos


def test_analysis_sees_loss_double_finish_double_run_and_recovery(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'judge.db'}"
    bench_chaos.prepare(url)
    bench_chaos.enqueue(url, 3, 0.0)
    conn = sqlite3.connect(tmp_path / "judge.db", isolation_level=None)
    rescued, doubled, _never_run = (r[0] for r in conn.execute("SELECT id FROM longops_operations"))
    t0 = datetime(2026, 12, 1, tzinfo=UTC)

    def ts(seconds: float) -> str:
        return (t0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")

    killed, other = uuid.uuid4().hex, uuid.uuid4().hex
    for session, pid in ((killed, 101), (other, 102)):
        conn.execute(
            "INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state, "
            "started_at, last_heartbeat_at) VALUES (?, 'h', ?, '[\"default\"]', 4, 'active', ?, ?)",
            (session, pid, ts(0), ts(0)),
        )

    def attempt(op: str, run_no: int, session: str, start: float, end: float, outcome: str) -> None:
        conn.execute(
            "INSERT INTO longops_attempts (operation_id, company, run_no, attempt, session_id, "
            "task, started_at, ended_at, outcome) VALUES (?, 'CRONUS', ?, ?, ?, 'chaos.work', "
            "?, ?, ?)",
            (op, run_no, run_no, session, ts(start), ts(end), outcome),
        )
        conn.execute(
            "INSERT INTO longops_operation_events (operation_id, company, at, type, run_no, "
            "data) VALUES (?, 'CRONUS', ?, 'attempt_ended', ?, ?)",
            (
                op,
                ts(end),
                run_no,
                json.dumps({"status": "finished" if outcome == "success" else "ready"}),
            ),
        )

    def mark(op: str, pid: int, at: float) -> None:
        at_epoch = (t0 + timedelta(seconds=at)).timestamp()
        conn.execute(
            "INSERT INTO chaos_marks VALUES (?, 1, ?, ?)", (str(uuid.UUID(op)), pid, at_epoch)
        )

    # Killed after doing the work, rescued 18 s after the kill, done again elsewhere: allowed.
    attempt(rescued, 1, killed, 0, 20, "lost")
    mark(rescued, 101, 1)
    attempt(rescued, 2, other, 21, 22, "success")
    mark(rescued, 102, 22)
    # Recorded finished twice, and done twice by two successful attempts: not allowed.
    attempt(doubled, 1, other, 0, 1, "success")
    mark(doubled, 102, 1)
    attempt(doubled, 2, other, 3, 4, "success")
    mark(doubled, 102, 4)
    conn.execute(
        "UPDATE longops_operations SET status = 'finished', ended_at = ? WHERE id IN (?, ?)",
        (ts(30), rescued, doubled),
    )
    conn.close()
    kill = bench_chaos.Kill(pid=101, at=(t0 + timedelta(seconds=2)).timestamp(), leader=True)

    r = bench_chaos.analyse(bench_chaos.Db(url), 3, [kill])

    assert r["lost"] == 1  # the third operation never ran
    assert r["statuses"] == {"finished": 2, "ready": 1}
    assert r["finished_twice"] == 1
    assert r["ran_twice_after_lost_run"] == 1
    assert r["ran_twice_unexplained"] == 1
    assert r["ran_twice_unexplained_examples"][0]["outcomes"] == ["success", "success"]
    assert r["marks_without_attempt"] == 0
    assert (r["killed_runs"], r["unrecovered_runs"]) == (1, 0)
    assert r["recovery_s"] == {"n": 1, "p50": 18.0, "p95": 18.0, "max": 18.0}
    assert r["leader_recovery_s"]["max"] == 18.0
    assert r["reclaim_s"]["max"] == 19.0
    targets = {t["target"]: t["met"] for t in bench_chaos.targets({**r, "unexpected_exits": []})}
    assert not targets["0 lost"]
    assert not targets["0 finished twice"]
    assert targets["killed run back in ready <= 30 s (max)"]
    # A scenario that aims at the leader is judged on the leader's runs too.
    aimed = {**r, "unexpected_exits": [], "params": {"leader_every": 2}}
    judged = {t["target"]: (t["figure"], t["met"]) for t in bench_chaos.targets(aimed)}
    assert judged["the leader was killed with runs in flight"] == (1, True)
    assert judged["leader kills: recovery p95 <= 30 s"] == (18.0, True)
    missed = {**aimed, "leader_recovery_s": bench_chaos.summary([])}
    judged = {t["target"]: t["met"] for t in bench_chaos.targets(missed)}
    assert not judged["the leader was killed with runs in flight"]
    assert not judged["leader kills: recovery p95 <= 30 s"]
    assert "the leader's 1 killed runs p50/p95/max 18/18/18 s" in bench_chaos.headline(
        {**aimed, "scenario": "leader", "ops": 3}
    )
