"""Progress: what a running operation reports about itself, and how rate and ETA follow.

Task code reports through the run context (``ctx.progress``, ``ctx.advance``, ``ctx.step``);
those calls only change a :class:`ProgressCounter` in memory. The worker reads the counter
at most once per ``progress_interval`` (and at once on a step change), turns it into a
:class:`Progress` with an :class:`Estimator`, and writes that. A million ``advance()`` calls
therefore cost a million increments and a handful of writes.

Percent: without steps it is ``completed / total``. With steps, a step's own
``completed / total`` fills that step's share of the bar, so "Step 2 of 4" at half way is
37.5 %: the bar never jumps back when a new step starts counting from zero.

Example::

    >>> counter = ProgressCounter()
    >>> counter.set(completed=50, total=200, unit="lines")
    >>> counter.snapshot().percent
    25.0
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from longops.domain.errors import ValidationError
from longops.domain.text import storable_text

DEFAULT_STALL_AFTER = timedelta(minutes=10)
MAX_MESSAGE = 500
MAX_UNIT = 40
MAX_STEP_NAME = 200
RATE_TIME_CONSTANT = 15.0
"""Seconds over which the smoothed rate forgets older speed (an exponential moving average
weighted by elapsed time, so uneven flush intervals weigh correctly)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """A reading of an operation's progress, as stored and shown.

    ``rate`` is in ``unit`` per second within the current step; ``eta_at`` is when the whole
    operation is expected to end, from the smoothed rate (``eta_source = "rate"``) or, before
    any progress, from the task's recent run durations (``"history"``).
    """

    completed: float | None = None
    total: float | None = None
    unit: str | None = None
    message: str | None = None
    step_name: str | None = None
    step_index: int | None = None
    step_count: int | None = None
    rate: float | None = None
    eta_at: datetime | None = None
    eta_source: str | None = None
    updated_at: datetime | None = None
    complete: bool = False
    """The run finished its work: the bar is full whatever the last count said."""
    step_shares: tuple[float, ...] | None = None
    """Each step's expected seconds, learned from past runs (set at read time by
    :func:`profile_eta`, never stored): the bar fills each step's share of the time, as the
    ETA counts it, instead of equal shares."""

    @property
    def fraction(self) -> float | None:
        """How much of the whole is done, 0..1, or None when nothing says."""
        if self.complete:
            return 1.0
        in_step = None
        if self.completed is not None and self.total:
            in_step = min(max(self.completed / self.total, 0.0), 1.0)
        if self.step_count:
            index = self.step_index or 1
            shares = self.step_shares
            if shares and len(shares) == self.step_count and sum(shares) > 0:
                done = sum(shares[: index - 1]) + shares[index - 1] * (in_step or 0.0)
                return min(done / sum(shares), 1.0)
            return min(((index - 1) + (in_step or 0.0)) / self.step_count, 1.0)
        return in_step

    @property
    def percent(self) -> float | None:
        fraction = self.fraction
        return None if fraction is None else round(fraction * 100, 2)

    @property
    def step_label(self) -> str | None:
        """'Step 2 of 5: Posting lines', as Business Central-style pages show it."""
        if self.step_index is None or self.step_count is None:
            return None
        label = f"Step {self.step_index} of {self.step_count}"
        return f"{label}: {self.step_name}" if self.step_name else label

    def to_json(self) -> dict[str, Any]:
        return {
            "completed": _num(self.completed),
            "total": _num(self.total),
            "unit": self.unit,
            "percent": self.percent,
            "message": self.message,
            "step": (
                None
                if self.step_index is None
                else {
                    "name": self.step_name,
                    "index": self.step_index,
                    "of": self.step_count,
                    "label": self.step_label,
                }
            ),
            "rate": None if self.rate is None else round(self.rate, 3),
            "eta_at": None if self.eta_at is None else self.eta_at.isoformat(),
            "eta_source": self.eta_source,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        step = data.get("step") or {}
        return cls(
            completed=data.get("completed"),
            total=data.get("total"),
            unit=data.get("unit"),
            message=data.get("message"),
            step_name=step.get("name"),
            step_index=step.get("index"),
            step_count=step.get("of"),
            rate=data.get("rate"),
            eta_at=_dt(data.get("eta_at")),
            eta_source=data.get("eta_source"),
            updated_at=_dt(data.get("updated_at")),
            complete=bool(data.get("complete", False)),
        )


def _num(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _check_number(field: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, "must be a number", value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        rule = "must be a finite number above 0" if positive else "must be a finite number >= 0"
        raise ValidationError(field, rule, value)
    return value


def _check_text(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string", value)
    if len(value) > limit:
        raise ValidationError(field, f"must be at most {limit} characters")
    # Task code's text: NUL and lone surrogates as visible escapes (longops.domain.text).
    return storable_text(value)


class ProgressCounter:
    """The in-memory progress of one run. Cheap to change, read by whoever flushes it.

    ``version`` changes with every change and ``step_version`` with every step, so a
    flusher can tell whether there is anything new and whether it must write at once.
    Thread-safe: task code may report from several threads.
    """

    __slots__ = (
        "_lock",
        "completed",
        "max_message",
        "message",
        "step_count",
        "step_index",
        "step_name",
        "step_version",
        "total",
        "unit",
        "version",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.completed: float | None = None
        self.total: float | None = None
        self.unit: str | None = None
        self.message: str | None = None
        self.step_name: str | None = None
        self.step_index: int | None = None
        self.step_count: int | None = None
        self.version = 0
        self.step_version = 0
        self.max_message = MAX_MESSAGE
        """Characters a message may have (``LONGOPS_MAX_PROGRESS_MESSAGE_CHARS``)."""

    def set(
        self,
        completed: float | None = None,
        total: float | None = None,
        unit: str | None = None,
        message: str | None = None,
    ) -> None:
        """Set any of the values (None leaves a value as it is); refuses bad input whole."""
        if completed is not None:
            completed = _check_number("completed", completed)
        if total is not None:
            total = _check_number("total", total, positive=True)
        if unit is not None:
            unit = _check_text("unit", unit, MAX_UNIT)
        if message is not None:
            message = _check_text("message", message, self.max_message)
        with self._lock:
            if completed is not None:
                self.completed = completed
            if total is not None:
                self.total = total
            if unit is not None:
                self.unit = unit
            if message is not None:
                self.message = message
            self.version += 1

    def advance(self, n: float = 1) -> None:
        # The hot path: one type check, one lock, two additions.
        if type(n) is not int and (
            isinstance(n, bool) or not isinstance(n, float) or not math.isfinite(n)
        ):
            raise ValidationError("n", "must be a finite number", n)
        if n < 0:
            raise ValidationError("n", "must not be negative", n)
        with self._lock:
            self.completed = (self.completed or 0) + n
            self.version += 1

    def step(self, name: str, index: int, of: int) -> None:
        """Start step ``index`` of ``of``; the step's own completed/total/message start
        afresh."""
        name = _check_text("name", name, MAX_STEP_NAME)
        for field, value in (("index", index), ("of", of)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(field, "must be a whole number", value)
        if not 1 <= of <= 10_000:
            raise ValidationError("of", "must be between 1 and 10000", of)
        if not 1 <= index <= of:
            raise ValidationError("index", f"must be between 1 and {of}", index)
        with self._lock:
            self.step_name, self.step_index, self.step_count = name, index, of
            # A step's count, unit and message are its own: "ledger 4 of 4" of step 1
            # would be a stale text during step 2.
            self.completed = self.total = self.unit = self.message = None
            self.version += 1
            self.step_version += 1

    def load(self, progress: Progress, version: int, step_version: int) -> None:
        """Take over a reading made elsewhere (a child process reports its counter); a
        reading older than the one already taken is ignored."""
        with self._lock:
            if version < self.version:
                return
            self.completed, self.total, self.unit = (
                progress.completed,
                progress.total,
                progress.unit,
            )
            self.message = progress.message
            self.step_name, self.step_index, self.step_count = (
                progress.step_name,
                progress.step_index,
                progress.step_count,
            )
            self.version, self.step_version = version, step_version

    def snapshot(self) -> Progress:
        with self._lock:
            return self.snapshot_unlocked()

    def versions(self) -> tuple[int, int]:
        return self.version, self.step_version

    def read(self) -> tuple[Progress, int, int]:
        """A snapshot and the versions it belongs to, taken together."""
        with self._lock:
            return self.snapshot_unlocked(), self.version, self.step_version

    def snapshot_unlocked(self) -> Progress:
        return Progress(
            completed=self.completed,
            total=self.total,
            unit=self.unit,
            message=self.message,
            step_name=self.step_name,
            step_index=self.step_index,
            step_count=self.step_count,
        )


ETA_NOISE = 0.15
"""How far (a share of the time left) one reading may bring the ETA earlier: a run that
speeds up a little moves the ETA a little each reading, never a leap backwards."""
ETA_NOISE_FLOOR = 1.0
"""... and at least this many seconds (small jitters of a short run)."""

ETA_WORDS = {
    "rate": "about",
    "guess": "a guess",
    "steps": "from past runs",
    "history": "from past runs",
}
"""How sure an ETA is, in words, by its ``eta_source``: from this run's own pace alone
("about"), a guess (``"guess"``: steps are left whose length nothing told yet, sized like
this run's finished steps), or its pace weighed with the task's past runs ("from past
runs")."""


class Estimator:
    """Smoothed rate and ETA for one run, fed each reading as it is flushed.

    The first reading is the baseline: a run that resumes from a checkpoint reports a big
    jump first, and a rate measured from the run's start would promise it ends at once.

    With steps, each step has its own rate (a new step measures afresh) and the ETA is the
    current step's time left at its own pace plus the remaining steps' expected durations,
    here the average of the steps this run has finished (in the first step, the first
    step's own expected length); ``eta_source = "guess"`` while steps remain. Where the
    task has past runs, reads replace this with :func:`profile_eta` (each step's share
    learned from them). The ETA never comes earlier
    by more than the noise (``ETA_NOISE``) at one reading.

    Example::

        est = Estimator()
        reading = est.observe(counter.snapshot(), now)   # rate and eta_at from the 2nd on
    """

    def __init__(self, *, time_constant: float = RATE_TIME_CONSTANT) -> None:
        self.tau = time_constant
        self._last_at: datetime | None = None
        self._last_fraction: float | None = None
        self._last_in_step: float | None = None
        self._last_completed: float | None = None
        self._last_step: int | None = None
        self._eta_at: datetime | None = None
        self._step_at: datetime | None = None
        self._done_steps: list[float] = []
        self.unit_rate: float | None = None
        self.fraction_rate: float | None = None
        self.step_rate: float | None = None
        """The current step's own fraction per second (of the step, 0..1)."""

    def observe(self, reading: Progress, at: datetime) -> Progress:
        fraction = reading.fraction
        in_step = _in_step(reading)
        dt = 0.0 if self._last_at is None else (at - self._last_at).total_seconds()
        if self._last_at is None:
            self._step_at = at
            self._remember(reading, fraction, in_step, at)
        elif dt > 0:
            weight = 1 - math.exp(-dt / self.tau)
            if reading.step_index != self._last_step:
                if self._step_at is not None and self._last_step is not None:
                    self._done_steps.append((at - self._step_at).total_seconds())
                self._step_at = at
                # A new step counts from zero: its first reading is the baseline of a rate
                # measured afresh (not a speed of zero that the average would creep up from).
                self.unit_rate = None
                self.step_rate = None
            else:
                if reading.completed is not None:
                    inst = max(reading.completed - (self._last_completed or 0.0), 0.0) / dt
                    self.unit_rate = _ema(self.unit_rate, inst, weight)
                if in_step is not None and self._last_in_step is not None:
                    inst = max(in_step - self._last_in_step, 0.0) / dt
                    self.step_rate = _ema(self.step_rate, inst, weight)
            if fraction is not None and self._last_fraction is not None:
                inst = max(fraction - self._last_fraction, 0.0) / dt
                self.fraction_rate = _ema(self.fraction_rate, inst, weight)
            self._remember(reading, fraction, in_step, at)
        left, source = self._left(reading, in_step, at)
        eta_at = None
        if left is not None and left < 10 * 365 * 86400:
            eta_at = at + timedelta(seconds=left)
            previous = self._eta_at
            if previous is not None and eta_at < previous:
                # Sooner than last time: by at most the noise of the time that was left.
                noise = max(ETA_NOISE * (previous - at).total_seconds(), ETA_NOISE_FLOOR)
                eta_at = max(eta_at, previous - timedelta(seconds=noise))
            self._eta_at = eta_at
        return replace(
            reading,
            rate=self.unit_rate,
            eta_at=eta_at,
            eta_source=source if eta_at is not None else None,
            updated_at=at,
        )

    def _left(
        self, reading: Progress, in_step: float | None, at: datetime
    ) -> tuple[float | None, str]:
        """Seconds left, and where they come from ('rate': this run's own pace)."""
        count, index, fraction = reading.step_count, reading.step_index, reading.fraction
        if fraction is None or not self.fraction_rate:
            return None, "rate"
        if not count or not index or not self.step_rate or in_step is None:
            # No steps, or a step that has not shown its own pace yet: the whole bar's.
            return (1.0 - fraction) / self.fraction_rate, "rate"
        # The current step at its own pace; each remaining step an equal share of the bar
        # at the run's smoothed pace.
        current_left = (1.0 - in_step) / self.step_rate
        if index >= count:
            return current_left, "rate"
        # Each remaining step: as long as the finished steps of this run took on average
        # (in the first step, as long as it is going to take). Not the run's smoothed pace:
        # that forgets a short first step and comes to size every later step like the long
        # current one, so the ETA drifts later the longer the long step lasts. Without past
        # runs the later steps' lengths are unknown: the ETA says it is a guess.
        done = self._done_steps
        current = (at - (self._step_at or at)).total_seconds() + current_left
        each = sum(done) / len(done) if done else current
        return current_left + (count - index) * each, "guess"

    def _remember(
        self, reading: Progress, fraction: float | None, in_step: float | None, at: datetime
    ) -> None:
        self._last_at = at
        self._last_fraction = fraction
        self._last_in_step = in_step
        self._last_completed = reading.completed
        self._last_step = reading.step_index


def _in_step(reading: Progress) -> float | None:
    if reading.completed is None or not reading.total:
        return None
    return min(max(reading.completed / reading.total, 0.0), 1.0)


def _speed(profile: Sequence[float], index: int, in_step: float, elapsed: float) -> float:
    """How much slower (>1) or faster (<1) this run goes than the past runs, from the work
    done so far; 1 until enough is done to tell, and bounded (one odd step is not a trend)."""
    expected = sum(profile[: index - 1]) + profile[index - 1] * in_step
    total = sum(profile)
    if total <= 0 or expected < 0.05 * total or elapsed <= 0:
        return 1.0
    return min(max(elapsed / expected, 0.25), 4.0)


def step_profile(runs: Sequence[Sequence[float]]) -> tuple[float, ...] | None:
    """Each step's expected seconds from past runs' step durations (the median per step
    over the runs with the most common step count), or None without any.

    Example::

        >>> step_profile([[1.0, 8.0, 1.0], [2.0, 10.0, 1.0], [1.0, 9.0, 3.0]])
        (1.0, 9.0, 1.0)
    """
    counts: dict[int, int] = {}
    for run in runs:
        if run:
            counts[len(run)] = counts.get(len(run), 0) + 1
    if not counts:
        return None
    count = max(counts, key=lambda n: (counts[n], n))
    same = [run for run in runs if len(run) == count]
    return tuple(_median([run[i] for run in same]) for i in range(count))


def step_durations(
    readings: Sequence[tuple[datetime, int | None, int | None]], ended_at: datetime
) -> list[float] | None:
    """One run's seconds per step from its progress readings ``(at, step index, step
    count)`` in time order and its end; None when it did not report steps throughout."""
    starts: dict[int, datetime] = {}
    count = None
    for at, index, of in readings:
        if index is None or of is None:
            continue
        count = of
        starts.setdefault(index, at)
    if count is None or set(starts) != set(range(1, count + 1)):
        return None
    bounds = [starts[i] for i in range(1, count + 1)] + [ended_at]
    return [max((bounds[i + 1] - bounds[i]).total_seconds(), 0.0) for i in range(count)]


def profile_eta(
    progress: Progress, started_at: datetime, profile: Sequence[float]
) -> Progress | None:
    """A running step operation's reading with its ETA from the task's past runs
    (``eta_source = "steps"``): the current step's time left at its own pace, the
    remaining steps' past durations scaled by this run's speed; None when the reading and
    the profile do not fit (another step count, no steps, no time of reading)."""
    count, index, at = progress.step_count, progress.step_index, progress.updated_at
    if not count or not index or at is None or len(profile) != count or progress.complete:
        return None
    in_step = _in_step(progress) or 0.0
    elapsed = max((at - started_at).total_seconds(), 0.0)
    speed = _speed(profile, index, in_step, elapsed)
    if progress.rate and progress.total and progress.completed is not None:
        current_left = max(progress.total - progress.completed, 0.0) / progress.rate
    else:
        current_left = profile[index - 1] * (1.0 - in_step) * speed
    left = current_left + sum(profile[index:]) * speed
    return replace(
        progress,
        eta_at=at + timedelta(seconds=left),
        eta_source="steps",
        step_shares=tuple(profile),
    )


def _ema(previous: float | None, value: float, weight: float) -> float:
    return value if previous is None else previous + weight * (value - previous)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def eta_words(progress: Progress | None) -> str:
    """The ETA's confidence in words: 'about' (this run's pace) or 'from past runs'."""
    if progress is None or progress.eta_source is None:
        return ""
    return ETA_WORDS.get(progress.eta_source, "about")


def history_estimate(durations: list[float]) -> timedelta | None:
    """The expected run time from recent successful runs (their median), or None.

    Example::

        >>> history_estimate([10.0, 12.0, 50.0])
        datetime.timedelta(seconds=12)
    """
    if not durations:
        return None
    ordered = sorted(durations)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return timedelta(seconds=median)


def check_interval(field: str, value: timedelta | float, *, low: float, high: float) -> timedelta:
    """Validate a per-task duration given as seconds or a timedelta."""
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise ValidationError(field, "must be a number of seconds", value)
    td = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    if not low <= td.total_seconds() <= high:
        raise ValidationError(field, f"must be between {low:g} and {high:g} seconds", value)
    return td
