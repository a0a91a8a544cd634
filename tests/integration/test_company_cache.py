"""Enqueue remembers which companies and categories exist (a hot path), but not forever: a
company disabled or a category removed by another process (the CLI beside a running server)
is refused by enqueue once the remembered answer is older than ``FRESH_FOR``. Both
databases; two ``Longops`` objects on one database stand for the two processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from longops import Longops
from longops.domain.errors import ValidationError


class Ticks:
    """A monotonic clock the test moves by hand (no sleeping through the window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pair(db_url: str) -> Iterator[tuple[Longops, Longops, Ticks]]:
    server, cli = Longops(db_url), Longops(db_url)
    server.migrate()
    for app in (server, cli):
        app.task(name="cache.noop")(lambda: None)
    ticks = Ticks()
    server.companies.zones.monotonic = ticks
    server.add_company("CRONUS")
    server.companies.set_category("CRONUS", "POSTING", max_concurrent=1)
    yield server, cli, ticks
    server.close()
    cli.close()


def test_a_company_disabled_elsewhere_is_refused_once_the_window_passes(
    pair: tuple[Longops, Longops, Ticks],
) -> None:
    server, cli, ticks = pair
    server.enqueue("cache.noop", company="CRONUS")  # read and remembered
    cli.companies.disable_company("CRONUS")
    server.enqueue("cache.noop", company="CRONUS")  # within the window: still trusted
    ticks.now += server.companies.zones.fresh_for
    with pytest.raises(ValidationError, match="company") as refused:
        server.enqueue("cache.noop", company="CRONUS")
    assert "disabled" in str(refused.value)


def test_a_category_deleted_elsewhere_is_refused_once_the_window_passes(
    pair: tuple[Longops, Longops, Ticks],
) -> None:
    server, cli, ticks = pair
    server.companies.zones.zone_to_enqueue("CRONUS", "POSTING")  # what an enqueue reads
    cli.companies.delete_category("CRONUS", "POSTING")
    ticks.now += server.companies.zones.fresh_for
    with pytest.raises(ValidationError, match="category"):
        server.enqueue("cache.noop", company="CRONUS", category="POSTING")


def test_a_change_made_through_the_same_process_is_seen_at_once(
    pair: tuple[Longops, Longops, Ticks],
) -> None:
    server, _, _ = pair
    server.enqueue("cache.noop", company="CRONUS")
    server.companies.disable_company("CRONUS")
    with pytest.raises(ValidationError, match="company"):
        server.enqueue("cache.noop", company="CRONUS")
