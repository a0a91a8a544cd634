"""schemathesis against the served OpenAPI document (Must show of the REST API issue)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from live import OTHER_USER, OWN, TASK, Live, build_app
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

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
            # NUL cannot be stored and is refused: the document says so for every string
            # of a body and a query (its pattern), and this run tries it.
            "allow-x00": True,
        },
        # Above the 30 s a :wait waits by default, so a loaded machine is not a failure.
        "request-timeout": 45,
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


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One kept-open session (a new one per request costs more than the request)."""
    with requests.Session() as kept:
        yield kept


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


STATE_RULES = {"FailedPrecondition", "OperationIdConflict", "MaintenanceActive"}
"""Refusals of a well-formed request because of the state things are in (AIP-216: hold a
running operation, an Operation-Id already used for another request, start maintenance
mode while it is on): no document can say beforehand which ids are in which state."""


def valid_data_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """schemathesis' positive_data_acceptance, but a state rule's 400 is no fault of the
    document; every other 400 for a request the document calls valid is."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return None
    if response.status_code != 400:
        return None
    error = response.json()["error"]
    if error["code"] in STATE_RULES:
        return True
    raise AssertionError(f"a request the document calls valid was refused: {error['message']}")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case, live: Live, who: Caller, session: requests.Session) -> None:
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
        if isinstance(case.body, dict):
            if case.body.get("category") is not None:
                case.body["category"] = SEEDED["code"]  # a category is one of the company's
            # Arguments follow the task's own schema (GET .../tasks), not the document's.
            case.body.pop("args", None)
            case.body.pop("kwargs", None)
            if "/notification-" in case.path:
                # A channel's URL is Apprise's own language, and a rule's channels and a
                # notified admin must exist: core's tests cover those refusals.
                if "url" in case.body:
                    case.body["url"] = "json://127.0.0.1:9/hook"
                if isinstance(case.body.get("to"), list):
                    kept = [r for r in case.body["to"] if not str(r).startswith("channel:")]
                    case.body["to"] = kept or ["admins"]
                if case.path.endswith("/notification-admins") and "user" in case.body:
                    case.body["user"] = OTHER_USER
                if "on" in case.body:
                    # A threshold means minutes or a percentage, by the event.
                    on = case.body["on"]
                    if on == "milestone":
                        case.body["threshold"] = 50
                    elif on == "waiting_long":
                        case.body["threshold"] = case.body.get("threshold") or 10
                    elif on != "running_long":
                        case.body.pop("threshold", None)
    case.call_and_validate(
        base_url=live.url,
        session=session,
        headers={"Authorization": f"Bearer {live.tokens[who.token]}"},
        additional_checks=[envelope_names_the_field, valid_data_accepted],
        excluded_checks=[positive_data_acceptance],
    )


def test_the_document_tested_is_the_one_served(live: Live) -> None:
    with live.client() as http:
        served = http.get("/v1/openapi.json").json()
    assert served == DOCUMENT
