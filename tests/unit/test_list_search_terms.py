"""How the list's search box reads its text (domain.filters.search_terms) and the list's
relative times (web.listing.relative)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from longops.domain.filters import duration_micros, search_terms
from longops.web.listing import relative


def test_a_number_is_an_entry_number_and_words_and_with_a_hash_only_the_number() -> None:
    plain = search_terms(" 4711 ")
    assert (plain.text, plain.entry_no, plain.number_only) == ("4711", 4711, False)
    assert plain.id_low == uuid.UUID("47110000-0000-0000-0000-000000000000")  # 4 hex digits
    hashed = search_terms("#4711")
    assert (hashed.entry_no, hashed.number_only, hashed.id_low) == (4711, True, None)
    assert search_terms("No. 18").entry_no == 18
    assert search_terms("batch 4711").entry_no is None


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("3f2a", "3f2a0000-0000-0000-0000-000000000000", "3f2affff-ffff-ffff-ffff-ffffffffffff"),
        ("3F2A9C1E-77", "3f2a9c1e-7700-0000-0000-000000000000",
         "3f2a9c1e-77ff-ffff-ffff-ffffffffffff"),
    ],
)  # fmt: skip
def test_hex_digits_are_an_id_prefix(text: str, low: str, high: str) -> None:
    terms = search_terms(text)
    assert (str(terms.id_low), str(terms.id_high)) == (low, high)


@pytest.mark.parametrize("text", ["abc", "3f2a-9c", "ledger", "3f2a9c1e77-"])
def test_other_text_is_no_id_prefix(text: str) -> None:
    assert search_terms(text).id_low is None


def test_a_duration_is_exact_in_microseconds() -> None:
    assert duration_micros(timedelta(days=1, seconds=2, microseconds=3)) == 86_402_000_003


def test_relative_times() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert relative(None, now) == ""
    assert relative(now - timedelta(seconds=10), now) == "just now"
    assert relative(now - timedelta(seconds=50), now) == "1 min ago"
    assert relative(now - timedelta(minutes=3), now) == "3 min ago"
    assert relative(now + timedelta(hours=2), now) == "in 2 h"
    assert relative(now - timedelta(days=3), now) == "3 d ago"
