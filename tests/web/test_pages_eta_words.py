"""The ETA's words on the pages (issue 17): an ETA that has passed says it is overdue and by
how much instead of a frozen "in about 0.0 s", past-run ETAs say the run takes longer than
usual, a first run's multi-step ETA says it is a guess, and the page's markup carries the
seconds left for the script that keeps the words live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from jinja2 import Environment, FileSystemLoader

from longops.domain.progress import Progress
from longops.domain.status import Status
from longops.web import pages, present

NOW = datetime(2026, 12, 7, 16, 11, 19, tzinfo=UTC)


def running() -> Any:
    return SimpleNamespace(status=Status.IN_PROCESS, done=False)


def view(seconds_left: float, source: str) -> present.ProgressView:
    reading = Progress(eta_at=NOW + timedelta(seconds=seconds_left), eta_source=source)
    return present.progress_view(running(), reading, NOW)


def test_an_eta_ahead_says_in_about_and_how_sure() -> None:
    assert view(5, "history").eta == "ETA 16:11:24, in about 5.0 s (from past runs)"
    assert view(65, "rate").eta == "ETA 16:12:24, in about 1 min 05 s"
    guess = view(85, "guess")
    assert guess.eta.startswith("ETA 16:12:44, in about 1 min 25 s (a guess"), guess.eta
    assert guess.eta_left == 85.0
    assert guess.eta_note.startswith("a guess")


def test_a_passed_eta_says_overdue_by_how_much() -> None:
    usual = view(-20, "history")
    assert usual.eta == "ETA 16:10:59, overdue by 20 s (taking longer than usual)"
    assert usual.eta_left_text == "overdue by 20 s (taking longer than usual)"
    assert usual.eta_left == -20.0
    assert view(-20, "steps").eta.endswith("overdue by 20 s (taking longer than usual)")
    assert view(-3, "rate").eta == "ETA 16:11:16, overdue by 3.0 s"
    assert "in about 0.0 s" not in view(0, "history").eta


def test_the_eta_markup_carries_the_seconds_left_for_the_live_words() -> None:
    templates = Environment(loader=FileSystemLoader(str(pages.HERE / "templates")), autoescape=True)
    macros: Any = templates.get_template("_macros.html").module
    cell = str(macros.progress_cell(view(-20, "history"), running()))
    assert 'data-eta-left="-20.0"' in cell, cell
    assert 'data-eta-note="from past runs"' in cell, cell
    assert "overdue by 20 s (taking longer than usual)" in cell, cell
