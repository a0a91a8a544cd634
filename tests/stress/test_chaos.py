"""Workers under database faults and SIGKILL: the ``--quick`` forms of
benchmarks/bench_chaos.py, with the figures asserted.

Real ``longops worker`` processes with the default recovery settings (session timeout,
rescuer interval, heartbeat: what ships is what is proven); PostgreSQL faults on a
throwaway cluster made once for this module, never on a shared server. Each operation's task
leaves a run mark in the same database, so a run done twice shows whatever longops recorded.
See the benchmark's docstring for how lost, finished twice and run twice are defined.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_chaos
from pg import ThrowawayCluster, throwaway_cluster

pytestmark = pytest.mark.slow

RESUME_S = bench_chaos.RESUME_TARGET_S
RECOVERY_S = bench_chaos.RECOVERY_TARGET_S


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    with throwaway_cluster() as made:
        yield made


def assert_nothing_lost_nor_done_twice(r: dict[str, Any]) -> None:
    summary = {k: r[k] for k in ("statuses", "attempts_by_outcome", "unexpected_exits", "log")}
    assert r["unexpected_exits"] == [], f"a worker exited by itself: {summary}"
    assert r["lost"] == 0, f"{r['lost']} of {r['ops']} operations did not finish: {summary}"
    assert r["finished_twice"] == 0, summary
    assert r["ran_twice_unexplained"] == 0, r["ran_twice_unexplained_examples"]
    assert r["marks_without_attempt"] == 0, "a run mark matched no attempt: the check is blind"


def assert_each_worker_resumed(resumed: dict[str, Any], what: str) -> None:
    assert resumed["workers_resumed"] == resumed["workers"], (
        f"{resumed['workers'] - resumed['workers_resumed']} of {resumed['workers']} workers "
        f"never claimed again after {what} (alive, claiming nothing): {resumed}"
    )
    assert resumed["slowest_worker_s"] <= RESUME_S, f"claiming resumed late after {what}"


def assert_killed_runs_recovered(r: dict[str, Any]) -> None:
    # Without killed runs (work in flight at each kill) the test would prove nothing.
    assert r["killed_runs"] >= 3, r
    assert r["unrecovered_runs"] == 0, f"killed runs still in process at the end: {r}"
    assert r["recovery_s"]["max"] <= RECOVERY_S, (
        f"a killed run took {r['recovery_s']['max']} s to be back in ready "
        f"(p50/p95 {r['recovery_s']['p50']}/{r['recovery_s']['p95']}; "
        f"the leader's runs: {r['leader_recovery_s']}; kills: {r['kill_log']})"
    )


@pytest.mark.postgres
def test_postgres_restart_and_terminated_backends(
    cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    r = bench_chaos.run_restart(cluster, bench_chaos.QUICK["restart"], tmp_path)
    print(bench_chaos.headline(r))
    ops = r["params"]["ops"]
    assert r["workers_registered"]
    # Each fault landed mid-run, with work left to claim afterwards.
    assert r["finished_before_restart"] < ops * 0.9, r
    assert_each_worker_resumed(r["resume_after_restart"], "the PostgreSQL restart")
    assert r["finished_before_restart"] < r["finished_before_terminate"] < ops * 0.9, r
    assert r["backends_terminated"] >= r["params"]["workers"]
    assert_each_worker_resumed(r["resume_after_terminate"], "pg_terminate_backend")
    assert r["drained_before_idle_restart"], "the first operations never all finished"
    assert_each_worker_resumed(r["resume_after_idle_restart"], "a restart while idle")
    assert_nothing_lost_nor_done_twice(r)
    assert r["exit_codes"] == [0] * r["params"]["workers"]


@pytest.mark.postgres
def test_postgres_sigkill_chaos_leader_included(cluster: ThrowawayCluster, tmp_path: Path) -> None:
    params = bench_chaos.QUICK["chaos-postgres"]
    r = bench_chaos.run_chaos_postgres(cluster, params, tmp_path)
    print(bench_chaos.headline(r))
    assert r["kills"] >= 4
    assert r["leader_kills"] >= 1, "no kill hit the leader (the session running the rescuer)"
    assert_killed_runs_recovered(r)
    assert r["leader_recovery_s"]["n"] >= 1, "the leader died idle: its recovery went unmeasured"
    assert_nothing_lost_nor_done_twice(r)
    assert r["exit_codes"] == [0] * params.workers


def test_sqlite_sigkill_chaos_and_exclusive_lock(tmp_path: Path) -> None:
    params = bench_chaos.QUICK["chaos-sqlite"]
    r = bench_chaos.run_chaos_sqlite(params, tmp_path)
    print(bench_chaos.headline(r))
    assert r["kills"] >= 3
    assert r["lock_held_s"] >= params.lock_for, "the lock was not held as long as asked"
    assert_each_worker_resumed(r["resume_after_lock_release"], "the lock's release")
    assert_killed_runs_recovered(r)
    assert_nothing_lost_nor_done_twice(r)
    assert r["exit_codes"] == [0] * params.workers
