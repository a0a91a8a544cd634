"""The pages and the API hardened, over real HTTP: a copied cookie stops working on
sign-out, a foreign Origin is refused with a valid CSRF token, the cookie is Secure behind
a trusted TLS proxy only, sign-in locks after repeated failures (429 with Retry-After), and
bodies over the limits get 413 (declared or streamed)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from web_support import PASSWORD, SECRET, Browser

from longops import Longops
from longops.asgi import client_of, trusted_set
from longops.cli.serve import Server
from longops.settings import ServerSettings
from longops.web.guard import WebOptions

Make = Callable[[str | None], Browser]


@pytest.fixture
def server(app: Longops) -> Server:
    settings = ServerSettings(
        trusted_proxies="127.0.0.1",
        max_body_form=20_000,
        max_body_api=50_000,
        signin_account_free=2,
        signin_account_lockout_after=5,
        signin_lockout_seconds=600,
    )
    return Server(app, secret=SECRET, settings=settings)


def test_a_copied_cookie_stops_working_after_sign_out(browser: Make, served: str) -> None:
    alice = browser("alice")
    assert alice.get("/c/CRONUS/").status_code == 200
    with httpx.Client(base_url=served, cookies=dict(alice.client.cookies)) as thief:
        assert thief.get("/c/CRONUS/").status_code == 200, "the copy works while signed in"
        out = alice.post("/logout")
        assert out.status_code == 303
        refused = thief.get("/c/CRONUS/")
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/login")
    assert alice.get("/c/CRONUS/").status_code == 303


def test_a_foreign_origin_is_refused_even_with_a_valid_csrf_token(
    browser: Make, served: str
) -> None:
    alice = browser("alice")
    alice.get("/c/CRONUS/")
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"},
                    {"Origin": "null"}):  # fmt: skip
        refused = alice.post("/logout", headers=headers)
        assert refused.status_code == 403, headers
        assert "did not come from this site" in refused.text
    assert alice.get("/c/CRONUS/").status_code == 200, "still signed in"
    own = alice.post("/logout", headers={"Origin": served})
    assert own.status_code == 303


def test_the_cookie_is_secure_only_behind_a_trusted_tls_proxy(browser: Make, served: str) -> None:
    with httpx.Client(base_url=served) as http:
        plain = http.get("/login").headers["set-cookie"]
        assert plain.startswith("longops_session=")
        assert "secure" not in plain.lower()
        assert "httponly" in plain.lower()
        assert "samesite=lax" in plain.lower()
        tls = http.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
        assert tls.startswith("__Host-longops_session=")
        assert "; secure" in tls.lower()
        assert "path=/" in tls.lower()


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    def scope(peer: str, **headers: str) -> dict[str, object]:
        raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return {"type": "http", "scheme": "http", "client": (peer, 5000), "headers": raw}

    said = scope("198.51.100.7", x_forwarded_proto="https", x_forwarded_for="203.0.113.1")
    assert client_of(said, {"10.0.0.5"}) == ("http", "198.51.100.7"), "anyone could say it"
    proxied = scope("10.0.0.5", x_forwarded_proto="https", x_forwarded_for="1.2.3.4, 203.0.113.1")
    assert client_of(proxied, {"10.0.0.5"}) == ("https", "203.0.113.1"), "the nearest hop"
    options = WebOptions(trusted_proxies=frozenset({"10.0.0.5"}))
    assert options.is_secure(proxied)
    assert not options.is_secure(said)
    assert WebOptions(secure_cookies=True).is_secure(said), "the setting wins"
    assert trusted_set(" 10.0.0.5, ,127.0.0.1") == {"10.0.0.5", "127.0.0.1"}


def test_sign_in_locks_after_repeated_failures(browser: Make, served: str) -> None:
    visitor = browser(None)
    answers = []
    for _ in range(30):
        answers.append(visitor.post("/login", {"username": "alice", "password": "wrong"}))
    codes = [r.status_code for r in answers]
    assert codes[:2] == [400, 400], "the free failures"
    assert 429 in codes
    assert set(codes) <= {400, 429}
    locked = visitor.post("/login", {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429, "the right password does not open a locked account"
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins: try again in" in locked.text
    assert browser("bob").get("/c/CRONUS/").status_code == 200, "others sign in as usual"


def test_bodies_over_the_limits_get_413_while_streaming(browser: Make, served: str) -> None:
    alice = browser("alice")
    big_form = alice.post("/logout", {"padding": "x" * 30_000})
    assert big_form.status_code == 413
    assert "larger than 20,000 bytes" in big_form.text
    token = alice.client.get("/c/CRONUS/")  # still signed in: nothing was done
    assert token.status_code == 200

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 10_000

    with httpx.Client(base_url=served, timeout=30) as http:
        declared = http.post(
            "/v1/companies/CRONUS/tasks/report:enqueue", content=b"{" + b" " * 60_000 + b"}"
        )
        assert declared.status_code == 413
        body = declared.json()["error"]
        assert (body["code"], body["target"]) == ("PayloadTooLarge", "body")
        assert "at most 50000 bytes" in body["message"]
        try:
            streamed = http.post("/v1/companies/CRONUS/tasks/report:enqueue", content=chunks())
        except httpx.TransportError:
            pytest.fail("the server cut the connection instead of answering 413")
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "PayloadTooLarge"


def test_sign_out_everywhere_ends_every_browser_and_one_sign_in_can_end_alone(
    browser: Make,
) -> None:
    laptop, phone, tablet = browser("alice"), browser("alice"), browser("alice")
    page = laptop.get("/c/CRONUS/account")
    assert page.status_code == 200
    assert page.text.count("data-sign-in-id=") == 3
    assert page.text.count("(this browser)") == 1
    ids = re.findall(
        r'name="session_id" value="([0-9a-f-]{36})"', phone.get("/c/CRONUS/account").text
    )
    mine = re.search(
        r'data-sign-in-id="([0-9a-f-]{36})">\s*<td>[^<]*<strong>',
        phone.get("/c/CRONUS/account").text,
    )
    assert mine is not None
    other = next(i for i in ids if i != mine.group(1))
    ended = phone.post("/c/CRONUS/account/end", {"session_id": other})
    assert ended.status_code == 303
    alive = [b.get("/c/CRONUS/").status_code for b in (laptop, phone, tablet)]
    assert alive.count(200) == 2, "exactly the chosen one ended"
    everywhere = phone.post("/c/CRONUS/account/end")
    assert everywhere.headers["location"] == "/login"
    assert [b.get("/c/CRONUS/").status_code for b in (laptop, phone, tablet)] == [303] * 3
    assert browser("bob").get("/c/CRONUS/").status_code == 200, "bob's sign-in is his own"
