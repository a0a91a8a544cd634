"""Server-sent events on the wire: how one frame of a ``text/event-stream`` is written, for
the REST API's streams (``api/sse.py``) and the pages' live stream (``web/stream.py``) alike.

A frame is ``field: value`` lines ended by a blank line. ``data`` may hold several lines:
each becomes its own ``data:`` line and the browser's ``EventSource`` joins them with
``\\n`` again, so a multi-line HTML fragment arrives whole. A comment (``: keep-alive``) is
a frame clients ignore; it keeps proxies from closing a quiet connection. Fields come out
in one order: comment, retry, id, event, data.

Example::

    frame('{"percent":40}', event="progress", event_id=17)
    # 'id: 17\\nevent: progress\\ndata: {"percent":40}\\n\\n'
    frame("<tr>\\n<td>1</td>\\n</tr>", event="row-1")
    # 'event: row-1\\ndata: <tr>\\ndata: <td>1</td>\\ndata: </tr>\\n\\n'
    frame(retry=2000)              # 'retry: 2000\\n\\n'
    frame(comment="keep-alive")    # ': keep-alive\\n\\n'
"""

from __future__ import annotations


def _lines(text: str) -> list[str]:
    # The stream's own line ends (CRLF, CR, LF) only: any other character is data.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _one_line(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {name} must be one line: {value!r}")
    return value


def frame(
    data: str | None = None,
    *,
    event: str | None = None,
    event_id: str | int | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> str:
    """One SSE frame: the fields given, in the order comment, retry, id, event, data.

    ``data`` is split at its line ends into one ``data:`` line each (a trailing line end
    makes a last, empty ``data:`` line, so the client gets the text back exactly); the
    other fields must be one line. A frame of nothing at all is refused.

    Example::

        frame("a\\nb", event="note", event_id="7.3")
        # 'id: 7.3\\nevent: note\\ndata: a\\ndata: b\\n\\n'
    """
    parts: list[str] = []
    if comment is not None:
        parts.extend(f": {line}\n" for line in _lines(comment))
    if retry is not None:
        if retry < 0:
            raise ValueError(f"an SSE retry is a number of milliseconds >= 0, not {retry}")
        parts.append(f"retry: {retry}\n")
    if event_id is not None:
        text = str(event_id)
        if "\0" in text:
            raise ValueError(f"an SSE id may not hold NUL: {text!r}")
        parts.append(f"id: {_one_line('id', text)}\n")
    if event is not None:
        parts.append(f"event: {_one_line('event', event)}\n")
    if data is not None:
        parts.extend(f"data: {line}\n" for line in _lines(data))
    if not parts:
        raise ValueError("an SSE frame needs at least one field")
    parts.append("\n")
    return "".join(parts)
