"""What the pages' route tests share besides fixtures: the seeded users and their password,
and a browser-like client that keeps the session cookie and each form's CSRF token (a module
of its own: two test folders have a conftest, so ``from conftest import`` is ambiguous)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from longops.domain.security import PermissionSet

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password
SECRET = b"a test key that is long enough to sign cookies"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

USERS = {
    # name: (grants, super)
    "viewer": ([("CRONUS", PermissionSet.VIEW)], False),
    "alice": ([("CRONUS", PermissionSet.USER)], False),
    "bob": ([("CRONUS", PermissionSet.USER)], False),
    "admin": ([("CRONUS", PermissionSet.ADMIN)], False),
    "fabrikam": ([("FABRIKAM", PermissionSet.USER)], False),
    "both": ([("CRONUS", PermissionSet.USER), ("FABRIKAM", PermissionSet.ADMIN)], False),
    "root": ([], True),
}


class Browser:
    """A client that keeps the session cookie and reads each form's CSRF token."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.csrf = ""

    def get(self, url: str, **kw: Any) -> httpx.Response:
        response = self.client.get(url, **kw)
        found = CSRF_RE.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kw: Any
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=form, **kw)
