"""The processes of one ``longops serve --processes N`` share a counter
(``api.deps.SharedCounter``, eight mapped bytes): a state-changing request through any of
them ends the API tokens (and wait contexts) every one of them kept, so a token revoked
through one process is refused by the others at once, not the cache's seconds later."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from longops import Longops
from longops.api.deps import SharedCounter, TokenCache
from longops.cli import serve
from longops.cli.serve import Server


def test_a_change_in_one_cache_ends_what_the_other_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "counter")
    SharedCounter.create(path)
    one, two = TokenCache(60), TokenCache(60)
    one.share(SharedCounter(path))
    two.share(SharedCounter(path))
    view: object = object()
    one.put("t", view, one.generation)  # type: ignore[arg-type]
    two.put("t", view, two.generation)  # type: ignore[arg-type]
    seen = two.generation
    assert one.get("t") is view
    assert two.get("t") is view
    one.changed()
    assert two.get("t") is None, "the other process's kept token ended at once"
    assert two.generation != seen
    assert one.get("t") is None


def test_a_token_revoked_through_one_process_is_refused_by_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two server applications on one database, as two ``--processes`` processes are."""
    monkeypatch.setenv("LONGOPS_API_TOKEN_CACHE_SECONDS", "60")
    path = str(tmp_path / "counter")
    SharedCounter.create(path)
    app = Longops(f"sqlite:///{tmp_path / 'db.sqlite'}")
    app.migrate()
    app.add_company("A")
    app.security.add_user("boss", is_super=True)
    boss = app.security.create_token("boss", name="t", expires=None)[1]
    app.security.add_user("reader", grants=[("A", "JOBQUEUE-VIEW")])
    reader = app.security.create_token("reader", name="t", expires=None)[1]
    servers = [Server(app), Server(app)]
    for server in servers:
        server.api.state.longops.tokens.share(SharedCounter(path))

    async def run() -> None:
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=s), base_url="http://test")
            for s in servers
        ]
        try:
            as_reader = {"Authorization": f"Bearer {reader}"}
            for http in clients:  # each process verifies and keeps the token
                answer = await http.get("/v1/companies/A/operations", headers=as_reader)
                assert answer.status_code == 200, answer.text
            revoked = await clients[0].delete(
                "/v1/users/reader/tokens/t", headers={"Authorization": f"Bearer {boss}"}
            )
            assert revoked.status_code == 204, revoked.text
            refused = await clients[1].get("/v1/companies/A/operations", headers=as_reader)
            assert refused.status_code == 401, "the other process refuses it at once"
        finally:
            for http in clients:
                await http.aclose()

    try:
        asyncio.run(run())
    finally:
        app.close()


def test_the_processes_of_serve_share_one_counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "counter")
    SharedCounter.create(path)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Longops(url).migrate()
    monkeypatch.setattr(serve.gc, "freeze", lambda: None)
    monkeypatch.setenv(serve._URL_ENV, url)
    monkeypatch.setenv(serve._SPEC_ENV, "")
    monkeypatch.setenv(serve._SHARED_ENV, path)
    made = [serve.process_server() for _ in range(2)]
    try:
        tokens = [m.api.state.longops.tokens for m in made]
        before = tokens[1].generation
        tokens[0].changed()
        assert tokens[1].generation != before
    finally:
        made[0].api.state.longops.app.close()
        made[1].api.state.longops.app.close()
