"""The pages' read models: capped counts, running operations, runs per hour, log entries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from longops.domain.operation import (
    Operation,
)
from longops.domain.read_models import CategoryActivity, LogEntry
from longops.domain.status import Status
from longops.store._sql.core import SqlCore
from longops.store.base import (
    AttemptQuery,
    Companies,
    OperationQuery,
)


class ReadModelsSql(SqlCore):
    def count_capped(self, queries: Sequence[OperationQuery], cap: int) -> list[int]:
        statements = []
        for query in queries:
            params = {**self._query_params(query), "cap": cap}
            name = "count_operations_capped"
            if query.company is not None and len(query.statuses) == 1:
                name = "count_operations_capped_status"
                params["status"] = query.statuses[0].value
            statements.append((name, params))
        # One statement after another on one connection, not pipelined: a pipelined
        # statement is not prepared, and these repeat on every list page.
        out: list[int] = []
        with self._read() as cur:
            for name, params in statements:
                cur.execute(self.q[name], params)
                out.append(int(cur.fetchone()["n"]))
        return out

    def count_by_status(self, query: OperationQuery, cap: int) -> dict[Status, int]:
        params = {**self._query_params(replace(query, statuses=())), "cap": cap}
        rows = self._all("count_operations_by_status_capped", params)
        counts = {Status(r["status"]): int(r["n"]) for r in rows}
        return {s: counts.get(s, 0) for s in Status}

    def list_running(
        self,
        company: str | None = None,
        *,
        user: str | None = None,
        companies: Companies = None,
        limit: int = 100,
    ) -> list[Operation]:
        rows = self._all(
            "list_running",
            {
                "company": company,
                "companies": self.enc_companies(companies),
                "user_name": user,
                "limit": limit,
            },
        )
        return [self.operation(r) for r in rows]

    def runs_per_hour(
        self, company: str, since: datetime, hours: int, *, bucket_seconds: int = 3600
    ) -> list[tuple[int, int, int]]:
        rows = self._all(
            "runs_per_hour",
            {
                "company": company,
                "since": self.enc_ts(since),
                "until": self.enc_ts(since + timedelta(hours=hours)),
                "bucket": int(bucket_seconds),
            },
        )
        return [(int(r["bucket"]), int(r["finished"]), int(r["failed"])) for r in rows]

    def category_activity(self, company: str, cap: int) -> list[CategoryActivity]:
        rows = self._all("category_activity", {"company": company, "cap": cap})
        return [
            CategoryActivity(company, r["code"], int(r["running"]), int(r["waiting"])) for r in rows
        ]

    def list_company_attempts(self, query: AttemptQuery) -> list[LogEntry]:
        rows = self._all(
            "list_company_attempts",
            {
                "company": query.company,
                "companies": self.enc_companies(query.companies),
                "task": query.task,
                "outcomes": self.enc_list([o.value for o in query.outcomes]),
                "operation_id": self.enc_uuid(query.operation_id),
                "started_from": self.enc_ts(query.started_from),
                "started_to": self.enc_ts(query.started_to),
                "before_entry_no": query.before_entry_no,
                "limit": query.limit,
            },
        )
        return [LogEntry(self.attempt(r), r["operation_description"]) for r in rows]
