"""Loads the named queries of a dialect once: the common ones, translated, and its own.

``sql/common/<noun>.sql`` holds every query both dialects run alike, written once in
psycopg's ``%(name)s`` style. For SQLite each ``%(name)s`` becomes ``:name`` (a
``::type`` cast right after a placeholder is PostgreSQL's and goes with it) and ``%%``
becomes ``%``. ``sql/<dialect>/queries.sql`` holds only the queries that really differ,
each opening with a ``-- why:`` comment, and the fragments a query splices in as
``{{fragment}}``.

A query starts at a ``-- name: <query_name>`` line, a fragment at a
``-- fragment: <fragment_name>`` line; each runs to the next such line. A name is defined
once across the common files and the dialect's file. The ``-- why:`` lines (and their
``--  `` continuations) are the maintainers', so they are not sent to the database: the
text a dialect runs is what it ran before its query was moved.

Example::

    load_queries("sqlite")["get_company"]
    # 'SELECT * FROM longops_companies WHERE name = :name'
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from importlib.resources.abc import Traversable

DIALECTS = ("postgres", "sqlite")

_HEADER = re.compile(r"^--\s*(name|fragment):\s*(\w+)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s(?:::\w+(?:\[\])?)?")
_SPLICE = re.compile(r"\{\{(\w+)\}\}")


class Section:
    """One named query or fragment as a file defines it."""

    __slots__ = ("body", "name", "where", "why")

    def __init__(self, name: str, body: str, why: str, where: str) -> None:
        self.name = name
        self.body = body
        self.why = why
        self.where = where


def _sections(file: Traversable, where: str) -> tuple[list[Section], list[Section]]:
    """The queries and the fragments of one file, in file order."""
    parts = _HEADER.split(file.read_text())
    queries: list[Section] = []
    fragments: list[Section] = []
    # parts = [preamble, kind1, name1, body1, kind2, name2, body2, ...]
    for kind, name, raw in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        lines = raw.strip().splitlines()
        why: list[str] = []
        if lines and lines[0].startswith("-- why:"):
            why.append(lines.pop(0))
            while lines and lines[0].startswith("--  "):
                why.append(lines.pop(0))
        if kind == "fragment":
            # Spliced inside a statement: its own comments would end the line it joins.
            while lines and lines[0].startswith("--"):
                lines.pop(0)
        body = "\n".join(lines).strip().rstrip(";").strip()
        section = Section(name, body, "\n".join(why), where)
        (fragments if kind == "fragment" else queries).append(section)
    return queries, fragments


def to_sqlite(sql: str) -> str:
    """A common query in SQLite's placeholder style."""
    return _PLACEHOLDER.sub(r":\1", sql).replace("%%", "%")


def sections(dialect: str) -> tuple[list[Section], list[Section]]:
    """Every query and fragment ``dialect`` loads, common ones first, untranslated."""
    if dialect not in DIALECTS:
        raise ValueError(f"no such dialect: {dialect}")
    root = resources.files("longops.store").joinpath("sql")
    common = sorted(
        (f for f in root.joinpath("common").iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    queries: list[Section] = []
    fragments: list[Section] = []
    for file in [*common, root.joinpath(dialect, "queries.sql")]:
        where = "common" if file in common else dialect
        q, f = _sections(file, f"{where}/{file.name}")
        queries += q
        fragments += f
    return queries, fragments


@functools.cache
def load_queries(dialect: str) -> dict[str, str]:
    """Every named query of ``dialect``, as it is sent to the database."""
    queries, fragments = sections(dialect)
    translate = to_sqlite if dialect == "sqlite" else str
    pieces: dict[str, str] = {}
    for section in fragments:
        if section.name in pieces:
            raise RuntimeError(f"fragment {section.name} is defined twice ({section.where})")
        common = section.where.startswith("common/")
        pieces[section.name] = translate(section.body) if common else section.body
    out: dict[str, str] = {}
    for section in queries:
        if section.name in out:
            raise RuntimeError(f"query {section.name} is defined twice ({section.where})")
        common = section.where.startswith("common/")
        out[section.name] = _spliced(
            translate(section.body) if common else section.body, pieces, section.name
        )
    return out


def _spliced(sql: str, pieces: dict[str, str], name: str) -> str:
    for _ in range(5):  # fragments may splice fragments, never deeper than this
        if "{{" not in sql:
            return sql
        try:
            sql = _SPLICE.sub(lambda m: pieces[m[1]], sql)
        except KeyError as exc:
            raise RuntimeError(f"query {name} splices an unknown fragment {exc}") from None
    raise RuntimeError(f"query {name}: fragments nested too deep")
