"""A server process keeps the API tokens it verified for a moment (``TokenCache``): a token
revoked or a user disabled through this process is refused at once; a change made elsewhere
(the library, the CLI, another server process) is refused at most the cache's seconds late."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live import OWN, Live

from longops.api.deps import Services, TokenCache
from longops.domain.errors import ValidationError
from longops.domain.security import PermissionSet


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(live: Live) -> Iterator[Ticks]:
    """The live server's token cache on a clock of the test's."""
    cache = services_of(live).tokens
    ticks = Ticks()
    kept = cache._clock
    cache._clock = ticks
    cache.changed()
    yield ticks
    cache._clock = kept
    cache.changed()


def services_of(live: Live) -> Services:
    found: Services = live.api.state.longops
    return found


def fresh_token(live: Live, user: str) -> str:
    live.app.security.add_user(user, grants=[(OWN, PermissionSet.VIEW)])
    return live.app.security.create_token(user, name="cached", expires=None)[1]


def status(live: Live, token: str) -> int:
    with live.client(headers={"Authorization": f"Bearer {token}"}) as http:
        return http.get(f"/v1/companies/{OWN}/operations").status_code


def test_a_token_revoked_through_this_server_is_refused_at_once(live: Live, ticks: Ticks) -> None:
    token = fresh_token(live, "u-cache-revoke")
    assert status(live, token) == 200
    assert services_of(live).tokens.get(token) is not None  # kept
    revoked = live.http("SUPER").delete("/v1/users/u-cache-revoke/tokens/cached")
    assert revoked.status_code == 204, revoked.text
    assert status(live, token) == 401


def test_a_user_disabled_through_this_server_is_refused_at_once(live: Live, ticks: Ticks) -> None:
    token = fresh_token(live, "u-cache-disable")
    assert status(live, token) == 200
    disabled = live.http("SUPER").post("/v1/users/u-cache-disable:disable")
    assert disabled.status_code == 200, disabled.text
    assert status(live, token) == 401


def test_a_change_made_elsewhere_is_refused_once_the_cache_time_is_over(
    live: Live, ticks: Ticks
) -> None:
    token = fresh_token(live, "u-cache-elsewhere")
    assert status(live, token) == 200
    live.app.security.revoke_token("u-cache-elsewhere", "cached")  # not through the server
    seconds = services_of(live).tokens.seconds
    assert seconds > 0
    ticks.now += seconds * 0.9
    assert status(live, token) == 200  # the documented bound: trusted this long at most
    ticks.now += seconds * 0.1
    assert status(live, token) == 401


def test_a_refused_token_is_never_kept(live: Live, ticks: Ticks) -> None:
    for kind in ("revoked", "expired", "disabled"):
        assert status(live, live.tokens[kind]) == 401
        assert services_of(live).tokens.get(live.tokens[kind]) is None


def test_a_verification_older_than_a_change_is_not_kept(live: Live) -> None:
    cache = TokenCache(seconds=5, clock=Ticks())
    view = live.app.authenticate(live.tokens["SUPER"])
    began = cache.generation
    cache.changed()  # a revocation committed while the verification ran
    cache.put("t", view, began)
    assert cache.get("t") is None
    cache.put("t", view, cache.generation)
    assert cache.get("t") is view
    cache.changed()
    assert cache.get("t") is None


def test_zero_seconds_keeps_nothing_and_the_setting_is_checked(live: Live) -> None:
    view = live.app.authenticate(live.tokens["SUPER"])
    off = TokenCache(seconds=0)
    off.put("t", view, off.generation)
    assert off.get("t") is None
    with pytest.raises(ValidationError) as refused:
        TokenCache(seconds=-1)
    assert refused.value.field == "api_token_cache_seconds"
    with pytest.raises(ValidationError):
        TokenCache(seconds=61)
