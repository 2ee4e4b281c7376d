"""The sync loop of one connection: fetch, map, validate, skip, batch, send, checkpoint, delete.

It follows the correctness rules of the design:

1. the cursor never moves past a record not yet accepted or recorded as failed;
2. the window is frozen at run start, ends ``settle`` before now and starts ``lookback`` before
   the cursor; the ledger makes the overlap free (unchanged payloads are skipped);
3. ties on the modification time are safe: the cursor means "everything strictly before it
   is done", and the next window includes the cursor's own instant;
4. an older version never overwrites a newer accepted one;
5. failed leads are fetched again on later runs and resent only when their payload changed;
6. deletes come from the connector's feed or a reconciliation, behind the mass-delete guard,
   and are sent before the changes (merges, restores);
7. state is committed per batch together with the ledger, so ``kill -9`` loses nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pluggy
from pydantic import ValidationError

from .client import NaturaleadClient, UpsertResult
from .config import ConnectionConfig, LimitsConfig
from .connector import Connector
from .errors import MassDeleteBlocked, RecordError, SkipLead
from .hashing import canonical_json, payload_hash, text_hash
from .mapping import Mapper
from .models import Lead, SourceRecord, Window
from .plugins import apply_transform_lead, has_transform_lead
from .report import ConnectionReport
from .state import LedgerEntry, LedgerWrite, StateStore, encode_moment
from .validation import LeadValidator

__all__ = ["ConnectionSync", "RunOptions"]

log = logging.getLogger(__name__)
CHANGED, DELETED = "changed", "deleted"
#: Commit progress at least this often even when nothing is sent (skips, local rejections).
_CHECKPOINT_EVERY = 1000
#: Most full batches prepared ahead while the pacer makes the engine wait (at most one
#: window's worth).
_MAX_READY = 50
#: Records decided together (one ledger query each time).
_CHUNK = 100


def _chunks(records: Iterable[SourceRecord], size: int) -> Iterator[list[SourceRecord]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


@dataclass(frozen=True)
class RunOptions:
    """Switches of one run (the CLI's flags)."""

    dry_run: bool = False
    full_refresh: bool = False
    allow_mass_delete: bool = False
    retry_failed: bool = False
    now: Callable[[], datetime] = Window.utcnow


@dataclass(slots=True)
class _Pending:
    native_id: str
    modified_at: datetime
    payload: dict[str, Any]
    text: str  # the payload's canonical JSON, sent as it is
    hash: str
    known: bool  # the ledger has an accepted version (so this is an update)


@dataclass(slots=True)
class _Progress:
    """What the changed stream has done so far, for the checkpoint."""

    start: datetime | None = None  # the cursor when the run began
    last_seen: datetime | None = None
    ordered: bool = True
    rolled_back: bool = False
    since_checkpoint: int = 0
    writes: list[LedgerWrite] = field(default_factory=list)


class ConnectionSync:
    """One run of one connection. Build it, call :meth:`run`, read the report."""

    def __init__(
        self,
        connection: ConnectionConfig,
        connector: Connector,
        state: StateStore,
        client: NaturaleadClient | None,
        pm: pluggy.PluginManager,
        options: RunOptions,
        report: ConnectionReport,
        limits: LimitsConfig | None = None,
        progress: Callable[[ConnectionReport], None] | None = None,
    ) -> None:
        if client is None and not options.dry_run:
            raise ValueError("a client is required unless dry_run is set")
        self.connection = connection
        self.connector = connector
        self.state = state
        self.client = client
        self.pm = pm
        self.options = options
        self.report = report
        limits = limits or LimitsConfig()
        self.batch_size = limits.batch_size
        self.max_ready = min(limits.requests_per_window, _MAX_READY)
        self.source = connection.source or connector.name
        policy = (connection.default_region, connection.invalid_phone, connection.invalid_email)
        self.signature = f"{self.source}|{policy}"
        self.prefix = connection.lead_id_prefix
        self.lookback = (
            connector.default_lookback if connection.lookback is None else connection.lookback
        )
        self.settle = connector.default_settle if connection.settle is None else connection.settle
        self.send_empty = connection.empty_values == "send"
        self.mapper = Mapper(connection.mapping, self.prefix)
        self.validator = LeadValidator(
            connection.default_region, connection.invalid_phone, connection.invalid_email
        )
        self.progress = progress
        self.has_transforms = has_transform_lead(pm)
        #: The batch being filled, full batches waiting for the pacer, and the modification
        #: time of every lead in either (for the cursor and for duplicates across batches).
        self.batch: dict[str, _Pending] = {}
        self.ready: deque[dict[str, _Pending]] = deque()
        self.queued: dict[str, datetime] = {}
        self.run_id = 0
        #: Records the connector could not read, by lead_id: their ledger writes wait for the
        #: next commit; each is reported once per run (a failed lead fetched again by id may
        #: be reported by the connector a second time).
        self.unreadable: dict[str, LedgerWrite] = {}
        self.unreadable_reported: set[str] = set()
        #: Failed leads this run already read and skipped as still failing: the failed leads'
        #: second look at the end of the run leaves them out.
        self.seen_still_failing: set[str] = set()
        #: Upsert batches sent (or, in a dry run, planned) so far, for the debug log.
        self.batches = 0

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> None:
        """Sync deletes, then changes, then failed leads. Raises on a failed run.

        Deletes go first: a merge's survivor may carry the phone or email of the records it
        absorbed (Naturalead rejects a phone held by another lead), and a record deleted and
        restored inside one window must end up live.
        """
        name = self.connection.name
        existing = self.state.get_cursor(name, CHANGED)
        cursor = None if self.options.full_refresh else existing
        end = self.options.now() - self.settle
        self.run_id = 0 if self.options.dry_run else self.state.start_run(name)
        log.debug(
            "%s: run %s: cursor %s%s, lookback %s, settle %s",
            name,
            self.run_id or "(dry run)",
            existing.isoformat() if existing else "(none)",
            " (ignored: --full-refresh)" if self.options.full_refresh and existing else "",
            self.lookback,
            self.settle,
        )
        self._sync_deletes(end)
        window = Window(None if cursor is None else cursor - self.lookback, end)
        self.report.cursor_before = cursor.isoformat() if cursor else None
        if self.options.full_refresh and existing is not None:
            self.report.cursor_ignored = existing.isoformat()
        progress = _Progress(start=cursor, ordered=self.connector.ordered)
        log.info("%s: fetching changes in [%s, %s)", name, window.start or "beginning", end)
        try:
            for chunk in _chunks(self.connector.fetch_changed(window), _CHUNK):
                # The first chunk checks the mapping, when it says something of the source: on
                # a first sync, or when full (a few records of an incremental run may all
                # leave out an optional field).
                if not self.report.records_fetched and (
                    window.start is None or len(chunk) == _CHUNK
                ):
                    for problem in self.mapper.missing_fields(chunk):
                        log.warning("connections[%s].%s", name, problem)
                self.report.records_fetched += len(chunk)
                for record in chunk:
                    self._track_order(record, progress)
                self._process_chunk(chunk, progress.writes)
                progress.since_checkpoint += len(chunk)
                if self._seal(full_only=True) and self._send_ready(progress.writes, block=False):
                    self._checkpoint(progress, window)
                if progress.since_checkpoint >= _CHECKPOINT_EVERY:
                    self._checkpoint(progress, window)
            self._seal()
            self._send_ready(progress.writes, block=True)
        except Exception:
            # Keep what Naturalead already accepted (so it is not sent again); the cursor
            # stays at the last checkpoint.
            with contextlib.suppress(Exception):
                self._commit(progress.writes, None)
            raise
        self._commit(progress.writes, (CHANGED, window.end))
        self.report.cursor_after = window.end.isoformat()  # (a dry run: where it would go)
        self._resync_failed()

    def _track_order(self, record: SourceRecord, progress: _Progress) -> None:
        if progress.last_seen is not None and record.modified_at < progress.last_seen:
            if progress.ordered and self.connector.ordered:
                log.warning(
                    "%s: connector %r yielded %s out of modification order; the cursor goes "
                    "back to where this run started and moves again only at its end",
                    self.connection.name,
                    self.connector.name,
                    record.id,
                )
                progress.rolled_back = True
            progress.ordered = False
            return
        progress.last_seen = record.modified_at

    def _checkpoint(self, progress: _Progress, window: Window) -> None:
        """Commit the ledger writes and, when safe, move the cursor."""
        target: tuple[str, datetime | None] | None = None
        if progress.ordered and progress.last_seen is not None:
            oldest_pending = min(self.queued.values(), default=None)
            target = (CHANGED, min(oldest_pending or progress.last_seen, window.end))
        elif progress.rolled_back:
            # Earlier checkpoints trusted an order that did not hold: undo them.
            target = (CHANGED, progress.start)
            progress.rolled_back = False
        self._commit(progress.writes, target)
        progress.since_checkpoint = 0
        if self.progress is not None:
            self.progress(self.report)

    def _commit(
        self, writes: list[LedgerWrite], cursor: tuple[str, datetime | None] | None
    ) -> None:
        if self.unreadable:
            # First: a version of the same lead read and accepted since wins.
            writes[:0] = self.unreadable.values()
            self.unreadable.clear()
        if not self.options.dry_run:
            self.state.checkpoint(self.connection.name, writes, run_id=self.run_id, cursor=cursor)
            self._log_checkpoint(len(writes), cursor)
        writes.clear()

    def _log_checkpoint(self, writes: int, cursor: tuple[str, datetime | None] | None) -> None:
        """The debug line of one checkpoint: what it wrote, where the cursor went."""
        if not log.isEnabledFor(logging.DEBUG) or (not writes and cursor is None):
            return  # (a commit with nothing to write is not worth a line)
        if cursor is None:
            moved = "cursor kept"
        else:
            stream, value = cursor
            which = "cursor" if stream == CHANGED else "delete cursor"
            moved = (
                f"{which} -> {value.isoformat()}"
                if value is not None
                else f"{which} cleared (the next run reads from the beginning)"
            )
        log.debug("%s: checkpoint: %d ledger write(s), %s", self.connection.name, writes, moved)

    def reject_unreadable(self, native_id: str, reason: str) -> None:
        """Reject a record the connector could not read (its ``report_bad_record`` with the
        record's id): in the run report, once per run, and in the ledger as rejected, so that
        ``failed`` lists it and later runs fetch it again by id until it reads."""
        lead_id = self.prefix + native_id
        if lead_id in self.unreadable_reported:
            return
        self.unreadable_reported.add(lead_id)
        self.report.reject(lead_id, reason, "source")
        self.unreadable[lead_id] = LedgerWrite(lead_id, native_id, "rejected", error=reason)

    # -- one record ---------------------------------------------------------------------------

    def _mapped(self, record: SourceRecord) -> Lead:
        """The connector's lead with the config's overrides and the plugins' changes."""
        lead = self.connector.to_lead(record)
        if lead.lead_id != record.id:
            lead = lead.model_copy(update={"lead_id": record.id})
        lead = self.mapper.apply(lead, record)
        if not self.has_transforms:
            return lead
        return apply_transform_lead(self.pm, lead, record, self.connection.name)

    def _validated(self, lead: Lead, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload to send: the lead checked, phone and email normalised (``payload`` is
        the unchecked lead's, kept when nothing changes)."""
        try:
            checked, update, warnings = self.validator.check(lead)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'lead'}: {e['msg']}" for e in exc.errors()
            )
            raise RecordError(problems) from None
        for warning in warnings:
            log.info("%s: lead %s: %s", self.connection.name, checked.lead_id, warning)
        if update:
            checked = checked.model_copy(update=update)
        elif checked is lead:
            return payload
        return checked.payload(send_empty=self.send_empty)

    def _process_chunk(self, records: list[SourceRecord], writes: list[LedgerWrite]) -> None:
        """Decide each record's fate, with one ledger query for the whole chunk."""
        entries = self.state.entries(self.connection.name, [self.prefix + r.id for r in records])
        for record in records:
            self._process(record, entries.get(self.prefix + record.id), writes)

    def _process(
        self, record: SourceRecord, entry: LedgerEntry | None, writes: list[LedgerWrite]
    ) -> None:
        lead_id = self.prefix + record.id
        try:
            lead = self._mapped(record)
        except SkipLead:
            self.report.filtered += 1
            return
        except RecordError as exc:
            digest = payload_hash(self.signature, {"raw": dict(record.fields)})
            self._reject_locally(record, lead_id, digest, entry, exc, writes)
            return
        # Hashed before normalisation, with the validation policy in the signature: an
        # unchanged lead is skipped without paying for the phone and email checks.
        payload = lead.payload(send_empty=self.send_empty)
        text = canonical_json(payload)
        digest = text_hash(self.signature, text)
        if entry is not None:
            accepted_modified = entry.accepted_modified
            if (
                accepted_modified is not None
                and encode_moment(record.modified_at) < accepted_modified
            ):
                self.report.skipped_stale += 1
                return
            if (
                entry.status == "accepted"
                and entry.accepted_hash == digest
                and not self.options.full_refresh
            ):
                self.report.skipped_unchanged += 1
                return
        if self._still_failing(entry, digest):
            return
        try:
            checked = self._validated(lead, payload)
        except RecordError as exc:
            self._reject_locally(record, lead_id, digest, None, exc, writes)
            return
        if checked is not payload:
            payload, text = checked, canonical_json(checked)
        previous = self.queued.get(lead_id)
        if previous is not None and previous > record.modified_at:
            self.report.skipped_stale += 1
            return
        known = entry is not None and entry.accepted_hash is not None
        self.batch[lead_id] = _Pending(record.id, record.modified_at, payload, text, digest, known)
        self.queued[lead_id] = record.modified_at

    def _reject_locally(
        self,
        record: SourceRecord,
        lead_id: str,
        digest: str,
        entry: LedgerEntry | None,
        error: RecordError,
        writes: list[LedgerWrite],
    ) -> None:
        if self._still_failing(entry, digest):
            return
        self.report.reject(lead_id, str(error), "local")
        writes.append(
            LedgerWrite(lead_id, record.id, "rejected", digest, record.modified_at, str(error))
        )

    def _still_failing(self, entry: LedgerEntry | None, digest: str) -> bool:
        if (
            entry is not None
            and entry.status == "rejected"
            and entry.rejected_hash == digest
            and not self.options.retry_failed
        ):
            self.report.skipped_still_failing += 1
            self.seen_still_failing.add(entry.lead_id)
            return True
        return False

    # -- sending --------------------------------------------------------------------------------

    def _seal(self, *, full_only: bool = False) -> bool:
        """Move the leads being gathered to the ready queue, in batches of ``batch_size``.

        With ``full_only``, a last partial batch stays to be filled. Returns whether a batch
        was sealed.
        """
        sealed = False
        while len(self.batch) >= self.batch_size or (self.batch and not full_only):
            items = list(self.batch.items())
            self.ready.append(dict(items[: self.batch_size]))
            self.batch = dict(items[self.batch_size :])
            sealed = True
        return sealed

    def _send_ready(self, writes: list[LedgerWrite], *, block: bool) -> bool:
        """Send ready batches; returns whether any was sent.

        Without ``block``, a batch goes out only when the pacer lets it go at once, or when
        too many are waiting: the engine keeps preparing the next batches while the rate
        limit makes it wait, instead of sleeping with nothing done.
        """
        sent = False
        while self.ready and (
            block
            or self.client is None
            or len(self.ready) > self.max_ready
            or self.client.pacer.wait_needed(len(self.ready[0])) <= 0
        ):
            batch = self.ready.popleft()
            self._send(batch, writes)
            for lead_id, pending in batch.items():
                if self.queued.get(lead_id) == pending.modified_at:
                    del self.queued[lead_id]
            sent = True
        return sent

    def _send(self, batch: dict[str, _Pending], writes: list[LedgerWrite]) -> None:
        self.batches += 1
        if self.client is None:  # dry run: say what would happen
            for lead_id, pending in batch.items():
                if pending.known:
                    self.report.updated += 1
                else:
                    self.report.created += 1
                self.report.plan("update" if pending.known else "create", lead_id)
            log.debug(
                "%s: batch %d (dry run): %d lead(s) would be sent",
                self.connection.name,
                self.batches,
                len(batch),
            )
            return
        leads = list(batch.values())
        client = self.client
        waited, requests = client.pacer.waited, client.stats.upsert_requests
        created, updated = self.report.created, self.report.updated
        result: UpsertResult = client.upsert(
            self.source, [p.payload for p in leads], [p.text for p in leads]
        )
        for lead_id in result.accepted:
            pending = batch[lead_id]
            writes.append(
                LedgerWrite(
                    lead_id, pending.native_id, "accepted", pending.hash, pending.modified_at
                )
            )
        for lead_id, reason in result.rejected.items():
            pending = batch[lead_id]
            self.report.reject(lead_id, reason, "api")
            writes.append(
                LedgerWrite(
                    lead_id,
                    pending.native_id,
                    "rejected",
                    pending.hash,
                    pending.modified_at,
                    reason,
                )
            )
        if result.created is not None and result.updated is not None:
            self.report.created += result.created
            self.report.updated += result.updated
        else:
            for lead_id in result.accepted:
                if batch[lead_id].known:
                    self.report.updated += 1
                else:
                    self.report.created += 1
        log.debug(
            "%s: batch %d: %d lead(s) in %d request(s): created %d, updated %d, rejected %d; "
            "waited %.3fs for the pacer",
            self.connection.name,
            self.batches,
            len(leads),
            client.stats.upsert_requests - requests,
            self.report.created - created,
            self.report.updated - updated,
            len(result.rejected),
            client.pacer.waited - waited,
        )

    # -- failed leads ---------------------------------------------------------------------------

    def _resync_failed(self) -> None:
        """Fetch leads rejected in earlier runs again; resend those whose payload changed."""
        if self.options.dry_run:
            failed = [e.native_id for _, e in self.state.failed(self.connection.name)]
        else:
            failed = self.state.failed_before(self.connection.name, self.run_id)
        seen = self.seen_still_failing
        failed = [native for native in failed if self.prefix + native not in seen]
        if failed:
            log.debug(
                "%s: reading %d lead(s) rejected in earlier runs again, by id",
                self.connection.name,
                len(failed),
            )
        writes: list[LedgerWrite] = []
        for start in range(0, len(failed), self.batch_size):
            records = list(self.connector.fetch_by_ids(failed[start : start + self.batch_size]))
            self.report.failed_refetched += len(records)
            self._process_chunk(records, writes)
            if self._seal(full_only=True):
                self._send_ready(writes, block=True)
                self._commit(writes, None)
        self._seal()
        self._send_ready(writes, block=True)
        self._commit(writes, None)

    # -- deletes ----------------------------------------------------------------------------------

    def _deleted_ids(self, window: Window) -> list[str]:
        wanted = {self.prefix + native for native in self.connector.fetch_deleted(window)}
        if self.connection.reconcile_deletes:
            wanted.update(self._reconcile())
        known = self.state.entries(self.connection.name, sorted(wanted))
        return [lead_id for lead_id, entry in known.items() if entry.status != "deleted"]

    def _reconcile(self) -> Iterator[str]:
        """The lead_ids synced earlier whose records the source no longer has.

        From the connector's complete id listing when it has one; otherwise by asking for the
        synced ids themselves (``fetch_by_ids``, a batch at a time): an id that comes back
        under no record, or under another id (a merge), is gone.
        """
        synced = self.state.live_native_ids(self.connection.name)
        listing = self.connector.fetch_all_ids()
        if listing is not None:
            live = set(listing)  # a complete listing, or an exception: never a partial one
            yield from (lead_id for lead_id, native in synced if native not in live)
            return
        while chunk := list(itertools.islice(synced, self.batch_size)):
            found = {record.id for record in self.connector.fetch_by_ids([n for _, n in chunk])}
            # A record the connector reported unreadable is there, though not readable.
            unreadable = self.unreadable_reported
            yield from (
                lead_id
                for lead_id, native in chunk
                if native not in found and lead_id not in unreadable
            )

    def _guard_mass_delete(self, count: int) -> None:
        """Refuse to delete ``count`` leads when that is more than ``mass_delete_share`` of
        those synced."""
        share = self.connection.mass_delete_share
        counts = self.state.counts(self.connection.name)
        synced = counts["accepted"] + counts["rejected"]
        if count > share * synced:
            raise MassDeleteBlocked(
                f"connection {self.connection.name!r} would delete {count} of {synced} synced "
                f"leads ({count / max(synced, 1):.0%}), more than mass_delete_share "
                f"({share:.0%}). Nothing was deleted. Check the source, then run again with "
                "--allow-mass-delete (or raise mass_delete_share)"
            )

    def _sync_deletes(self, end: datetime) -> None:
        name = self.connection.name
        cursor = None if self.options.full_refresh else self.state.get_cursor(name, DELETED)
        window = Window(None if cursor is None else cursor - self.lookback, end)
        to_delete = self._deleted_ids(window)
        if len(to_delete) > self.connection.mass_delete_min and not self.options.allow_mass_delete:
            self._guard_mass_delete(len(to_delete))
        if self.client is None:
            self.report.deleted = len(to_delete)
            for lead_id in to_delete:
                self.report.plan("delete", lead_id)
            return
        entries = self.state.entries(name, to_delete)
        client = self.client
        for number, start in enumerate(range(0, len(to_delete), self.batch_size), 1):
            chunk = to_delete[start : start + self.batch_size]
            waited, requests = client.pacer.waited, client.stats.delete_requests
            result = client.delete(chunk)
            log.debug(
                "%s: delete batch %d: %d lead_id(s) in %d request(s): deleted %d, not found %d, "
                "rejected %d; waited %.3fs for the pacer",
                name,
                number,
                len(chunk),
                client.stats.delete_requests - requests,
                result.deleted,
                result.not_found,
                len(result.rejected),
                client.pacer.waited - waited,
            )
            self.report.deleted += result.deleted
            self.report.delete_not_found += result.not_found
            for lead_id, reason in result.rejected.items():
                log.warning("%s: delete of %s rejected: %s", name, lead_id, reason)
            writes = [
                LedgerWrite(lead_id, entries[lead_id].native_id, "deleted")
                for lead_id in chunk
                if lead_id not in result.rejected
            ]
            self.state.checkpoint(name, writes, run_id=self.run_id)
            self._log_checkpoint(len(writes), None)
        self.state.checkpoint(name, [], run_id=self.run_id, cursor=(DELETED, end))
        self._log_checkpoint(0, (DELETED, end))
