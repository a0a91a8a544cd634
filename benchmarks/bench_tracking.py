"""Operation-tracking benchmark for longops, on SQLite and PostgreSQL.

Run from the project root::

    .venv/bin/python benchmarks/bench_tracking.py [--db sqlite|postgres|both] [--quick]

Figures (per database; see benchmarks/README.md for what each one means):

1. progress: 1,000,000 ``ctx.advance()`` calls in one operation run by a real (in-process)
   worker: microseconds per call (timed inside the task) beside a bare counter loop, the
   run's duration and its progress writes (``progress`` events + 1 final write) against the
   budget ``duration / progress_interval + steps + 2``; at progress_interval 1 s and 0.1 s,
   with and without 10 ``ctx.step()`` changes, and one 10x longer run at 0.1 s;
2. cooperative cancel latency: a task spins on ``while not ctx.cancelled: sleep(1 ms)``; from
   just before ``app.service.cancel(...)`` to the moment it saw the signal, p50/p95/max
   (PostgreSQL: pushed by NOTIFY; SQLite: polled every ``poll_interval``, 1 s and 0.1 s);
3. forced cancel: a process-isolated CPU spinner that ignores the request
   (``cancel_grace=1``), from the request to status ``cancelled``.

Every phase runs on its own fresh, migrated database (PostgreSQL: ``bench_<phase>_<pid>``,
dropped afterwards; SQLite: a file in a temporary folder). Results go to
``benchmarks/results/tracking-<dialect>.json`` and ``benchmarks/results/tracking.md``.
Targets are recorded as met or missed, never asserted; a run whose figures cannot be trusted
(an operation that did not end as it must, a signal never seen, a worker warning) exits
non-zero instead.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench_core import (
    DEFAULT_PG_ADMIN_URL,
    DIALECTS,
    RESULTS,
    BenchConfig,
    InvalidRunError,
    children_cpu,
    cpu_delta,
    fresh_database,
    machine_busy,
    machine_info,
    percentile,
    postgres_cpu,
    self_cpu,
)
from bench_core import FULL as CORE_SIZES
from longops import Longops, Status
from longops.domain.operation import CancelMode, EventType, Outcome, StopMode
from tracking_bench_app import ADVANCE, BARE, BURN, BURN_GRACE_S, SPIN, make_app, sighting

PHASE_TIMEOUT = 120.0
"""Longest wait for one operation or one signal; a longer one makes the run invalid."""
CANCEL_WARMUP = 1
"""Cancel trials run first and not measured (connections, code paths)."""
STATUS_POLL_S = 0.005
"""How often the forced-cancel phase reads the operation's status."""
SEED = 20261201


@dataclass(frozen=True, slots=True)
class Sizes:
    advance_calls: int
    long_factor: int
    cancel_trials: int
    forced_trials: int


FULL = Sizes(advance_calls=1_000_000, long_factor=10, cancel_trials=20, forced_trials=5)
QUICK = Sizes(advance_calls=100_000, long_factor=10, cancel_trials=5, forced_trials=2)


@dataclass(frozen=True, slots=True)
class AdvanceVariant:
    """One progress run: the worker's ``progress_interval``, how many ``ctx.step`` changes,
    and how many times the base number of calls."""

    name: str
    progress_interval: float
    steps: int = 0
    factor: int = 1


VARIANTS = (
    AdvanceVariant("int1s", 1.0),
    AdvanceVariant("int100ms", 0.1),
    AdvanceVariant("int1s_steps10", 1.0, steps=10),
    AdvanceVariant("int100ms_steps10", 0.1, steps=10),
    AdvanceVariant("int100ms_long", 0.1, factor=0),  # factor 0: Sizes.long_factor
)


@dataclass(frozen=True, slots=True)
class CancelConfig:
    name: str
    poll_interval: float


CANCEL_CONFIGS: dict[str, tuple[CancelConfig, ...]] = {
    # PostgreSQL pushes the request (LISTEN/NOTIFY); the poll interval is only the fallback.
    "postgres": (CancelConfig("poll1s", 1.0),),
    "sqlite": (CancelConfig("poll1s", 1.0), CancelConfig("poll100ms", 0.1)),
}
FORCED_POLL_INTERVAL = 1.0
"""The forced-cancel phase runs with the default poll interval."""


# -- helpers ------------------------------------------------------------------------------------
def stats_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "min_ms": round(min(ms), 3),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


def log(dialect: str, figure: str, text: str) -> None:
    print(f"[{dialect:8}] {figure:28} {text}", flush=True)


class WarningCollector(logging.Handler):
    """Keeps every warning longops logs while the benchmark runs: the in-process worker
    logs a failed monitor round, a failed write, a crashed run that way, and a run with
    any of those cannot be trusted."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@contextmanager
def cpu_meter(is_pg: bool, into: dict[str, Any]) -> Iterator[None]:
    """CPU used while the block runs: this process (the driver *and* the in-process
    worker), reaped children (isolated runs), PostgreSQL, and everything else on the box."""
    pg_before = postgres_cpu() if is_pg else {}
    children_before = children_cpu()
    self_before = self_cpu()
    busy_before = machine_busy()
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        busy = machine_busy() - busy_before
        own = self_cpu() - self_before
        kids = sum(children_cpu()) - sum(children_before)
        cpu: dict[str, float] = {
            "this_process_s": round(own, 3),
            "children_s": round(kids, 3),
        }
        ours = own + kids
        if is_pg:
            pg = sum(cpu_delta(pg_before, postgres_cpu()))
            cpu["postgres_s"] = round(pg, 3)
            ours += pg
        cpu["other_processes_s"] = round(max(busy - ours, 0.0), 3)
        ncpu = len(os.sched_getaffinity(0))
        cpu["machine_utilisation"] = round(busy / (elapsed * ncpu), 3)
        into["cpu"] = cpu


@contextmanager
def running_worker(app: Longops, **options: Any) -> Iterator[None]:
    worker = app.worker(**options)
    worker.start()
    try:
        yield
    finally:
        worker.stop(grace=10)


# -- 1. progress writes and the cost of ctx.advance() -----------------------------------------
def bench_advance(url: str, variant: AdvanceVariant, sizes: Sizes) -> dict[str, Any]:
    """One operation of N ``ctx.advance()`` calls, run by an in-process worker."""
    factor = variant.factor or sizes.long_factor
    calls = sizes.advance_calls * factor
    parts = max(variant.steps, 1)
    calls -= calls % parts
    is_pg = url.startswith("postgres")
    app = make_app(url)
    out: dict[str, Any] = {}
    try:
        with (
            cpu_meter(is_pg, out),
            running_worker(app, concurrency=1, progress_interval=variant.progress_interval),
        ):
            bare_op = app.enqueue(BARE, calls).wait(PHASE_TIMEOUT)
            started = time.perf_counter()
            op = app.enqueue(ADVANCE, calls, variant.steps).wait(PHASE_TIMEOUT)
            wall = time.perf_counter() - started
        attempts = app.service.attempts(op.id)
        events = app.service.events(op.id, limit=10_000)
    finally:
        app.close()
    if bare_op.status is not Status.FINISHED:
        raise InvalidRunError(f"bare loop ended {bare_op.status.value}: {bare_op.last_error}")
    if op.status is not Status.FINISHED or len(attempts) != 1:
        raise InvalidRunError(
            f"advance run ended {op.status.value} with {len(attempts)} attempt(s): {op.last_error}"
        )
    [attempt] = attempts
    if attempt.outcome is not Outcome.SUCCESS or attempt.ended_at is None:
        raise InvalidRunError(f"advance attempt {attempt.outcome.value}")
    per_part = calls // parts
    final = op.progress
    if (
        final is None
        or final.completed != per_part
        or (variant.steps and final.step_index != variant.steps)
    ):
        raise InvalidRunError(f"final progress not written with the result: {final}")
    if op.result["calls"] != calls:
        raise InvalidRunError(f"the task made {op.result['calls']} calls, not {calls}")

    progress_events = [
        e for e in events if e.type is EventType.PROGRESS and e.run_no == attempt.number
    ]
    writes = len(progress_events) + 1  # + the final reading, written with the result
    duration = (attempt.ended_at - attempt.started_at).total_seconds()
    budget = duration / variant.progress_interval + variant.steps + 2
    # Writes within one step are paced by the interval; a step change may write at once.
    gaps = [
        (b.at - a.at).total_seconds()
        for a, b in itertools.pairwise(progress_events)
        if _step_of(a.data) == _step_of(b.data)
    ]
    loop_s = float(op.result["loop_s"])
    bare = bare_op.result
    us = loop_s / calls * 1e6
    bare_us = float(bare["bare_s"]) / calls * 1e6
    method_us = float(bare["method_s"]) / calls * 1e6
    return {
        "calls": calls,
        "progress_interval_s": variant.progress_interval,
        "steps": variant.steps,
        "us_per_call": round(us, 4),
        "bare_counter_us_per_call": round(bare_us, 4),
        "plain_method_us_per_call": round(method_us, 4),
        "ratio_to_bare_counter": round(us / bare_us, 2),
        "ratio_to_plain_method": round(us / method_us, 2),
        "loop_s": round(loop_s, 4),
        "run_duration_s": round(duration, 4),
        "enqueue_to_done_s": round(wall, 4),
        "progress_events": len(progress_events),
        "progress_writes": writes,
        "budget": round(budget, 2),
        "within_budget": writes <= budget,
        "writes_per_s": round(writes / duration, 2) if duration > 0 else None,
        "min_gap_within_step_s": round(min(gaps), 4) if gaps else None,
        "events_by_type": _count_types(events),
        **out,
    }


def _step_of(data: Any) -> Any:
    step = data.get("step") if isinstance(data, dict) else None
    return step.get("index") if isinstance(step, dict) else None


def _count_types(events: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in events:
        counts[e.type.value] = counts.get(e.type.value, 0) + 1
    return counts


# -- 2. cooperative cancel latency --------------------------------------------------------------
def bench_cancel(url: str, config: CancelConfig, trials: int, rng: random.Random) -> dict[str, Any]:
    """Cancel a spinning run ``trials`` times; latency = request to the code seeing it."""
    is_pg = url.startswith("postgres")
    app = make_app(url)
    latencies: list[float] = []
    calls: list[float] = []
    delays: list[float] = []
    out: dict[str, Any] = {}
    try:
        with (
            cpu_meter(is_pg, out),
            running_worker(app, concurrency=1, poll_interval=config.poll_interval),
        ):
            for i in range(CANCEL_WARMUP + trials):
                key = f"{config.name}-{i}-{uuid.uuid4().hex}"
                record = sighting(key)
                handle = app.enqueue(SPIN, key)
                if not record.started.wait(PHASE_TIMEOUT):
                    raise InvalidRunError(f"spinner {key} did not start")
                # Cancel at a random moment of the poll cycle, not just after the run began.
                delay = rng.uniform(0.0, config.poll_interval)
                time.sleep(delay)
                before = time.perf_counter()
                app.service.cancel(handle.id, reason="benchmark", by="bench_tracking")
                returned = time.perf_counter()
                if not record.seen.wait(PHASE_TIMEOUT) or record.seen_at is None:
                    raise InvalidRunError(f"spinner {key} never saw its cancel request")
                op = handle.wait(PHASE_TIMEOUT)
                if (
                    op.status is not Status.CANCELLED
                    or op.cancel_mode is not CancelMode.COOPERATIVE
                ):
                    raise InvalidRunError(
                        f"cancelled spinner ended {op.status.value}, mode {op.cancel_mode}"
                    )
                if i >= CANCEL_WARMUP:
                    latencies.append(record.seen_at - before)
                    calls.append(returned - before)
                    delays.append(delay)
    finally:
        app.close()
    return {
        "trials": trials,
        "poll_interval_s": config.poll_interval,
        "pushed": is_pg,
        "latency": stats_ms(latencies),
        "cancel_call": stats_ms(calls),
        "seen_before_cancel_returned": sum(
            1 for lat, call in zip(latencies, calls, strict=True) if lat < call
        ),
        "samples_ms": [round(s * 1000, 3) for s in latencies],
        "delay_before_cancel_s": {"min": round(min(delays), 3), "max": round(max(delays), 3)},
        **out,
    }


# -- 3. forced cancel of a process-isolated CPU spinner -----------------------------------------
def bench_forced(url: str, trials: int, workdir: Path, rng: random.Random) -> dict[str, Any]:
    """Cancel a CPU-bound child that ignores the request; time to status ``cancelled``."""
    is_pg = url.startswith("postgres")
    app = make_app(url)
    totals: list[float] = []
    seen_after: list[float] = []
    to_status: list[float] = []
    by_store: list[float] = []
    errors: set[str] = set()
    out: dict[str, Any] = {}
    try:
        with (
            cpu_meter(is_pg, out),
            running_worker(app, concurrency=1, poll_interval=FORCED_POLL_INTERVAL),
        ):
            for _ in range(trials):
                marker = workdir / f"burn-{uuid.uuid4().hex}"
                handle = app.enqueue(BURN, str(marker), PHASE_TIMEOUT)
                wait_for(partial(Path(f"{marker}.started").exists), "isolated run start")
                time.sleep(rng.uniform(0.0, FORCED_POLL_INTERVAL))
                requested_wall = time.time()
                before = time.perf_counter()
                app.service.cancel(handle.id, reason="benchmark", by="bench_tracking")
                op = wait_for(partial(_done, app, handle.id), "forced cancel")
                total = time.perf_counter() - before
                if op.status is not Status.CANCELLED or op.cancel_mode is not CancelMode.FORCED:
                    raise InvalidRunError(
                        f"forced run ended {op.status.value}, mode {op.cancel_mode}: "
                        f"{op.last_error}"
                    )
                [attempt] = app.service.attempts(op.id)
                if attempt.stop_mode is not StopMode.FORCED or attempt.ended_at is None:
                    raise InvalidRunError(f"forced attempt stop mode {attempt.stop_mode}")
                [request] = app.service.events(op.id, types=(EventType.CANCEL_REQUESTED,))
                seen_file = Path(f"{marker}.seen")
                if not seen_file.exists():
                    raise InvalidRunError("the isolated run never saw its cancel request")
                seen = float(seen_file.read_text()) - requested_wall
                totals.append(total)
                seen_after.append(seen)
                to_status.append(total - seen)
                by_store.append((attempt.ended_at - request.at).total_seconds())
                errors.add(op.last_error or "")
    finally:
        app.close()
    return {
        "trials": trials,
        "cancel_grace_s": BURN_GRACE_S,
        "poll_interval_s": FORCED_POLL_INTERVAL,
        "request_to_cancelled": stats_ms(totals),
        "beyond_grace": stats_ms([t - BURN_GRACE_S for t in totals]),
        "request_to_seen_in_child": stats_ms(seen_after),
        "seen_to_cancelled": stats_ms(to_status),
        "store_request_to_attempt_end": stats_ms(by_store),
        "errors": sorted(errors),
        **out,
    }


def _done(app: Longops, op_id: uuid.UUID) -> Any:
    op = app.service.get(op_id)
    return op if op.done else None


def wait_for(check: Callable[[], Any], what: str) -> Any:
    deadline = time.perf_counter() + PHASE_TIMEOUT
    while True:
        value = check()
        if value:
            return value
        if time.perf_counter() > deadline:
            raise InvalidRunError(f"{what}: not within {PHASE_TIMEOUT:g} s")
        time.sleep(STATUS_POLL_S)


# -- one repetition, medians ------------------------------------------------------------------
def run_dialect(
    dialect: str, cfg: BenchConfig, sizes: Sizes, rng: random.Random, forced: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {"advance": {}, "cancel": {}}
    t0 = time.perf_counter()
    for variant in VARIANTS:
        with fresh_database(dialect, f"adv_{variant.name}", cfg) as url:
            r = bench_advance(url, variant, sizes)
        results["advance"][variant.name] = r
        log(
            dialect,
            f"advance {variant.name}",
            f"{r['us_per_call']:.3f} us/call ({r['ratio_to_bare_counter']}x bare), "
            f"{r['run_duration_s']:.2f} s, {r['progress_writes']} writes "
            f"(budget {r['budget']:.1f})",
        )
    for config in CANCEL_CONFIGS[dialect]:
        with fresh_database(dialect, f"cancel_{config.name}", cfg) as url:
            r = bench_cancel(url, config, sizes.cancel_trials, rng)
        results["cancel"][config.name] = r
        lat = r["latency"]
        log(
            dialect,
            f"cancel {config.name}",
            f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, max {lat['max_ms']:.1f} ms",
        )
    if forced:
        with fresh_database(dialect, "forced", cfg) as url:
            r = bench_forced(url, sizes.forced_trials, cfg.workdir, rng)
        results["forced"] = r
        tot = r["request_to_cancelled"]
        log(dialect, "forced cancel", f"p50 {tot['p50_ms']:.0f} ms, max {tot['max_ms']:.0f} ms")
    results["wall_s"] = round(time.perf_counter() - t0, 1)
    return results


def median_run(runs: Sequence[dict[str, Any]], headline: Callable[[dict[str, Any]], float]) -> Any:
    ordered = sorted(runs, key=headline)
    return ordered[(len(ordered) - 1) // 2]


def combine(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the repetition with the median headline (all its details kept) plus every
    repetition's key values under ``runs``; cancel latencies are also pooled over all."""
    out: dict[str, Any] = {"advance": {}, "cancel": {}}
    for name in runs[0]["advance"]:
        per = [r["advance"][name] for r in runs]
        chosen = median_run(per, lambda r: float(r["us_per_call"]))
        out["advance"][name] = {
            **chosen,
            "runs": {
                key: [r[key] for r in per]
                for key in ("us_per_call", "run_duration_s", "progress_writes", "budget")
            },
            "within_budget_every_run": all(r["within_budget"] for r in per),
            "min_gap_within_step_s": min(
                (r["min_gap_within_step_s"] for r in per if r["min_gap_within_step_s"] is not None),
                default=None,
            ),
            "worst_writes_to_budget": round(
                max(r["progress_writes"] / r["budget"] for r in per), 3
            ),
        }
    for name in runs[0]["cancel"]:
        per = [r["cancel"][name] for r in runs]
        chosen = median_run(per, lambda r: float(r["latency"]["p50_ms"]))
        pooled = [s / 1000 for r in per for s in r["samples_ms"]]
        out["cancel"][name] = {
            **chosen,
            "runs": {"p50_ms": [r["latency"]["p50_ms"] for r in per]},
            "pooled": stats_ms(pooled),
        }
    if "forced" in runs[0]:
        per = [r["forced"] for r in runs]
        chosen = median_run(per, lambda r: float(r["request_to_cancelled"]["p50_ms"]))
        out["forced"] = {
            **chosen,
            "runs": {"p50_ms": [r["request_to_cancelled"]["p50_ms"] for r in per]},
        }
    out["repeat"] = len(runs)
    out["wall_s"] = round(sum(r["wall_s"] for r in runs), 1)
    return out


# -- targets --------------------------------------------------------------------------------
def evaluate(dialect: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with ``met``; recorded, never asserted."""
    out: list[dict[str, Any]] = []
    for name, r in results["advance"].items():
        worst = r["worst_writes_to_budget"]
        out.append(
            {
                "figure": f"progress writes, {name}",
                "key": f"advance.{name}.worst_writes_to_budget",
                "target": "<= 1 (writes <= duration/interval + steps + 2, every repetition)",
                "actual": worst,
                "met": bool(r["within_budget_every_run"]),
            }
        )
        gap = r["min_gap_within_step_s"]
        if gap is not None:
            interval = r["progress_interval_s"]
            out.append(
                {
                    "figure": f"progress write pacing, {name}",
                    "key": f"advance.{name}.min_gap_within_step_s",
                    "target": f">= {interval:g} s between two writes within one step",
                    "actual": gap,
                    "met": gap >= interval,
                }
            )
    for name, r in results["cancel"].items():
        worst = r["pooled"]["max_ms"]
        if dialect == "postgres":
            limit, why = 1000.0, "pushed by NOTIFY"
        else:
            limit = r["poll_interval_s"] * 1000
            why = "within the poll interval, as OperationService.cancel documents"
        out.append(
            {
                "figure": f"cooperative cancel latency, {name}, max of all trials",
                "key": f"cancel.{name}.pooled.max_ms",
                "target": f"<= {limit:g} ms ({why})",
                "actual": worst,
                "met": worst <= limit,
            }
        )
    return out


# -- reporting ------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def write_markdown(path: Path, docs: dict[str, dict[str, Any]]) -> None:
    any_doc = next(iter(docs.values()))
    m = any_doc["machine"]
    lines = [
        "# longops operation-tracking benchmark",
        "",
        f"- date: {m['date']}"
        + (" (quick run: 1/10 sizes, fewer trials)" if any_doc["quick"] else ""),
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['platform']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}, psycopg {m['psycopg']}",
        f"- PostgreSQL: {m['postgresql'] or 'n/a'}",
        f"- longops source: {m.get('source', 'n/a')}",
        "- one in-process worker (`app.worker()`), database on the same machine",
        "- produced by `benchmarks/bench_tracking.py`; see `benchmarks/README.md`",
        "",
    ]
    for dialect, doc in docs.items():
        res = doc["results"]
        lines += [
            f"## {dialect}",
            "",
            f"- started {doc['started_at']}; median of {res['repeat']} repetition(s) "
            f"(every value under `runs` in `tracking-{dialect}*.json`); wall {res['wall_s']} s",
            f"- load average (1/5/15 min) at start {doc['loadavg_at_start']}, "
            f"at end {doc['loadavg_at_end']}; CPU used by other processes during the "
            f"phases: {doc['other_processes_cpu_s']} s",
            "",
            "### Progress: ctx.advance() in one operation",
            "",
            "| run | calls | interval (s) | steps | µs/call | bare counter µs/call | x bare "
            "| plain method µs/call | x method | run (s) | progress writes | budget | within "
            "| every rep. within | min gap in a step (s) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in res["advance"].items():
            lines.append(
                f"| {name} | {r['calls']:,} | {r['progress_interval_s']:g} | {r['steps']} "
                f"| {fmt(r['us_per_call'], 3)} | {fmt(r['bare_counter_us_per_call'], 3)} "
                f"| {fmt(r['ratio_to_bare_counter'], 1)} "
                f"| {fmt(r['plain_method_us_per_call'], 3)} "
                f"| {fmt(r['ratio_to_plain_method'], 1)} | {fmt(r['run_duration_s'], 3)} "
                f"| {r['progress_writes']} | {fmt(r['budget'], 1)} | {fmt(r['within_budget'])} "
                f"| {fmt(r['within_budget_every_run'])} | {fmt(r['min_gap_within_step_s'], 3)} |"
            )
        lines += [
            "",
            "µs/call every repetition: "
            + "; ".join(
                f"{name} " + " / ".join(f"{v:.3f}" for v in r["runs"]["us_per_call"])
                for name, r in res["advance"].items()
            ),
            "",
            "### Cooperative cancel latency (request -> the code sees `ctx.cancelled`)",
            "",
            "| poll interval (s) | delivery | trials | p50 (ms) | p95 (ms) | max (ms) "
            "| all trials pooled p50 / p95 / max (ms) | cancel() call p50 (ms) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in res["cancel"].values():
            lat, pooled = r["latency"], r["pooled"]
            lines.append(
                f"| {r['poll_interval_s']:g} | {'NOTIFY' if r['pushed'] else 'polled'} "
                f"| {r['trials']} x {res['repeat']} | {fmt(lat['p50_ms'], 1)} "
                f"| {fmt(lat['p95_ms'], 1)} | {fmt(lat['max_ms'], 1)} "
                f"| {fmt(pooled['p50_ms'], 1)} / {fmt(pooled['p95_ms'], 1)} / "
                f"{fmt(pooled['max_ms'], 1)} | {fmt(r['cancel_call']['p50_ms'], 2)} |"
            )
        if "forced" in res:
            f = res["forced"]
            lines += [
                "",
                "### Forced cancel: process-isolated CPU spinner, "
                f"cancel_grace {f['cancel_grace_s']:g} s, poll interval {f['poll_interval_s']:g} s",
                "",
                "| figure | p50 (ms) | max (ms) |",
                "|---|---|---|",
            ]
            for key, label in (
                ("request_to_cancelled", "request -> status cancelled"),
                ("request_to_seen_in_child", "  request -> the child's ctx.cancelled"),
                ("seen_to_cancelled", "  then -> status cancelled (grace + SIGTERM + write)"),
                ("beyond_grace", "  of which beyond the grace period"),
                ("store_request_to_attempt_end", "request event -> attempt end (store times)"),
            ):
                lines.append(
                    f"| {label} | {fmt(f[key]['p50_ms'], 0)} | {fmt(f[key]['max_ms'], 0)} |"
                )
            lines += [
                "",
                f"{f['trials']} trials per repetition; ended with: {'; '.join(f['errors'])}",
            ]
        lines += ["", "### Targets", "", "| figure | target | actual | met |", "|---|---|---|---|"]
        for t in doc["targets"]:
            lines.append(
                f"| {t['figure']} | {t['target']} | {fmt(t['actual'], 3)} | {fmt(t['met'])} |"
            )
        lines.append("")
    lines += ["Targets are recorded, not asserted.", ""]
    path.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="1/10 of the calls, fewer trials")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repetitions of every phase; each figure is the median (default 3, --quick 1)",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("LONGOPS_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL),
        help="a PostgreSQL URL allowed to CREATE/DROP DATABASE (default %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--no-forced", action="store_true", help="skip the forced-cancel phase (process isolation)"
    )
    args = parser.parse_args(argv)
    dialects = DIALECTS if args.db == "both" else (args.db,)
    sizes = QUICK if args.quick else FULL
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    suffix = ".quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="longops-bench-tracking-"))
    machine = machine_info(args.pg_admin_url if "postgres" in dialects else None)
    print(f"longops tracking benchmark: {', '.join(dialects)}; sizes {asdict(sizes)}", flush=True)
    print(f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}", flush=True)
    # fresh_database only reads the admin URL and the work folder of the core config.
    cfg = BenchConfig(args.pg_admin_url, workdir, CORE_SIZES)
    collector = WarningCollector()
    logging.getLogger("longops").addHandler(collector)
    rng = random.Random(SEED)
    try:
        for dialect in dialects:
            started_at = datetime.now(UTC).isoformat(timespec="seconds")
            load_start = [round(x, 2) for x in os.getloadavg()]
            runs = []
            for i in range(args.repeat):
                if args.repeat > 1:
                    print(f"[{dialect:8}] repetition {i + 1} of {args.repeat}", flush=True)
                runs.append(run_dialect(dialect, cfg, sizes, rng, forced=not args.no_forced))
                if collector.records:
                    raise InvalidRunError(
                        "longops logged warnings during the run:\n" + "\n".join(collector.records)
                    )
            results = combine(runs)
            other = sum(
                phase["cpu"]["other_processes_s"]
                for run in runs
                for group in ("advance", "cancel")
                for phase in run[group].values()
            ) + sum(run["forced"]["cpu"]["other_processes_s"] for run in runs if "forced" in run)
            doc = {
                "dialect": dialect,
                "quick": args.quick,
                "sizes": asdict(sizes),
                "variants": [asdict(v) for v in VARIANTS],
                "machine": machine,
                "started_at": started_at,
                "loadavg_at_start": load_start,
                "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                "other_processes_cpu_s": round(other, 2),
                "results": results,
                "targets": evaluate(dialect, results),
            }
            (args.out / f"tracking-{dialect}{suffix}.json").write_text(json.dumps(doc, indent=2))
    except InvalidRunError as exc:
        print(f"INVALID RUN: {exc}", file=sys.stderr)
        print(f"work folder kept: {workdir}", file=sys.stderr)
        return 2
    except BaseException:
        print(f"work folder kept: {workdir}", file=sys.stderr)
        raise
    finally:
        logging.getLogger("longops").removeHandler(collector)
    shutil.rmtree(workdir, ignore_errors=True)
    docs = {}
    for dialect in DIALECTS:
        path = args.out / f"tracking-{dialect}{suffix}.json"
        if path.exists():
            docs[dialect] = json.loads(path.read_text())
    write_markdown(args.out / f"tracking{suffix}.md", docs)
    for dialect, doc in docs.items():
        for t in doc["targets"]:
            state = "met" if t["met"] else "MISSED"
            print(f"target {dialect} {t['figure']} {t['target']}: {t['actual']} -> {state}")
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
