"""schemathesis against the served OpenAPI document (Must show of the REST API issue)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from live import Live, build_app

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
        },
        "request-timeout": 30,
        "max-stream-events": 2,
    }
)
# The company's live stream never ends on its own (it is the SSE helper's to test).
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG).exclude(path_regex=":stream$")


@pytest.fixture(scope="module", params=["SUPER", "JOBQUEUE-USER"])
def who(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case, live: Live, who: str) -> None:
    if case.query:
        # A page token is opaque: any text but one the server made is rightly refused.
        case.query.pop("pageToken", None)
    case.call_and_validate(
        base_url=live.url, headers={"Authorization": f"Bearer {live.tokens[who]}"}
    )
