"""Acting on one operation over HTTP: ``:cancel``, ``:wait``, ``:hold``, ``:ready``,
``:restart``, ``:runNow`` (each answers the operation as it is then) and ``DELETE``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from longops.api.deps import Caller, NamePath, OperationIdPath, acts, call, company_of, services
from longops.api.errors import ApiError, from_longops
from longops.api.models import CancelBody, OperationModel, WaitBody
from longops.api.presenting import DEFAULT_WAIT, ERRORS, find, reply, wait_done
from longops.domain.errors import LongopsError

router = APIRouter(prefix="/v1/companies/{company}", tags=["operations"])


@router.post(
    "/operations/{operation_id}:cancel",
    openapi_extra=acts("cancel", "force_cancel"),
    response_model=OperationModel,
    response_model_exclude_unset=True,  # no null result/error while not applicable
    responses={
        202: {"model": OperationModel, "description": "Asked to stop (or cancelled at once)"},
        200: {"model": OperationModel, "description": "Already done: nothing to cancel"},
        **ERRORS,
    },
    summary="Cancel an operation",
)
async def cancel(
    company: NamePath,
    operation_id: OperationIdPath,
    request: Request,
    response: Response,
    view: Caller,
    body: CancelBody | None = None,
) -> OperationModel:
    """Cancel: at once when it is not running; a running one is asked to stop (and after
    its grace period stopped by force; ``force`` skips the grace, for admins)."""
    await company_of(view, company)
    op = await find(view, company, operation_id)
    if op.done:
        return await reply(response, request, view, company, op, status=200)
    args = body or CancelBody()
    op = await call(view.service.cancel, op.id, reason=args.reason, force=args.force)
    return await reply(response, request, view, company, op, status=202)


@router.post(
    "/operations/{operation_id}:wait",
    openapi_extra=acts("get_operation"),
    response_model=OperationModel,
    response_model_exclude_unset=True,  # no null result/error while not applicable
    responses={200: {"model": OperationModel}, **ERRORS},
    summary="Wait for an operation (up to a timeout)",
)
async def wait(
    company: NamePath,
    operation_id: OperationIdPath,
    request: Request,
    response: Response,
    view: Caller,
    body: WaitBody | None = None,
    timeout: Annotated[
        float | None, Query(ge=0, le=60, description="Seconds to wait at most (default 30).")
    ] = None,
) -> OperationModel:
    """The operation once it is done, or its latest state after ``timeout`` seconds (in the
    query, ``?timeout=2``, or the body, ``{"timeout": 2}``; given both, the shorter)."""
    await company_of(view, company)
    op = await find(view, company, operation_id)
    given = [t for t in (timeout, None if body is None else body.timeout) if t is not None]
    # Both are valid by the document, so both are taken: the shorter wait applies.
    seconds = min(given) if given else None
    op = await wait_done(view, op, DEFAULT_WAIT if seconds is None else seconds)
    return await reply(response, request, view, company, op)


def _action(method: str, summary: str, doc: str) -> None:
    async def act(
        company: NamePath,
        operation_id: OperationIdPath,
        request: Request,
        response: Response,
        view: Caller,
    ) -> OperationModel:
        await company_of(view, company)
        op = await find(view, company, operation_id)
        op = await call(getattr(view.service, method), op.id)
        services(request).hub.poke()
        return await reply(response, request, view, company, op)

    act.__doc__ = doc
    verb = {"set_ready": "ready", "run_now": "runNow"}.get(method, method)
    router.add_api_route(
        f"/operations/{{operation_id}}:{verb}",
        act,
        openapi_extra=acts(method),
        methods=["POST"],
        response_model=OperationModel,
        response_model_exclude_unset=True,  # no null result/error while not applicable
        responses={200: {"model": OperationModel}, **ERRORS},
        summary=summary,
        name=f"operation_{method}",
    )


_action("hold", "Set an operation on hold", "Set On Hold (not while it runs: cancel instead).")
_action("set_ready", "Set an operation ready", "Set Status to Ready (attempts reset).")
_action("restart", "Restart an operation", "Restart a finished, failed or cancelled operation.")
_action("run_now", "Run an operation now", "Make it due now, ignoring its schedule.")


@router.delete(
    "/operations/{operation_id:lro_id}",
    openapi_extra=acts("delete"),
    status_code=204,
    response_model=None,  # 204: no body
    responses={204: {"description": "Forgotten (or already gone)"}, **ERRORS},
    summary="Forget a finished operation",
)
async def delete(company: NamePath, operation_id: OperationIdPath, view: Caller) -> Response:
    """Forget an operation that is done; 400 while it is not (cancel it first)."""
    await company_of(view, company)
    try:
        op = await find(view, company, operation_id)
    except ApiError as exc:
        if exc.http == 404:
            return Response(status_code=204)
        raise
    except LongopsError as exc:
        if from_longops(exc)[0] == 404:
            return Response(status_code=204)
        raise
    if not op.done:
        raise ApiError(
            400,
            "FailedPrecondition",
            f"operation {op.id} is {op.status.value}: only a done operation can be deleted "
            "(cancel it first)",
        )
    await call(view.service.delete, op.id)
    return Response(status_code=204)
