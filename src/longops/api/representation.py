"""How an operation looks over HTTP: one resource that Google-style (AIP-151) and
Azure-style long-running-operation clients can both drive.

Google clients read ``name``, ``done``, ``metadata``, ``error`` and ``response``; Azure
clients read ``id``, ``status`` (NotStarted, Running, Succeeded, Failed, Canceled),
``error`` and ``result``. longops' own fields (progress, wait reason, attempts, cancel
request) are in ``metadata``.

Example::

    >>> represent(op, progress=None, wait=None)["status"]
    'Running'
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from longops.domain.operation import Attempt, Operation, OperationEvent
from longops.domain.progress import Progress
from longops.domain.status import TERMINAL, Status, StatusReason
from longops.domain.waiting import WaitReason

METADATA_TYPE = "type.longops.dev/longops.v1.OperationMetadata"

AZURE_STATUS = {
    Status.ON_HOLD: "NotStarted",
    Status.READY: "NotStarted",
    Status.IN_PROCESS: "Running",
    Status.FINISHED: "Succeeded",
    Status.ERROR: "Failed",
    Status.CANCELLED: "Canceled",
}
"""Azure's status of each status; a retry waiting for its turn is Running (it is not
done), as the conventions' lifecycle table says."""

AZURE_STATUSES = ("NotStarted", "Running", "Succeeded", "Failed", "Canceled")


TIME_KEYS = {
    "eta_at": "etaTime",
    "updated_at": "updateTime",
    "started_at": "startTime",
    "ended_at": "endTime",
    "created_at": "createTime",
    "requested_at": "requestTime",
    "overdue_at": "overdueTime",
    "at": "at",
}
"""Times are ``...Time`` on the wire, as in ``metadata`` (AIP-142)."""


def camel(value: Any) -> Any:
    """``value`` with every key of every object in camelCase (AIP-140): core's JSON of
    progress, events, attempts and cancel requests speaks snake_case (it is also what is
    stored), the API speaks camelCase throughout. Only keys change, never values.

    Example::

        camel({"eta_at": None, "step": {"of": 5}, "run_no": 1})
        # {'etaTime': None, 'step': {'of': 5}, 'runNo': 1}
    """
    if isinstance(value, dict):
        return {_camel_key(str(k)): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


@functools.lru_cache(maxsize=4096)
def _camel_key(key: str) -> str:
    if key in TIME_KEYS:
        return TIME_KEYS[key]
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def operation_name(company: str, operation_id: object) -> str:
    """The operation's full resource name (AIP-122), its URL's path below ``/v1/``."""
    return f"companies/{company}/operations/{operation_id}"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def state(op: Operation, now: datetime) -> str:
    """The AIP-style state inside ``metadata``."""
    if op.status is Status.IN_PROCESS:
        return "CANCELLING" if op.cancel_request is not None else "RUNNING"
    if op.status is Status.READY:
        if op.status_reason is StatusReason.RETRY:
            return "RETRYING"
        return "SCHEDULED" if op.earliest_start_at > now else "QUEUED"
    return {
        Status.ON_HOLD: "ON_HOLD",
        Status.FINISHED: "SUCCEEDED",
        Status.ERROR: "FAILED",
        Status.CANCELLED: "CANCELLED",
    }[op.status]


def azure_status(op: Operation) -> str:
    if op.status is Status.READY and op.status_reason is StatusReason.RETRY:
        return "Running"
    return AZURE_STATUS[op.status]


def _error(op: Operation) -> dict[str, Any] | None:
    if op.status is Status.CANCELLED:
        who = op.cancel_request.requested_by if op.cancel_request else None
        reason = op.cancel_request.reason if op.cancel_request else None
        message = "Cancelled" + (f" by {who}" if who else "") + (f": {reason}" if reason else "")
        if op.cancel_mode is not None and op.cancel_mode.value == "expired":
            message = "Expired before it started"
        return {
            "code": "Canceled",
            "message": message,
            "target": None,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "EXPIRED"
                    if op.cancel_mode is not None and op.cancel_mode.value == "expired"
                    else "CANCELLED_BY_USER",
                    "domain": "longops.dev",
                    "metadata": {
                        "requestedBy": who,
                        "mode": None if op.cancel_mode is None else op.cancel_mode.value,
                    },
                }
            ],
            "innererror": None,
            "status": "CANCELLED",
            "rpcCode": 1,
        }
    if op.status is Status.ERROR:
        timeout = op.status_reason is StatusReason.TIMEOUT
        return {
            "code": "DeadlineExceeded" if timeout else "Internal",
            "message": op.last_error or "failed",
            "target": None,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "TIMEOUT" if timeout else "TASK_FAILED",
                    "domain": "longops.dev",
                    "metadata": {"attempts": str(op.attempt_count)},
                }
            ],
            "innererror": None,
            "status": "DEADLINE_EXCEEDED" if timeout else "INTERNAL",
            "rpcCode": 4 if timeout else 13,
        }
    return None


_PRIORITY_LABELS: dict[Any, str] = {}
"""Each priority's label, looked up once (``Priority.label`` reads the enum's name)."""
_CAPTIONS = {s: s.caption for s in Status}


def represent(
    op: Operation,
    *,
    progress: Progress | None,
    wait: WaitReason | None,
    now: datetime,
) -> dict[str, Any]:
    """The canonical JSON of an operation (conventions §7.2)."""
    status = op.status
    done = status in TERMINAL
    reading = progress if progress is not None else op.progress
    percent = reading.percent if reading is not None else None
    if status is Status.FINISHED:
        percent = 100.0
    partial = []
    retrying = status is Status.READY and op.status_reason is StatusReason.RETRY
    if retrying and op.last_error:
        partial.append({"code": "Internal", "message": op.last_error, "rpcCode": 13})
    priority = op.priority
    label = _PRIORITY_LABELS.get(priority)
    if label is None:
        label = _PRIORITY_LABELS.setdefault(priority, priority.label)
    cancel_request = op.cancel_request
    started_at, ended_at, expires_at = op.started_at, op.ended_at, op.expires_at
    stalled_at, checkpoint_at = op.stalled_at, op.checkpoint_at
    company = op.company
    op_id = str(op.id)
    metadata: dict[str, Any] = {
        "@type": METADATA_TYPE,
        "company": company,
        "entryNo": op.entry_no,
        "task": op.task,
        "description": op.description,
        "queue": op.queue,
        "category": op.category,
        "priority": label,
        "state": state(op, now),
        "statusDetail": status.value,
        "statusCaption": "Cancelling"
        if status is Status.IN_PROCESS and cancel_request is not None
        else _CAPTIONS[status],
        "statusReason": op.status_reason,
        "attempt": op.attempt_count,
        "maxAttempts": op.max_attempts,
        "createTime": op.created_at.isoformat(),
        "scheduleTime": op.earliest_start_at.isoformat(),
        "startTime": None if started_at is None else started_at.isoformat(),
        "updateTime": op.updated_at.isoformat(),
        "endTime": ended_at.isoformat() if done and ended_at is not None else None,
        "expireTime": None if expires_at is None else expires_at.isoformat(),
        "timeoutSeconds": op.timeout.total_seconds(),
        "recurring": op.recurrence is not None,
        "progress": None if reading is None else camel(reading.to_json()),
        "statusMessage": (reading.message if reading is not None else None)
        or (wait.message if wait is not None else None),
        "waitReason": None if wait is None else camel(wait.to_json()),
        "cancelRequested": cancel_request is not None and not done,
        "cancelRequest": None
        if cancel_request is None and op.cancel_mode is None
        else camel(op.cancellation_json()),
        "stalled": stalled_at is not None,
        "stalledTime": None if stalled_at is None else stalled_at.isoformat(),
        "checkpointTime": None if checkpoint_at is None else checkpoint_at.isoformat(),
        "labels": dict(op.labels),
        "createdBy": op.user,
        "userInactive": op.user_inactive,
        "partialFailures": partial,
        "apiVersion": "v1",
    }
    body: dict[str, Any] = {
        "name": f"companies/{company}/operations/{op_id}",
        "id": op_id,
        "status": azure_status(op),
        "done": done,
        "percentComplete": percent,
        "metadata": metadata,
    }
    if status is Status.FINISHED:
        body["result"] = op.result
        body["response"] = op.result
    if status is Status.CANCELLED or status is Status.ERROR:
        body["error"] = _error(op)
    return body


def attempt_json(a: Attempt) -> dict[str, Any]:
    """An attempt (log entry) on the wire: camelCase, with its resource name."""
    data: dict[str, Any] = camel(a.to_json())
    data["name"] = f"{operation_name(a.company, a.operation_id)}/attempts/{a.number}"
    return data


def event_json(e: OperationEvent) -> dict[str, Any]:
    """A timeline entry on the wire: camelCase (its data too), with its resource name."""
    data: dict[str, Any] = camel(e.to_json())
    data["name"] = f"{operation_name(e.company, e.operation_id)}/events/{e.id}"
    return data
