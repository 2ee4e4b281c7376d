"""The org's data: a clock, Lead and Contact tables, the recycle bin and the delete log.

Records are dicts that are never changed once stored: every change stores a new dict. A query
cursor or a Bulk job can therefore keep the records of its first call and page through a result
set that later changes do not touch. Each table keeps its records sorted by
``(SystemModstamp, Id)``, so the cursor predicate is two bisections.

Stamps (``CreatedDate``, ``LastModifiedDate``, ``SystemModstamp``) come from the clock at
second precision. The recycle bin is never emptied by itself; the delete log keeps every
delete until :meth:`Org.purge_delete_log`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .clock import Clock
from .evaluate import index_order, key_range, predicate, sort_records
from .ids import IdFactory, normalize_id
from .schema import SCHEMAS, TEXT_TYPES, FieldDef, Record, SObjectSchema
from .seed import Seeder
from .soql import Query
from .table import Table

__all__ = ["Org"]

_LEAD_TO_CONTACT = {
    **{name: name for name in ("FirstName", "LastName", "Salutation", "MiddleName", "Suffix")},
    **{name: name for name in ("Title", "Email", "Phone", "MobilePhone", "Fax", "LeadSource")},
    **{name: name for name in ("Description", "HasOptedOutOfEmail", "HasOptedOutOfFax")},
    **{name: "Mailing" + name for name in ("Street", "City", "State", "PostalCode", "Country")},
    "DoNotCall": "DoNotCall",
    "OwnerId": "OwnerId",
}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "boolean": bool,
    "int": int,
    "double": (int, float),
    "currency": (int, float),
    "datetime": datetime,
    "date": date,
}


def _second(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)


class Org:
    """An in-memory Salesforce org with Leads and Contacts, and the hooks tests change it with.

    Every hook is thread-safe. Hooks name records by 18- or 15-character id; an unknown id
    raises ``KeyError``, a change Salesforce would refuse raises ``ValueError`` (unknown or
    read-only field, wrong type, text too long, missing required field, record in the recycle
    bin). Converted Leads stay writable, as with "View and Edit Converted Leads".
    """

    def __init__(self, *, clock: Clock | None = None, seed: int = 0) -> None:
        self._lock = threading.RLock()
        self.clock = clock or Clock()
        self._ids = IdFactory()
        self.org_id = self._ids.new("00D")
        #: The integration user: owner and author of every record the hooks write.
        self.user_id = self._ids.new("005")
        self._tables = {name: Table(schema) for name, schema in SCHEMAS.items()}
        self._delete_log: dict[str, list[tuple[datetime, str]]] = {n: [] for n in SCHEMAS}
        self._purged_until: datetime | None = None
        self._seeder = Seeder(seed)

    # -- the clock ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The org's current time."""
        return self.clock.now()

    def advance(self, seconds: float) -> datetime:
        """Move the org's clock ``seconds`` forward; returns the new time."""
        return self.clock.advance(seconds)

    def set_time(self, when: datetime) -> None:
        """Set the org's clock to ``when`` (timezone-aware)."""
        self.clock.set_time(when)

    def new_id(self, prefix: str) -> str:
        """A fresh 18-character id with key ``prefix`` (e.g. ``"001"`` for an Account)."""
        with self._lock:
            return self._ids.new(prefix)

    # -- reading -----------------------------------------------------------------------------

    def get(self, record_id: str) -> dict[str, Any] | None:
        """Every field of a record (live or in the recycle bin) as Python values, or None."""
        with self._lock:
            found = self._find(record_id)
            if found is None:
                return None
            table, record = found
            return {f.name: f.value(record) for f in table.schema.fields}

    def records(self, sobject: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of ``sobject`` in (SystemModstamp, Id) order, as :meth:`get` shows it."""
        with self._lock:
            table = self._table(sobject)
            rows = table.between(None, None, include_deleted=include_deleted)
            return [{f.name: f.value(r) for f in table.schema.fields} for r in rows]

    def select(self, query: Query, *, include_deleted: bool) -> list[Record]:
        """The records ``query`` returns, in order, with LIMIT and OFFSET applied."""
        with self._lock:
            table = self._tables[query.schema.name]
            plan = key_range(query.where)
            rows = table.between(plan.lo, plan.hi, include_deleted=include_deleted)
        if not plan.exact and query.where is not None:
            matches = predicate(query.where)
            rows = [r for r in rows if matches(r)]
        order = index_order(query.order_by)
        if order is None:
            sort_records(rows, query.order_by)
        elif order == "desc":
            rows.reverse()
        end = None if query.limit is None else query.offset + query.limit
        return rows[query.offset : end] if query.offset or end is not None else rows

    def modified_between(self, sobject: str, start: datetime, end: datetime) -> list[str]:
        """Ids of live records with ``start <= SystemModstamp < end``."""
        with self._lock:
            rows = self._table(sobject).between((start, ""), (end, ""), include_deleted=False)
            return [r["Id"] for r in rows]

    def deleted_between(
        self, sobject: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, str]]:
        """``(deletedDate, id)`` of the delete log with ``start <= deletedDate < end``."""
        with self._lock:
            return [(t, i) for t, i in self._delete_log[sobject] if start <= t < end]

    @property
    def delete_log_purged_until(self) -> datetime | None:
        """The time before which :meth:`purge_delete_log` removed the log, if ever."""
        return self._purged_until

    def counts(self) -> dict[str, dict[str, int]]:
        """Per sObject: live records, records in the recycle bin, delete-log entries."""
        with self._lock:
            out = {}
            for name, table in self._tables.items():
                binned = sum(1 for r in table.by_id.values() if r.get("IsDeleted"))
                out[name] = {
                    "live": len(table.by_id) - binned,
                    "recycle_bin": binned,
                    "delete_log": len(self._delete_log[name]),
                }
            return out

    # -- hooks -------------------------------------------------------------------------------

    def create(self, sobject: str, /, **fields: Any) -> str:
        """Insert a record as a user would (stamps at now); returns its id."""
        with self._lock:
            return self._insert(sobject, fields, self._stamp())

    def update(self, record_id: str, /, **fields: Any) -> None:
        """Change fields as a user would: bumps ``LastModifiedDate`` and ``SystemModstamp``."""
        with self._lock:
            stamp = self._stamp()
            self._change(record_id, fields, LastModifiedDate=stamp, SystemModstamp=stamp)

    def system_update(self, record_id: str, /, **fields: Any) -> None:
        """Change fields as an automated process would: bumps ``SystemModstamp`` only."""
        with self._lock:
            self._change(record_id, fields, SystemModstamp=self._stamp())

    def formula_change(self, record_id: str, /, **fields: Any) -> None:
        """Change values without touching any stamp, as a formula (``Score__c``) or roll-up
        recomputed from another record does; plain fields are accepted too."""
        with self._lock:
            self._change(record_id, fields, calculated=True)

    def late_commit(self, target: str, stamp: datetime, /, **fields: Any) -> str:
        """Commit a change stamped ``stamp`` (before now), as a long transaction surfaces late.

        ``target`` is an sObject name (a new record is inserted) or a record id (it is updated
        with ``LastModifiedDate = SystemModstamp = stamp``). Returns the record's id.
        """
        with self._lock:
            stamp = _second(stamp)
            if stamp > self.clock.now():
                raise ValueError("a late commit is stamped before the current time")
            if target in self._tables:
                return self._insert(target, fields, stamp)
            return self._change(target, fields, LastModifiedDate=stamp, SystemModstamp=stamp)

    def delete(self, record_id: str) -> None:
        """Soft-delete: the record goes to the recycle bin (``IsDeleted``, stamps bumped) and
        into the delete log."""
        with self._lock:
            self._soft_delete(self._live(record_id), self._stamp())

    def undelete(self, record_id: str) -> None:
        """Restore a record from the recycle bin (stamps bumped; the delete log keeps it)."""
        with self._lock:
            table, record = self._existing(record_id)
            if not record.get("IsDeleted"):
                raise ValueError(f"{record['Id']} is not in the recycle bin")
            stamp = self._stamp()
            changes = {"IsDeleted": None, "MasterRecordId": None}
            table.put(_merged(record, changes, LastModifiedDate=stamp, SystemModstamp=stamp))

    def hard_delete(self, record_id: str) -> None:
        """Remove a record for good (live or from the bin); queryAll no longer sees it."""
        with self._lock:
            table, record = self._existing(record_id)
            table.drop(record["Id"])
            if not record.get("IsDeleted"):
                self._delete_log[table.schema.name].append((self._stamp(), record["Id"]))

    def empty_recycle_bin(self) -> list[str]:
        """Hard-delete everything in the recycle bin; returns the ids removed."""
        with self._lock:
            removed = []
            for table in self._tables.values():
                binned = [i for i, r in table.by_id.items() if r.get("IsDeleted")]
                for record_id in binned:
                    table.drop(record_id)
                removed += binned
            return removed

    def merge(self, master_id: str, *loser_ids: str) -> None:
        """Merge one or two records into ``master_id``: each loser is soft-deleted with
        ``MasterRecordId`` set; the master's stamps are bumped."""
        with self._lock:
            master = self._live(master_id)
            losers = [self._live(i) for i in loser_ids]
            if not 1 <= len(losers) <= 2:
                raise ValueError("a merge takes one or two records besides the master")
            ids = {master[1]["Id"], *(r["Id"] for _, r in losers)}
            if len(ids) != len(losers) + 1 or any(t is not master[0] for t, _ in losers):
                raise ValueError("merged records must be distinct and of the same sObject")
            stamp = self._stamp()
            self._change(master[1]["Id"], {}, LastModifiedDate=stamp, SystemModstamp=stamp)
            for table, loser in losers:
                self._soft_delete((table, {**loser, "MasterRecordId": master[1]["Id"]}), stamp)

    def convert(
        self, lead_id: str, *, status: str = "Closed - Converted", opportunity: bool = True
    ) -> dict[str, str | None]:
        """Convert a Lead: a Contact (in the Contact table), an Account id and optionally an
        Opportunity id are made, and the Lead gets ``IsConverted``, ``ConvertedDate`` (a date),
        the ``Converted*Id`` fields and ``status``. Returns the three new ids."""
        with self._lock:
            table, lead = self._live(lead_id)
            if table.schema.name != "Lead" or lead.get("IsConverted"):
                raise ValueError(f"{lead_id} is not an unconverted Lead")
            stamp = self._stamp()
            account_id = self._ids.new("001")
            copied = {c: lead[f] for f, c in _LEAD_TO_CONTACT.items() if lead.get(f) is not None}
            contact_id = self._insert("Contact", {**copied, "AccountId": account_id}, stamp)
            opportunity_id = self._ids.new("006") if opportunity else None
            converted = {
                "IsConverted": True,
                "ConvertedDate": stamp.date(),
                "ConvertedAccountId": account_id,
                "ConvertedContactId": contact_id,
                "ConvertedOpportunityId": opportunity_id,
                "Status": status,
            }
            table.put(_merged(lead, converted, LastModifiedDate=stamp, SystemModstamp=stamp))
            ids = {"AccountId": account_id, "ContactId": contact_id}
            return {**ids, "OpportunityId": opportunity_id}

    def seed_leads(self, n: int, *, same_stamp: bool = False) -> list[str]:
        """Insert ``n`` realistic Leads (unique valid phones and emails); see :meth:`seed`."""
        return self.seed("Lead", n, same_stamp=same_stamp)

    def seed_contacts(self, n: int, *, same_stamp: bool = False) -> list[str]:
        """Insert ``n`` realistic Contacts (unique valid phones and emails); see :meth:`seed`."""
        return self.seed("Contact", n, same_stamp=same_stamp)

    def seed(self, sobject: str, n: int, *, same_stamp: bool = False) -> list[str]:
        """Insert ``n`` records of ``sobject``, stamped one second apart and ending now (all at
        now with ``same_stamp``, as a data load does); returns their ids in stamp order."""
        with self._lock:
            table = self._table(sobject)
            make = self._seeder.lead if sobject == "Lead" else self._seeder.contact
            now, records = self._stamp(), []
            for i in range(n):
                stamp = now if same_stamp else now - timedelta(seconds=n - 1 - i)
                values = {**table.schema.defaults, "OwnerId": self.user_id, **make()}
                records.append(self._stamped(table.schema, values, stamp))
            table.load(records)
            return [r["Id"] for r in records]

    def purge_delete_log(self, before: datetime | None = None) -> int:
        """Drop delete-log entries older than ``before`` (default: now), as the background job
        does; ``getDeleted``'s ``earliestDateAvailable`` moves up to ``before``. Returns the
        number of entries dropped."""
        with self._lock:
            cut = _second(before or self.clock.now())
            dropped = 0
            for name, log in self._delete_log.items():
                kept = [(t, i) for t, i in log if t >= cut]
                dropped += len(log) - len(kept)
                self._delete_log[name] = kept
            self._purged_until = max(cut, self._purged_until or cut)
            return dropped

    # -- internals (callers hold the lock) ----------------------------------------------------

    def _stamp(self) -> datetime:
        return _second(self.clock.now())

    def _table(self, sobject: str) -> Table:
        if sobject not in self._tables:
            raise ValueError(f"unknown sObject {sobject!r}; the emulator has {list(SCHEMAS)}")
        return self._tables[sobject]

    def _find(self, record_id: str) -> tuple[Table, Record] | None:
        full = normalize_id(record_id)
        for table in self._tables.values():
            if full is not None and full in table.by_id:
                return table, table.by_id[full]
        return None

    def _existing(self, record_id: str) -> tuple[Table, Record]:
        found = self._find(record_id)
        if found is None:
            raise KeyError(f"no record {record_id!r}")
        return found

    def _live(self, record_id: str) -> tuple[Table, Record]:
        table, record = self._existing(record_id)
        if record.get("IsDeleted"):
            raise ValueError(f"{record['Id']} is in the recycle bin")
        return table, record

    def _checked(
        self, schema: SObjectSchema, fields: Mapping[str, Any], *, calculated: bool = False
    ) -> dict[str, Any]:
        """``fields`` under their canonical names, after Salesforce's checks."""
        out = {}
        for name, value in fields.items():
            f = schema.field(name)
            if f is None:
                raise ValueError(f"No such column '{name}' on entity '{schema.name}'")
            if not (f.writable or (calculated and f.calculated)):
                raise ValueError(f"{schema.name}.{f.name} is not writable")
            out[f.name] = _valid(schema, f, value)
        return out

    def _stamped(self, schema: SObjectSchema, values: dict[str, Any], stamp: datetime) -> Record:
        missing = [f.name for f in schema.fields if f.required and values.get(f.name) is None]
        if missing:
            raise ValueError(f"Required fields are missing: {missing}")
        record_id = self._ids.new(schema.key_prefix)
        return _merged(
            values,
            {},
            Id=record_id,
            CreatedDate=stamp,
            CreatedById=self.user_id,
            LastModifiedDate=stamp,
            LastModifiedById=self.user_id,
            SystemModstamp=stamp,
        )

    def _insert(self, sobject: str, fields: Mapping[str, Any], stamp: datetime) -> str:
        table = self._table(sobject)
        checked = self._checked(table.schema, fields)
        values = {**table.schema.defaults, "OwnerId": self.user_id, **checked}
        record = self._stamped(table.schema, values, stamp)
        table.put(record)
        return str(record["Id"])

    def _change(
        self, record_id: str, fields: Mapping[str, Any], *, calculated: bool = False, **stamps: Any
    ) -> str:
        table, record = self._live(record_id)
        changes = self._checked(table.schema, fields, calculated=calculated)
        if "LastModifiedDate" in stamps:
            changes["LastModifiedById"] = self.user_id
        table.put(_merged(record, changes, **stamps))
        return str(record["Id"])

    def _soft_delete(self, found: tuple[Table, Record], stamp: datetime) -> None:
        table, record = found
        table.put(
            _merged(record, {"IsDeleted": True}, LastModifiedDate=stamp, SystemModstamp=stamp)
        )
        self._delete_log[table.schema.name].append((stamp, record["Id"]))


def _valid(schema: SObjectSchema, f: FieldDef, value: Any) -> Any:
    """``value`` for field ``f`` (datetimes in UTC), or ValueError when Salesforce would
    refuse it."""
    if value is None:
        return None
    wanted = str if f.type in TEXT_TYPES else _TYPES[f.type]
    ok = isinstance(value, wanted) and isinstance(value, bool) == (wanted is bool)
    if f.type == "date" and isinstance(value, datetime):
        ok = False
    if f.type == "datetime" and isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{schema.name}.{f.name} needs a timezone-aware datetime")
    if not ok:
        raise ValueError(f"{schema.name}.{f.name} takes a {f.type}, not {value!r}")
    if isinstance(value, str) and f.length and len(value) > f.length:
        raise ValueError(f"{schema.name}.{f.name} is longer than {f.length} characters")
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _merged(record: Mapping[str, Any], changes: Mapping[str, Any], **more: Any) -> Record:
    """A new record: ``record`` with ``changes`` and ``more`` applied; None values are dropped."""
    merged = {**record, **changes, **more}
    return {k: v for k, v in merged.items() if v is not None}
