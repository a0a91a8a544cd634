"""Property-based: random sequences of actions never take an operation through a transition
the table does not allow, on either database. Stale lease holders never write."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from longops import FrozenClock, InvalidTransition, Longops, ValidationError
from longops.domain.ids import new_id
from longops.domain.operation import Outcome, Session, SessionState
from longops.domain.status import TRANSITIONS, Status
from longops.services.expiry import Expiry
from longops.services.rescuer import Rescuer
from longops.store.base import ClaimedRun, ClaimParams
from longops.worker.executor import RunOutcome, result_for

ACTIONS = ["set_ready", "restart", "run_now", "hold", "cancel", "delete"]
OUTCOMES = [Outcome.SUCCESS, Outcome.ERROR, Outcome.CANCELLED, Outcome.INTERRUPTED]


def machine_for(url: str) -> type[RuleBasedStateMachine]:
    class OperationMachine(RuleBasedStateMachine):
        ops = Bundle("ops")

        def __init__(self) -> None:
            super().__init__()
            self.clock = FrozenClock()
            self.app = Longops(url, clock=self.clock)
            # Examples share the database: a queue of its own keeps each one from seeing
            # another's operations, so every example is deterministic.
            self.queue = f"q{uuid.uuid4().hex[:12]}"
            self.app.task(name="noop", queue=self.queue)(lambda: None)
            self.seen: dict[uuid.UUID, Status] = {}
            self.claimed: list[ClaimedRun] = []
            self.session_id = self._session()
            self.rescuer = Rescuer(
                self.app.store, self.clock, self.app.registry, session_timeout=timedelta(seconds=30)
            )

        def _session(self) -> uuid.UUID:
            now = self.clock.now()
            sid = new_id(now)
            self.app.store.register_session(
                Session(sid, "h", 1, (self.queue,), 4, SessionState.ACTIVE, now, now, None)
            )
            return sid

        def teardown(self) -> None:
            self.app.close()

        @rule(
            target=ops,
            on_hold=st.booleans(),
            attempts=st.integers(1, 3),
            expires=st.booleans(),
            recurring=st.booleans(),
        )
        def enqueue(self, on_hold: bool, attempts: int, expires: bool, recurring: bool) -> Any:
            handle = self.app.enqueue(
                "noop",
                on_hold=on_hold,
                max_attempts=attempts,
                expires_at=self.clock.now() + timedelta(hours=1) if expires else None,
                recurrence="every 5m" if recurring else None,
            )
            self.seen[handle.id] = handle.status
            return handle.id

        @rule(op=ops, action=st.sampled_from(ACTIONS))
        def act(self, op: uuid.UUID, action: str) -> None:
            before = self.app.store.get_operation(op)
            try:
                getattr(self.app.service, action)(op)
            except (InvalidTransition, ValidationError, LookupError):
                after = self.app.store.get_operation(op)
                assert after == before, f"a refused {action} changed the operation"

        @rule(limit=st.integers(1, 3))
        def claim(self, limit: int) -> None:
            self.app.store.heartbeat(self.session_id, self.clock.now())
            got = self.app.store.claim(
                ClaimParams(self.session_id, (self.queue,), limit, self.clock.now())
            )
            self.claimed.extend(got)

        @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES))
        def finish(self, data: st.DataObject, outcome: Outcome) -> None:
            if not self.claimed:
                return
            run = self.claimed.pop(data.draw(st.integers(0, len(self.claimed) - 1)))
            current = self.app.store.get_operation(run.operation.id)
            result = result_for(
                run, RunOutcome(outcome, error_message="x"), task=None, clock=self.clock, tz=_utc()
            )
            [applied] = self.app.store.finish_runs([result])
            holds_lease = (
                current is not None
                and current.status is Status.IN_PROCESS
                and current.lease_token == run.lease_token
            )
            assert applied == holds_lease, "fencing: applied iff the lease is still held"

        @rule()
        def lose_session(self) -> None:
            self.clock.advance(seconds=31)
            self.rescuer.run_once()
            # Make the rescued retries due, so a new session can claim them while the old
            # claims are still held here: the case fencing exists for.
            self.clock.advance(seconds=2)
            self.session_id = self._session()
            # Another worker takes the rescued work at once; the old claims stay in
            # self.claimed, and finishing one of them is a late write from a dead session.
            self.claim(3)

        @rule(seconds=st.sampled_from([1, 60, 600, 4000]))
        def advance(self, seconds: int) -> None:
            self.clock.advance(seconds=seconds)
            Expiry(self.app.store, self.clock).run_once()

        @invariant()
        def only_allowed_transitions(self) -> None:
            for oid, before in list(self.seen.items()):
                op = self.app.store.get_operation(oid)
                if op is None:
                    assert before is not Status.IN_PROCESS, "a running operation vanished"
                    del self.seen[oid]
                    continue
                if op.status is not before:
                    assert op.status in TRANSITIONS[before], f"{before} -> {op.status}"
                assert (op.status is Status.IN_PROCESS) == (op.lease_token is not None)
                assert 0 <= op.attempt_count <= op.max_attempts
                self.seen[oid] = op.status

    return OperationMachine


def _utc() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("UTC")


def test_random_action_sequences_respect_the_transition_table(db_url: str) -> None:
    run_state_machine_as_test(
        machine_for(db_url),
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
