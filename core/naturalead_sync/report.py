"""The run report: what one run did, per connection, for the console and for ``--report``."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ConnectionReport", "Rejection", "RunReport"]

#: How many rejections a report lists in full; the rest are counted by reason only.
MAX_LISTED_REJECTIONS = 1000
#: How many lead_ids a dry run lists per action (create, update, delete).
MAX_PLAN_SAMPLES = 10


@dataclass(slots=True)
class Rejection:
    """One lead that was not accepted: its id and why (locally or by the API)."""

    lead_id: str
    reason: str
    where: str  # "local" (validation before sending) or "api" (the API's errors[])


@dataclass(slots=True)
class ConnectionReport:
    """Counters and outcome of one connection's run."""

    connection: str
    connector: str
    dry_run: bool = False
    status: str = "running"  # "ok", "rejected" (completed with rejections), "failed"
    error: str | None = None
    records_fetched: int = 0
    failed_refetched: int = 0
    created: int = 0
    updated: int = 0
    skipped_unchanged: int = 0
    skipped_stale: int = 0
    skipped_still_failing: int = 0
    filtered: int = 0
    rejected: int = 0
    deleted: int = 0
    delete_not_found: int = 0
    upsert_requests: int = 0
    delete_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    started_at: str | None = None
    duration_seconds: float = 0.0
    cursor_before: str | None = None
    cursor_after: str | None = None
    #: ``--full-refresh`` only: the cursor the run did not start from (``cursor_before`` is
    #: None: the run read from the beginning).
    cursor_ignored: str | None = None
    rejections: list[Rejection] = field(default_factory=list)
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    #: Dry runs only: the first lead_ids that would be created, updated and deleted.
    planned: dict[str, list[str]] = field(default_factory=dict)

    def reject(self, lead_id: str, reason: str, where: str) -> None:
        """Count one rejection, keeping the first ones in full."""
        self.rejected += 1
        self.rejection_reasons[reason] += 1
        if len(self.rejections) < MAX_LISTED_REJECTIONS:
            self.rejections.append(Rejection(lead_id, reason, where))

    def plan(self, action: str, lead_id: str) -> None:
        """Note a lead a dry run would create, update or delete (the first few per action)."""
        sample = self.planned.setdefault(action, [])
        if len(sample) < MAX_PLAN_SAMPLES:
            sample.append(lead_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["rejection_reasons"] = dict(self.rejection_reasons)
        return data


@dataclass(slots=True)
class RunReport:
    """The reports of every connection in one ``naturalead-sync run``."""

    connections: list[ConnectionReport] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 all good, 3 completed with rejected leads, 1 a connection failed."""
        if any(c.status == "failed" for c in self.connections):
            return 1
        if any(c.rejected for c in self.connections):
            return 3
        return 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "exit_code": self.exit_code,
            "connections": [c.to_dict() for c in self.connections],
        }
