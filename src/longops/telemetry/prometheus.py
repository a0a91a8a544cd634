"""The fleet's metrics in Prometheus's text format, computed from the database (served by
``longops serve`` at ``/metrics``).

| metric | labels | meaning |
|---|---|---|
| ``longops_operations`` | company, queue, status | operations by status |
| ``longops_in_process`` | company | operations running now, per company |
| ``longops_stalled_operations`` | company | running operations flagged stalled |
| ``longops_oldest_ready_age_seconds`` | queue | how long the oldest due, ready one has waited |
| ``longops_sessions_alive`` | | worker sessions active or draining |
| ``longops_metrics_scrape_timestamp_seconds`` | | when the figures were read |

Example::

    >>> from datetime import UTC, datetime
    >>> snap = FleetSnapshot(at=datetime(2026, 1, 1, tzinfo=UTC), sessions_alive=2)
    >>> "longops_sessions_alive 2" in render(snap)
    True
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    at: datetime
    operations: list[tuple[str, str, str, int]] = field(default_factory=list)
    """(company, queue, status, count)"""
    oldest_ready: dict[str, datetime] = field(default_factory=dict)
    """queue -> the earliest start of its oldest due, ready operation"""
    stalled: dict[str, int] = field(default_factory=dict)
    sessions_alive: int = 0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def render(snap: FleetSnapshot) -> str:
    """The snapshot as Prometheus text exposition (version 0.0.4)."""
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    family(
        "longops_operations",
        "Operations by company, queue and status.",
        [(_labels(company=c, queue=q, status=s), n) for c, q, s, n in sorted(snap.operations)],
    )
    running: dict[str, int] = defaultdict(int)
    for company, _, status, n in snap.operations:
        if status == "in_process":
            running[company] += n
    family(
        "longops_in_process",
        "Operations running now, per company.",
        [(_labels(company=c), n) for c, n in sorted(running.items())],
    )
    family(
        "longops_stalled_operations",
        "Running operations whose progress has stalled, per company.",
        [(_labels(company=c), n) for c, n in sorted(snap.stalled.items())],
    )
    family(
        "longops_oldest_ready_age_seconds",
        "Age of the oldest due, ready operation per queue.",
        [
            (_labels(queue=q), max((snap.at - due).total_seconds(), 0.0))
            for q, due in sorted(snap.oldest_ready.items())
        ],
    )
    family("longops_sessions_alive", "Worker sessions active or draining.", [
        ("", snap.sessions_alive)
    ])  # fmt: skip
    family(
        "longops_metrics_scrape_timestamp_seconds",
        "When these figures were read from the database.",
        [("", snap.at.timestamp())],
    )
    return "\n".join(lines) + "\n"
