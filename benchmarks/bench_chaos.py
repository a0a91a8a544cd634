"""Fault-injection benchmark for longops workers: do they survive the database's bad days?

Run from the project root::

    .venv/bin/python benchmarks/bench_chaos.py            # full sizes (~8 minutes)
    .venv/bin/python benchmarks/bench_chaos.py --quick    # the sizes the test suite runs

Scenarios (``--scenario`` picks some; default all). Every worker is a real ``longops worker``
process with the default settings but ``--concurrency``; each operation is ``chaos.work``
(tests/apps/chaos_app.py), which sleeps a little and then writes a run mark into
``chaos_marks`` in the same database.

1. ``restart``: on a throwaway PostgreSQL cluster of its own (``initdb``, own port; never a
   shared server), 3 workers, N operations; when a quarter has finished the cluster is
   restarted (``pg_ctl restart -m fast``), and once claiming has resumed and 60 % have
   finished every other backend on the database is killed (``pg_terminate_backend``):
   the workers' pools, their listeners and the tasks' own connections; once everything has
   finished and the workers idle, the cluster is restarted again and new work enqueued.
   Measured: how long after the cluster accepted connections again each worker claimed its
   first operation (the fleet's first claim and the slowest worker's), the same after the
   terminations and after the idle restart.
2. ``chaos-postgres``: 3 workers; every 3-5 s one of them is ``SIGKILL``ed and replaced at
   once, for ``kill_for`` seconds; every third kill aims at the leader (the session holding
   the ``maintenance`` lease, which runs the rescuer) while it runs something (``--quick``:
   the other kills spare it). The operations become due evenly over the kill window, so
   there is work in flight at every kill.
3. ``chaos-sqlite``: the same kills with 2 workers on one SQLite file, and a third-party
   process holds ``BEGIN EXCLUSIVE`` on the file for 10 s in the middle.
4. ``leader`` (full mode only): the PostgreSQL chaos with at least 20 kills, every second
   one aimed at the leader: recovery p50/p95/max over all kills.

Figures, for every scenario: lost (operations not finished at the end), finished twice,
runs done twice, and for the kills: per killed run, the seconds from the ``SIGKILL`` to the
operation being back in ``ready`` (the rescuer's write, i.e. the killed attempt's end) and
to its next claim, p50/p95/max. Definitions:

- *lost*: an operation whose status is not ``finished`` once the run is over (every
  operation must finish: ``chaos.work`` never fails by itself);
- *finished twice*: an operation with more than one successful attempt, or more than one
  ``attempt_ended`` event that set it ``finished``;
- *ran twice after a lost run* (allowed, reported): two run marks for one operation where
  the earlier marking attempt is recorded ``lost`` or ``interrupted`` -- the work was done
  but its result never recorded, the price of at-least-once;
- *ran twice, unexplained*: two run marks for one operation otherwise. Must be 0.

Results: ``benchmarks/results/chaos.md`` and ``chaos.json`` (``--quick``: ``chaos.quick.*``,
so a smoke run never overwrites real figures). Targets (0 lost, 0 finished twice, 0
unexplained double runs, every killed run back in ready within 30 s, p95 too, claiming
resumed within 2 s of the database coming back) are recorded as met or missed; the script
exits non-zero only when a scenario could not be run at all.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
TESTS = PROJECT / "tests"
APPS = TESTS / "apps"
# The cluster helper and the task application are shared with the test suite.
for _path in (HERE, TESTS, APPS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import chaos_app  # noqa: E402

from bench_core import as_utc, machine_info, percentile, tail  # noqa: E402
from longops import EnqueueRequest, Longops  # noqa: E402
from longops.worker.session import PREFETCH  # noqa: E402
from pg import ThrowawayCluster, start_throwaway  # noqa: E402
from procs import stop_workers  # noqa: E402

RESULTS = HERE / "results"
SEED = 20261207
RECOVERY_TARGET_S = 30.0
RESUME_TARGET_S = 2.0
SCENARIOS = ("restart", "chaos-postgres", "chaos-sqlite", "leader")
RESUMES = {
    "resume_after_restart": "after the restart",
    "resume_after_terminate": "after pg_terminate_backend",
    "resume_after_idle_restart": "after a restart while idle",
    "resume_after_lock_release": "after the lock's release",
}


# -- parameters ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RestartParams:
    ops: int = 2_000
    workers: int = 3
    concurrency: int = 4
    task_seconds: float = 0.05
    restart_at: float = 0.25
    """Fraction of the operations finished when the cluster is restarted."""
    terminate_at: float = 0.6
    """Fraction finished when every backend is terminated."""
    stall_timeout: float = 30.0
    """A wait for work to finish gives up once nothing has finished for this long."""


@dataclass(frozen=True, slots=True)
class ChaosParams:
    dialect: str = "postgres"
    ops: int = 2_000
    workers: int = 3
    concurrency: int = 4
    task_seconds: float = 0.2
    kill_for: float = 60.0
    """Seconds of kills; the operations become due evenly over this window."""
    kill_every: tuple[float, float] = (3.0, 5.0)
    min_kills: int = 0
    """Go on killing past ``kill_for`` until this many kills (the leader scenario)."""
    leader_every: int = 3
    """Every n-th kill (the 2nd, 2+n-th, ...) aims at the leader."""
    spare_leader: bool = False
    """Random kills spare the leader, so that it dies only when aimed at (with runs in
    flight); the quick runs use it so that the leader's own recovery is always measured."""
    lock_for: float = 0.0
    """SQLite: seconds another process holds ``BEGIN EXCLUSIVE`` (0: none)."""
    lock_at: float = 0.4
    """When in the kill window the lock is taken (fraction)."""
    stall_timeout: float = 60.0
    """The wait for every operation to finish gives up once nothing has finished for this
    long (longer than a killed run's recovery)."""
    seed: int = SEED


FULL: dict[str, Any] = {
    "restart": RestartParams(),
    "chaos-postgres": ChaosParams(),
    "chaos-sqlite": ChaosParams(dialect="sqlite", workers=2, lock_for=10.0),
    "leader": ChaosParams(kill_for=80.0, min_kills=20, leader_every=2),
}
QUICK: dict[str, Any] = {
    # Enough that work is left to claim after each fault: each of the 3 workers may hold
    # 4 runs + a claimed-ahead batch of 32 + one in reserve (worker/dispatcher.py), 204 in
    # all, and 40 % of the operations (the part after pg_terminate_backend) must be more.
    "restart": RestartParams(ops=1_000),
    # 800 due evenly over the 20 s: about 8 runs in flight, so most kills hit running work.
    "chaos-postgres": ChaosParams(ops=800, kill_for=20.0, spare_leader=True),
    "chaos-sqlite": ChaosParams(
        dialect="sqlite",
        ops=400,
        workers=2,
        kill_for=30.0,
        lock_for=10.0,
        # The lock first, the kills after: the leader's death then never falls 13-20 s after
        # another kill, the window in which it delays that kill's rescue past 30 s (see
        # README, "Chaos"); the full runs, whose kills fall where they may, show that case.
        lock_at=0.0,
        spare_leader=True,
    ),
}


# -- the database, read from outside longops ----------------------------------------------------
class Db:
    """Reads (and the marks table) on the database under test, each on a fresh connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite:")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.sqlite:
            lite = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=60)
            try:
                return list(lite.execute(sql.replace("%s", "?"), tuple(params)).fetchall())
            finally:
                lite.close()
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return list(conn.execute(sql, tuple(params)).fetchall())

    def try_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        """The rows, or None while the database cannot answer (the fault being injected)."""
        try:
            return self.rows(sql, params)
        except (psycopg.Error, sqlite3.Error):
            return None

    def finished(self) -> int | None:
        found = self.try_rows("SELECT count(*) FROM longops_operations WHERE status = 'finished'")
        return None if found is None else int(found[0][0])

    def sessions_by_pid(self) -> dict[str, int]:
        return {
            _uid(sid): int(pid) for sid, pid in self.rows("SELECT id, pid FROM longops_sessions")
        }

    def claims_by_pid(self, since: float, until: float = float("inf")) -> dict[int, float] | None:
        """Each worker process's first claim in [``since``, ``until``) (wall clock)."""
        found = self.try_rows(
            "SELECT e.at, e.data, e.operation_id FROM longops_operation_events e "
            "WHERE e.type = 'attempt_started'"
        )
        if found is None:
            return None
        pids = self.sessions_by_pid()
        first: dict[int, float] = {}
        for at, data, _ in found:
            when = _ts(at)
            if not since <= when < until:
                continue
            session = _json(data).get("session_id")
            pid = pids.get(_uid(session)) if session else None
            if pid is not None and (pid not in first or when < first[pid]):
                first[pid] = when
        return first

    def leader_pid(self, busy: bool = False) -> int | None:
        """The pid of the session holding the ``maintenance`` lease; with ``busy``, only if
        that session is running something (so that killing it kills runs too)."""
        found = self.try_rows(
            "SELECT s.pid, l.expires_at, (SELECT count(*) FROM longops_operations o "
            "WHERE o.status = 'in_process' AND o.session_id = l.session_id) "
            "FROM longops_leaders l "
            "JOIN longops_sessions s ON s.id = l.session_id WHERE l.name = 'maintenance'"
        )
        if not found:
            return None
        pid, expires, running = found[0]
        if _ts(expires) <= time.time() or (busy and not running):
            return None
        return int(pid)


def _uid(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _ts(value: Any) -> float:
    return as_utc(value).timestamp()


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    loaded = json.loads(value) if value else {}
    return loaded if isinstance(loaded, dict) else {}


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until truthy; False (not an exception) when ``timeout`` passes, so
    a scenario whose workers stopped claiming still reports what it saw."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def wait_progress(db: Db, target: float, stall: float) -> bool:
    """Wait until ``target`` operations are finished; False once the count has not moved
    for ``stall`` seconds (workers that stopped claiming), so a run that failed ends soon and
    still reports what it saw."""
    best, moved = -1, time.monotonic()
    while True:
        done = db.finished()
        if done is not None and done >= target:
            return True
        if done is not None and done > best:
            best, moved = done, time.monotonic()
        if time.monotonic() - moved > stall:
            return False
        time.sleep(0.1)


# -- worker processes ---------------------------------------------------------------------------
@dataclass
class Kill:
    pid: int
    at: float
    leader: bool


@dataclass
class Fleet:
    """``longops worker`` processes with the default settings, logs in ``logdir``."""

    db_url: str
    logdir: Path
    concurrency: int
    live: list[subprocess.Popen[bytes]] = field(default_factory=list)
    all: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)

    def start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APPS), env.get("PYTHONPATH")) if p)
        env[chaos_app.MARKS_ENV] = chaos_app.marks_target(self.db_url)
        cmd = [
            sys.executable, "-m", "longops.cli.main", "--app", "chaos_app:app",
            "--database-url", self.db_url, "worker", "--concurrency", str(self.concurrency),
        ]  # fmt: skip
        log = self.logdir / f"worker-{len(self.all)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.live.append(proc)
        self.all.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], *, leader: bool) -> Kill:
        proc.send_signal(signal.SIGKILL)
        kill = Kill(proc.pid, time.time(), leader)
        proc.wait(timeout=30)
        self.live.remove(proc)
        self.kills.append(kill)
        return kill

    def unexpected_exits(self) -> list[dict[str, Any]]:
        """Processes that ended without being killed or stopped by us."""
        return [
            {"pid": p.pid, "code": p.returncode, "log_tail": tail(self._log(p), 15)}
            for p in self.live
            if p.poll() is not None
        ]

    def stop(self, stray: Sequence[dict[str, Any]], began: float) -> dict[str, Any]:
        """SIGTERM the live workers; what a scenario reports about its processes."""
        return {
            "unexpected_exits": list(stray),
            "exit_codes": stop_workers(self.live, timeout=90),
            "log": self.log_problems(),
            "duration_s": round(time.monotonic() - began, 1),
        }

    def kill_all(self) -> None:
        for p in self.all:
            if p.poll() is None:
                p.kill()
                p.wait()

    def _log(self, proc: subprocess.Popen[bytes]) -> Path:
        return self.logdir / f"worker-{self.all.index(proc)}.log"

    def log_problems(self) -> dict[str, int]:
        found: Counter[str] = Counter()
        for proc in self.all:
            text = self._log(proc).read_text(errors="replace")
            found["tracebacks"] += text.count("Traceback (most recent call last)")
            found["error_lines"] += sum(" ERROR " in line for line in text.splitlines())
        return dict(found)

    def wait_registered(self, db: Db, timeout: float = 60.0) -> bool:
        def ready() -> bool:
            found = db.try_rows(
                "SELECT pid FROM longops_sessions WHERE state = 'active'",
            )
            pids = {int(r[0]) for r in found or ()}
            return all(p.pid in pids for p in self.live)

        return wait_until(ready, timeout)


# -- setting a database up ----------------------------------------------------------------------
def prepare(db_url: str) -> None:
    app = Longops(db_url)
    try:
        app.migrate()
    finally:
        app.close()
    chaos_app.create_marks_table(db_url)


def enqueue(db_url: str, ops: int, seconds: float, spread: float = 0.0) -> None:
    """``ops`` operations of ``chaos.work``; with ``spread``, due evenly over that many s."""
    app = chaos_app.register(Longops(db_url))
    try:
        requests = [
            EnqueueRequest(
                task=chaos_app.TASK,
                kwargs={"seconds": seconds},
                delay=(i * spread / ops) if spread else None,
            )
            for i in range(ops)
        ]
        for start in range(0, ops, 500):
            app.enqueue_many(requests[start : start + 500])
    finally:
        app.close()


# -- what happened ------------------------------------------------------------------------------
def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "max": round(max(values), 2),
    }


def analyse(db: Db, ops: int, kills: Sequence[Kill] = ()) -> dict[str, Any]:
    """Lost, finished twice, run twice, and how long each killed run took to come back."""
    statuses = Counter(str(s) for (s,) in db.rows("SELECT status FROM longops_operations"))
    pids = db.sessions_by_pid()
    attempts: list[dict[str, Any]] = [
        {
            "op": _uid(op),
            "run_no": int(run_no),
            "pid": pids.get(_uid(session)) if session else None,
            "started": _ts(started),
            "ended": None if ended is None else _ts(ended),
            "outcome": str(outcome),
        }
        for op, run_no, session, started, ended, outcome in db.rows(
            "SELECT operation_id, run_no, session_id, started_at, ended_at, outcome "
            "FROM longops_attempts"
        )
    ]
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in attempts:
        by_op[a["op"]].append(a)

    successes = Counter(a["op"] for a in attempts if a["outcome"] == "success")
    finish_events: Counter[str] = Counter()
    for op, data in db.rows(
        "SELECT operation_id, data FROM longops_operation_events WHERE type = 'attempt_ended'"
    ):
        if _json(data).get("status") == "finished":
            finish_events[_uid(op)] += 1
    finished_twice = {op for op, n in successes.items() if n > 1} | {
        op for op, n in finish_events.items() if n > 1
    }

    # Each mark belongs to the attempt of its process on that operation that started last
    # before the mark (a rejoined session keeps its pid, so the latest one).
    marks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for op, attempt, pid, at in db.rows("SELECT operation_id, attempt, pid, at FROM chaos_marks"):
        marks[_uid(op)].append({"attempt": int(attempt), "pid": int(pid), "at": float(at)})
    after_lost, unexplained, unmatched = 0, [], 0
    for op, found in marks.items():
        outcomes = []
        for mark in found:
            mine = [
                a
                for a in by_op.get(op, [])
                if a["pid"] == mark["pid"] and a["started"] <= mark["at"]
            ]
            if not mine:
                unmatched += 1
                outcomes.append("unmatched")
                continue
            outcomes.append(max(mine, key=lambda a: a["started"])["outcome"])
        if len(found) > 1:
            if sum(o not in ("lost", "interrupted") for o in outcomes) <= 1:
                after_lost += 1
            else:
                unexplained.append({"operation_id": op, "outcomes": outcomes})

    # Killed runs: the attempts of a killed process that it had not ended by the kill.
    kill_of = {k.pid: k for k in kills}
    per_kill: dict[int, list[float | None]] = {k.pid: [] for k in kills}
    recovery, reclaim, leader_recovery, unrecovered = [], [], [], []
    for a in attempts:
        kill = kill_of.get(a["pid"]) if a["pid"] is not None else None
        if kill is None or a["started"] > kill.at:
            continue
        if a["outcome"] == "in_process":
            unrecovered.append(a["op"])
            per_kill[kill.pid].append(None)
            continue
        if a["ended"] is None or a["ended"] < kill.at:
            continue  # ended before the kill: not a killed run
        back = a["ended"] - kill.at
        recovery.append(back)
        per_kill[kill.pid].append(round(back, 1))
        if kill.leader:
            leader_recovery.append(back)
        later = [b["started"] for b in by_op[a["op"]] if b["run_no"] > a["run_no"]]
        if later:
            reclaim.append(min(later) - kill.at)
    killed_outcomes = Counter(
        a["outcome"]
        for a in attempts
        if a["pid"] in kill_of
        and a["started"] <= kill_of[a["pid"]].at
        and (a["ended"] is None or a["ended"] >= kill_of[a["pid"]].at)
    )
    return {
        "ops": ops,
        "finished": statuses.get("finished", 0),
        "lost": ops - statuses.get("finished", 0),
        "statuses": dict(statuses),
        "attempts_by_outcome": dict(Counter(a["outcome"] for a in attempts)),
        "finished_twice": len(finished_twice),
        "ran_twice_after_lost_run": after_lost,
        "ran_twice_unexplained": len(unexplained),
        "ran_twice_unexplained_examples": unexplained[:5],
        "marks_without_attempt": unmatched,
        "kills": len(kills),
        "leader_kills": sum(k.leader for k in kills),
        "killed_runs": len(recovery) + len(unrecovered),
        "killed_runs_by_outcome": dict(killed_outcomes),
        "unrecovered_runs": len(unrecovered),
        "recovery_s": summary(recovery),
        "leader_recovery_s": summary(leader_recovery),
        "reclaim_s": summary(reclaim),
        "kill_log": [
            {
                "at_s": round(k.at - kills[0].at, 1),
                "leader": k.leader,
                "runs_back_in_ready_after_s": per_kill[k.pid],
            }
            for k in kills
        ],
    }


def resume_figures(
    first: dict[int, float] | None, since: float, pids: Sequence[int]
) -> dict[str, Any]:
    """How long after ``since`` the fleet, and each worker, claimed again."""
    first = first or {}
    delays = {pid: round(first[pid] - since, 3) for pid in pids if pid in first}
    return {
        "first_s": min(delays.values()) if delays else None,
        "slowest_worker_s": max(delays.values()) if delays and len(delays) == len(pids) else None,
        "workers_resumed": len(delays),
        "workers": len(pids),
    }


# -- the scenarios ------------------------------------------------------------------------------
def run_restart(cluster: ThrowawayCluster, params: RestartParams, workdir: Path) -> dict[str, Any]:
    """PostgreSQL restart and terminated backends mid-run, then a restart while the workers
    are idle (see the module docstring)."""
    name = f"chaos_restart_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db_url = cluster.create_database(name)
    fleet = Fleet(db_url, workdir, params.concurrency)
    began = time.monotonic()
    try:
        prepare(db_url)
        db = Db(db_url)
        for _ in range(params.workers):
            fleet.start()
        registered = fleet.wait_registered(db)
        pids = [p.pid for p in fleet.live]
        enqueue(db_url, params.ops, params.task_seconds)

        wait_progress(db, params.ops * params.restart_at, params.stall_timeout)
        before_restart = db.finished() or 0
        busy = cluster.restart("fast")
        print(f"  restart (busy): down {busy.down - busy.asked:.2f} s after the ask, "
              f"back {busy.back - busy.down:.2f} s later")  # fmt: skip

        wait_progress(db, params.ops * params.terminate_at, params.stall_timeout)
        before_terminate = db.finished() or 0
        terminated_at = time.time()
        terminated = cluster.terminate_backends(name)
        print(f"  {terminated} backends terminated")

        drained = wait_progress(db, params.ops, params.stall_timeout)
        idle = cluster.restart("fast")
        print(f"  restart (idle): back {idle.back - idle.down:.2f} s after going down")
        # More runs than the workers back first can hold, slots, a claimed-ahead batch and
        # one in reserve (the runs before were short, so they claim ahead), and long enough
        # that they cannot drain them before a healthy straggler reconnects: a worker that
        # claims none of them is really stuck.
        extra = params.workers * (params.concurrency + 2 * PREFETCH)
        enqueue(db_url, extra, max(params.task_seconds, 1.0))
        total = params.ops + extra
        all_done = wait_progress(db, total, params.stall_timeout)

        ended = fleet.stop(fleet.unexpected_exits(), began)
        windows = {
            "resume_after_restart": (busy.back, terminated_at),
            "resume_after_terminate": (terminated_at, idle.asked),
            "resume_after_idle_restart": (idle.back, time.time()),
        }
        result = analyse(db, total)
        for key, (since, until) in windows.items():
            result[key] = resume_figures(db.claims_by_pid(since, until), since, pids)
            print(f"  {key}: {result[key]}")
        result.update(
            {
                "scenario": "restart",
                "dialect": "postgres",
                "params": asdict(params),
                "workers_registered": registered,
                "finished_before_restart": before_restart,
                "finished_before_terminate": before_terminate,
                "drained_before_idle_restart": drained,
                "all_finished_in_time": all_done,
                "restart": {
                    "down_after_ask_s": round(busy.down - busy.asked, 3),
                    "down_for_s": round(busy.back - busy.down, 3),
                },
                "backends_terminated": terminated,
                **ended,
            }
        )
        return result
    finally:
        fleet.kill_all()
        cluster.drop_database(name)


LOCKER = """
import sqlite3, sys, time
path, after, hold = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
time.sleep(after)
c = sqlite3.connect(path, isolation_level=None, timeout=120)
c.execute("BEGIN EXCLUSIVE")
print("locked", time.time(), flush=True)
time.sleep(hold)
c.execute("COMMIT")
print("released", time.time(), flush=True)
"""


def start_locker(path: str, after: float, hold: float) -> subprocess.Popen[str]:
    """Another process that, ``after`` seconds from now, holds ``BEGIN EXCLUSIVE`` on the
    SQLite file for ``hold`` seconds; it prints when it took and released the lock."""
    return subprocess.Popen(
        [sys.executable, "-c", LOCKER, path, str(after), str(hold)],
        stdout=subprocess.PIPE,
        text=True,
    )


def locker_times(proc: subprocess.Popen[str], timeout: float) -> dict[str, float]:
    out, _ = proc.communicate(timeout=timeout)
    return {word: float(at) for word, at in (line.split() for line in out.splitlines())}


def lock_figures(db: Db, times: dict[str, float], kills: Sequence[Kill]) -> dict[str, Any]:
    """How long the lock was held and how soon after its release each worker claimed: the
    workers whose session was registered before the lock was taken and that were not
    killed before they had ``RESUME_TARGET_S`` to claim."""
    locked, released = times.get("locked"), times.get("released")
    if locked is None or released is None:
        return {"lock_held_s": None}
    killed = {k.pid: k.at for k in kills}
    pids = [
        int(pid)
        for pid, started in db.rows("SELECT pid, started_at FROM longops_sessions")
        if _ts(started) <= locked
        and killed.get(int(pid), float("inf")) >= released + RESUME_TARGET_S
    ]
    return {
        "lock_held_s": round(released - locked, 2),
        "resume_after_lock_release": resume_figures(db.claims_by_pid(released), released, pids),
    }


def run_chaos(db_url: str, params: ChaosParams, workdir: Path, scenario: str) -> dict[str, Any]:
    """Workers killed every few seconds, the leader among them (see the module docstring)."""
    rng = random.Random(params.seed)
    fleet = Fleet(db_url, workdir, params.concurrency)
    began = time.monotonic()
    locker: subprocess.Popen[str] | None = None
    try:
        db = Db(db_url)
        for _ in range(params.workers):
            fleet.start()
        registered = fleet.wait_registered(db)
        enqueue(db_url, params.ops, params.task_seconds, spread=params.kill_for)
        window_start = time.monotonic()
        locker = (
            start_locker(
                db_url.removeprefix("sqlite:///"), params.kill_for * params.lock_at, params.lock_for
            )
            if params.lock_for
            else None
        )
        stray: list[dict[str, Any]] = []
        n = 0
        aim_at_leader = False
        # No kill while the lock is held nor just after, so that the workers it blocked are
        # alive to show they claim again when it is released.
        quiet_from = params.kill_for * params.lock_at - 0.5
        quiet_until = quiet_from + 0.5 + params.lock_for + RESUME_TARGET_S + 1
        while time.monotonic() - window_start < params.kill_for or n < params.min_kills:
            time.sleep(rng.uniform(*params.kill_every))  # the fault schedule, not an ordering
            if locker is not None and quiet_from <= time.monotonic() - window_start < quiet_until:
                time.sleep(quiet_until - (time.monotonic() - window_start))
            stray += fleet.unexpected_exits()
            fleet.live = [p for p in fleet.live if p.poll() is None]
            # Every n-th kill aims at the leader while it runs something; an aim that finds
            # it idle (or no leader yet) is carried over to the next kill.
            aim_at_leader |= params.leader_every > 0 and n % params.leader_every == 1
            leader = db.leader_pid()
            busy = db.leader_pid(busy=True) if aim_at_leader else None
            victims = [p for p in fleet.live if p.pid == busy] if busy else []
            others = [p for p in fleet.live if p.pid != leader] if params.spare_leader else []
            victim = victims[0] if victims else rng.choice(others or fleet.live)
            kill = fleet.kill(victim, leader=victim.pid == leader)
            # A leader elected between the look-up and the kill: its lease still names it.
            kill.leader = kill.leader or db.leader_pid() == kill.pid
            # Only an aimed kill ends the aim: an idle leader hit by chance does not count,
            # the point is to kill the rescuer with runs of its own in flight.
            aim_at_leader = aim_at_leader and not victims
            fleet.start()
            n += 1
            print(f"  kill {n}: pid {kill.pid}{' (leader)' if kill.leader else ''} "
                  f"at {time.monotonic() - window_start:.1f} s")  # fmt: skip
        lock_times = locker_times(locker, params.kill_for + params.lock_for + 60) if locker else {}
        last_kill = time.monotonic()
        all_done = wait_progress(db, params.ops, params.stall_timeout)
        settled = time.monotonic() - last_kill
        # A replacement still starting up (a loaded machine can take many seconds) has no
        # SIGTERM handler yet and would die of the signal (exit -15): the stop is judged on
        # workers that run, so it waits for each to have registered its session.
        fleet.wait_registered(db, timeout=60)
        ended = fleet.stop([*stray, *fleet.unexpected_exits()], began)
        result = analyse(db, params.ops, fleet.kills)
        if locker is not None:
            result.update(lock_figures(db, lock_times, fleet.kills))
        result.update(
            {
                "scenario": scenario,
                "dialect": params.dialect,
                "params": asdict(params),
                "workers_registered": registered,
                "all_finished_in_time": all_done,
                "finished_s_after_last_kill": round(settled, 1),
                **ended,
            }
        )
        return result
    finally:
        fleet.kill_all()
        if locker is not None and locker.poll() is None:
            locker.kill()
            locker.communicate()


def run_chaos_postgres(
    cluster: ThrowawayCluster, params: ChaosParams, workdir: Path, scenario: str = "chaos-postgres"
) -> dict[str, Any]:
    name = f"chaos_kills_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db_url = cluster.create_database(name)
    try:
        prepare(db_url)
        return run_chaos(db_url, params, workdir, scenario)
    finally:
        cluster.drop_database(name)


def run_chaos_sqlite(params: ChaosParams, workdir: Path) -> dict[str, Any]:
    path = workdir / "chaos.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db_url = f"sqlite:///{path}"
    prepare(db_url)
    return run_chaos(db_url, params, workdir, "chaos-sqlite")


# -- targets and the report ---------------------------------------------------------------------
def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure it is judged on and whether it was met."""
    found = [
        ("0 lost", result["lost"], result["lost"] == 0),
        ("0 finished twice", result["finished_twice"], result["finished_twice"] == 0),
        ("0 unexplained double runs", result["ran_twice_unexplained"],
         result["ran_twice_unexplained"] == 0),
        ("no worker exited by itself", len(result["unexpected_exits"]),
         not result["unexpected_exits"]),
    ]  # fmt: skip
    if result.get("kills"):
        rec = result["recovery_s"]
        found += [
            ("every killed run recovered", result["unrecovered_runs"],
             result["unrecovered_runs"] == 0),
            (f"killed run back in ready <= {RECOVERY_TARGET_S:g} s (max)", rec["max"],
             rec["max"] is not None and rec["max"] <= RECOVERY_TARGET_S),
            (f"recovery p95 <= {RECOVERY_TARGET_S:g} s", rec["p95"],
             rec["p95"] is not None and rec["p95"] <= RECOVERY_TARGET_S),
        ]  # fmt: skip
        if result.get("params", {}).get("leader_every", 0) > 0:
            # The leader runs the rescuer: its own death is the slow case (its lease must
            # lapse before another worker rescues anything), judged on its own.
            lead = result["leader_recovery_s"]
            found += [
                ("the leader was killed with runs in flight", lead["n"], lead["n"] > 0),
                (f"leader kills: recovery p95 <= {RECOVERY_TARGET_S:g} s", lead["p95"],
                 lead["p95"] is not None and lead["p95"] <= RECOVERY_TARGET_S),
            ]  # fmt: skip
    for key in RESUMES:
        if key in result:
            slowest = result[key]["slowest_worker_s"]
            found.append(
                (f"{key.replace('_', ' ')}: every worker claims within {RESUME_TARGET_S:g} s",
                 slowest, slowest is not None and slowest <= RESUME_TARGET_S)
            )  # fmt: skip
    return [{"target": t, "figure": f, "met": bool(m)} for t, f, m in found]


def headline(r: dict[str, Any]) -> str:
    """One line of the figures that matter (printed by the script and the tests)."""
    parts = [
        f"{r['scenario']}: {r['ops']} ops, lost {r['lost']}, finished twice "
        f"{r['finished_twice']}, ran twice {r['ran_twice_after_lost_run']} after a lost run / "
        f"{r['ran_twice_unexplained']} unexplained"
    ]
    if r.get("kills"):
        rec = r["recovery_s"]
        parts.append(
            f"{r['kills']} kills ({r['leader_kills']} of the leader), {r['killed_runs']} killed "
            f"runs back in ready p50/p95/max {_f(rec['p50'])}/{_f(rec['p95'])}/{_f(rec['max'])} s"
        )
        lead = r["leader_recovery_s"]
        parts.append(
            f"the leader's {lead['n']} killed runs p50/p95/max "
            f"{_f(lead['p50'])}/{_f(lead['p95'])}/{_f(lead['max'])} s"
        )
    for key, label in RESUMES.items():
        if key in r:
            parts.append(
                f"{label}: first claim {_f(r[key]['first_s'])} s, slowest worker "
                f"{_f(r[key]['slowest_worker_s'])} s ({r[key]['workers_resumed']}/"
                f"{r[key]['workers']})"
            )
    return "; ".join(parts)


def load_label(load: Sequence[float], nproc: int) -> str:
    return "quiet" if load[0] < 0.5 * nproc else "loaded"


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    m = doc["machine"]
    lines = [
        "# Chaos: workers under database faults and SIGKILL",
        "",
        f"Run {m['date']} with `benchmarks/bench_chaos.py{' --quick' if doc['quick'] else ''}`"
        f" on {m['nproc']} cores ({m['cpu_model']}), PostgreSQL "
        f"{(m.get('postgresql') or '?').split(' on ')[0].removeprefix('PostgreSQL ')}, "
        f"SQLite {m['sqlite']}, Python {m['python']}; machine **{doc['load_label']}** (load "
        f"average {m['loadavg_at_start'][0]} at the start, {doc['loadavg_at_end'][0]} at the "
        "end). Source: " + f"`{m['source']}`.",
        "",
        "Workers: real `longops worker` processes with the default settings "
        f"(session timeout + rescuer interval as shipped: {doc['defaults']}) but "
        "`--concurrency`. Definitions of lost / finished twice / run twice: see the script's "
        "docstring.",
        "",
        "| scenario | ops | workers | kills (leader) | lost | finished twice | ran twice "
        "(after a lost run / unexplained) | killed runs | recovery p50 / p95 / max s | "
        "the leader's killed runs: n, recovery p50 / p95 / max s | "
        "re-claimed p50 / p95 / max s | claiming resumed (first / slowest worker) s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"].values():
        rec, recl, lead = r["recovery_s"], r["reclaim_s"], r["leader_recovery_s"]
        resumed = [
            f"{label}: {_f(r[key]['first_s'])} / {_f(r[key]['slowest_worker_s'])}"
            f" ({r[key]['workers_resumed']} of {r[key]['workers']} resumed)"
            for key, label in RESUMES.items()
            if key in r
        ]
        lines.append(
            f"| {r['scenario']} ({r['dialect']}) | {r['ops']} | {r['params']['workers']} | "
            f"{r['kills']} ({r['leader_kills']}) | {r['lost']} | {r['finished_twice']} | "
            f"{r['ran_twice_after_lost_run']} / {r['ran_twice_unexplained']} | "
            f"{r['killed_runs']} | {_f(rec['p50'])} / {_f(rec['p95'])} / {_f(rec['max'])} | "
            f"{lead['n']}: {_f(lead['p50'])} / {_f(lead['p95'])} / {_f(lead['max'])} | "
            f"{_f(recl['p50'])} / {_f(recl['p95'])} / {_f(recl['max'])} | "
            f"{'; '.join(resumed) or '-'} |"
        )
    lines += ["", "## Targets", ""]
    for r in doc["results"].values():
        lines.append(f"- **{r['scenario']}**: " + "; ".join(
            f"{t['target']}: {_f(t['figure'])} {'met' if t['met'] else '**MISSED**'}"
            for t in r["targets"]
        ))  # fmt: skip
    lines += ["", "## Parameters", ""]
    for r in doc["results"].values():
        p = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        lines.append(f"- {r['scenario']}: {p}; took {r['duration_s']} s")
    lines += ["", "## Details", ""]
    for r in doc["results"].values():
        lines.append(
            f"- {r['scenario']}: statuses {r['statuses']}; attempts {r['attempts_by_outcome']}; "
            f"killed runs ended {r['killed_runs_by_outcome']}; unrecovered "
            f"{r['unrecovered_runs']}; worker exits {r['exit_codes']}, by themselves "
            f"{len(r['unexpected_exits'])}; worker logs {r['log']}"
        )
    path.write_text("\n".join(lines) + "\n")


def _f(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def worker_defaults() -> str:
    """The recovery-relevant defaults of ``longops worker``, as the CLI ships them."""
    out = subprocess.run(
        [sys.executable, "-m", "longops.cli.main", "worker", "--help"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
    )  # fmt: skip
    wanted = ("--heartbeat-interval", "--session-timeout", "--rescuer-interval")
    found = []
    for line in out.stdout.splitlines():
        for option in wanted:
            if option in line and "default:" in line:
                found.append(f"{option} {line.split('default:')[1].split(']')[0].strip()}")
    return ", ".join(found) or "unknown"


def run(
    scenarios: Sequence[str], quick: bool, out: Path, seed: int, logs: Path | None = None
) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    wanted = [s for s in scenarios if s in sizes]
    cluster = start_throwaway() if set(wanted) - {"chaos-sqlite"} else None
    if cluster is None and set(wanted) - {"chaos-sqlite"}:
        raise SystemExit("PostgreSQL is not installed here (no initdb): no throwaway cluster")
    machine = machine_info(cluster.url if cluster else None)
    results: dict[str, Any] = {}
    try:
        for scenario in wanted:
            params = sizes[scenario]
            if isinstance(params, ChaosParams):
                params = replace(params, seed=seed)
            print(f"{scenario}: {params}")
            with tempfile.TemporaryDirectory(prefix=f"chaos-{scenario}-") as tmp:
                workdir = Path(tmp)
                if logs is not None:
                    workdir = logs / scenario
                    workdir.mkdir(parents=True, exist_ok=True)
                if scenario == "restart":
                    assert cluster is not None
                    result = run_restart(cluster, params, workdir)
                elif scenario == "chaos-sqlite":
                    result = run_chaos_sqlite(params, workdir)
                else:
                    assert cluster is not None
                    result = run_chaos_postgres(cluster, params, workdir, scenario)
            result["targets"] = targets(result)
            results[scenario] = result
            print(headline(result))
    finally:
        if cluster is not None:
            cluster.stop()
    load = os.getloadavg()
    doc = {
        "quick": quick,
        "machine": machine,
        "loadavg_at_end": [round(x, 2) for x in load],
        "load_label": load_label(machine["loadavg_at_start"], machine["nproc"]),
        "defaults": worker_defaults(),
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    stem = "chaos.quick" if quick else "chaos"
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    write_markdown(out / f"{stem}.md", doc)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the test suite's smaller sizes")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only this one (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--logs", type=Path, help="keep the workers' logs (and the SQLite file) in this folder"
    )
    args = parser.parse_args(argv)
    doc = run(args.scenario or SCENARIOS, args.quick, args.out, args.seed, args.logs)
    missed = [
        f"{name}: {t['target']} ({_f(t['figure'])})"
        for name, r in doc["results"].items()
        for t in r["targets"]
        if not t["met"]
    ]
    print("\n".join(["targets missed:", *missed] if missed else ["every target met"]))
    print(f"wrote {args.out}/{'chaos.quick' if args.quick else 'chaos'}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
