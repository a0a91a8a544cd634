"""The pages' nouns: capped counts as people read them, and what a terminal status notifies as."""

from __future__ import annotations

import pytest

from longops.domain.read_models import (
    COUNT_CAP,
    NotificationKind,
    StatusCounts,
    format_bound,
    format_count,
)
from longops.domain.status import TERMINAL, Status


@pytest.mark.parametrize(
    ("n", "shown"),
    [(0, "0"), (999, "999"), (1_234, "1,234"), (COUNT_CAP, "10,000"), (COUNT_CAP + 1, "10,000+")],
)
def test_capped_counts_read_as_people_expect(n: int, shown: str) -> None:
    assert format_count(n) == shown


def test_a_smaller_cap_is_named() -> None:
    assert format_count(6, cap=5) == "5+"


@pytest.mark.parametrize(
    ("n", "bound", "shown"),
    [
        (42, False, "42"),
        (0, False, "0"),
        (42, True, "42+"),
        (0, True, "?"),
        (COUNT_CAP + 1, True, "10,000+"),
        (COUNT_CAP + 1, False, "10,000+"),
    ],
)
def test_a_lower_bound_reads_as_at_least_and_none_as_unknown(
    n: int, bound: bool, shown: str
) -> None:
    assert format_bound(n, bound) == shown


def test_status_counts_are_a_dict_that_says_whether_they_are_bounds() -> None:
    exact = StatusCounts({Status.READY: 2})
    assert exact == {Status.READY: 2}
    assert not exact.lower_bounds
    assert StatusCounts({Status.READY: 2}, lower_bounds=True).lower_bounds


def test_every_terminal_status_notifies_as_one_kind() -> None:
    kinds = {status: NotificationKind.for_status(status) for status in TERMINAL}
    assert kinds == {
        Status.FINISHED: NotificationKind.SUCCEEDED,
        Status.ERROR: NotificationKind.FAILED,
        Status.CANCELLED: NotificationKind.CANCELLED,
    }
    assert [k.caption for k in NotificationKind] == ["Succeeded", "Failed", "Cancelled"]
    with pytest.raises(KeyError):
        NotificationKind.for_status(Status.READY)


def test_the_trigger_and_the_domain_agree_on_the_kinds() -> None:
    # The migrations spell the mapping out in SQL; it must say what the domain says.
    from importlib import resources

    for dialect in ("sqlite", "postgres"):
        sql = (
            resources.files("longops.store")
            .joinpath("migrations", dialect, "0005_web.sql")
            .read_text()
        )
        for status in TERMINAL - {Status.CANCELLED}:
            kind = NotificationKind.for_status(status)
            assert f"WHEN '{status.value}' THEN '{kind.value}'" in sql
        assert "ELSE 'cancelled'" in sql
