"""When a recurring operation runs next, after Business Central's job queue.

A :class:`Recurrence` holds the Business Central recurrence fields (minutes between
runs, weekdays, a daily run window, a next-run date formula) plus an optional cron
expression. The functions below compute run times from it:

* :func:`initial_run_time`  -- BC ``CalcInitialRunTime``
* :func:`next_run_time`     -- BC ``CalcNextRunTimeForRecurringJob``
* :func:`adjust_to_run_window` -- BC ``CalcRunTimeForRecurringJob``
* :func:`within_run_window` -- BC ``IsWithinStartEndTime`` plus the weekday mask
* :func:`calc_date`         -- the subset of BC ``CalcDate`` that date formulas use

Every datetime passed in or returned is timezone-aware UTC. Windows, weekdays and date
formulas are read as local wall time in the ``tz`` passed to each call. A wall time that
does not exist (spring forward) means the first instant after the gap; an ambiguous one
(fall back) means its first occurrence.

Example::

    rec = Recurrence(
        minutes_between_runs=60,
        weekdays=frozenset({0, 1, 2, 3, 4}),
        starting_time=time(8),
        ending_time=time(17),
    )
    ams = ZoneInfo("Europe/Amsterdam")
    next_run_time(rec, datetime(2026, 1, 9, 16, 30, tzinfo=UTC), ams)
    # Friday 18:30 local is past the window: Monday 2026-01-12 08:00 local, 07:00 UTC
"""

from __future__ import annotations

import calendar
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from longops.domain.errors import ValidationError

__all__ = [
    "MAX_MINUTES_BETWEEN_RUNS",
    "Recurrence",
    "adjust_to_run_window",
    "calc_date",
    "effective_minutes",
    "initial_run_time",
    "next_run_time",
    "within_run_window",
]

MAX_MINUTES_BETWEEN_RUNS = 525_600
"""One year of minutes, the upper bound of ``Recurrence.minutes_between_runs``."""

_MINUTES_PER_DAY = 1440
# BC looks a week plus one day ahead, so that every weekday is seen once even when the
# window of the candidate's own day has already closed.
_LOOKAHEAD_DAYS = 8
_MAX_FORMULA_COUNT = 9999
_ON_ERROR_VALUES = ("stop", "continue")
_FIELDS = (
    "minutes_between_runs",
    "weekdays",
    "starting_time",
    "ending_time",
    "date_formula",
    "cron",
    "on_error",
)
_MIDNIGHT = time(0)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """How a recurring operation repeats. Invalid combinations cannot be constructed.

    ``weekdays`` uses 0=Monday .. 6=Sunday (empty: every day). ``starting_time`` and
    ``ending_time`` are naive local wall times; ``ending_time < starting_time`` is a window
    across midnight. ``on_error`` decides what happens after a run that used up its
    attempts: ``"stop"`` (status error, as BC does) or ``"continue"`` to the next run.

    Example::

        Recurrence(minutes_between_runs=30, starting_time=time(8), ending_time=time(18))
        Recurrence(date_formula="<1M+CM>", starting_time=time(23))  # month end, 23:00
        Recurrence(cron="*/5 * * * *", on_error="continue")
    """

    minutes_between_runs: int = 0
    weekdays: frozenset[int] = frozenset()
    starting_time: time | None = None
    ending_time: time | None = None
    date_formula: str | None = None
    cron: str | None = None
    on_error: Literal["stop", "continue"] = "stop"

    def __post_init__(self) -> None:
        # Callers often pass a set or list; freezing it keeps the object hashable.
        days: object = self.weekdays
        if isinstance(days, (set, list, tuple)):
            object.__setattr__(self, "weekdays", frozenset(days))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ValidationError` unless the fields form a usable recurrence.

        Example::

            Recurrence(minutes_between_runs=60).validate()  # fine, returns None
        """
        self._validate_types()
        if self.cron is not None:
            _validate_cron(self.cron)
            combined = [
                name
                for name, is_set in (
                    ("minutes_between_runs", self.minutes_between_runs != 0),
                    ("weekdays", bool(self.weekdays)),
                    ("starting_time", self.starting_time is not None),
                    ("ending_time", self.ending_time is not None),
                    ("date_formula", self.date_formula is not None),
                )
                if is_set
            ]
            if combined:
                raise ValidationError(
                    "recurrence.cron", f"cron cannot be combined with {', '.join(combined)}"
                )
        if self.date_formula is not None:
            _validate_recurrence_formula(self.date_formula)
            # BC clears minutes and weekdays when a formula is set; here both are errors so
            # that a stored recurrence always means what it says.
            if self.minutes_between_runs != 0:
                raise ValidationError(
                    "recurrence.date_formula",
                    "date_formula cannot be combined with minutes_between_runs",
                )
            if self.weekdays:
                raise ValidationError(
                    "recurrence.date_formula", "date_formula cannot be combined with weekdays"
                )
        if (
            self.minutes_between_runs == 0
            and not self.weekdays
            and self.date_formula is None
            and self.cron is None
        ):
            raise ValidationError(
                "recurrence", "must set minutes_between_runs, weekdays, date_formula or cron"
            )

    def _validate_types(self) -> None:
        minutes = self.minutes_between_runs
        if not isinstance(minutes, int) or isinstance(minutes, bool):
            raise ValidationError(
                "recurrence.minutes_between_runs", "must be a whole number", minutes
            )
        if not 0 <= minutes <= MAX_MINUTES_BETWEEN_RUNS:
            raise ValidationError(
                "recurrence.minutes_between_runs",
                f"must be between 0 and {MAX_MINUTES_BETWEEN_RUNS}",
                minutes,
            )
        if not isinstance(self.weekdays, frozenset):
            raise ValidationError(
                "recurrence.weekdays", "must be a set of weekday numbers 0..6", self.weekdays
            )
        for day in self.weekdays:
            if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
                raise ValidationError(
                    "recurrence.weekdays", "must hold weekday numbers 0 (Monday) .. 6 (Sunday)", day
                )
        for name in ("starting_time", "ending_time"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, time) or value.tzinfo is not None or value.microsecond:
                raise ValidationError(
                    f"recurrence.{name}",
                    "must be a naive wall-clock time in whole seconds, e.g. 08:00:00",
                    value,
                )
        for name in ("date_formula", "cron"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"recurrence.{name}", "must be a string", value)
        if self.on_error not in _ON_ERROR_VALUES:
            raise ValidationError(
                "recurrence.on_error", "must be 'stop' or 'continue'", self.on_error
            )

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict holding only the fields that differ from their default.

        Example::

            Recurrence(weekdays=frozenset({4, 0}), starting_time=time(8)).to_json()
            # {"weekdays": [0, 4], "starting_time": "08:00:00"}
        """
        out: dict[str, Any] = {}
        if self.minutes_between_runs:
            out["minutes_between_runs"] = self.minutes_between_runs
        if self.weekdays:
            out["weekdays"] = sorted(self.weekdays)
        if self.starting_time is not None:
            out["starting_time"] = self.starting_time.strftime("%H:%M:%S")
        if self.ending_time is not None:
            out["ending_time"] = self.ending_time.strftime("%H:%M:%S")
        if self.date_formula is not None:
            out["date_formula"] = self.date_formula
        if self.cron is not None:
            out["cron"] = self.cron
        if self.on_error != "stop":
            out["on_error"] = self.on_error
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recurrence:
        """Build a validated Recurrence from the output of :meth:`to_json`.

        Example::

            Recurrence.from_json({"minutes_between_runs": 15, "on_error": "continue"})
        """
        if not isinstance(data, Mapping):
            raise ValidationError("recurrence", "must be a JSON object", data)
        for key in data:
            if key not in _FIELDS:
                raise ValidationError(
                    f"recurrence.{key}",
                    f"is not a recurrence field; known fields are {', '.join(_FIELDS)}",
                )
        kwargs: dict[str, Any] = {}
        if "minutes_between_runs" in data:
            minutes = data["minutes_between_runs"]
            if not isinstance(minutes, int) or isinstance(minutes, bool):
                raise ValidationError(
                    "recurrence.minutes_between_runs", "must be a whole number", minutes
                )
            kwargs["minutes_between_runs"] = minutes
        if "weekdays" in data:
            days = data["weekdays"]
            if not isinstance(days, (list, tuple)) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in days
            ):
                raise ValidationError(
                    "recurrence.weekdays", "must be a list of weekday numbers 0..6", days
                )
            kwargs["weekdays"] = frozenset(days)
        for name in ("starting_time", "ending_time"):
            if data.get(name) is not None:
                kwargs[name] = _parse_time(f"recurrence.{name}", data[name])
        for name in ("date_formula", "cron", "on_error"):
            if name in data and (data[name] is not None or name == "on_error"):
                if not isinstance(data[name], str):
                    raise ValidationError(f"recurrence.{name}", "must be a string", data[name])
                kwargs[name] = data[name]
        return cls(**kwargs)

    @classmethod
    def parse(cls, text: str) -> Recurrence:
        """Read a recurrence as typed on the command line.

        Accepted forms: a JSON object (as :meth:`from_json`), ``cron:<expr>``,
        ``every <N>m``, ``every <N>h`` and ``formula:<date formula>``.

        Example::

            Recurrence.parse("every 2h")            # minutes_between_runs=120
            Recurrence.parse("cron:*/5 * * * *")
            Recurrence.parse("formula:<1M+CM>")
            Recurrence.parse('{"weekdays": [0, 2, 4], "starting_time": "08:00:00"}')
        """
        if not isinstance(text, str):
            raise ValidationError("recurrence", "must be text", text)
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise ValidationError("recurrence", f"is not valid JSON: {exc.msg}", text) from exc
            return cls.from_json(data)
        prefix, _, rest = stripped.partition(":")
        if prefix.lower() == "cron" and rest:
            return cls(cron=rest.strip())
        if prefix.lower() == "formula" and rest:
            return cls(date_formula=rest.strip())
        every = _EVERY_RE.fullmatch(stripped)
        if every is not None:
            count = int(every.group(1))
            if count == 0:
                raise ValidationError("recurrence", "'every N' needs N of at least 1", stripped)
            factor = 60 if every.group(2).lower() == "h" else 1
            return cls(minutes_between_runs=count * factor)
        raise ValidationError(
            "recurrence",
            "must be a JSON object, 'cron:<5-field expression>', 'every <N>m', "
            "'every <N>h' or 'formula:<date formula>'",
            text,
        )

    @classmethod
    def every(cls, minutes: int, **kw: Any) -> Recurrence:
        """Shorthand for a recurrence every ``minutes`` minutes; ``kw`` sets other fields.

        Example::

            Recurrence.every(15, starting_time=time(8), ending_time=time(17))
        """
        return cls(minutes_between_runs=minutes, **kw)


_EVERY_RE = re.compile(r"every\s+([0-9]+)\s*([mh])", re.IGNORECASE)
_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")


def _parse_time(field: str, value: Any) -> time:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a time string HH:MM:SS", value)
    match = _TIME_RE.fullmatch(value)
    if match is None:
        raise ValidationError(field, "must be a time string HH:MM:SS", value)
    hour, minute, second = (int(g) if g is not None else 0 for g in match.groups())
    try:
        return time(hour, minute, second)
    except ValueError as exc:
        raise ValidationError(field, "must be a time string HH:MM:SS", value) from exc


def _validate_cron(expr: str) -> None:
    # cronsim also takes 6 fields (seconds first); the job queue schedules by the minute.
    if len(expr.split()) != 5:
        raise ValidationError(
            "recurrence.cron",
            "must have 5 fields: minute hour day-of-month month day-of-week",
            expr,
        )
    try:
        next(CronSim(expr, datetime(2026, 1, 1, tzinfo=UTC)))
    except CronSimError as exc:
        raise ValidationError(
            "recurrence.cron", f"is not a valid cron expression: {exc}", expr
        ) from exc
    except StopIteration:
        raise ValidationError("recurrence.cron", "never fires", expr) from None


# ---------------------------------------------------------------------------------------
# Date formulas


@dataclass(frozen=True, slots=True)
class _Term:
    sign: int
    count: int | None  # None means "current period" (CD, CW, CM, CQ, CY)
    unit: str


_TERM_RE = re.compile(r"([+-]?)([0-9]+|[Cc])([A-Za-z]?)")
_UNITS = "DWMQY"


def _parse_formula(formula: str, field: str) -> tuple[_Term, ...]:
    if not isinstance(formula, str):
        raise ValidationError(field, "must be a date formula string such as <1M>", formula)
    return _parse_formula_text(formula, field)


@functools.lru_cache(maxsize=512)
def _parse_formula_text(formula: str, field: str) -> tuple[_Term, ...]:
    if len(formula) < 2 or formula[0] != "<" or formula[-1] != ">":
        raise ValidationError(field, "must be wrapped in angle brackets, e.g. <1M+CM>", formula)
    body = formula[1:-1]
    if not body:
        raise ValidationError(field, "must not be empty, e.g. <1D>", formula)
    terms: list[_Term] = []
    pos = 0
    while pos < len(body):
        match = _TERM_RE.match(body, pos)
        if match is None or not match.group(3):
            raise ValidationError(
                field,
                f"term at position {pos + 1} must be <n><unit> or C<unit>, unit D, W, M, Q or Y",
                formula,
            )
        sign, count, unit = match.groups()
        if terms and not sign:
            raise ValidationError(field, "terms must be joined by + or -", formula)
        unit = unit.upper()
        if unit not in _UNITS:
            raise ValidationError(field, f"unknown unit {unit!r}; use D, W, M, Q or Y", formula)
        number = None if count in ("C", "c") else int(count)
        if number is not None and number > _MAX_FORMULA_COUNT:
            raise ValidationError(
                field, f"a term's number must be at most {_MAX_FORMULA_COUNT}", formula
            )
        terms.append(_Term(-1 if sign == "-" else 1, number, unit))
        pos = match.end()
    return tuple(terms)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    return date(year, month + 1, min(day.day, _days_in_month(year, month + 1)))


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _current_period(day: date, unit: str, to_end: bool) -> date:
    if unit == "D":
        return day
    if unit == "W":
        monday = day - timedelta(days=day.weekday())
        return monday + timedelta(days=6) if to_end else monday
    if unit == "M":
        return (
            day.replace(day=_days_in_month(day.year, day.month)) if to_end else day.replace(day=1)
        )
    if unit == "Q":
        first_month = (day.month - 1) // 3 * 3 + 1
        if not to_end:
            return date(day.year, first_month, 1)
        return date(day.year, first_month + 2, _days_in_month(day.year, first_month + 2))
    return date(day.year, 12, 31) if to_end else date(day.year, 1, 1)


def _apply(terms: tuple[_Term, ...], start: date) -> date:
    day = start
    for term in terms:
        if term.count is None:
            day = _current_period(day, term.unit, to_end=term.sign > 0)
        elif term.unit == "D":
            day += timedelta(days=term.sign * term.count)
        elif term.unit == "W":
            day += timedelta(days=7 * term.sign * term.count)
        else:
            months = {"M": 1, "Q": 3, "Y": 12}[term.unit]
            day = _add_months(day, term.sign * term.count * months)
    return day


def calc_date(formula: str, start: date) -> date:
    """Apply a Business Central date formula to ``start`` (subset of BC ``CalcDate``).

    Terms are ``<n><unit>`` or ``C<unit>`` (current period: ``+CM`` is the month's last
    day, ``-CM`` its first) with units D, W, M, Q, Y, joined by ``+``/``-`` and applied left
    to right. Month steps clamp to the month's last day.

    Example::

        calc_date("<1M>", date(2025, 1, 31))     # date(2025, 2, 28)
        calc_date("<1M+CM>", date(2026, 1, 15))  # date(2026, 2, 28)
        calc_date("<-CW>", date(2026, 1, 9))     # date(2026, 1, 5), that week's Monday
    """
    if not isinstance(start, date) or isinstance(start, datetime):
        raise ValidationError("start", "must be a date (not a datetime)", start)
    terms = _parse_formula(formula, "formula")
    try:
        return _apply(terms, start)
    except (OverflowError, ValueError) as exc:
        raise ValidationError("formula", "moves the date outside years 1..9999", formula) from exc


def _next_formula_date(terms: tuple[_Term, ...], day: date) -> date:
    following = _apply(terms, day)
    if following <= day:
        # A formula that stays on the day (<0D>, <CD>, <CM> on a month's last day) would
        # run again today; applying it to tomorrow makes <0D> act as <1D> (as BC does) and
        # keeps <CM> on month ends.
        following = _apply(terms, day + timedelta(days=1))
    return following


@functools.lru_cache(maxsize=256)
def _validate_recurrence_formula(formula: str) -> None:
    field = "recurrence.date_formula"
    terms = _parse_formula(formula, field)
    # The result of a formula depends on weekday, month length and leap year; two
    # consecutive years (one of them leap) exercise every case that matters, so a formula
    # that always moves forward over them will not loop in next_run_time.
    day = date(2023, 1, 1)
    while day.year < 2025:
        try:
            moved = _next_formula_date(terms, day)
        except (OverflowError, ValueError) as exc:
            raise ValidationError(field, "moves the date outside years 1..9999", formula) from exc
        if moved <= day:
            raise ValidationError(
                field, f"must move the date forward (from {day.isoformat()} it does not)", formula
            )
        day += timedelta(days=1)


# ---------------------------------------------------------------------------------------
# Local wall time


def _require_aware(field: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError(field, "must be a timezone-aware datetime", value)
    return value.astimezone(UTC)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _from_ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _at_wall(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time; gaps move forward, overlaps take fold=0."""
    naive = datetime.combine(day, wall)
    instant = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == naive:
        return instant
    # In a gap fold=1 reads the wall time with the offset after the jump, giving an
    # instant before the gap; fold=0 gives one after it. The gap's end lies in between.
    low = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    high = int(instant.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if _from_ts(mid).astimezone(tz).replace(tzinfo=None) >= naive:
            high = mid
        else:
            low = mid
    return _from_ts(high)


def _fall_back_instant(day: date, tz: ZoneInfo) -> datetime | None:
    """The instant the clocks go back on ``day``, if they do; wall times repeat after it."""
    start = _at_wall(day, _MIDNIGHT, tz)
    end = _at_wall(day + timedelta(days=1), _MIDNIGHT, tz)
    before = _offset(start, tz)
    if _offset(end, tz) >= before:
        return None
    low, high = int(start.timestamp()), int(end.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if _offset(_from_ts(mid), tz) == before:
            low = mid
        else:
            high = mid
    return _from_ts(high)


# ---------------------------------------------------------------------------------------
# Run windows and run times


def effective_minutes(rec: Recurrence) -> int:
    """Minutes between runs, with BC's default of a day for weekday/window-only entries.

    Example::

        effective_minutes(Recurrence(weekdays=frozenset({0})))  # 1440
        effective_minutes(Recurrence.every(15))                 # 15
    """
    if (
        rec.minutes_between_runs == 0
        and rec.date_formula is None
        and rec.cron is None
        and (rec.weekdays or rec.starting_time is not None or rec.ending_time is not None)
    ):
        return _MINUTES_PER_DAY
    return rec.minutes_between_runs


def within_run_window(rec: Recurrence, at: datetime, tz: ZoneInfo) -> bool:
    """Whether ``at`` falls in the daily window and on an allowed weekday (local time).

    Follows BC ``IsWithinStartEndTime``: both ends are inclusive, ``ending < starting`` is
    a window across midnight, ``starting == ending`` counts as starting only. The part of
    an overnight window after midnight belongs to the day the window opened: with
    Friday-only and 22:00-02:00, Saturday 01:00 is inside and Friday 01:00 is not.

    Example::

        rec = Recurrence(weekdays=frozenset({4}), starting_time=time(22), ending_time=time(2))
        within_run_window(rec, datetime(2026, 1, 10, 1, 0, tzinfo=UTC), ZoneInfo("UTC"))  # True
    """
    local = _require_aware("at", at).astimezone(tz)
    wall = local.time()
    window_day = local.date()
    starting, ending = rec.starting_time, rec.ending_time
    if starting is not None and starting == ending:
        ending = None
    if starting is not None and ending is not None and ending < starting:
        if wall <= ending:
            window_day -= timedelta(days=1)
        elif wall < starting:
            return False
    elif (starting is not None and wall < starting) or (ending is not None and wall > ending):
        return False
    return not rec.weekdays or window_day.weekday() in rec.weekdays


def adjust_to_run_window(rec: Recurrence, candidate: datetime, tz: ZoneInfo) -> datetime:
    """The first instant at or after ``candidate`` inside the run window (BC
    ``CalcRunTimeForRecurringJob``), looking up to 8 days ahead.

    The window is read on the wall clock, as :func:`within_run_window` does, so in the
    hour repeated when clocks go back a window can be entered a second time.

    Example::

        rec = Recurrence.every(60, starting_time=time(8), ending_time=time(17))
        adjust_to_run_window(rec, datetime(2026, 1, 5, 18, 0, tzinfo=UTC), ZoneInfo("UTC"))
        # datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    """
    candidate = _require_aware("candidate", candidate)
    if within_run_window(rec, candidate, tz):
        return candidate
    opening = rec.starting_time if rec.starting_time is not None else _MIDNIGHT
    first_day = candidate.astimezone(tz).date()
    # Outside the window, the next inside instant is where a window opens, or where the
    # clocks go back and the wall time drops into the window again, or where the opening
    # wall time comes round a second time in the repeated hour.
    entries: list[datetime] = []
    for offset in range(_LOOKAHEAD_DAYS + 1):
        day = first_day + timedelta(days=offset)
        entries.append(_at_wall(day, opening, tz))
        fall_back = _fall_back_instant(day, tz)
        if fall_back is not None:
            entries.append(fall_back)
            second = datetime.combine(day, opening).replace(tzinfo=tz, fold=1)
            entries.append(second.astimezone(UTC))
    for entry in sorted(entries):
        if entry >= candidate and within_run_window(rec, entry, tz):
            return entry
    raise ValidationError(
        "recurrence",
        f"has no run time within {_LOOKAHEAD_DAYS} days of {candidate.isoformat()} in {tz}",
    )


def _cron_fire(expr: str, after: datetime, tz: ZoneInfo, *, inclusive: bool) -> datetime:
    # cronsim returns fires strictly after its start (with microseconds dropped), so
    # starting one microsecond early makes a fire exactly at ``after`` count.
    start = after - timedelta(microseconds=1) if inclusive else after
    fires = CronSim(expr, start.astimezone(tz))
    try:
        while True:
            fire = next(fires).astimezone(UTC)
            # Fixed-time expressions are matched on wall time, so in the repeated hour of a
            # fall back a fire can land before ``after``; skip it as Debian cron does.
            if fire > after or (inclusive and fire == after):
                return fire
    except StopIteration:
        raise ValidationError("recurrence.cron", "never fires after this time", expr) from None


def next_run_time(rec: Recurrence, completed_at: datetime, tz: ZoneInfo) -> datetime:
    """When to run again after a run that completed at ``completed_at`` (BC
    ``CalcNextRunTimeForRecurringJob``; schedules drift with run duration, as in BC).

    Cron: the next fire strictly after ``completed_at``. Date formula: the formula applied
    to the local completion date, at ``starting_time`` (or midnight), not window-adjusted.
    Otherwise: ``completed_at`` plus :func:`effective_minutes`, adjusted to the window.

    Example::

        rec = Recurrence(date_formula="<1D>", starting_time=time(2, 30))
        next_run_time(rec, datetime(2026, 3, 28, 1, 31, tzinfo=UTC), ZoneInfo("Europe/Amsterdam"))
        # 02:30 does not exist on 2026-03-29: 03:00 CEST, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    """
    completed_at = _require_aware("completed_at", completed_at)
    if rec.cron is not None:
        return _cron_fire(rec.cron, completed_at, tz, inclusive=False)
    if rec.date_formula is not None:
        terms = _parse_formula(rec.date_formula, "recurrence.date_formula")
        wall = rec.starting_time if rec.starting_time is not None else _MIDNIGHT
        day = _next_formula_date(terms, completed_at.astimezone(tz).date())
        result = _at_wall(day, wall, tz)
        if result <= completed_at:
            # Unreachable for validated formulas (they move the date forward); kept as
            # BC's "apply once more" rule so a result is never in the past.
            result = _at_wall(_next_formula_date(terms, day), wall, tz)
        if result <= completed_at:
            raise ValidationError(
                "recurrence.date_formula", "does not move the date forward", rec.date_formula
            )
        return result
    minutes = effective_minutes(rec)
    if minutes <= 0:
        raise ValidationError(
            "recurrence", "must set minutes_between_runs, weekdays, date_formula or cron"
        )
    return adjust_to_run_window(rec, completed_at + timedelta(minutes=minutes), tz)


def initial_run_time(
    rec: Recurrence, now: datetime, earliest_start: datetime | None, tz: ZoneInfo
) -> datetime:
    """The first run time of a new recurring operation (BC ``CalcInitialRunTime``).

    Starts from the later of ``earliest_start`` and ``now``; cron takes the first fire at
    or after it, a date formula keeps it as is, anything else moves it into the window.

    Example::

        rec = Recurrence(cron="0 9 * * 1-5")
        initial_run_time(rec, datetime(2026, 1, 10, 12, 0, tzinfo=UTC), None, ZoneInfo("UTC"))
        # Saturday noon: datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    """
    now = _require_aware("now", now)
    start = now
    if earliest_start is not None:
        start = max(_require_aware("earliest_start", earliest_start), now)
    if rec.cron is not None:
        return _cron_fire(rec.cron, start, tz, inclusive=True)
    if rec.date_formula is not None:
        return start
    return adjust_to_run_window(rec, start, tz)
