"""Names (tasks, companies, queues, categories, users) and token shapes match whole: a
regular expression's ``$`` also accepts a trailing newline, which must not slip through."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from longops.domain.errors import ValidationError
from longops.domain.operation import NewOperation
from longops.domain.users import check_user_name, new_token_text, parse_token


@pytest.mark.parametrize("field", ["task", "company", "queue", "category"])
@pytest.mark.parametrize("bad", ["A\n", "A\r\n", "\nA", ""])
def test_an_operation_name_with_a_newline_is_refused_naming_the_field(field: str, bad: str) -> None:
    fields = {"task": "t", "company": "A", "queue": "default", "category": None}
    fields[field] = bad
    with pytest.raises(ValidationError) as caught:
        NewOperation.build(
            task=fields["task"],
            now=datetime.now(UTC),
            company=fields["company"],
            queue=fields["queue"],
            category=fields["category"],
        )
    assert caught.value.field == field


@pytest.mark.parametrize("bad", ["alice\n", "alice\r\n", ""])
def test_a_user_name_with_a_newline_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_user_name(bad)
    assert caught.value.field == "name"


def test_a_token_followed_by_a_newline_is_not_a_token() -> None:
    token_id = uuid.uuid4()
    token = new_token_text(token_id)
    assert parse_token(token) == token_id
    assert parse_token(token + "\n") is None
