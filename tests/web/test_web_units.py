"""The pages' pure parts: the signed session cookie and how values are shown."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from longops.domain.errors import ValidationError
from longops.domain.recurrence import Recurrence
from longops.web import present
from longops.web.context import safe_path
from longops.web.session import MAX_AGE, CookieSigner, SessionData

KEY = b"k" * 32


def test_a_cookie_reads_back_only_unchanged_and_under_its_key() -> None:
    signer = CookieSigner(KEY)
    data = SessionData.anonymous().signed_in("alice").with_notice("Saved.")
    text = signer.dump(data)
    back = signer.load(text)
    assert back is not None
    assert (back.user, back.csrf, back.notice) == ("alice", data.csrf, "Saved.")
    payload, _, mac = text.rpartition(".")
    assert signer.load(payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + mac) is None
    assert CookieSigner(b"j" * 32).load(text) is None
    for nothing in (None, "", "x.y"):
        assert signer.load(nothing) is None
    assert signer.load(text, now=data.issued_at + MAX_AGE + 1) is None, "a sign-in ends"
    with pytest.raises(ValueError, match="32 bytes"):
        CookieSigner(b"short")


def test_csrf_tokens_change_on_sign_in_and_compare_exactly() -> None:
    visitor = SessionData.anonymous()
    signed = visitor.signed_in("alice")
    assert signed.csrf != visitor.csrf
    assert signed.csrf_ok(signed.csrf)
    assert not signed.csrf_ok(visitor.csrf)
    assert not signed.csrf_ok(None)
    assert not signed.csrf_ok("")


def test_only_our_own_paths_are_redirect_targets() -> None:
    assert safe_path("/c/CRONUS/entries?status=ready")
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil", "c/x", "/c/\r\nSet-Cookie"):
        assert not safe_path(bad), bad


def test_durations_and_recurrence_texts() -> None:
    assert present.duration(timedelta(seconds=4.21)) == "4.2 s"
    assert present.duration(timedelta(seconds=185)) == "3 min 05 s"
    assert present.duration(timedelta(hours=2, minutes=3)) == "2 h 03 min"
    assert present.duration(None) == ""
    assert present.recurrence_text(Recurrence(minutes_between_runs=15)) == "every 15m"
    assert present.recurrence_text(Recurrence(minutes_between_runs=120)) == "every 2h"
    assert present.recurrence_text(Recurrence(cron="*/5 * * * *")) == "cron:*/5 * * * *"
    assert present.recurrence_text(None) == ""
    rec = present.recurrence_from_fields("30", ["0", "4"], "08:00", "18:00", go_on=True)
    assert rec == Recurrence(
        minutes_between_runs=30,
        weekdays=frozenset({0, 4}),
        starting_time=time(8),
        ending_time=time(18),
        on_error="continue",
    )
    assert present.recurrence_from_fields("", [], "", "", go_on=False) is None
    with pytest.raises(ValidationError, match="starting_time"):
        present.recurrence_from_fields("30", [], "8 o'clock", "", go_on=False)


def test_a_sparkline_spans_its_box() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        {"at": (start + timedelta(seconds=s)).isoformat(), "percent": p}
        for s, p in ((0, 0), (5, 50), (10, 100))
    ]
    assert present.sparkline(points, width=100, height=10) == "0.0,10.0 50.0,5.0 100.0,0.0"
    assert present.sparkline(points[:1]) == ""


def test_a_traceback_shows_files_without_the_servers_folders() -> None:
    import sys
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    root = sys.path[0] if sys.path[0] else "/srv/app"
    assert present.shown_path("/opt/venv/lib/python3.12/site-packages/httpx/_client.py") == (
        "httpx/_client.py"
    )
    assert present.shown_path(f"{stdlib}/json/decoder.py") == "python/json/decoder.py"
    assert present.shown_path(f"{root}/myapp/tasks.py") == "myapp/tasks.py"
    assert present.shown_path("/home/someone/checkout/x/y/z.py") == "…/x/y/z.py"
    assert present.shown_path("<frozen runpy>") == "<frozen runpy>"
    text = 'Traceback (most recent call last):\n  File "/home/someone/checkout/a/b/c.py", line 3'
    scrubbed = present.scrub_paths(text)
    assert scrubbed is not None
    assert "/home/someone" not in scrubbed
    assert 'File "…/a/b/c.py", line 3' in scrubbed
    frames = present.traceback_of(text + ", in run\n    boom()\nRuntimeError: x")
    assert frames is not None
    assert frames.frames[0].where == "…/a/b/c.py, line 3, in run"


def test_the_undo_ids_ride_with_the_notice_only() -> None:
    signer = CookieSigner(KEY)
    data = SessionData.anonymous().signed_in("alice").with_notice("Deleted.", ("a", "b"))
    back = signer.load(signer.dump(data))
    assert back is not None
    assert (back.notice, back.undo) == ("Deleted.", ("a", "b"))
    cleared = signer.load(signer.dump(back.with_notice(None)))
    assert cleared is not None
    assert (cleared.notice, cleared.undo) == (None, ())


def test_the_operation_a_notice_awaits_rides_with_the_notice_only() -> None:
    signer = CookieSigner(KEY)
    data = SessionData.anonymous().signed_in("alice").with_notice("Asked to stop.", about="op")
    back = signer.load(signer.dump(data))
    assert back is not None
    assert (back.notice, back.about) == ("Asked to stop.", "op")
    cleared = signer.load(signer.dump(back.with_notice(None, about="op")))
    assert cleared is not None
    assert (cleared.notice, cleared.about) == (None, None)
