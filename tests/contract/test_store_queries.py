"""The named queries' files: written once in ``sql/common/``, translated per dialect at
load, and a dialect's own file holding only queries that differ, each saying why.

(No database here: these read the files as ``longops.store.queries`` loads them.)
"""

from __future__ import annotations

import re

import pytest

from longops.store.queries import DIALECTS, load_queries, sections, to_sqlite


def test_sqlite_gets_its_placeholders_and_loses_postgres_casts() -> None:
    sql = "SELECT 1 WHERE (%(a)s::text[] IS NULL OR x = %(a)s) AND y LIKE 'a%%' AND t = %(t)s::date"
    assert to_sqlite(sql) == "SELECT 1 WHERE (:a IS NULL OR x = :a) AND y LIKE 'a%' AND t = :t"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_query_of_a_dialect_file_says_why_it_is_not_common(dialect: str) -> None:
    queries, _ = sections(dialect)
    own = [q for q in queries if not q.where.startswith("common/")]
    assert own, "the dialect's file is read"
    assert [q.name for q in own if not q.why] == []
    assert all("-- why:" not in sql for sql in load_queries(dialect).values())


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_splice_is_resolved_and_every_fragment_used(dialect: str) -> None:
    loaded = load_queries(dialect)
    assert [n for n, sql in loaded.items() if "{{" in sql] == []
    queries, fragments = sections(dialect)
    used = {m for s in queries + fragments for m in re.findall(r"\{\{(\w+)\}\}", s.body)}
    assert {f.name for f in fragments} == used


def test_the_list_filter_is_one_fragment_in_every_list_and_count() -> None:
    queries, _ = sections("postgres")
    splicing = {q.name for q in queries if "{{operation_filter}}" in q.body}
    assert splicing == {
        "list_operations",
        "list_operations_desc",
        "list_operations_sorted",
        "count_operations_capped",
        "count_operations_by_status_capped",
    }
    for dialect in DIALECTS:
        loaded = load_queries(dialect)
        # The filter's fields reach every list and count alike.
        for name in splicing | {"count_operations_capped_status"}:
            assert "stalled_at IS NOT NULL" in loaded[name], (dialect, name)


def test_a_common_query_is_not_written_again_by_a_dialect() -> None:
    common = {q.name for q in sections("postgres")[0] if q.where.startswith("common/")}
    for dialect in DIALECTS:
        own = [q.name for q in sections(dialect)[0] if not q.where.startswith("common/")]
        assert sorted(set(own) & common) == []
        assert len(own) == len(set(own))


def test_native_placeholders_send_what_psycopg_would() -> None:
    # The long hot statements go out pre-converted (PostgresStore._native): the text, and so
    # the prepared statement, must be psycopg's own conversion, parameters in its order.
    from psycopg._queries import _query2pg_nocache

    from longops.store.postgres import native_placeholders

    for name, sql in load_queries("postgres").items():
        text, names = native_placeholders(sql)
        query, _formats, order, _parts = _query2pg_nocache(sql.encode(), "utf-8")
        assert text.encode() == query, name
        assert names == tuple(order or ()), name
    assert native_placeholders("SELECT %(a)s, %(b)s, %(a)s LIKE 'x%%'") == (
        "SELECT $1, $2, $1 LIKE 'x%'",
        ("a", "b"),
    )
