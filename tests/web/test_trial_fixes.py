"""What a new user's trial of the pages found, each kept fixed: argument hints on the New
operation form, the overview chart's labels, facets after a bulk action, the entry card's
words, the Edit form's look and dates, the notices' sentences, and the Categories form's
errors."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from web_support import Browser

Make = Callable[[str | None], Browser]


def textarea(page: str, name: str) -> str:
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page[-1500:]
    return html.unescape(found.group(1))


def test_the_new_operation_form_shows_each_tasks_parameters(browser: Make) -> None:
    b = browser("alice")
    form = b.get("/c/CRONUS/entries/new").text
    # Every task's parameters, from the same schema the API publishes as argumentsSchema.
    assert "<code>pages</code> (integer, default 1)" in form
    assert 'data-example="{&#34;pages&#34;: 1}"' in form
    assert textarea(form, "args") == "", "no task chosen yet: nothing prefilled"
    # A link naming the task starts with its arguments to edit.
    chosen = b.get("/c/CRONUS/entries/new?task=report").text
    assert textarea(chosen, "args") == '{"pages": 1}'
    # On an error the form comes back with what was typed, not the example.
    bad = b.post("/c/CRONUS/entries/new", {"task": "report", "args": '{"pages": "x"'})
    assert bad.status_code == 400
    assert textarea(bad.text, "args") == '{"pages": "x"'
