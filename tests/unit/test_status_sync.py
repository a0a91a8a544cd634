"""The Python transition table, the database CHECK constraints and the documentation
diagram must say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longops.domain.status import ACTIONS, TRANSITIONS, Status
from longops.store.migrate import load_migrations

ROOT = Path(__file__).parents[2]


def _check_values(sql: str, constraint: str) -> set[str]:
    match = re.search(rf"CONSTRAINT {constraint} CHECK \(\w+ IN \(([^)]*)\)\)", sql)
    assert match, f"constraint {constraint} not found"
    return {v.strip().strip("'") for v in match.group(1).split(",")}


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
