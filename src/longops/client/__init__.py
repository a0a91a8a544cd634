"""A Python client for a longops server (``longops serve``): enqueue, get, list, wait,
cancel, hold / ready / restart, and ``watch()`` — the live events of an operation from its
SSE stream, reconnecting with ``Last-Event-ID`` so no event is lost or seen twice.

It talks HTTP only (httpx) and imports nothing else of longops, so it can be used from any
program that can reach the server.

Example::

    from longops.client import Client

    with Client("http://127.0.0.1:8000", token="lo_...", company="CRONUS") as lo:
        op = lo.enqueue("post_invoices", args=["2026-01"])
        for event in lo.watch(op["id"]):
            print(event.event, event.percent, event.summary)
        print(lo.get(op["id"])["status"])      # Succeeded
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["ApiError", "AsyncClient", "Client", "Event"]

DONE_STATUSES = frozenset({"Succeeded", "Failed", "Canceled"})


class ApiError(Exception):
    """The server refused: ``status`` (HTTP), ``code`` (stable, e.g. OperationNotFound),
    ``message`` and ``target`` (the field), from the error envelope."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        super().__init__(f"{status} {code}: {message}")


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE event: ``event`` (snapshot, progress, status, done), ``id`` and ``data``.

    ``data`` is the whole operation for ``snapshot`` and ``done`` (and a company stream's
    ``created``), a progress reading for ``progress``, and a timeline entry (``type``,
    ``data``) for ``status``. :attr:`progress`, :attr:`percent` and :attr:`summary` read
    any of them alike.

    Example::

        for event in api.watch(op["id"]):
            print(event.event, event.percent, event.summary)
        # snapshot 25.0 Running
        # progress 25.0 25% (1/2 rows), Step 1 of 2: phase 1, phase 1 started
        # status None attempt_ended: finished
        # done 100.0 Succeeded
    """

    event: str
    id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def operation(self) -> dict[str, Any] | None:
        """The operation, for the events that carry it whole."""
        return self.data if "metadata" in self.data and "status" in self.data else None

    @property
    def progress(self) -> dict[str, Any] | None:
        """The progress reading (``completed``, ``total``, ``unit``, ``percent``, ``step``,
        ``rate``, ``etaTime``, ...) this event carries or its operation holds; None for a
        status event or an operation without one."""
        op = self.operation
        if op is not None:
            found = op["metadata"].get("progress")
            return dict(found) if isinstance(found, dict) else None
        return dict(self.data) if self.event == "progress" else None

    @property
    def percent(self) -> float | None:
        """How far, 0 to 100: the operation's ``percentComplete`` (100 once it succeeded),
        or the progress reading's ``percent``; None when unknown (and for status events)."""
        op = self.operation
        if op is not None:
            value = op.get("percentComplete")
        else:
            value = self.data.get("percent") if self.event == "progress" else None
        return None if value is None else float(value)

    @property
    def summary(self) -> str:
        """One line for people: the status of an operation, the reading of a progress
        event, the kind (and new status) of a timeline entry."""
        op = self.operation
        if op is not None:
            return str(op["status"])
        if self.event == "progress":
            parts = []
            if self.percent is not None:
                parts.append(f"{self.percent:g}%")
            done, total = self.data.get("completed"), self.data.get("total")
            if done is not None:
                unit = f" {self.data['unit']}" if self.data.get("unit") else ""
                parts.append(f"({done}/{total}{unit})" if total is not None else f"({done}{unit})")
            text = " ".join(parts)
            step = (self.data.get("step") or {}).get("label")
            message = self.data.get("message")
            return ", ".join(p for p in (text, step, message) if p)
        kind = str(self.data.get("type", self.event))
        status = (self.data.get("data") or {}).get("status")
        return f"{kind}: {status}" if status else kind


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()["error"]
        raise ApiError(response.status_code, body["code"], body["message"], body.get("target"))
    except (ValueError, KeyError, TypeError):
        raise ApiError(response.status_code, "Unknown", response.text[:500]) from None


class _SseParser:
    """Turns the lines of an event stream into events (the WHATWG rules we need)."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []
        self._id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, line: str) -> Event | None:
        if line == "":
            if not self._data:
                self._event = "message"
                return None
            text = "\n".join(self._data)
            event = Event(self._event, self._id, json.loads(text) if text else {})
            self._event, self._data = "message", []
            return event
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


class _Base:
    def __init__(self, base_url: str, token: str, company: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.company = company
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def _ops(self, tail: str = "") -> str:
        return f"/v1/companies/{self.company}/operations{tail}"

    @staticmethod
    def _enqueue_body(
        args: list[Any] | tuple[Any, ...] | None, kwargs: Mapping[str, Any] | None, options: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"args": list(args or []), "kwargs": dict(kwargs or {})}
        body.update({k: v for k, v in options.items() if v is not None})
        return body


class Client(_Base):
    """A blocking client (httpx). Operations are returned as the server's JSON.

    Example::

        with Client(url, token=text, company="CRONUS") as lo:
            lo.cancel(op_id, reason="wrong month")
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        company: str = "default",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, company)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        _raise_for(response)
        return None if response.status_code == 204 else response.json()

    def enqueue(
        self,
        task: str,
        *,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        operation_id: uuid.UUID | str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Enqueue ``task``; ``options`` are the body's fields (``delay``, ``maxAttempts``,
        ``labels``, ...). With ``operation_id`` a retry of the same call is safe."""
        headers = {} if operation_id is None else {"Operation-Id": str(operation_id)}
        path = f"/v1/companies/{self.company}/tasks/{task}:enqueue"
        body = self._enqueue_body(args, kwargs, options)
        result: dict[str, Any] = self._json("POST", path, json=body, headers=headers)
        return result

    def get(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", self._ops(f"/{operation_id}"))
        return result

    def list(self, *, page_size: int = 50, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every operation matching the filters (the list's query parameters), page by page."""
        params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        params["pageSize"] = page_size
        while True:
            page = self._json("GET", self._ops(), params=params)
            yield from page["operations"]
            if not page.get("nextPageToken"):
                return
            params["pageToken"] = page["nextPageToken"]

    def wait(self, operation_id: str, *, timeout: float = 600.0) -> dict[str, Any]:
        """Wait until done (server-side waits of up to 60 s at a time)."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(deadline - time.monotonic(), 0.0)
            op: dict[str, Any] = self._json(
                "POST", self._ops(f"/{operation_id}:wait"), json={"timeout": min(left, 60.0)}
            )
            if op["done"] or left <= 0:
                return op

    def cancel(
        self, operation_id: str, *, reason: str | None = None, force: bool = False
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            "POST", self._ops(f"/{operation_id}:cancel"), json={"reason": reason, "force": force}
        )
        return result

    def hold(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", self._ops(f"/{operation_id}:hold"))
        return result

    def ready(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", self._ops(f"/{operation_id}:ready"))
        return result

    def restart(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", self._ops(f"/{operation_id}:restart"))
        return result

    def delete(self, operation_id: str) -> None:
        self._json("DELETE", self._ops(f"/{operation_id}"))

    def watch(
        self,
        operation_id: str,
        *,
        last_event_id: str | None = None,
        reconnect: int = 20,
    ) -> Iterator[Event]:
        """The operation's live events until ``done``; a dropped connection is resumed
        from the last event seen (up to ``reconnect`` times in a row)."""
        seen = last_event_id
        failures = 0
        retry = 2.0
        while True:
            headers = {"Accept": "text/event-stream"}
            if seen is not None:
                headers["Last-Event-ID"] = seen
            try:
                with self._http.stream(
                    "GET",
                    self._ops(f"/{operation_id}/events"),
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=60.0),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        _raise_for(response)
                    parser = _SseParser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if parser.retry_ms is not None:
                            retry = parser.retry_ms / 1000
                        if event is None:
                            continue
                        failures = 0
                        if event.id is not None:
                            seen = event.id
                        yield event
                        if event.event == "done":
                            return
            except (httpx.TransportError, httpx.StreamError):
                pass
            failures += 1
            if failures > reconnect:
                raise ApiError(0, "Unavailable", f"the stream of {operation_id} kept failing")
            time.sleep(min(retry, 5.0))


class AsyncClient(_Base):
    """The same as :class:`Client`, for asyncio code.

    Example::

        async with AsyncClient(url, token=text, company="CRONUS") as lo:
            op = await lo.enqueue("post_invoices", args=["2026-01"])
            async for event in lo.watch(op["id"]):
                ...
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        company: str = "default",
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, company)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        _raise_for(response)
        return None if response.status_code == 204 else response.json()

    async def enqueue(
        self,
        task: str,
        *,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        operation_id: uuid.UUID | str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        headers = {} if operation_id is None else {"Operation-Id": str(operation_id)}
        path = f"/v1/companies/{self.company}/tasks/{task}:enqueue"
        body = self._enqueue_body(args, kwargs, options)
        result: dict[str, Any] = await self._json("POST", path, json=body, headers=headers)
        return result

    async def get(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", self._ops(f"/{operation_id}"))
        return result

    async def list(self, *, page_size: int = 50, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        params["pageSize"] = page_size
        while True:
            page = await self._json("GET", self._ops(), params=params)
            for op in page["operations"]:
                yield op
            if not page.get("nextPageToken"):
                return
            params["pageToken"] = page["nextPageToken"]

    async def wait(self, operation_id: str, *, timeout: float = 600.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = max(deadline - time.monotonic(), 0.0)
            op: dict[str, Any] = await self._json(
                "POST", self._ops(f"/{operation_id}:wait"), json={"timeout": min(left, 60.0)}
            )
            if op["done"] or left <= 0:
                return op

    async def cancel(
        self, operation_id: str, *, reason: str | None = None, force: bool = False
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "POST", self._ops(f"/{operation_id}:cancel"), json={"reason": reason, "force": force}
        )
        return result

    async def hold(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("POST", self._ops(f"/{operation_id}:hold"))
        return result

    async def ready(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("POST", self._ops(f"/{operation_id}:ready"))
        return result

    async def restart(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("POST", self._ops(f"/{operation_id}:restart"))
        return result

    async def delete(self, operation_id: str) -> None:
        await self._json("DELETE", self._ops(f"/{operation_id}"))

    async def watch(
        self,
        operation_id: str,
        *,
        last_event_id: str | None = None,
        reconnect: int = 20,
    ) -> AsyncIterator[Event]:
        seen = last_event_id
        failures = 0
        retry = 2.0
        while True:
            headers = {"Accept": "text/event-stream"}
            if seen is not None:
                headers["Last-Event-ID"] = seen
            try:
                async with self._http.stream(
                    "GET",
                    self._ops(f"/{operation_id}/events"),
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=60.0),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _raise_for(response)
                    parser = _SseParser()
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if parser.retry_ms is not None:
                            retry = parser.retry_ms / 1000
                        if event is None:
                            continue
                        failures = 0
                        if event.id is not None:
                            seen = event.id
                        yield event
                        if event.event == "done":
                            return
            except (httpx.TransportError, httpx.StreamError):
                pass
            failures += 1
            if failures > reconnect:
                raise ApiError(0, "Unavailable", f"the stream of {operation_id} kept failing")
            await asyncio.sleep(min(retry, 5.0))
