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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from longops.domain.errors import ValidationError

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
    return value


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
        """Start step ``index`` of ``of``; the step's own completed/total start afresh."""
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
            self.completed = self.total = self.unit = None
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


class Estimator:
    """Smoothed rate and ETA for one run, fed each reading as it is flushed.

    The first reading is the baseline: a run that resumes from a checkpoint reports a big
    jump first, and a rate measured from the run's start would promise it ends at once.

    Example::

        est = Estimator()
        reading = est.observe(counter.snapshot(), now)   # rate and eta_at from the 2nd on
    """

    def __init__(self, *, time_constant: float = RATE_TIME_CONSTANT) -> None:
        self.tau = time_constant
        self._last_at: datetime | None = None
        self._last_fraction: float | None = None
        self._last_completed: float | None = None
        self._last_step: int | None = None
        self.unit_rate: float | None = None
        self.fraction_rate: float | None = None

    def observe(self, reading: Progress, at: datetime) -> Progress:
        fraction = reading.fraction
        dt = 0.0 if self._last_at is None else (at - self._last_at).total_seconds()
        if self._last_at is None:
            self._remember(reading, fraction, at)
        elif dt > 0:
            weight = 1 - math.exp(-dt / self.tau)
            if reading.step_index != self._last_step:
                # A new step counts from zero: its first reading is the baseline of a rate
                # measured afresh (not a speed of zero that the average would creep up from).
                self.unit_rate = None
            elif reading.completed is not None:
                inst = max(reading.completed - (self._last_completed or 0.0), 0.0) / dt
                self.unit_rate = _ema(self.unit_rate, inst, weight)
            if fraction is not None and self._last_fraction is not None:
                inst = max(fraction - self._last_fraction, 0.0) / dt
                self.fraction_rate = _ema(self.fraction_rate, inst, weight)
            self._remember(reading, fraction, at)
        eta_at = None
        if fraction is not None and self.fraction_rate:
            remaining = (1.0 - fraction) / self.fraction_rate
            if remaining < 10 * 365 * 86400:
                eta_at = at + timedelta(seconds=remaining)
        return replace(
            reading,
            rate=self.unit_rate,
            eta_at=eta_at,
            eta_source="rate" if eta_at is not None else None,
            updated_at=at,
        )

    def _remember(self, reading: Progress, fraction: float | None, at: datetime) -> None:
        self._last_at = at
        self._last_fraction = fraction
        self._last_completed = reading.completed
        self._last_step = reading.step_index


def _ema(previous: float | None, value: float, weight: float) -> float:
    return value if previous is None else previous + weight * (value - previous)


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
