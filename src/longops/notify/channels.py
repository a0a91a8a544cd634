"""Sending one notification to one channel through Apprise, with its idempotency key.

Webhook schemas (``json``, ``xml``, ``form`` and their TLS forms) receive the key as the
``Idempotency-Key`` header and, for JSON, as ``idempotency_key`` in the payload: a receiver
that keeps the keys it has seen drops a repeat (a delivery retried after a crash that came
after the send). Apprise's own log lines are captured, never propagated: they could name a
host or user, and the error kept on the delivery has the URL's secrets removed.

Example::

    error = send("json://127.0.0.1:8080/hook", Message("t", "b", None), idem_key=key)
    # None when sent, else why not (no secret in it)
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
import warnings
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from longops.domain.errors import LongopsError
from longops.domain.notify import Message, mask_url, url_schema

# Apprise logs under "apprise"; its lines must reach no handler of the application's.
logging.getLogger("apprise").propagate = False

_sending = threading.local()


class _QuietWhileSending(logging.Filter):
    """Drops the HTTP library's lines of this thread's send: at DEBUG they name the URL's
    path, where Slack, Teams and ntfy keep their tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_sending, "on", False)


for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_QuietWhileSending())


@functools.cache
def _apprise() -> Any:
    # Imported on first use: every process that imports longops (worker children among
    # them) would otherwise pay for Apprise and its plugins.
    import apprise

    return apprise


@functools.cache
def _plugins() -> None:
    # Apprise loads its plugins on first use; one of them imports the standard library's
    # deprecated imghdr, a warning that is Apprise's to fix and must not fail strict runs.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*imghdr.*", category=DeprecationWarning)
        _apprise().Apprise.instantiate("json://localhost")


WEBHOOK_SCHEMAS = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


def with_key(url: str, idem_key: uuid.UUID) -> str:
    """``url`` with the idempotency key added where its schema can carry one."""
    schema = url_schema(url)
    if schema not in WEBHOOK_SCHEMAS:
        return url
    sep = "&" if "?" in url else "?"
    extra = f"+Idempotency-Key={idem_key}"
    if schema.startswith("json"):
        extra += f"&:idempotency_key={idem_key}"
    return f"{url}{sep}{extra}"


EMAIL_SCHEMAS = frozenset({"mailto", "mailtos"})


def addressed(url: str, to: str) -> str:
    """An email channel's ``url`` sending to ``to`` alone (its own ``to`` replaced): how a
    company's personal email channel reaches one person.

    Example::

        addressed("mailtos://u:pw@smtp.example.com?to=ops@example.com", "ann@example.com")
        # 'mailtos://u:pw@smtp.example.com?to=ann%40example.com'
    """
    if url_schema(url) not in EMAIL_SCHEMAS:
        raise LongopsError("the personal email channel must be a mailto:// or mailtos:// URL")
    base, _, query = url.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() != "to"]
    return f"{base}?{urlencode([*kept, ('to', to)])}"


def check_url(url: str) -> None:
    """Raise ``ValueError`` (without the URL) unless Apprise understands ``url``."""
    url_schema(url)
    _plugins()
    if _apprise().Apprise.instantiate(url) is None:
        raise ValueError("is not a URL Apprise can send to")


def send(url: str, msg: Message, *, idem_key: uuid.UUID) -> str | None:
    """Send ``msg`` to ``url``; None when it went, else the reason (secrets removed)."""
    _plugins()
    apprise = _apprise()
    notifier = apprise.Apprise()
    if not notifier.add(with_key(url, idem_key)):
        return "the URL is not one Apprise can send to"
    _sending.on = True
    try:
        with apprise.LogCapture(level=logging.INFO) as captured:
            ok = notifier.notify(title=msg.title, body=msg.body)
    finally:
        _sending.on = False
    if ok:
        return None
    return redact(str(captured.getvalue()).strip() or "the channel refused it", url)


def redact(text: str, url: str) -> str:
    """``text`` with ``url``'s password, path, query and whole form replaced by its mask."""
    parts = urlsplit(url)
    secrets = [url]
    if parts.password:
        secrets += [parts.password, quote(parts.password, safe="")]
    secrets += [s for s in parts.path.split("/") if len(s) >= 6]
    secrets += [v for _, _, v in (p.partition("=") for p in parts.query.split("&")) if len(v) >= 6]
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "****")
    lines = [line for line in text.splitlines() if line.strip()]
    return (mask_url(url) + ": " + " | ".join(lines[-3:]))[:1000]
