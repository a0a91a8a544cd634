"""Progress readings, the in-memory counter, and the rate/ETA estimator (pure, no I/O)."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta

import pytest

from longops.domain.errors import ValidationError
from longops.domain.progress import Estimator, Progress, ProgressCounter, history_estimate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_percent_without_steps_is_completed_over_total() -> None:
    assert Progress(completed=25, total=200).percent == 12.5
    assert Progress(completed=250, total=200).percent == 100.0  # never past the end
    assert Progress(completed=25).percent is None  # no total, no percent
    assert Progress().fraction is None


def test_steps_share_the_bar_so_it_never_jumps_back() -> None:
    # Step 2 of 4 at half way: one whole step plus half of another, of four.
    assert Progress(step_index=2, step_count=4, completed=5, total=10).percent == 37.5
    # A new step that has not counted yet sits at its start, not at zero.
    assert Progress(step_index=3, step_count=4).percent == 50.0
    assert Progress(step_index=1, step_count=5, step_name="Reading").step_label == (
        "Step 1 of 5: Reading"
    )


def test_json_round_trip_keeps_every_field() -> None:
    reading = Progress(
        completed=3,
        total=7.5,
        unit="lines",
        message="posting",
        step_name="Posting",
        step_index=2,
        step_count=3,
        rate=12.25,
        eta_at=T0,
        eta_source="rate",
        updated_at=T0,
    )
    data = reading.to_json()
    assert data["percent"] == round(((2 - 1) + 3 / 7.5) / 3 * 100, 2)
    assert data["step"] == {"name": "Posting", "index": 2, "of": 3, "label": "Step 2 of 3: Posting"}
    assert Progress.from_json(data) == reading


def test_counter_versions_tell_changes_and_steps_apart() -> None:
    counter = ProgressCounter()
    assert counter.versions() == (0, 0)
    counter.advance()
    counter.advance(2.5)
    assert counter.versions() == (2, 0)
    assert counter.snapshot().completed == 3.5
    counter.step("Posting", 2, 3)
    assert counter.versions() == (3, 1)
    # A step starts its own count afresh.
    assert counter.snapshot().completed is None
    counter.set(message="half way")
    assert counter.snapshot().message == "half way"
    assert counter.snapshot().step_label == "Step 2 of 3: Posting"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.set(completed=-1), "completed"),
        (lambda c: c.set(completed=math.nan), "completed"),
        (lambda c: c.set(total=0), "total"),
        (lambda c: c.set(total=math.inf), "total"),
        (lambda c: c.set(completed="3"), "completed"),
        (lambda c: c.set(unit="x" * 41), "unit"),
        (lambda c: c.set(message="x" * 501), "message"),
        (lambda c: c.advance(-1), "n"),
        (lambda c: c.advance(math.inf), "n"),
        (lambda c: c.advance(True), "n"),
        (lambda c: c.step("s", 0, 3), "index"),
        (lambda c: c.step("s", 4, 3), "index"),
        (lambda c: c.step("s", 1, 0), "of"),
        (lambda c: c.step(3, 1, 2), "name"),
    ],
)
def test_bad_progress_input_names_the_field_and_changes_nothing(call: object, field: str) -> None:
    counter = ProgressCounter()
    counter.set(completed=5, total=10, unit="rows", message="before")
    before = (counter.snapshot(), counter.versions())
    with pytest.raises(ValidationError) as caught:
        call(counter)  # type: ignore[operator]
    assert caught.value.field == field
    assert (counter.snapshot(), counter.versions()) == before


def test_counter_loses_no_increment_across_threads() -> None:
    counter = ProgressCounter()

    def work() -> None:
        for _ in range(20_000):
            counter.advance()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.snapshot().completed == 80_000
    assert counter.versions()[0] == 80_000


def test_estimator_rate_and_eta_from_a_steady_pace() -> None:
    est = Estimator()
    first = est.observe(Progress(completed=0, total=1000), T0)
    assert (first.rate, first.eta_at, first.updated_at) == (None, None, T0)  # a baseline
    reading = None
    for second in range(1, 31):
        # 10 items a second out of 1,000.
        reading = est.observe(
            Progress(completed=10 * second, total=1000), T0 + timedelta(seconds=second)
        )
    assert reading is not None
    assert reading.rate == pytest.approx(10.0)
    assert reading.eta_source == "rate"
    assert reading.updated_at == T0 + timedelta(seconds=30)
    # 700 left at 10 a second: 70 s from the last reading.
    assert reading.eta_at is not None
    assert (reading.eta_at - reading.updated_at).total_seconds() == pytest.approx(70.0)


def test_estimator_smooths_a_change_of_pace_rather_than_jumping() -> None:
    est = Estimator()
    est.observe(Progress(completed=0, total=10_000), T0)
    done = 0
    for second in range(1, 61):
        done += 10
        est.observe(Progress(completed=done, total=10_000), T0 + timedelta(seconds=second))
    # The pace drops to 1 a second for one second: the smoothed rate moves only part way.
    reading = est.observe(Progress(completed=done + 1, total=10_000), T0 + timedelta(seconds=61))
    assert reading.rate is not None
    assert 1.0 < reading.rate < 10.0
    assert reading.rate > 9.0


def test_estimator_without_total_gives_a_rate_but_no_eta() -> None:
    est = Estimator()
    est.observe(Progress(completed=0), T0)
    reading = est.observe(Progress(completed=50), T0 + timedelta(seconds=5))
    assert reading.rate == pytest.approx(10.0)
    assert reading.eta_at is None
    assert reading.eta_source is None


def test_estimator_first_reading_is_a_baseline_not_a_rate() -> None:
    # A run resuming from a checkpoint at half way reports 500 of 1,000 first thing.
    est = Estimator()
    first = est.observe(Progress(completed=500, total=1000), T0 + timedelta(seconds=0.1))
    assert (first.rate, first.eta_at) == (None, None)
    later = est.observe(Progress(completed=510, total=1000), T0 + timedelta(seconds=1.1))
    assert later.rate == pytest.approx(10.0)
    assert later.eta_at is not None
    assert (later.eta_at - later.updated_at).total_seconds() == pytest.approx(49.0)  # type: ignore[operator]


def test_a_new_step_rate_starts_from_its_own_pace_not_from_zero() -> None:
    est = Estimator()
    est.observe(Progress(completed=0, step_index=1, step_count=2), T0)
    for second in range(1, 6):
        est.observe(
            Progress(completed=10 * second, step_index=1, step_count=2),
            T0 + timedelta(seconds=second),
        )
    # Step 2 begins (its count at 0), then runs at 5 a second.
    est.observe(Progress(completed=0, step_index=2, step_count=2), T0 + timedelta(seconds=6))
    reading = est.observe(
        Progress(completed=5, step_index=2, step_count=2), T0 + timedelta(seconds=7)
    )
    assert reading.rate == pytest.approx(5.0)


def test_a_finished_reading_is_a_full_bar() -> None:
    reading = Progress(step_index=2, step_count=2, step_name="Reindexing", complete=True)
    assert reading.percent == 100.0
    assert Progress.from_json(reading.to_json()) == reading


def test_estimator_rate_restarts_with_each_step() -> None:
    est = Estimator()
    est.observe(Progress(completed=0, step_index=1, step_count=2), T0)
    est.observe(Progress(completed=100, step_index=1, step_count=2), T0 + timedelta(seconds=1))
    reading = est.observe(Progress(step_index=2, step_count=2), T0 + timedelta(seconds=2))
    assert reading.rate is None
    reading = est.observe(
        Progress(completed=4, total=8, step_index=2, step_count=2), T0 + timedelta(seconds=4)
    )
    assert reading.rate == pytest.approx(2.0)


def test_history_estimate_is_the_median() -> None:
    assert history_estimate([]) is None
    assert history_estimate([10.0, 50.0, 12.0]) == timedelta(seconds=12)
    assert history_estimate([10.0, 20.0]) == timedelta(seconds=15)


def test_a_new_step_drops_the_last_steps_message() -> None:
    # "ledger 4 of 4" belonged to step 1: shown during step 2 it is a stale text (issue 17).
    counter = ProgressCounter()
    counter.step("Posting ledgers", 1, 2)
    counter.set(completed=4, total=4, unit="ledgers", message="ledger 4 of 4")
    counter.step("Closing", 2, 2)
    reading = counter.snapshot()
    assert (reading.message, reading.completed, reading.unit) == (None, None, None)
    assert reading.step_label == "Step 2 of 2: Closing"
