"""The authorization matrix over HTTP, generated from the permission table.

Every route of the API declares the actions of ``longops.domain.security.PERMISSIONS`` it
performs (``openapi_extra=acts(...)``, shown as ``x-longops-actions`` in the document);
``PROBES`` below says how to call each route for each declared action (``:cancel`` declares
``cancel`` and, with ``force``, ``force_cancel``). For each probe, each permission set, the
caller's own or another company (when the route is under a company) and the caller's own
or another user's target (operations and tokens), the expected answer is read from the
table:

- *allowed*: 2xx;
- *denied*: 403 ``PermissionDenied``;
- *hidden*: 404, exactly as for a company (or operation) that does not exist.

And without a token, or with a malformed, revoked or expired one, or one of a disabled
user, every route but the public ones answers 401 ``Unauthenticated``, the same each time.
A route that declares no action, or one whose actions ``PROBES`` does not cover, fails
``test_every_route_declares_its_action``.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from live import OTHER, OTHER_USER, OWN, TASK, USERS, Live

from longops.api.deps import ACTIONS_KEY, COMPANY_MEMBER
from longops.api.errors import flat_routes
from longops.domain.security import PERMISSIONS, PermissionSet, Reach, Rule, Scope
from longops.testing import active_session
from notify_receivers import refused_port

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/openapi.json"),
    ("HEAD", "/v1/openapi.json"),
    ("GET", "/docs"),
    ("HEAD", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("HEAD", "/docs/oauth2-redirect"),
}
NOWHERE = "NOWHERE"

MEMBER = Rule(
    Scope.COMPANY,
    dict.fromkeys(PermissionSet, Reach.ALL),
    "read the company's task list (any permission set in the company)",
)
"""Reading the tasks is not an action of core (the registry is the server's): any set in
the company reaches it, and another company is hidden, as for every company route."""


# -- what one request needs -------------------------------------------------------------------


@dataclass
class Ctx:
    """One case: who asks, in which company, about whose target."""

    live: Live
    actor: str
    company: str
    owner: str

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{uuid.uuid4().hex[:8]}"


Params = Callable[[Ctx], dict[str, str]]
Body = Callable[[Ctx], Any]


def op_in(state: str) -> Params:
    """A new operation of the case's company and owner, in ``state``."""

    def make(ctx: Ctx) -> dict[str, str]:
        if state == "done":
            op = ctx.live.done_op(ctx.company, ctx.owner)
        else:
            op = ctx.live.op(ctx.company, ctx.owner, on_hold=state == "on_hold")
        return {"operation_id": str(op.id)}

    return make


def nothing(ctx: Ctx) -> dict[str, str]:
    return {}


def fresh_user(ctx: Ctx) -> dict[str, str]:
    return {"name": ctx.live.app.security.add_user(ctx.fresh("f")).name}


def owner(ctx: Ctx) -> dict[str, str]:
    return {"name": ctx.owner}


def owners_token(ctx: Ctx) -> dict[str, str]:
    record, _ = ctx.live.app.security.create_token(ctx.owner, name=ctx.fresh("k"))
    return {"name": ctx.owner, "token": record.name}


def session(ctx: Ctx) -> dict[str, str]:
    found = active_session(ctx.live.app.clock.now())
    ctx.live.app.store.register_session(found)
    return {"session_id": str(found.id)}


def maintenance_off(ctx: Ctx) -> dict[str, str]:
    ctx.live.app.maintenance.stop()
    return {}


def queue(ctx: Ctx) -> dict[str, str]:
    return {"queue": ctx.fresh("q")}


def category(ctx: Ctx) -> dict[str, str]:
    return {"code": "CAT"}


def batch_of(state: str) -> Body:
    def make(ctx: Ctx) -> Any:
        return {"ids": [op_in(state)(ctx)["operation_id"]]}

    return make


def rule_of(ctx: Ctx) -> dict[str, str]:
    name = ctx.fresh("r")
    ctx.live.app.notification_setup.add_rule(ctx.company, name, on="failed", to=["admins"])
    return {"name": name}


def admin_of(ctx: Ctx) -> dict[str, str]:
    ctx.live.app.notification_setup.add_admin(ctx.company, OTHER_USER)
    return {"name": OTHER_USER}


def channel_of(ctx: Ctx) -> dict[str, str]:
    name = ctx.fresh("ch")
    url = f"json://127.0.0.1:{refused_port()}/hook"  # a test-send is refused at once
    ctx.live.app.notification_setup.add_channel(ctx.company, name, url)
    return {"name": name}


def email_channel_of(ctx: Ctx) -> dict[str, str]:
    name = ctx.fresh("m")
    url = f"mailto://127.0.0.1:{refused_port()}?from=a@example.com&to=b@example.com"
    ctx.live.app.notification_setup.add_channel(ctx.company, name, url)
    return {"name": name}


def dead_delivery(ctx: Ctx) -> dict[str, str]:
    setup = ctx.live.app.notification_setup
    channel = channel_of(ctx)["name"]
    setup.add_rule(ctx.company, "probe", on="cancelled", to=[f"channel:{channel}"])
    op = ctx.live.done_op(ctx.company, ctx.owner)
    ctx.live.app.delivery_service(max_attempts=1).run_once()
    [dead] = [
        d for d in setup.list_deliveries(ctx.company, status="dead") if d.operation_id == op.id
    ]
    return {"delivery_id": str(dead.id)}


@dataclass(frozen=True, eq=False)
class Probe:
    """One way of calling a route, and the action of the table it performs."""

    method: str
    path: str
    action: str
    params: Params = nothing
    body: Body | None = None
    variant: str = ""
    stream: bool = False
    batch: bool = False

    @property
    def table_rule(self) -> Rule:
        return MEMBER if self.action == COMPANY_MEMBER else SNAPSHOT[self.action]

    @property
    def in_company(self) -> bool:
        return "{company}" in self.path

    @property
    def has_owner(self) -> bool:
        return self.table_rule.scope in (Scope.OPERATION, Scope.SELF) and (
            "{operation_id}" in self.path or "{name}" in self.path or self.batch
        )

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}{' ' + self.variant if self.variant else ''}"


C = "/v1/companies/{company}"
OP = f"{C}/operations/{{operation_id}}"
PROBES = [
    Probe("POST", f"{C}/tasks/{{task}}:enqueue", "enqueue", lambda c: {"task": TASK}, lambda c: {}),
    Probe("GET", OP, "get_operation", op_in("on_hold")),
    Probe("GET", f"{C}/operations", "list_operations"),
    Probe("GET", f"{OP}/attempts", "list_attempts", op_in("on_hold")),
    Probe("GET", f"{OP}/events", "list_events", op_in("on_hold")),
    Probe("GET", f"{C}/operations:stream", "list_operations", stream=True),
    Probe("POST", f"{OP}:cancel", "cancel", op_in("ready"), lambda c: {}),
    Probe(
        "POST", f"{OP}:cancel", "force_cancel", op_in("ready"), lambda c: {"force": True}, "force"
    ),
    Probe("POST", f"{OP}:wait", "get_operation", op_in("on_hold"), lambda c: {"timeout": 0}),
    Probe("POST", f"{OP}:hold", "hold", op_in("ready")),
    Probe("POST", f"{OP}:ready", "set_ready", op_in("on_hold")),
    Probe("POST", f"{OP}:restart", "restart", op_in("on_hold")),
    Probe("POST", f"{OP}:runNow", "run_now", op_in("ready")),
    Probe("DELETE", OP, "delete", op_in("done")),
    Probe("POST", f"{C}/operations:batchCancel", "cancel", body=batch_of("ready"), batch=True),
    Probe("POST", f"{C}/operations:batchRestart", "restart", body=batch_of("on_hold"), batch=True),
    Probe("POST", f"{C}/operations:batchDelete", "delete", body=batch_of("done"), batch=True),
    Probe("GET", f"{C}/categories", "list_categories"),
    Probe("POST", f"{C}/categories", "set_category", body=lambda c: {"code": c.fresh("C")}),
    Probe("PATCH", f"{C}/categories/{{code}}", "set_category", category, lambda c: {}),
    Probe("POST", f"{C}/categories/{{code}}:pause", "set_category", category),
    Probe("POST", f"{C}/categories/{{code}}:resume", "set_category", category),
    Probe("GET", f"{C}/tasks", COMPANY_MEMBER),
    Probe("GET", "/v1/queues", "list_paused_queues"),
    Probe("POST", "/v1/queues/{queue}:pause", "pause_queue", queue),
    Probe("POST", "/v1/queues/{queue}:resume", "pause_queue", queue),
    Probe("GET", "/v1/sessions", "list_sessions"),
    Probe("GET", "/metrics", "list_sessions"),  # the fleet's figures span companies
    Probe("POST", "/v1/sessions/{session_id}:drain", "drain_session", session),
    Probe("GET", "/v1/maintenance", "read_maintenance"),
    # Off before each start (SUPER's turns it on); the stop right after turns it off again.
    Probe("POST", "/v1/maintenance:start", "set_maintenance", maintenance_off, lambda c: {}),
    Probe("POST", "/v1/maintenance:stop", "set_maintenance"),
    Probe("GET", "/v1/users", "list_users"),
    Probe("POST", "/v1/users", "add_user", body=lambda c: {"name": c.fresh("n")}),
    Probe("POST", "/v1/users/{name}:enable", "disable_user", fresh_user),
    Probe("POST", "/v1/users/{name}:disable", "disable_user", fresh_user),
    Probe("DELETE", "/v1/users/{name}", "delete_user", fresh_user),
    Probe("GET", "/v1/users/{name}/tokens", "list_tokens", owner),
    Probe(
        "POST", "/v1/users/{name}/tokens", "create_token", owner, lambda c: {"name": c.fresh("t")}
    ),
    Probe("DELETE", "/v1/users/{name}/tokens/{token}", "revoke_token", owners_token),
    Probe("GET", "/v1/users/{name}/contact", "user_contact", owner),
    Probe(
        "PUT",
        "/v1/users/{name}/contact",
        "user_contact",
        owner,
        lambda c: {"email": f"{c.fresh('e')}@example.com"},
    ),
    Probe("GET", f"{C}/audit", "list_audit"),
    Probe("GET", f"{C}/notification-rules", "list_notification_setup"),
    Probe(
        "POST",
        f"{C}/notification-rules",
        "set_notification_setup",
        body=lambda c: {"name": c.fresh("r"), "on": "failed", "to": ["admins"]},
    ),
    Probe("DELETE", f"{C}/notification-rules/{{name}}", "set_notification_setup", rule_of),
    Probe("POST", f"{C}/notification-rules/{{name}}:mute", "set_notification_preferences", rule_of),
    Probe(
        "POST", f"{C}/notification-rules/{{name}}:unmute", "set_notification_preferences", rule_of
    ),
    Probe("GET", f"{C}/notification-admins", "list_notification_setup"),
    Probe(
        "POST",
        f"{C}/notification-admins",
        "set_notification_setup",
        body=lambda c: {"user": OTHER_USER},
    ),
    Probe("DELETE", f"{C}/notification-admins/{{name}}", "set_notification_setup", admin_of),
    Probe("GET", f"{C}/notification-channels", "list_notification_setup"),
    Probe(
        "POST",
        f"{C}/notification-channels",
        "set_notification_setup",
        body=lambda c: {"name": c.fresh("ch"), "url": "json://127.0.0.1:9/hook"},
    ),
    Probe("DELETE", f"{C}/notification-channels/{{name}}", "set_notification_setup", channel_of),
    Probe("POST", f"{C}/notification-channels/{{name}}:test", "set_notification_setup", channel_of),
    Probe(
        "POST",
        f"{C}/notification-channels/{{name}}:personalEmail",
        "set_notification_setup",
        email_channel_of,
    ),
    Probe("GET", f"{C}/notification-deliveries", "list_notification_setup"),
    Probe(
        "POST",
        f"{C}/notification-deliveries/{{delivery_id}}:retry",
        "set_notification_setup",
        dead_delivery,
    ),
    Probe("GET", "/v1/audit", "list_audit"),
]
SNAPSHOT = {a: Rule(r.scope, dict(r.cells), r.what) for a, r in PERMISSIONS.items()}
"""The table when the module is imported: expectations do not follow a patched table."""


@dataclass(frozen=True)
class Case:
    probe: Probe
    permission_set: PermissionSet
    other_company: bool = False
    other_owner: bool = False

    @property
    def id(self) -> str:
        where = "other-company" if self.other_company else "own-company"
        whose = "others" if self.other_owner else "own"
        return f"{self.probe.id} {self.permission_set.value} {where} {whose}"


def cases(probes: list[Probe]) -> list[Case]:
    out = []
    for probe in probes:
        companies = [False, True] if probe.in_company else [False]
        owners = [False, True] if probe.has_owner else [False]
        for s, other_company, other_owner in itertools.product(PermissionSet, companies, owners):
            out.append(Case(probe, s, other_company, other_owner))
    return out


def expected(case: Case, rule: Rule) -> str:
    """What the table says, cell by cell (as the core matrix reads it)."""
    if case.permission_set is not PermissionSet.SUPER and case.other_company:
        return "hidden"  # the caller holds no set in the other company
    cell = rule.cells[case.permission_set]
    if cell is Reach.ALL or (cell is Reach.OWN and not case.other_owner):
        return "allowed"
    return "denied"


CASES = cases(PROBES)
EXPECTED = {c: expected(c, c.probe.table_rule) for c in CASES}


# -- sending a case -------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    code: str | None
    message: str
    body: Any


def send(http: httpx.Client, probe: Probe, values: dict[str, str], body: Any | None) -> Answer:
    url = probe.path.format(**values)
    if probe.stream:
        with http.stream(probe.method, url, headers={"Accept": "text/event-stream"}) as r:
            if r.status_code == 200:
                assert r.headers["content-type"].startswith("text/event-stream")
                return Answer(200, None, "", None)
            r.read()
            response = r
    else:
        response = http.request(probe.method, url, json=body)
    plain = response.headers.get("content-type", "").startswith("text/plain")
    data = None if plain or not response.content else response.json()  # /metrics is text
    refused = response.status_code >= 400 and isinstance(data, dict)
    error = data.get("error") if refused else None  # a cancelled operation has one too
    code = error["code"] if isinstance(error, dict) else None
    message = error["message"] if isinstance(error, dict) else ""
    if error is not None:
        assert response.headers["Error-Code"] == code
    return Answer(response.status_code, code, message, data)


def outcome(answer: Answer, probe: Probe) -> str:
    if probe.batch and answer.status == 200:
        [result] = answer.body["results"]
        if result["ok"]:
            return "allowed"
        return {"PermissionDenied": "denied", "OperationNotFound": "hidden"}.get(
            result["code"], f"item failed: {result}"
        )
    if 200 <= answer.status < 300:
        return "allowed"
    if answer.status == 403 and answer.code == "PermissionDenied":
        return "denied"
    if answer.status == 404:
        return "hidden"
    return f"{answer.status} {answer.code}: {answer.message}"


def user_of(s: PermissionSet) -> str:
    return USERS[s]


def run_case(live: Live, case: Case) -> tuple[str, Answer, dict[str, str], Any]:
    actor = user_of(case.permission_set)
    ctx = Ctx(
        live,
        actor,
        OTHER if case.other_company else OWN,
        OTHER_USER if case.other_owner else actor,
    )
    values = {"company": ctx.company, **case.probe.params(ctx)}
    body = case.probe.body(ctx) if case.probe.body else None
    answer = send(live.http(case.permission_set.value), case.probe, values, body)
    return outcome(answer, case.probe), answer, values, body


def same_refusal(hidden: Answer, missing: Answer, hidden_name: str) -> None:
    """A hidden target reads exactly as one that does not exist."""
    assert (hidden.status, hidden.code) == (missing.status, missing.code)
    assert hidden.message.replace(hidden_name, "X") == missing.message.replace(NOWHERE, "X")


# -- the tests ----------------------------------------------------------------------------------


def routes_of(live: Live) -> dict[tuple[str, str], set[str]]:
    """Every (method, path) served, with the actions the route declares."""
    out: dict[tuple[str, str], set[str]] = {}
    for route in flat_routes(live.api.routes):
        path = getattr(route, "path_format", None) or route.path  # type: ignore[attr-defined]
        extra = getattr(route, "openapi_extra", None) or {}
        for method in getattr(route, "methods", None) or ():
            key = (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", path))
            out[key] = set(extra.get(ACTIONS_KEY, ()))
    return out


def test_every_route_declares_its_action(live: Live) -> None:
    """A new route fails here until it declares its actions and the matrix probes them."""
    served = routes_of(live)
    undeclared = {r for r, actions in served.items() if not actions and r not in PUBLIC}
    assert undeclared == set(), "routes that declare no action (openapi_extra=acts(...))"
    probed: dict[tuple[str, str], set[str]] = {}
    for p in PROBES:
        probed.setdefault((p.method, p.path), set()).add(p.action)
    assert {r: a for r, a in served.items() if r not in PUBLIC} == probed
    assert {a for actions in probed.values() for a in actions} - set(PERMISSIONS) == {
        COMPANY_MEMBER
    }


def test_the_document_says_what_each_route_does(live: Live) -> None:
    with live.client() as http:
        paths = http.get("/v1/openapi.json").json()["paths"]
    for p in PROBES:
        assert p.action in paths[p.path][p.method.lower()][ACTIONS_KEY], p.id


def test_the_matrix_has_every_combination() -> None:
    hold = [c for c in CASES if c.probe.action == "hold"]
    assert len(hold) == 4 * 2 * 2
    assert {EXPECTED[c] for c in CASES} == {"allowed", "denied", "hidden"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_http_authorization_matrix(live: Live, case: Case) -> None:
    seen, answer, values, body = run_case(live, case)
    assert seen == EXPECTED[case], answer
    if seen == "hidden" and not case.probe.batch:
        # Another company answers as a company that does not exist: nothing leaks.
        missing_values = {**values, "company": NOWHERE}
        missing = send(live.http(case.permission_set.value), case.probe, missing_values, body)
        same_refusal(answer, missing, values["company"])


OPERATION_PROBES = [p for p in PROBES if "{operation_id}" in p.path]


@pytest.mark.parametrize("probe", OPERATION_PROBES, ids=[p.id for p in OPERATION_PROBES])
@pytest.mark.parametrize("permission_set", list(PermissionSet), ids=lambda s: s.value)
def test_another_companys_operation_under_ones_own_is_not_found(
    live: Live, probe: Probe, permission_set: PermissionSet
) -> None:
    """B's operation addressed under A reads as an id that does not exist, for everyone."""
    ctx = Ctx(live, user_of(permission_set), OTHER, OTHER_USER)
    theirs = {"company": OWN, **probe.params(ctx)}
    missing = {"company": OWN, "operation_id": str(uuid.uuid4())}
    body = probe.body(ctx) if probe.body else None
    http = live.http(permission_set.value)
    hidden = send(http, probe, theirs, body)
    absent = send(http, probe, missing, body)
    if probe.method == "DELETE":
        assert hidden.status == absent.status == 204  # forgetting what is not there is done
        assert live.app.service.get(theirs["operation_id"]).company == OTHER  # untouched
        return
    assert (
        (hidden.status, hidden.code)
        == (absent.status, absent.code)
        == (
            404,
            "OperationNotFound",
        )
    )
    assert hidden.message.replace(theirs["operation_id"], "X") == absent.message.replace(
        missing["operation_id"], "X"
    )


REFUSED = ["none", "malformed", "revoked", "expired", "disabled"]
GUARDED = [p for p in PROBES if p.variant == ""]


@pytest.mark.parametrize("probe", GUARDED, ids=[p.id for p in GUARDED])
def test_no_valid_token_is_401(live: Live, probe: Probe) -> None:
    ctx = Ctx(live, USERS[PermissionSet.SUPER], OWN, OTHER_USER)
    values = {"company": OWN, **probe.params(ctx)}
    body = probe.body(ctx) if probe.body else None
    answers = []
    for kind in REFUSED:
        if kind == "malformed":
            with live.client(headers={"Authorization": "Bearer lo_not-a-token"}) as http:
                answer = send(http, probe, values, body)
        else:
            answer = send(live.http(None if kind == "none" else kind), probe, values, body)
        answers.append((kind, answer.status, answer.code))
        assert (answer.status, answer.code) == (401, "Unauthenticated"), (kind, answer)
    bodies = {a[1:] for a in answers}
    assert len(bodies) == 1


def test_refused_tokens_read_alike_and_ask_for_a_bearer(live: Live) -> None:
    replies = {}
    for kind in ["malformed", "revoked", "expired", "disabled"]:
        headers = {} if kind != "malformed" else {"Authorization": "Bearer lo_x_y"}
        with live.client(None if kind == "malformed" else kind, headers=headers) as http:
            r = http.get(f"/v1/companies/{OWN}/operations")
        assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        replies[kind] = r.json()
    assert len({repr(v) for v in replies.values()}) == 1, "a refusal must not say why"
    with live.client() as http:
        r = http.get(f"/v1/companies/{OWN}/operations")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    with live.client(headers={"Authorization": "Basic dTpw"}) as http:
        assert http.get(f"/v1/companies/{OWN}/operations").status_code == 401


@pytest.mark.parametrize(
    ("action", "flipped_set", "to"),
    [("hold", PermissionSet.USER, Reach.ALL), ("list_audit", PermissionSet.ADMIN, Reach.NONE)],
)
def test_the_matrix_notices_a_flipped_cell(
    live: Live, monkeypatch: pytest.MonkeyPatch, action: str, flipped_set: PermissionSet, to: Reach
) -> None:
    """The server reads the table core reads: flip a cell and the HTTP answers change
    exactly where the flipped table says they should."""
    rule = PERMISSIONS[action]
    flipped = Rule(rule.scope, {**rule.cells, flipped_set: to}, rule.what)
    monkeypatch.setitem(PERMISSIONS, action, flipped)  # type: ignore[arg-type]
    affected = [c for c in CASES if c.probe.action == action]
    wrong = {c.id for c in affected if run_case(live, c)[0] != EXPECTED[c]}
    should_change = {c.id for c in affected if expected(c, flipped) != EXPECTED[c]}
    assert wrong
    assert wrong == should_change
