"""The notification setup of a company over REST: rules, notified admins, channels (with a
test-send) and the delivery log, under ``/v1/companies/{company}/``. Admin only (the
``list_notification_setup`` and ``set_notification_setup`` actions); a channel's URL is
write-only: every answer shows its masked form."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from longops.api.deps import MAX_ID, Caller, NamePath, acts, call, company_of
from longops.api.models import (
    NUMBER,
    AdminAdded,
    AdminList,
    Body,
    ChannelList,
    ChannelModel,
    ChannelTested,
    DeliveryList,
    DeliveryRetried,
    Name,
    PersonalEmailChannel,
    RuleList,
    RuleModel,
    RuleMuted,
)
from longops.api.operations import ERRORS
from longops.domain.notify import Channel, Delivery, Rule

router = APIRouter(tags=["notifications"])
C = "/v1/companies/{company}"

EventName = Literal[
    "succeeded",
    "failed",
    "attempt_failed",
    "cancelled",
    "stalled",
    "running_long",
    "waiting_long",
    "milestone",
]
Recipient = Annotated[
    str,
    Field(
        pattern=r"^(owner|admins|owner_or_admins|(user|channel):[A-Za-z0-9][A-Za-z0-9_.:-]{0,99})$",
        description="owner, admins, owner_or_admins, user:NAME or channel:NAME",
    ),
]


class RuleBody(Body):
    name: Name
    on: EventName
    to: list[Recipient] = Field(min_length=1, max_length=50)
    task: Name | None = None
    category: Name | None = None
    queue: Name | None = None
    user: Name | None = None
    enabled: bool = True
    threshold: Annotated[float, Field(strict=False, gt=0, le=525_600), NUMBER] | None = Field(
        default=None,
        description="Minutes (running_long, waiting_long) or a percentage (milestone).",
    )


class ChannelBody(Body):
    name: Name
    url: str = Field(
        min_length=4,
        max_length=2000,
        description="An Apprise URL (mailtos://, json://, slack://, msteams://, ntfy://…); "
        "stored encrypted, never shown again.",
    )
    rateLimit: Annotated[int, Field(strict=False, ge=1, le=100_000), NUMBER] | None = None
    rateWindow: Annotated[int, Field(strict=False, ge=1, le=86_400), NUMBER] = 60


class AdminBody(Body):
    user: Name


def rule_json(r: Rule) -> dict[str, Any]:
    return r.to_json()


def channel_json(c: Channel) -> dict[str, Any]:
    return {
        "name": c.name,
        "url": c.url_masked,
        "schema": c.url_schema,
        "rateLimit": c.rate_limit,
        "rateWindow": c.rate_window,
    }


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "operationId": str(d.operation_id),
        "event": d.event.value,
        "rule": d.rule_name,
        "recipient": d.recipient,
        "idempotencyKey": str(d.idem_key),
        "status": d.status.value,
        "attempts": d.attempts,
        "nextAttemptTime": d.next_at.isoformat(),
        "sentTime": None if d.sent_at is None else d.sent_at.isoformat(),
        "lastError": d.last_error,
    }


READ = acts("list_notification_setup")
WRITE = acts("set_notification_setup")


# -- rules ---------------------------------------------------------------------------------
@router.get(
    f"{C}/notification-rules",
    openapi_extra=READ,
    response_model=RuleList,
    responses={200: {"model": RuleList}, **ERRORS},
    summary="The company's rules",
)
async def list_rules(company: NamePath, view: Caller) -> RuleList:
    await company_of(view, company)
    found = await call(view.notification_setup.list_rules, company)
    return RuleList.model_validate({"rules": [rule_json(r) for r in found]})


@router.post(
    f"{C}/notification-rules",
    openapi_extra=WRITE,
    status_code=201,
    response_model=RuleModel,
    responses={201: {"model": RuleModel, "description": "The rule"}, **ERRORS},
    summary="Add (or replace) a rule",
)
async def add_rule(company: NamePath, body: RuleBody, view: Caller) -> RuleModel:
    await company_of(view, company)
    made = await call(
        view.notification_setup.add_rule,
        company,
        body.name,
        on=body.on,
        to=body.to,
        task=body.task,
        category=body.category,
        queue=body.queue,
        user=body.user,
        enabled=body.enabled,
        threshold=body.threshold,
    )
    return RuleModel.model_validate(rule_json(made))


@router.delete(
    f"{C}/notification-rules/{{name:lro_name}}",
    openapi_extra=WRITE,
    status_code=204,
    response_model=None,  # no body (204), or not JSON
    responses={204: {"description": "Removed"}, **ERRORS},
    summary="Remove a rule",
)
async def remove_rule(company: NamePath, name: NamePath, view: Caller) -> Response:
    await company_of(view, company)
    await call(view.notification_setup.remove_rule, company, name)
    return Response(status_code=204)


def _mute(muted: bool) -> Any:
    async def run(company: NamePath, name: NamePath, view: Caller) -> RuleMuted:
        await company_of(view, company)
        await call(view.notification_setup.mute_rule, company, name, muted=muted)
        return RuleMuted(rule=name, muted=muted)

    return run


for _verb, _muted in (("mute", True), ("unmute", False)):
    router.add_api_route(
        f"{C}/notification-rules/{{name}}:{_verb}",
        _mute(_muted),
        openapi_extra=acts("set_notification_preferences"),
        methods=["POST"],
        response_model=RuleMuted,
        responses={200: {"model": RuleMuted, "description": "The caller's preference"}, **ERRORS},
        summary=f"{_verb.capitalize()} a rule's in-app notifications for the caller",
        name=f"rule_{_verb}",
    )


# -- notified admins -----------------------------------------------------------------------
@router.get(
    f"{C}/notification-admins",
    openapi_extra=READ,
    response_model=AdminList,
    responses={200: {"model": AdminList, "description": "The notified admins"}, **ERRORS},
    summary="The company's notified admins",
)
async def list_admins(company: NamePath, view: Caller) -> AdminList:
    await company_of(view, company)
    found = await call(view.notification_setup.list_admins, company)
    return AdminList(admins=found)


@router.post(
    f"{C}/notification-admins",
    openapi_extra=WRITE,
    status_code=201,
    response_model=AdminAdded,
    responses={201: {"model": AdminAdded, "description": "Added"}, **ERRORS},
    summary="Add a notified admin",
)
async def add_admin(company: NamePath, body: AdminBody, view: Caller) -> AdminAdded:
    await company_of(view, company)
    await call(view.notification_setup.add_admin, company, body.user)
    return AdminAdded(user=body.user)


@router.delete(
    f"{C}/notification-admins/{{name:lro_name}}",
    openapi_extra=WRITE,
    status_code=204,
    response_model=None,  # no body (204), or not JSON
    responses={204: {"description": "Removed"}, **ERRORS},
    summary="Remove a notified admin",
)
async def remove_admin(company: NamePath, name: NamePath, view: Caller) -> Response:
    await company_of(view, company)
    await call(view.notification_setup.remove_admin, company, name)
    return Response(status_code=204)


# -- channels ------------------------------------------------------------------------------
@router.get(
    f"{C}/notification-channels",
    openapi_extra=READ,
    response_model=ChannelList,
    responses={200: {"model": ChannelList}, **ERRORS},
    summary="The company's channels (URLs masked)",
)
async def list_channels(company: NamePath, view: Caller) -> ChannelList:
    await company_of(view, company)
    found = await call(view.notification_setup.list_channels, company)
    return ChannelList.model_validate({"channels": [channel_json(c) for c in found]})


@router.post(
    f"{C}/notification-channels",
    openapi_extra=WRITE,
    status_code=201,
    response_model=ChannelModel,
    responses={201: {"model": ChannelModel, "description": "The channel"}, **ERRORS},
    summary="Add (or replace) a channel",
)
async def add_channel(company: NamePath, body: ChannelBody, view: Caller) -> ChannelModel:
    await company_of(view, company)
    made = await call(
        view.notification_setup.add_channel,
        company,
        body.name,
        body.url,
        rate_limit=body.rateLimit,
        rate_window=body.rateWindow,
    )
    return ChannelModel.model_validate(channel_json(made))


@router.delete(
    f"{C}/notification-channels/{{name:lro_name}}",
    openapi_extra=WRITE,
    status_code=204,
    response_model=None,  # no body (204), or not JSON
    responses={204: {"description": "Removed"}, **ERRORS},
    summary="Remove a channel",
)
async def remove_channel(company: NamePath, name: NamePath, view: Caller) -> Response:
    await company_of(view, company)
    await call(view.notification_setup.remove_channel, company, name)
    return Response(status_code=204)


@router.post(
    f"{C}/notification-channels/{{name}}:test",
    openapi_extra=WRITE,
    response_model=ChannelTested,
    responses={
        200: {"model": ChannelTested, "description": "Whether it went, and why not"},
        **ERRORS,
    },
    summary="Send a test message to a channel now",
)
async def test_channel(company: NamePath, name: NamePath, view: Caller) -> ChannelTested:
    await company_of(view, company)
    error = await call(view.notification_setup.test_channel, company, name)
    return ChannelTested(sent=error is None, error=error)


@router.post(
    f"{C}/notification-channels/{{name}}:personalEmail",
    openapi_extra=WRITE,
    response_model=PersonalEmailChannel,
    responses={
        200: {"model": PersonalEmailChannel, "description": "The company's personal email channel"},
        **ERRORS,
    },
    summary="Make an email channel the one that emails people who chose also email",
)
async def personal_email_channel(
    company: NamePath, name: NamePath, view: Caller
) -> PersonalEmailChannel:
    await company_of(view, company)
    await call(view.notification_setup.set_email_channel, company, name)
    return PersonalEmailChannel(personalEmailChannel=name)


# -- the delivery log ----------------------------------------------------------------------
@router.get(
    f"{C}/notification-deliveries",
    openapi_extra=READ,
    response_model=DeliveryList,
    responses={200: {"model": DeliveryList}, **ERRORS},
    summary="The delivery log, newest first",
)
async def list_deliveries(
    company: NamePath,
    view: Caller,
    status: Annotated[Literal["pending", "sent", "dead", "digested"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    await company_of(view, company)
    found = await call(view.notification_setup.list_deliveries, company, status=status, limit=limit)
    return DeliveryList(deliveries=[delivery_json(d) for d in found])


@router.post(
    f"{C}/notification-deliveries/{{delivery_id}}:retry",
    openapi_extra=WRITE,
    response_model=DeliveryRetried,
    responses={200: {"model": DeliveryRetried, "description": "Queued again"}, **ERRORS},
    summary="Send a dead-lettered delivery again",
)
async def retry_delivery(
    company: NamePath, delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)], view: Caller
) -> DeliveryRetried:
    await company_of(view, company)
    await call(view.notification_setup.retry_delivery, company, delivery_id)
    return DeliveryRetried(id=delivery_id, status="pending")
