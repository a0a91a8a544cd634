"""The one SSE framing (core/sse.py) both fronts write with: exact bytes for what the
streams send, and every text coming back whole through an EventSource's parser."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from longops.core.sse import frame


def parse(stream: str) -> list[dict[str, str]]:
    """The events a browser's EventSource dispatches (the WHATWG algorithm, without the
    reconnection), with ``id``, ``retry`` and comments kept so the tests can see them."""
    events: list[dict[str, str]] = []
    data: list[str] = []
    current: dict[str, str] = {}
    lines = stream.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines[:-1]:  # the text after the last line end is not a line yet
        if line == "":
            if data:
                current["data"] = "\n".join(data)
            if current:
                events.append(current)
            data, current = [], {}
            continue
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if name == "":
            current["comment"] = current.get("comment", "") + value
        elif name == "data":
            data.append(value)
        else:
            current[name] = value
    return events


def test_a_timeline_event_as_the_api_sends_it() -> None:
    text = '{"at":"2026-01-31T18:00:00+00:00","percent":40.0}'
    assert frame(text, event="progress", event_id=17) == (
        f"id: 17\nevent: progress\ndata: {text}\n\n"
    )
    assert frame(text, event="created", event_id="17.3").startswith("id: 17.3\nevent: created\n")


def test_multi_line_data_becomes_one_data_line_each() -> None:
    html = '<tr id="op-1">\n  <td>Ready</td>\n</tr>'
    assert frame(html, event="row-1") == (
        'event: row-1\ndata: <tr id="op-1">\ndata:   <td>Ready</td>\ndata: </tr>\n\n'
    )
    assert parse(frame(html, event="row-1")) == [{"event": "row-1", "data": html}]


def test_carriage_returns_end_lines_like_line_feeds() -> None:
    assert frame("a\r\nb\rc") == "data: a\ndata: b\ndata: c\n\n"


def test_empty_data_and_a_trailing_line_end_come_back_exactly() -> None:
    assert frame("", event="card") == "event: card\ndata: \n\n"
    assert parse(frame("a\n", event="card")) == [{"event": "card", "data": "a\n"}]


def test_retry_and_comments_are_frames_of_their_own() -> None:
    assert frame(retry=2000) == "retry: 2000\n\n"
    assert frame(comment="keep-alive") == ": keep-alive\n\n"
    assert frame(comment="two\nlines") == ": two\n: lines\n\n"
    assert parse(frame(comment="keep-alive") + frame("x")) == [
        {"comment": "keep-alive"},
        {"data": "x"},
    ]


def test_fields_come_in_one_order() -> None:
    assert frame("d", event="e", event_id=1, retry=5, comment="c") == (
        ": c\nretry: 5\nid: 1\nevent: e\ndata: d\n\n"
    )


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"event": "two\nlines"}, "event must be one line"),
        ({"event_id": "1\r2"}, "id must be one line"),
        ({"event_id": "1\x002"}, "may not hold NUL"),
        ({"retry": -1}, "milliseconds"),
        ({}, "at least one field"),
    ],
)
def test_what_cannot_be_framed_is_refused(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        frame(**fields)


@given(
    texts=st.lists(st.text(alphabet=st.characters(exclude_characters="\x00")), max_size=4),
    ids=st.integers(min_value=0),
)
def test_any_text_comes_back_whole(texts: list[str], ids: int) -> None:
    stream = "".join(frame(t, event="note", event_id=ids) for t in texts)
    # A browser reads CRLF and CR as line ends: the data comes back with LF for each.
    expected = [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
    assert [e["data"] for e in parse(stream)] == expected
    assert all(e["id"] == str(ids) and e["event"] == "note" for e in parse(stream))
