"""PostgreSQL's json/jsonb columns are decoded with orjson (``store.postgres.json_loads``),
except text that holds an integer orjson would turn into a float: values read back are
the values written, whatever their size."""

from __future__ import annotations

import json
import math

import pytest

from longops import EnqueueRequest, Longops
from longops.store.postgres import json_loads

BIG = 2**70


def test_json_loads_reads_what_the_standard_library_reads() -> None:
    for text in (
        b'{"a": 1, "b": [1.5, "x", null, true], "c": {"d": "\\u00e9"}}',
        b"9223372036854775807",
        b"-9223372036854775808",
        b"18446744073709551616",
        f'{{"n": {BIG}, "label": "1234567890123456789012"}}'.encode(),
        b"1e400",
    ):
        assert json_loads(text) == json.loads(text), text
    assert json_loads(f"[{BIG}]".encode()) == [BIG]
    assert isinstance(json_loads(f"[{BIG}]".encode())[0], int)
    assert math.isnan(json_loads(b"NaN"))


@pytest.mark.postgres
def test_a_big_integer_argument_reads_back_as_itself(pg_url: str) -> None:
    app = Longops(pg_url)
    app.task(name="t")(lambda n, small, f: n)
    try:
        written = {"n": BIG, "small": 7, "f": 0.1}
        op = app.service.enqueue(EnqueueRequest(task="t", kwargs=written))
        read = app.service.get(op.id)
        assert dict(read.kwargs) == written
        assert isinstance(read.kwargs["n"], int)
    finally:
        app.close()
