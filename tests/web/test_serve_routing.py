"""What ``longops serve`` sends to the API and what to the pages: every path the API answers
must reach it through the server's routing, not only when the API app is called directly."""

from __future__ import annotations

import httpx

from longops import Longops


def test_metrics_is_served_by_the_api_not_the_pages(app: Longops, served: str) -> None:
    _, secret = app.security.create_token("root", name="prometheus")
    with httpx.Client(base_url=served, timeout=30) as http:
        scraped = http.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
        assert scraped.status_code == 200, scraped.text[:200]
        assert scraped.headers["content-type"].startswith("text/plain")
        assert "# TYPE" in scraped.text
        # Without a token the API refuses in its own words (not the pages' 404 page).
        refused = http.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/json")
