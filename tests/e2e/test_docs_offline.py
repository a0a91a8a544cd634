"""``/docs`` under ``longops serve`` works offline: Swagger UI comes from the vendored files
(``src/longops/api/static``), which the server answers beside the pages' own ``/static``."""

from __future__ import annotations

import re

import httpx
import pytest
from e2e_support import Deployment

pytestmark = pytest.mark.postgres


def test_docs_reference_only_files_the_server_answers(served: Deployment) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert not re.search(r"https?://", page.text), "the docs page names another host"
        assets = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", page.text)
        assets += re.findall(r"url: ['\"]([^'\"]+)['\"]", page.text)
        assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"} <= set(assets)
        assert "/v1/openapi.json" in assets
        kinds = {}
        for asset in assets:
            r = http.get(asset)
            assert r.status_code == 200, asset
            kinds[asset] = r.headers["content-type"]
    assert kinds["/docs/static/swagger-ui-bundle.js"].startswith(
        ("text/javascript", "application/javascript")
    )
    assert kinds["/docs/static/swagger-ui.css"].startswith("text/css")
    assert kinds["/v1/openapi.json"].startswith("application/json")
