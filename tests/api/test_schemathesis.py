"""schemathesis against the served OpenAPI document (Must show of the REST API issue)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from live import OWN, TASK, Live, build_app
from schemathesis import GenerationMode

from longops.api import create_api

MAX_EXAMPLES = 10


def _document() -> dict[str, Any]:
    app = build_app("sqlite:///:memory:")
    try:
        return create_api(app).openapi()
    finally:
        app.close()


DOCUMENT = _document()
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "allow-extra-parameters": False,
            # NUL cannot be stored and is refused (test_operations_http names each field);
            # the document does not spell that out for every string.
            "allow-x00": False,
        },
        "request-timeout": 30,
        "max-stream-events": 2,
    }
)
# The company's live stream never ends on its own (it is the SSE helper's to test).
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG).exclude(path_regex=":stream$")


SEEDED = {"company": OWN, "task": TASK, "code": "CAT"}
"""Path values that exist, so that generated bodies reach core and the database (with
random names most requests end at 404)."""


@dataclass(frozen=True)
class Caller:
    token: str
    seeded: bool

    def __str__(self) -> str:
        return f"{self.token}-{'seeded' if self.seeded else 'random'}"


CALLERS = [Caller("SUPER", False), Caller("SUPER", True), Caller("JOBQUEUE-USER", True)]


@pytest.fixture(scope="module", params=CALLERS, ids=str)
def who(request: pytest.FixtureRequest) -> Caller:
    found: Caller = request.param
    return found


def envelope_names_the_field(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Every refusal is the error envelope with a stable code; bad input names its field
    (unless the body as a whole is the problem)."""
    if response.status_code < 400:
        return None
    error = response.json()["error"]
    headers = {k.lower(): v[0] if isinstance(v, list) else v for k, v in response.headers.items()}
    assert headers["error-code"] == error["code"], "Error-Code header"
    assert error["httpCode"] == response.status_code
    if error["code"] == "InvalidArgument" and error["target"] is None:
        raise AssertionError(f"400 without the field it is about: {error['message']}")
    return True


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case, live: Live, who: Caller) -> None:
    positive = case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE
    if case.query:
        # A page token is opaque: any text but one the server made is rightly refused.
        case.query.pop("pageToken", None)
    if positive and isinstance(case.body, dict):
        # Rules no JSON schema can state, covered by core's tests: a recurrence is a small
        # language (cron, date formulas), and an expiry must come after the start (now).
        case.body.pop("recurrence", None)
        case.body.pop("expireTime", None)
    if who.seeded and positive and case.path_parameters:
        # A refusal is to be tested as generated; a valid request goes where things exist.
        for name, value in SEEDED.items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
    case.call_and_validate(
        base_url=live.url,
        headers={"Authorization": f"Bearer {live.tokens[who.token]}"},
        additional_checks=[envelope_names_the_field],
    )


def test_the_document_tested_is_the_one_served(live: Live) -> None:
    with live.client() as http:
        served = http.get("/v1/openapi.json").json()
    assert served == DOCUMENT
