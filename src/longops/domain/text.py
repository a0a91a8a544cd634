"""Text from task code made storable: the one rule for what a database column can hold.

Task code hands longops text it did not check: an exception's message and traceback, a
progress message, unit or step name. Two kinds of character in such text make a database
refuse the write, and on PostgreSQL one refused row fails the whole batched write it rides
in (every other result of the worker with it):

- NUL (U+0000): PostgreSQL's ``text`` cannot hold it (``UntranslatableCharacter``);
- a lone surrogate (U+D800..U+DFFF not in a pair, e.g. from ``os.fsdecode`` of bad bytes):
  UTF-8 cannot encode it, so neither driver can send it.

The rule, the same on SQLite and PostgreSQL so both show the same text: each such
character is stored as its visible Python escape, ``\\x00`` for NUL and ``\\udXXX`` for a
lone surrogate (lower-case hex). Everything else is kept as it is. The escape is applied
where the text becomes a domain value the worker writes (:class:`RunResult`, the progress
counter), not in each store.

JSON values (a result, a checkpoint) are not affected: JSON writes NUL as ``\\u0000`` inside
its text, which both databases store and read back unchanged, so a result string with a
NUL round-trips losslessly.

Example::

    >>> storable_text("bad\\x00nul")
    'bad\\\\x00nul'
    >>> storable_text("plain") == "plain"
    True
"""

from __future__ import annotations

from typing import overload


@overload
def storable_text(text: str) -> str: ...
@overload
def storable_text(text: None) -> None: ...
def storable_text(text: str | None) -> str | None:
    """``text`` with each NUL as ``\\x00`` and each lone surrogate as ``\\udXXX`` (see the
    module docstring); the same object when it holds neither (the common case costs one
    scan)."""
    if text is None:
        return None
    if text.isascii():
        return text if "\x00" not in text else text.replace("\x00", "\\x00")
    text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text
