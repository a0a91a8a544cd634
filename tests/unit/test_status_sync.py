"""The Python transition table, the database CHECK constraints and the documentation
diagram must say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longops.domain.status import ACTIONS, TRANSITIONS, Status, StatusReason
from longops.store.migrate import load_migrations

ROOT = Path(__file__).parents[2]


def _check_values(sql: str, constraint: str) -> set[str]:
    # The last definition counts: a later migration may drop and add a constraint again.
    found = re.findall(rf"CONSTRAINT {constraint} CHECK \(\w+ IN \(([^)]*)\)\)", sql)
    assert found, f"constraint {constraint} not found"
    return {v.strip().strip("'") for v in found[-1].split(",")}


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_database_status_check_matches_python(dialect: str) -> None:
    schema = "\n".join(m.sql for m in load_migrations(dialect))
    assert _check_values(schema, "operation_status") == {s.value for s in Status}


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_database_outcome_check_matches_python(dialect: str) -> None:
    from longops.domain.operation import Outcome, SessionEventType, SessionState

    schema = "\n".join(m.sql for m in load_migrations(dialect))
    assert _check_values(schema, "attempt_outcome") == {o.value for o in Outcome}
    assert _check_values(schema, "session_state") == {s.value for s in SessionState}
    assert _check_values(schema, "session_event_type") == {e.value for e in SessionEventType}


def _trigger_values(sql: str, column: str) -> list[set[str]]:
    found = re.findall(rf"WHEN NEW\.{column} NOT IN \(([^)]*)\)", sql)
    return [{v.strip().strip("'") for v in values.split(",")} for values in found]


def test_database_status_reason_check_matches_python() -> None:
    reasons = {r.value for r in StatusReason}
    postgres = "\n".join(m.sql for m in load_migrations("postgres"))
    assert _check_values(postgres, "operation_status_reason") == reasons
    # SQLite holds the same rule in its insert and update triggers.
    sqlite = "\n".join(m.sql for m in load_migrations("sqlite"))
    assert _trigger_values(sqlite, "status_reason")[-2:] == [reasons, reasons]


def test_documented_status_reasons_match_python() -> None:
    text = (ROOT / "docs" / "status.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \| reason \|", text, flags=re.MULTILINE))
    assert documented == {r.value for r in StatusReason}


def test_documented_diagram_matches_transition_table() -> None:
    text = (ROOT / "docs" / "status.md").read_text()
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    edges = {
        (Status(a), Status(b))
        for a, b in re.findall(r"^\s*(\w+) --> (\w+)", diagram, flags=re.MULTILINE)
    }
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert edges == table


def test_documented_table_lists_every_status_with_its_caption() -> None:
    text = (ROOT / "docs" / "status.md").read_text()
    for status in Status:
        assert f"| `{status.value}` | {status.caption} |" in text


def test_every_named_action_stays_inside_the_table() -> None:
    for name, (sources, target) in ACTIONS.items():
        for source in sources:
            assert target in TRANSITIONS[source], name


def test_ids_are_version_7_time_ordered_and_unique() -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    from longops.domain.ids import new_id

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_id(t0 + timedelta(milliseconds=i)) for i in range(2000)]
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    assert ids == sorted(ids)
    assert int(ids[0].hex[:12], 16) == int(t0.timestamp() * 1000)
    seen: list[object] = []

    def make() -> None:
        seen.extend(new_id(t0) for _ in range(5000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 20_000, "two threads produced the same id"
