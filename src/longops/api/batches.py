"""Acting on many operations at once over HTTP: ``:batchCancel``, ``:batchRestart`` and
``:batchDelete``, by ids or by the list's filter; one outcome per requested id."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request

from longops.api.deps import Caller, NamePath, acts, call, company_of, services
from longops.api.errors import ApiError, from_longops
from longops.api.models import BatchBody, BatchEntry, BatchResult
from longops.api.presenting import ERRORS, find
from longops.api.reads import build_query
from longops.app import ActorView
from longops.domain.errors import LongopsError, ValidationError
from longops.domain.operation import Operation

router = APIRouter(prefix="/v1/companies/{company}", tags=["operations"])

BATCH_LIMIT = 10_000


async def _by_ids(
    view: ActorView, company: str, ids: list[str]
) -> list[tuple[str, Operation | None]]:
    """Each requested id once (in the order given), with the operation it names (None: not
    found). An id and the entry number of the same operation are two requests of one
    operation, which the batch then acts on once."""
    out: list[tuple[str, Operation | None]] = []
    for text in dict.fromkeys(ids):
        try:
            out.append((text, await find(view, company, text)))
        except (ApiError, LongopsError):
            out.append((text, None))
    return out


async def _by_filter(view: ActorView, company: str, body: BatchBody) -> list[Operation]:
    assert body.filter is not None
    given = body.filter.model_dump(exclude_none=True)
    query = replace(build_query(company, given), descending=False, limit=1000)
    out: list[Operation] = []
    while len(out) < BATCH_LIMIT:
        page = await call(view.service.list_operations, query)
        out.extend(page)
        if len(page) < query.limit:
            break
        query = replace(query, after_entry_no=page[-1].entry_no)
    return out[:BATCH_LIMIT]


async def _apply(view: ActorView, method: str, op: Operation, reason: str | None) -> None:
    if method == "cancel":
        await call(view.service.cancel, op.id, reason=reason)
    elif method == "delete":
        if not op.done:
            raise ValidationError("status", "must be done to delete", op.status.value)
        await call(view.service.delete, op.id)
    else:
        await call(getattr(view.service, method), op.id)


def _batch(verb: str, method: str, summary: str) -> None:
    async def run(
        company: NamePath, body: BatchBody, request: Request, view: Caller
    ) -> BatchResult:
        """``results`` has one entry per requested id (each id once, as sent) or per
        matching operation; ``matched`` counts the operations found, ``processed`` those
        the action was applied to, ``failed`` the entries that are not ok."""
        await company_of(view, company)
        if (body.ids is None) == (body.filter is None):
            raise ApiError(400, "InvalidArgument", "give either ids or filter", target="ids")
        if body.ids is not None:
            requested = await _by_ids(view, company, body.ids)
        else:
            requested = [(str(op.id), op) for op in await _by_filter(view, company, body)]
        results: list[BatchEntry] = []
        outcome: dict[uuid.UUID, dict[str, Any]] = {}
        for text, op in requested:
            if op is None:
                results.append(
                    BatchEntry(
                        id=text,
                        ok=False,
                        code="OperationNotFound",
                        message=f"operation {text} not found",
                    )
                )
                continue
            if op.id not in outcome:  # the same operation twice (its id and entry number)
                try:
                    await _apply(view, method, op, body.reason)
                    outcome[op.id] = {"ok": True}
                except LongopsError as exc:
                    _, code, message, _ = from_longops(exc)
                    outcome[op.id] = {"ok": False, "code": code, "message": message}
            results.append(BatchEntry(id=text, operationId=str(op.id), **outcome[op.id]))
        services(request).hub.poke()
        return BatchResult(
            matched=len(outcome),
            processed=sum(1 for o in outcome.values() if o["ok"]),
            failed=sum(1 for r in results if not r.ok),
            results=results,
        )

    router.add_api_route(
        f"/operations:{verb}",
        run,
        openapi_extra=acts(method),
        methods=["POST"],
        response_model=BatchResult,
        response_model_exclude_unset=True,
        responses={200: {"model": BatchResult}, **ERRORS},
        summary=summary,
        name=f"operations_{verb}",
    )


_batch("batchCancel", "cancel", "Cancel many operations (by ids or by filter)")
_batch("batchRestart", "restart", "Restart many operations (by ids or by filter)")
_batch("batchDelete", "delete", "Delete many done operations (by ids or by filter)")
