"""The schema guard's rule and migration flags (the wait reason: tests/integration/test_apps.py)."""

from __future__ import annotations

import pytest

from longops.domain.apps import SchemaVerdict, schema_verdict
from longops.store.migrate import load_migrations, parse_flags

C = frozenset({"compatible"})
NONE: frozenset[str] = frozenset()


def applied(n: int, **flags: frozenset[str]) -> dict[int, tuple[str, frozenset[str]]]:
    return {v: (f"m{v}", flags.get(f"v{v}", NONE)) for v in range(1, n + 1)}


def test_older_schema_is_refused_naming_both_versions_and_the_command() -> None:
    check = schema_verdict(12, applied(11))
    assert check.verdict is SchemaVerdict.OLDER
    assert not check.may_claim
    assert "at version 11" in check.message
    assert "needs version 12" in check.message
    assert "longops db upgrade" in check.message


def test_a_gap_counts_as_older() -> None:
    rows = applied(12)
    del rows[5]
    assert schema_verdict(12, rows).verdict is SchemaVerdict.OLDER


def test_current_and_newer_compatible_may_claim() -> None:
    assert schema_verdict(12, applied(12)).verdict is SchemaVerdict.CURRENT
    check = schema_verdict(12, applied(14, v13=C, v14=C | {"online"}))
    assert check.verdict is SchemaVerdict.NEWER_COMPATIBLE
    assert check.may_claim


def test_one_incompatible_newer_migration_stops_claiming_and_names_it() -> None:
    check = schema_verdict(12, applied(14, v13=C))
    assert check.verdict is SchemaVerdict.NEWER_INCOMPATIBLE
    assert not check.may_claim
    assert "0014_m14" in check.message
    assert "0013" not in check.message


def test_flags_are_read_from_the_first_line_only() -> None:
    assert parse_flags("-- longops: compatible, online\nSELECT 1;") == {"compatible", "online"}
    assert parse_flags("-- longops: online\n") == {"online"}
    assert parse_flags("-- a comment\n-- longops: compatible\n") == frozenset()
    with pytest.raises(RuntimeError, match="unknown migration flag"):
        parse_flags("-- longops: compatible, fast\n")


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migration_0012_is_an_expand_step(dialect: str) -> None:
    [m] = [m for m in load_migrations(dialect) if m.version == 12]
    assert m.compatible
    assert m.online
    assert not any(m.compatible or m.online for m in load_migrations(dialect) if m.version < 12)
