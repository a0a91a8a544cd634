"""The other resources: categories and tasks of a company, queues, worker sessions,
users and their tokens, the audit log, and the health checks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from longops.api.deps import (
    COMPANY_MEMBER,
    MAX_ID,
    Caller,
    NamePath,
    UuidPath,
    acts,
    call,
    company_of,
    services,
)
from longops.api.errors import ApiError
from longops.api.models import (
    AuditList,
    CategoryBody,
    CategoryList,
    CategoryModel,
    CategoryPatch,
    ContactBody,
    ContactModel,
    ErrorResponse,
    Health,
    QueueList,
    SessionList,
    SessionModel,
    TaskList,
    TokenBody,
    TokenCreated,
    TokenList,
    UserBody,
    UserList,
    UserModel,
)
from longops.api.operations import ERRORS
from longops.app import ActorView
from longops.core.schema import readiness
from longops.core.tasks import TaskDef
from longops.domain.errors import NotFound, ValidationError
from longops.domain.operation import Category
from longops.domain.security import PermissionSet

router = APIRouter(tags=["resources"])


def category_json(c: Category) -> dict[str, Any]:
    return {
        "company": c.company,
        "code": c.code,
        "description": c.description,
        "maxConcurrent": c.max_concurrent,
        "paused": c.paused,
    }


# -- categories ---------------------------------------------------------------------------------
@router.get(
    "/v1/companies/{company}/categories",
    openapi_extra=acts("list_categories"),
    response_model=CategoryList,
    responses={200: {"model": CategoryList}, **ERRORS},
    summary="List the company's categories",
)
async def list_categories(company: NamePath, view: Caller) -> CategoryList:
    await company_of(view, company)
    found = await call(view.companies.list_categories, company)
    return CategoryList.model_validate({"categories": [category_json(c) for c in found]})


@router.post(
    "/v1/companies/{company}/categories",
    openapi_extra=acts("set_category"),
    status_code=201,
    response_model=CategoryModel,
    responses={201: {"model": CategoryModel}, **ERRORS},
    summary="Create (or replace) a category",
)
async def create_category(company: NamePath, body: CategoryBody, view: Caller) -> CategoryModel:
    await company_of(view, company)
    made = await call(
        view.companies.set_category,
        company,
        body.code,
        max_concurrent=body.maxConcurrent,
        description=body.description,
    )
    return CategoryModel.model_validate(category_json(made))


async def _category(view: ActorView, company: str, code: str) -> Category:
    found: list[Category] = await call(view.companies.list_categories, company)
    for c in found:
        if c.code == code:
            return c
    raise ApiError(404, "CategoryNotFound", f"category {code} not found")


@router.patch(
    "/v1/companies/{company}/categories/{code:lro_name}",
    openapi_extra=acts("set_category"),
    response_model=CategoryModel,
    responses={200: {"model": CategoryModel}, **ERRORS},
    summary="Change a category's limit or description",
)
async def patch_category(
    company: NamePath, code: NamePath, body: CategoryPatch, view: Caller
) -> CategoryModel:
    await company_of(view, company)
    current = await _category(view, company, code)
    made = await call(
        view.companies.set_category,
        company,
        code,
        max_concurrent=body.maxConcurrent or current.max_concurrent,
        description=current.description if body.description is None else body.description,
        paused=current.paused,
    )
    return CategoryModel.model_validate(category_json(made))


def _pause(paused: bool) -> Any:
    async def run(company: NamePath, code: NamePath, view: Caller) -> CategoryModel:
        await company_of(view, company)
        current = await _category(view, company, code)
        made = await call(
            view.companies.set_category,
            company,
            code,
            max_concurrent=current.max_concurrent,
            description=current.description,
            paused=paused,
        )
        return CategoryModel.model_validate(category_json(made))

    return run


for _verb, _paused in (("pause", True), ("resume", False)):
    router.add_api_route(
        f"/v1/companies/{{company}}/categories/{{code}}:{_verb}",
        _pause(_paused),
        openapi_extra=acts("set_category"),
        methods=["POST"],
        response_model=CategoryModel,
        responses={200: {"model": CategoryModel}, **ERRORS},
        summary=f"{_verb.capitalize()} a category",
        name=f"category_{_verb}",
    )


# -- tasks --------------------------------------------------------------------------------------
def task_json(task: TaskDef) -> dict[str, Any]:
    return {
        "name": task.name,
        "description": task.description,
        "queue": task.queue,
        "category": task.category,
        "isolation": task.isolation,
        "maxAttempts": task.max_attempts,
        "timeoutSeconds": task.timeout.total_seconds(),
        "requires": None if task.requires is None else task.requires.value,
        "argumentsSchema": task.arguments_schema(),
    }


@router.get(
    "/v1/companies/{company}/tasks",
    openapi_extra=acts(COMPANY_MEMBER),
    response_model=TaskList,
    responses={200: {"model": TaskList}, **ERRORS},
    summary="The tasks this server can enqueue, with their arguments' JSON schema",
)
async def list_tasks(company: NamePath, request: Request, view: Caller) -> TaskList:
    await company_of(view, company)
    registry = services(request).app.registry
    return TaskList.model_validate({"tasks": [task_json(t) for t in registry]})


# -- queues and sessions (global) -----------------------------------------------------------------
@router.get(
    "/v1/queues",
    openapi_extra=acts("list_paused_queues"),
    response_model=QueueList,
    responses={200: {"model": QueueList}, **ERRORS},
    summary="Paused queues",
)
async def list_queues(view: Caller) -> QueueList:
    paused = await call(view.companies.paused_queues)
    return QueueList(paused=sorted(paused))


def _queue(paused: bool) -> Any:
    async def run(queue: NamePath, view: Caller) -> QueueList:
        await call(view.companies.pause_queue if paused else view.companies.resume_queue, queue)
        now = await call(view.companies.paused_queues)
        return QueueList(paused=sorted(now))

    return run


for _verb, _paused in (("pause", True), ("resume", False)):
    router.add_api_route(
        f"/v1/queues/{{queue}}:{_verb}",
        _queue(_paused),
        openapi_extra=acts("pause_queue"),
        methods=["POST"],
        response_model=QueueList,
        responses={200: {"model": QueueList}, **ERRORS},
        summary=f"{_verb.capitalize()} a queue (SUPER)",
        name=f"queue_{_verb}",
    )


@router.get(
    "/v1/sessions",
    openapi_extra=acts("list_sessions"),
    response_model=SessionList,
    responses={200: {"model": SessionList}, **ERRORS},
    summary="Worker sessions (SUPER)",
)
async def list_sessions(
    view: Caller, active: Annotated[bool, Query(description="Only live sessions.")] = False
) -> SessionList:
    found = await call(view.sessions.list_sessions, active_only=active)
    return SessionList(sessions=[s.to_json() for s in found])


@router.post(
    "/v1/sessions/{session_id}:drain",
    openapi_extra=acts("drain_session"),
    status_code=202,
    response_model=SessionModel,
    responses={202: {"model": SessionModel, "description": "The session will drain"}, **ERRORS},
    summary="Drain a worker session (SUPER)",
)
async def drain_session(session_id: UuidPath, view: Caller) -> SessionModel:
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise ApiError(404, "SessionNotFound", f"session {session_id} not found") from None
    drained = await call(view.sessions.drain_session, sid)
    return SessionModel.model_validate(drained.to_json())


# -- users, tokens, audit -------------------------------------------------------------------------
@router.get(
    "/v1/users",
    openapi_extra=acts("list_users"),
    response_model=UserList,
    responses={200: {"model": UserList}, **ERRORS},
    summary="Users (SUPER)",
)
async def list_users(view: Caller) -> UserList:
    found = await call(view.security.list_users)
    return UserList(users=[u.to_json() for u in found])


@router.post(
    "/v1/users",
    openapi_extra=acts("add_user"),
    status_code=201,
    response_model=UserModel,
    responses={
        201: {"model": UserModel, "description": "The user"},
        **ERRORS,
        409: {"model": ErrorResponse, "description": "The name is taken"},
    },
    summary="Add a user (SUPER); 409 when the name is taken",
)
async def add_user(body: UserBody, view: Caller) -> UserModel:
    grants = []
    for company, name in body.grants:
        grants.append((company, PermissionSet.parse(name)))
    try:
        made = await call(
            view.security.add_user,
            body.name,
            display_name=body.displayName,
            password=body.password,
            grants=grants,
            is_super=body.isSuper,
            email=body.email,
        )
    except ValidationError as exc:
        if exc.field == "name" and exc.rule.startswith("is taken"):
            raise ApiError(409, "AlreadyExists", str(exc), target="name") from None
        raise
    return UserModel.model_validate(made.to_json())


def _user_state(enable: bool) -> Any:
    async def run(name: NamePath, view: Caller) -> UserModel:
        made = await call(view.security.enable_user if enable else view.security.disable_user, name)
        return UserModel.model_validate(made.to_json())

    return run


for _verb, _enable in (("enable", True), ("disable", False)):
    router.add_api_route(
        f"/v1/users/{{name}}:{_verb}",
        _user_state(_enable),
        openapi_extra=acts("disable_user"),
        methods=["POST"],
        response_model=UserModel,
        responses={200: {"model": UserModel, "description": "The user"}, **ERRORS},
        summary=f"{_verb.capitalize()} a user (SUPER)",
        name=f"user_{_verb}",
    )


@router.delete(
    "/v1/users/{name:lro_name}",
    openapi_extra=acts("delete_user"),
    status_code=204,
    response_model=None,  # no body (204), or not JSON
    responses={204: {"description": "Deleted"}, **ERRORS},
    summary="Delete a user (SUPER)",
)
async def delete_user(name: NamePath, view: Caller) -> Response:
    await call(view.security.delete_user, name)
    return Response(status_code=204)


def _contact(name: str, found: tuple[str | None, bool]) -> ContactModel:
    return ContactModel(name=name, email=found[0], notify="email" if found[1] else "inbox")


@router.get(
    "/v1/users/{name}/contact",
    openapi_extra=acts("user_contact"),
    response_model=ContactModel,
    responses={
        200: {"model": ContactModel, "description": "The user's email address and choice"},
        **ERRORS,
    },
    summary="A user's email address and how they are notified (their own, or SUPER)",
)
async def get_contact(name: NamePath, view: Caller) -> ContactModel:
    return _contact(name, await call(view.security.contact, name))


@router.put(
    "/v1/users/{name}/contact",
    openapi_extra=acts("user_contact"),
    response_model=ContactModel,
    responses={
        200: {"model": ContactModel, "description": "The user's email address and choice"},
        **ERRORS,
    },
    summary="Set a user's email address and in-app only or also email (their own, or SUPER)",
)
async def set_contact(name: NamePath, body: ContactBody, view: Caller) -> ContactModel:
    found = await call(
        view.security.set_contact,
        name,
        email=body.email,
        clear_email=body.removeEmail,
        notify_by_email=None if body.notify is None else body.notify == "email",
    )
    return _contact(name, found)


@router.get(
    "/v1/users/{name}/tokens",
    openapi_extra=acts("list_tokens"),
    response_model=TokenList,
    responses={200: {"model": TokenList}, **ERRORS},
    summary="A user's API tokens (never their secrets)",
)
async def list_tokens(name: NamePath, view: Caller) -> TokenList:
    found = await call(view.security.list_tokens, name)
    return TokenList(tokens=[t.to_json() for t in found])


@router.post(
    "/v1/users/{name}/tokens",
    openapi_extra=acts("create_token"),
    status_code=201,
    response_model=TokenCreated,
    responses={201: {"model": TokenCreated}, **ERRORS},
    summary="Create an API token (its text is shown this once)",
)
async def create_token(name: NamePath, view: Caller, body: TokenBody | None = None) -> TokenCreated:
    args = body or TokenBody()
    expires = None if args.expiresInDays is None else timedelta(days=args.expiresInDays)
    record, text = await call(view.security.create_token, name, name=args.name, expires=expires)
    return TokenCreated(token=text, record=record.to_json())


@router.delete(
    "/v1/users/{name}/tokens/{token}",
    openapi_extra=acts("revoke_token"),
    status_code=204,
    response_model=None,  # no body (204), or not JSON
    responses={204: {"description": "Revoked"}, **ERRORS},
    summary="Revoke an API token (by its name or id)",
)
async def revoke_token(name: NamePath, token: NamePath, view: Caller) -> Response:
    await call(view.security.revoke_token, name, token)
    return Response(status_code=204)


@router.get(
    "/v1/companies/{company}/audit",
    openapi_extra=acts("list_audit"),
    response_model=AuditList,
    responses={200: {"model": AuditList}, **ERRORS},
    summary="The company's audit log (admins)",
)
async def company_audit(
    company: NamePath,
    view: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="Entries before this id.")
    ] = None,
) -> AuditList:
    await company_of(view, company)
    found = await call(view.security.list_audit, company=company, limit=limit, before_id=before)
    return AuditList(entries=[e.to_json() for e in found])


@router.get(
    "/v1/audit",
    openapi_extra=acts("list_audit"),
    response_model=AuditList,
    responses={200: {"model": AuditList}, **ERRORS},
    summary="The audit log of every company the caller may read",
)
async def audit(
    view: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> AuditList:
    found = await call(view.security.list_audit, limit=limit, before_id=before)
    return AuditList(entries=[e.to_json() for e in found])


# -- health ---------------------------------------------------------------------------------------
@router.get("/healthz", response_model=Health, tags=["health"], summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={200: {"model": Health}, 503: {"model": ErrorResponse}},
    tags=["health"],
    summary="The database is reachable and its schema current",
)
async def readyz(request: Request) -> Health:
    store = services(request).app.store
    try:
        check = await call(readiness, store)
    except Exception as exc:
        raise ApiError(503, "Unavailable", f"database unreachable: {type(exc).__name__}") from exc
    if not check.may_claim:  # older, or newer and not declared compatible (docs/apps.md)
        raise ApiError(503, "Unavailable", check.message)
    return Health(status="ok", checks={"database": "ok", "schema": check.verdict.value})


__all__ = ["NotFound", "router"]


# -- the fleet's metrics (Prometheus) ------------------------------------------------------------
@router.get(
    "/metrics",
    openapi_extra=acts("list_sessions"),
    response_model=None,  # no body (204), or not JSON
    responses={
        200: {
            "description": "The fleet's figures in Prometheus's text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **ERRORS,
    },
    summary="The fleet's metrics for Prometheus (SUPER)",
)
async def metrics(view: Caller) -> Response:
    """Prometheus text format (docs/telemetry.md); scrape with a SUPER bearer token."""
    text = await call(view.sessions.fleet_metrics)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
