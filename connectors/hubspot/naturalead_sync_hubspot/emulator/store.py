"""The HubSpot emulator's data model: records per object type, merges, associations, search.

A :class:`Table` keeps the records of one object type (contacts or leads) in id order. A
:class:`Record` is immutable; every write replaces it, so the :class:`SearchIndex` can go on
showing the version it last saw until the index lag has passed. Times are epoch
milliseconds of the emulator's clock. Nothing here is thread-safe by itself:
:class:`~naturalead_sync_hubspot.emulator.HubSpotEmulator` serialises every call under one lock.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from .schema import CONTACTS, LEADS, MERGED_IDS, READ_ONLY, ObjectSchema, iso

__all__ = ["EmailTaken", "PropertyValue", "Record", "SearchIndex", "Store", "Table"]

Props = Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Record:
    """One version of a record. ``properties`` holds the stamps (``hs_object_id``,
    ``createdate``, the last-modified property) and is never mutated; ``source`` is the
    ``sourceType`` of the write that created it."""

    id: int
    properties: Props
    created_ms: int
    updated_ms: int
    source: str
    archived_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PropertyValue:
    """One entry of a property's history, newest first."""

    value: str | None
    timestamp_ms: int
    source_type: str


class EmailTaken(Exception):
    """Another active contact already has this email (HubSpot answers 409 CONFLICT)."""

    def __init__(self, existing_id: int) -> None:
        super().__init__(f"Contact already exists. Existing ID: {existing_id}")
        self.existing_id = existing_id


class SearchIndex:
    """What search sees: the active records of one type, in id order, ``lag`` late.

    Writes queue ``(visible_at, seq, id, record-or-None)``; :meth:`settle` applies the ones
    due. ``version`` changes whenever the visible set does, so a search can cache its matches.
    """

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.records: list[Record] = []
        self.version = 0
        self._pending: list[tuple[int, int, int, Record | None]] = []
        self._seq = 0

    def put(self, object_id: int, record: Record | None, visible_ms: int, *, now: bool) -> None:
        """Show ``record`` (None: nothing) under ``object_id`` from ``visible_ms`` on; at
        once with ``now`` (no lag) unless earlier writes still wait."""
        if now and not self._pending:
            self._apply(object_id, record)
            return
        self._seq += 1
        heapq.heappush(self._pending, (visible_ms, self._seq, object_id, record))

    def settle(self, now_ms: int) -> None:
        """Apply every queued write visible at ``now_ms``."""
        pending = self._pending
        while pending and pending[0][0] <= now_ms:
            _, _, object_id, record = heapq.heappop(pending)
            self._apply(object_id, record)

    def _apply(self, object_id: int, record: Record | None) -> None:
        ids = self.ids
        at = len(ids) if not ids or ids[-1] < object_id else bisect_left(ids, object_id)
        present = at < len(ids) and ids[at] == object_id
        if record is not None and present:
            self.records[at] = record
        elif record is not None:
            ids.insert(at, object_id)
            self.records.insert(at, record)
        elif present:
            del ids[at]
            del self.records[at]
        self.version += 1


class Table:
    """The records of one object type: active and archived ones, merge aliases, emails."""

    def __init__(self, schema: ObjectSchema, lag_ms: int = 0) -> None:
        self.schema = schema
        self.lag_ms = lag_ms
        self.defined: set[str] = set(schema.properties)
        self.index = SearchIndex()
        self._ids: list[int] = []  # every stored record (active or archived), ascending
        self._records: dict[int, Record] = {}
        self._aliases: dict[int, int] = {}  # merged-away id -> the record it became
        self._emails: dict[str, int] = {}  # active records by lower-case email
        self._archive_order: deque[tuple[int, int]] = deque()  # (archived_ms, id)
        self._history: dict[int, dict[str, list[PropertyValue]]] = {}
        self._next_id = schema.first_id

    # -- reading --------------------------------------------------------------------------

    def resolve(self, object_id: int) -> int:
        """The id ``object_id`` lives on as (itself unless it was merged away)."""
        while object_id in self._aliases:
            object_id = self._aliases[object_id]
        return object_id

    def get(self, object_id: int, *, archived: bool = False) -> Record | None:
        """The active (or, with ``archived``, archived) record ``object_id`` lives on as."""
        record = self._records.get(self.resolve(object_id))
        if record is None or (record.archived_ms is not None) != archived:
            return None
        return record

    def by_email(self, email: str, *, archived: bool = False) -> Record | None:
        """The active (or archived) record with this email, case-insensitively."""
        wanted = email.strip().lower()
        if not archived:
            found = self._emails.get(wanted)
            return None if found is None else self._records[found]
        for _, object_id in self._archive_order:
            record = self._records.get(object_id)
            if (
                record is not None
                and record.archived_ms is not None
                and (record.properties.get("email") or "").lower() == wanted
            ):
                return record
        return None

    def page(self, after: int, limit: int, *, archived: bool) -> tuple[list[Record], bool]:
        """Up to ``limit`` records with id >= ``after`` in id order, and whether more follow."""
        found: list[Record] = []
        for object_id in self._ids[bisect_left(self._ids, after) :]:
            record = self._records[object_id]
            if (record.archived_ms is not None) == archived:
                if len(found) == limit:
                    return found, True
                found.append(record)
        return found, False

    def history(self, record: Record, name: str) -> list[PropertyValue]:
        """The values ``name`` has had on ``record``, newest first."""
        kept = self._history.get(record.id)
        if kept is not None:
            return list(kept.get(name, []))
        value = record.properties.get(name)
        return [] if value is None else [PropertyValue(value, record.created_ms, record.source)]

    def __len__(self) -> int:
        return len(self._records)

    # -- writing (``now_ms`` is the write's time: search sees it ``lag_ms`` later) ---------

    def create(
        self, values: Props, now_ms: int, source: str, *, created_ms: int | None = None
    ) -> Record:
        """Store a new active record, last modified at ``now_ms``."""
        email = (values.get("email") or "").lower()
        if email and email in self._emails:
            raise EmailTaken(self._emails[email])
        object_id = self._next_id
        self._next_id += 1
        created = now_ms if created_ms is None else created_ms
        record = self._stamp(Record(object_id, dict(values), created, now_ms, source))
        self._ids.append(object_id)  # ids only grow, so the list stays sorted
        return self._put(record, now_ms)

    def update(self, object_id: int, values: Props, now_ms: int, source: str) -> Record:
        """Change ``values`` on the active record; last-modified becomes ``now_ms``."""
        record = self._active(object_id)
        email = (values.get("email") or "").lower()
        if email and self._emails.get(email, record.id) != record.id:
            raise EmailTaken(self._emails[email])
        self._remember(record, values, now_ms, source)
        changed = replace(record, properties={**record.properties, **values}, updated_ms=now_ms)
        return self._put(self._stamp(changed), now_ms)

    def touch(self, object_ids: Iterable[int], now_ms: int) -> None:
        """Give every listed active record the same last-modified ``now_ms``."""
        records = [self._active(object_id) for object_id in object_ids]
        for record in records:
            self._put(self._stamp(replace(record, updated_ms=now_ms)), now_ms)

    def archive(self, object_id: int, now_ms: int) -> None:
        """Soft-delete the active record (restorable until it expires)."""
        record = self._active(object_id)
        self._put(replace(record, archived_ms=now_ms), now_ms)
        self._archive_order.append((now_ms, record.id))

    def restore(self, object_id: int, now_ms: int) -> Record:
        """Bring an archived record back; last-modified becomes ``now_ms``."""
        record = self.get(object_id, archived=True)
        if record is None:
            raise KeyError(object_id)
        email = (record.properties.get("email") or "").lower()
        if email in self._emails:
            raise EmailTaken(self._emails[email])
        restored = replace(record, archived_ms=None, updated_ms=now_ms)
        return self._put(self._stamp(restored), now_ms)

    def merge(self, primary_id: int, merged_id: int, now_ms: int) -> Record:
        """Replace two active records by a new one; the old ids become aliases of it.

        Primary values win where set. ``createdate`` is the earlier of the two;
        ``hs_merged_object_ids`` lists every id ever absorbed, ascending, ``;``-joined.
        """
        primary, merged = self._active(primary_id), self._active(merged_id)
        if primary.id == merged.id:
            raise ValueError(f"cannot merge {self.schema.label} {primary.id} with itself")
        absorbed = {primary.id, merged.id}
        for record in (primary, merged):
            listed = (record.properties.get(MERGED_IDS) or "").split(";")
            absorbed.update(int(part) for part in listed if part)
        properties = dict(merged.properties)
        properties.update({k: v for k, v in primary.properties.items() if v is not None})
        properties[MERGED_IDS] = ";".join(str(object_id) for object_id in sorted(absorbed))
        for record in (primary, merged):
            self._drop(record, now_ms)
            self._aliases[record.id] = self._next_id  # the id create() hands out next
        created = min(primary.created_ms, merged.created_ms)
        return self.create(properties, now_ms, "MERGE", created_ms=created)

    def purge(self, object_id: int, now_ms: int) -> int:
        """Delete the record for good (GDPR): no archived entry, no alias left. Its id."""
        object_id = self.resolve(object_id)
        record = self._records.get(object_id)
        if record is None:
            raise KeyError(object_id)
        self._drop(record, now_ms)
        for alias in [alias for alias, target in self._aliases.items() if target == object_id]:
            del self._aliases[alias]
        return object_id

    def expire(self, before_ms: int, now_ms: int) -> list[int]:
        """Purge the records archived before ``before_ms``; their ids."""
        expired: list[int] = []
        while self._archive_order and self._archive_order[0][0] < before_ms:
            archived_ms, object_id = self._archive_order.popleft()
            record = self._records.get(object_id)
            if record is not None and record.archived_ms == archived_ms:
                expired.append(self.purge(object_id, now_ms))
        return expired

    def _active(self, object_id: int) -> Record:
        record = self.get(object_id)
        if record is None:
            raise KeyError(object_id)
        return record

    def _stamp(self, record: Record) -> Record:
        """``record`` with its id and timestamps written into its properties."""
        properties = dict(record.properties)
        properties["hs_object_id"] = str(record.id)
        properties["createdate"] = iso(record.created_ms)
        properties[self.schema.modified_property] = iso(record.updated_ms)
        return replace(record, properties=properties)

    def _put(self, record: Record, now_ms: int) -> Record:
        """Store ``record`` as the current version; keep emails and the index in step."""
        previous = self._records.get(record.id)
        if previous is not None:
            self._forget_email(previous)
        self._records[record.id] = record
        active = record.archived_ms is None
        email = (record.properties.get("email") or "").lower()
        if active and email:
            self._emails[email] = record.id
        self.index.put(
            record.id, record if active else None, now_ms + self.lag_ms, now=not self.lag_ms
        )
        return record

    def _drop(self, record: Record, now_ms: int) -> None:
        """Remove ``record`` from the table at once, and from the index lag later."""
        self._forget_email(record)
        del self._records[record.id]
        del self._ids[bisect_left(self._ids, record.id)]
        self._history.pop(record.id, None)
        self.index.put(record.id, None, now_ms + self.lag_ms, now=not self.lag_ms)

    def _forget_email(self, record: Record) -> None:
        email = (record.properties.get("email") or "").lower()
        if email and self._emails.get(email) == record.id:
            del self._emails[email]

    def _remember(self, record: Record, values: Props, now_ms: int, source: str) -> None:
        """Add ``values`` to the record's history, seeding it with the created values."""
        kept = self._history.get(record.id)
        if kept is None:
            kept = self._history[record.id] = {
                name: [PropertyValue(value, record.created_ms, record.source)]
                for name, value in record.properties.items()
                if value is not None and name not in READ_ONLY
            }
        for name, value in values.items():
            kept.setdefault(name, []).insert(0, PropertyValue(value, now_ms, source))


class Store:
    """Both tables, and the leads' primary-contact associations (type 578)."""

    def __init__(self, lag_ms: int = 0) -> None:
        self.tables = {schema.name: Table(schema, lag_ms) for schema in (CONTACTS, LEADS)}
        self._contact_of: dict[int, int] = {}  # lead id -> primary contact id

    @property
    def contacts(self) -> Table:
        """The contacts table."""
        return self.tables["contacts"]

    @property
    def leads(self) -> Table:
        """The leads table."""
        return self.tables["leads"]

    def set_lag(self, lag_ms: int) -> None:
        """Make search see later writes ``lag_ms`` after they happen."""
        for table in self.tables.values():
            table.lag_ms = lag_ms

    def associate(self, lead_id: int, contact_id: int) -> None:
        """Make ``contact_id`` the primary contact of ``lead_id`` (replacing any other)."""
        self._contact_of[self.leads.resolve(lead_id)] = self.contacts.resolve(contact_id)

    def contact_of(self, lead_id: int) -> int | None:
        """The primary contact of the lead (merges of either side are followed)."""
        return self._contact_of.get(self.leads.resolve(lead_id))

    def leads_of(self, contact_id: int) -> list[int]:
        """The leads whose primary contact ``contact_id`` is, ascending."""
        contact_id = self.contacts.resolve(contact_id)
        return sorted(lead for lead, contact in self._contact_of.items() if contact == contact_id)

    def merge(self, table: Table, primary_id: int, merged_id: int, now_ms: int) -> Record:
        """Merge in ``table`` and move the associations of both records to the survivor;
        a merged lead keeps the primary's contact, else the other one's."""
        old = (table.resolve(primary_id), table.resolve(merged_id))
        survivor = table.merge(primary_id, merged_id, now_ms)
        if table is self.contacts:
            for lead, contact in self._contact_of.items():
                if contact in old:
                    self._contact_of[lead] = survivor.id
            return survivor
        primary_contact, other_contact = (self._contact_of.pop(lead, None) for lead in old)
        kept = primary_contact or other_contact
        if kept is not None:
            self._contact_of[survivor.id] = kept
        return survivor

    def purge(self, table: Table, object_id: int, now_ms: int) -> int:
        """GDPR-delete in ``table``, with the associations of the record."""
        gone = table.purge(object_id, now_ms)
        self._forget(table, [gone])
        return gone

    def expire(self, before_ms: int, now_ms: int) -> None:
        """Purge every record archived before ``before_ms``."""
        for table in self.tables.values():
            self._forget(table, table.expire(before_ms, now_ms))

    def _forget(self, table: Table, gone: list[int]) -> None:
        if table is self.leads:
            for lead in gone:
                self._contact_of.pop(lead, None)
            return
        dropped = set(gone)
        for lead in [lead for lead, c in self._contact_of.items() if c in dropped]:
            del self._contact_of[lead]
