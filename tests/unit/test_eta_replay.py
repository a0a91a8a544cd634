"""The ETA, scored against real runs: recorded progress of multi-step runs with uneven
steps (``fixtures/eta_runs.json``, written by ``fixtures/record_eta_runs.py`` from real
runs of ``tests/apps/eta_app.py``) is replayed through the estimator, and the ETA shown at
25, 50 and 75 % of each run's real duration is compared with its real end.

Two ways are scored: the worker's own estimate (each step's rate, the remaining steps as
equal shares of the bar at the run's pace) and the read-time estimate with each step's
share learned from the task's other recorded runs (``profile_eta``, leave-one-out).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from longops.domain.progress import (
    ETA_NOISE,
    ETA_NOISE_FLOOR,
    Estimator,
    Progress,
    profile_eta,
    step_durations,
    step_profile,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RUNS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "eta_runs.json").read_text()
)["runs"]
POINTS = (0.25, 0.5, 0.75)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _durations(run: dict[str, Any]) -> list[float] | None:
    readings = [(_at(r[0]), r[1], r[2]) for r in run["readings"]]
    return step_durations(readings, _at(run["seconds"]))


def _replay(run: dict[str, Any], profile: tuple[float, ...] | None) -> list[tuple[float, Any]]:
    est = Estimator()
    shown = []
    for t, index, of, completed, total in run["readings"]:
        reading = est.observe(
            Progress(completed=completed, total=total, step_index=index, step_count=of), _at(t)
        )
        if profile is not None:
            reading = profile_eta(reading, T0, profile) or reading
        shown.append((t, reading.eta_at))
    return shown


def _errors(learned: bool) -> dict[float, list[float]]:
    errors: dict[float, list[float]] = {p: [] for p in POINTS}
    for k, run in enumerate(RUNS):
        profile = None
        if learned:
            others = [
                _durations(r) for j, r in enumerate(RUNS) if j != k and r["task"] == run["task"]
            ]
            profile = step_profile([d for d in others if d])
            assert profile is not None
        shown = _replay(run, profile)
        end = run["seconds"]
        for p in POINTS:
            now = p * end
            etas = [eta for t, eta in shown if t <= now]
            assert etas, (run["task"], p)
            assert etas[-1] is not None, (run["task"], p)
            predicted = (etas[-1] - T0).total_seconds()
            errors[p].append(abs(predicted - end) / (end - now))
    return errors


def test_the_fixture_holds_real_multi_step_runs_with_uneven_steps() -> None:
    assert len(RUNS) >= 10
    assert {r["task"] for r in RUNS} == {"eta.report", "eta.import"}
    for run in RUNS:
        steps = _durations(run)
        assert steps is not None
        assert len(steps) >= 3
        assert max(steps) > 3 * min(steps)  # uneven: a step's share is not 1/n of the time


@pytest.mark.parametrize("learned", [False, True], ids=["equal-shares", "learned-shares"])
def test_median_eta_error_is_within_a_fifth_of_the_time_left(learned: bool) -> None:
    errors = _errors(learned)
    medians = {p: statistics.median(v) for p, v in errors.items()}
    print(f"median ETA error ({'learned' if learned else 'equal'}):", medians)
    for p, median in medians.items():
        assert median <= 0.20, (p, medians)


def test_the_worker_eta_never_comes_earlier_by_more_than_the_noise() -> None:
    for run in RUNS:
        previous = None
        for t, eta in _replay(run, None):
            if eta is not None and previous is not None:
                noise = max(ETA_NOISE * (previous - _at(t)).total_seconds(), ETA_NOISE_FLOOR)
                assert (previous - eta).total_seconds() <= noise + 1e-6
            previous = eta if eta is not None else previous


def test_a_fast_first_step_does_not_promise_a_fast_end_once_past_runs_are_known() -> None:
    # Like the demo's report: step 1 takes 10 s, step 2 100 s, step 3 1 s (shares 1/3 each).
    profile = step_profile([[10.0, 100.0, 1.0], [12.0, 95.0, 1.0]])
    assert profile == (11.0, 97.5, 1.0)
    est = Estimator()
    reading = None
    for second in range(11):
        reading = est.observe(
            Progress(completed=second * 10, total=100, step_index=1, step_count=3), _at(second)
        )
    assert reading is not None
    own = (reading.eta_at - _at(10)).total_seconds()  # type: ignore[operator]
    learned = profile_eta(reading, T0, profile)
    assert learned is not None
    assert learned.eta_source == "steps"
    left = (learned.eta_at - _at(10)).total_seconds()  # type: ignore[operator]
    assert 80 <= left <= 120, left  # the real end is ~99 s away
    assert own < left


def _demo_report_run(pages: int = 90, seconds_per_page: float = 1.0) -> dict[str, Any]:
    """The readings of ``demo.render_report`` (4 ledgers at half a page each, the pages, a
    one-page publish), as the worker flushes them: the shape of issue 17's first run."""
    readings: list[list[Any]] = []
    t = 0.0
    for part in range(1, 5):
        readings.append([t, 1, 3, part, 4])
        t += seconds_per_page / 2
    readings.append([t, 2, 3, 0, pages])
    for page in range(1, pages + 1):
        t += seconds_per_page
        readings.append([t, 2, 3, page, pages])
    readings.append([t, 3, 3, None, None])
    return {"task": "demo.render_report", "seconds": t + seconds_per_page, "readings": readings}


def test_a_first_run_with_a_long_middle_step_converges_on_its_end() -> None:
    # No finished run to learn the shares from: the worker's own estimate is all there is.
    # It used to size the steps left like the long current one at the run's pace, so the
    # ETA drifted later all through the long step (230 % off at 75 %).
    run = _demo_report_run()
    shown = _replay(run, None)
    end = run["seconds"]
    for p in (0.25, 0.5, 0.75, 0.9):
        now = p * end
        eta = [e for t, e in shown if t <= now][-1]
        assert eta is not None
        error = abs((eta - T0).total_seconds() - end) / (end - now)
        assert error <= 0.20, (p, error)


def test_a_first_run_eta_says_it_is_a_guess_while_steps_are_left() -> None:
    est = Estimator()
    sources = []
    for t, index, of, completed, total in _demo_report_run(pages=10)["readings"]:
        reading = est.observe(
            Progress(completed=completed, total=total, step_index=index, step_count=of), _at(t)
        )
        if reading.eta_at is not None:
            sources.append((index, reading.eta_source))
    assert (2, "guess") in sources
    assert {source for index, source in sources if index == 3} <= {"rate"}


def test_the_bar_fills_the_learned_step_shares_the_eta_uses() -> None:
    # Issue 17 P1: equal thirds on the bar while the ETA used the past runs' shares.
    profile = (10.0, 80.0, 10.0)
    reading = Progress(
        completed=50, total=100, step_index=2, step_count=3, updated_at=_at(50), rate=1.0
    )
    assert reading.percent == 50.0  # equal thirds: 1/3 + 1/2 * 1/3
    learned = profile_eta(reading, T0, profile)
    assert learned is not None
    assert learned.percent == 50.0  # (10 + 40) / 100
    later = profile_eta(replace(reading, completed=25), T0, profile)
    assert later is not None
    assert later.percent == 30.0  # (10 + 20) / 100, not 41.67
    assert replace(reading, step_index=3, completed=None).percent == pytest.approx(66.67)
    last = profile_eta(replace(reading, step_index=3, completed=None), T0, profile)
    assert last is not None
    assert last.percent == 90.0
