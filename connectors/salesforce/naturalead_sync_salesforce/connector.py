"""The ``salesforce`` connector: Leads (or Contacts, or another object) from Salesforce.

Changed records: SOQL over the REST query resource, ``WHERE SystemModstamp >= start AND
SystemModstamp < end ORDER BY SystemModstamp, Id``, paged by ``nextRecordsUrl`` (up to 2,000
per page). Records come in ascending SystemModstamp, so the connector is ordered and the engine
checkpoints per batch. When a query locator fails (``INVALID_QUERY_LOCATOR``), the query starts
again after the last record read with the compound cursor ``(SystemModstamp > T OR
(SystemModstamp = T AND Id > 'X'))``: ties on SystemModstamp (bulk updates) are neither lost
nor repeated. Every query is bounded by the frozen window's end; ``settle`` (three minutes)
keeps the window behind transactions still committing, and ``lookback`` (ten minutes) reads
the edge again, so a late commit is caught by the next run.

A large backfill (a first sync or ``--full-refresh``: the window has no start) reads through a
Bulk API 2.0 query job instead when ``SELECT COUNT()`` over the window finds more than
``bulk_threshold`` records (200,000 by default): one job and a call per 50,000-row CSV chunk
instead of a call per 2,000 records. The job's query keeps ``ORDER BY SystemModstamp, Id``
(Bulk 2.0 accepts it; it only turns off Salesforce's automatic PK chunking, so the job runs
longer), so the connector stays ordered and the engine checkpoints during the backfill; an
interrupted backfill resumes with an incremental (REST) run. The CSV values are turned back
into the REST API's JSON values with the object's ``describe``, so both paths give the same
records; objects whose selected fields include a compound field (which Bulk refuses) stay on
REST.

Deletes: the getDeleted resource for the window (it keeps 15 days; ``start`` at least a minute
before ``end``), else ``queryAll`` on ``IsDeleted = true``. A lead merged away is deleted
(merges soft-delete the losers). Converted leads are updates by default, or deletes with
``converted = "delete"``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from naturalead_sync import (
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Lead,
    SourceRecord,
    Window,
)

from .errors import SalesforceCallError
from .settings import SalesforceSettings

if TYPE_CHECKING:
    import requests

__all__ = ["CONVERTED_FIELDS", "CUSTOM_FIELDS", "DEFAULT_FIELDS", "SalesforceConnector"]

log = logging.getLogger(__name__)

#: Lead fields that describe a conversion: custom fields of converted leads only.
CONVERTED_FIELDS = (
    "IsConverted",
    "ConvertedAccountId",
    "ConvertedContactId",
    "ConvertedOpportunityId",
)
#: The fields read by default, per object (plus Id and SystemModstamp).
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": (
        "Name",
        "FirstName",
        "LastName",
        "Phone",
        "MobilePhone",
        "Email",
        "Company",
        "Status",
        "LeadSource",
        "Title",
        *CONVERTED_FIELDS,
    ),
    "Contact": (
        "Name",
        "FirstName",
        "LastName",
        "Phone",
        "MobilePhone",
        "Email",
        "Title",
        "Department",
        "AccountId",
        "LeadSource",
    ),
}
#: The fields sent as custom fields by default, per object (when not empty).
CUSTOM_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": ("Company", "Status", "LeadSource", "Title", *CONVERTED_FIELDS),
    "Contact": ("Title", "Department", "AccountId", "LeadSource"),
}
#: Ids per ``Id IN (...)`` query: about 4 KB of URL.
IDS_PER_QUERY = 200
#: How far back getDeleted reaches (15 days), less a margin for the clocks.
_DELETE_LOG = timedelta(days=15) - timedelta(hours=1)
#: getDeleted needs ``start`` more than a minute before ``end`` (seconds are truncated).
_DELETE_MIN_SPAN = timedelta(minutes=2)
#: Query restarts after a lost locator without a new record in between, before giving up.
_MAX_RESTARTS = 3
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
#: Compound field types, which Bulk API 2.0 queries refuse.
_COMPOUND = frozenset({"address", "location"})


def _soql_time(moment: datetime) -> str:
    """A SOQL datetime literal (UTC, milliseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso(moment: datetime) -> str:
    """A getDeleted ``start``/``end`` value (UTC, whole seconds)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _rest_datetime(text: str) -> str:
    """A Bulk CSV datetime (``...Z``) as the REST API's JSON writes it (``...+0000``)."""
    return text[:-1] + "+0000" if text.endswith("Z") else text


#: How a non-empty Bulk CSV cell of a field of each describe type becomes the REST API's JSON
#: value; the cells of other types stay text.
_FROM_CSV: dict[str, Callable[[str], Any]] = {
    "boolean": lambda text: text == "true",
    "int": int,
    "double": float,
    "currency": float,
    "percent": float,
    "datetime": _rest_datetime,
}


def _bulk_rows(
    lines: Iterator[list[str]], types: Mapping[str, str], sobject: str
) -> Iterator[dict[str, Any]]:
    """The rows of one Bulk CSV chunk of ``sobject`` (``lines``: its header, then its rows) as
    records' fields, one row at a time: an empty cell is null, and a cell of a field whose
    describe type (``types``: lowercase name -> type) is in :data:`_FROM_CSV` is converted.
    Each column's conversion is chosen once, from the header.

    A row whose length differs from the header's stops the backfill there: the error names it
    by its Id (in whichever column the header puts it: ``fields`` may move it) when the row
    holds one there, else by its number in the chunk (blank lines aside)."""
    header = next(lines, None)
    if header is None:
        return
    typed = [
        (column, name, convert)
        for column, name in enumerate(header)
        if (convert := _FROM_CSV.get(types.get(name.lower(), ""))) is not None
    ]
    id_column = next((i for i, name in enumerate(header) if name.lower() == "id"), None)
    number = 0
    for row in lines:
        if not row:  # a blank line
            continue
        number += 1
        if len(row) != len(header):
            named = (
                f"record {row[id_column]}"
                if id_column is not None and id_column < len(row) and row[id_column]
                else f"row {number} of the chunk"
            )
            raise SalesforceCallError(
                f"Salesforce's Bulk results for the {sobject} backfill hold a row of "
                f"{len(row)} cells under a header of {len(header)} ({named}): the results are "
                "damaged. The checkpoint is kept; run again (a new job is made)"
            )
        fields: dict[str, Any] = {
            name: cell or None for name, cell in zip(header, row, strict=True)
        }
        for column, name, convert in typed:
            if cell := row[column]:
                fields[name] = convert(cell)
        yield fields


def _text(value: Any) -> str | None:
    """A field value as stripped text (booleans as ``true``/``false``), None when empty."""
    if value is None or value is False:
        return None if value is None else "false"
    if value is True:
        return "true"
    text = str(value).strip()
    return text or None


class SalesforceConnector(Connector):
    """Reads Salesforce Leads (or Contacts, or any object with the standard fields) with
    simple-salesforce.

    ``lead_id`` is the 18-character record Id. The default mapping: ``name`` from Name (else
    FirstName and LastName), ``phone`` from Phone (else MobilePhone), ``email`` from Email, and
    as custom fields Company, Status, LeadSource and Title (Lead; converted leads also
    IsConverted and the Converted*Id fields) or Title, Department, AccountId and LeadSource
    (Contact), plus every field in ``settings.fields``.

    To route the connector's traffic (proxy, client certificate, an emulator), subclass it and
    override :meth:`session`.
    """

    name = "salesforce"
    Settings = SalesforceSettings
    ordered = True
    default_lookback = timedelta(minutes=10)
    default_settle = timedelta(minutes=3)
    settings: SalesforceSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        # The SDK loads here, not at import: every installed plugin is imported at each start.
        from .api import SalesforceApi

        self.api = SalesforceApi(self.settings, context, self.session)
        self._object = self.settings.object
        self._converted_deleted = self._object == "Lead" and self.settings.converted == "delete"
        defaults = DEFAULT_FIELDS.get(self._object, ("Name",))
        wanted = ["Id", "SystemModstamp", *defaults, *self.settings.fields]
        self._fields = list({name.lower(): name for name in reversed(wanted)}.values())[::-1]
        custom = CUSTOM_FIELDS.get(self._object, ())
        self._custom_fields = list(dict.fromkeys([*custom, *self.settings.fields]))

    def session(self) -> requests.Session:
        """The ``requests.Session`` every Salesforce call goes through (logins included).

        The extension point for proxies (``session.proxies``), client certificates
        (``session.cert``), a custom CA bundle (``session.verify``) or, in tests, an emulator.
        The connector mounts its own adapters on it for core's timeout and retries.
        """
        import requests  # already loaded with .api (see __init__); not at module top

        return requests.Session()

    # -- reading -------------------------------------------------------------------------------

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        """Records with ``start <= SystemModstamp < end``, ascending by (SystemModstamp, Id):
        through Bulk API 2.0 for a large backfill (see :meth:`_bulk_types`), else REST."""
        types = self._bulk_types(window)
        if types is not None:
            soql = self._changed_soql(window, None)
            for lines in self.api.bulk_query(self._object, soql):
                yield from self._records(_bulk_rows(lines, types, self._object), bare=True)
            return
        after: tuple[datetime, str] | None = None
        restarts = 0
        while True:
            try:
                for page in self.api.query_pages(self._changed_soql(window, after)):
                    for record in self._records(page):
                        key = (record.modified_at, record.id)
                        if key == after:  # a page repeated the row before it
                            continue
                        after = max(key, after) if after else key
                        restarts = 0
                        yield record
                return
            except SalesforceCallError as exc:
                if exc.code != "INVALID_QUERY_LOCATOR" or restarts >= _MAX_RESTARTS:
                    raise
                restarts += 1
                log.info("Salesforce query locator lost; querying again after %s", after)

    def fetch_deleted(self, window: Window) -> Iterator[str]:
        """Ids deleted or merged away in ``window`` (and converted, with converted = "delete")."""
        if self._converted_deleted:
            soql = self._soql("Id", window, "IsConverted = true")
            for page in self.api.query_pages(soql):
                yield from (str(row["Id"]) for row in page)
        start = window.start
        if start is not None and start > window.end - _DELETE_LOG:
            start = min(start, window.end - _DELETE_MIN_SPAN)
            try:
                yield from self._delete_log(start, window.end)
                return
            except SalesforceCallError as exc:
                if exc.code != "INVALID_REPLICATION_DATE":
                    raise
                log.info("Salesforce getDeleted refused the window; using queryAll instead")
        for page in self.api.query_pages(
            self._soql("Id", window, "IsDeleted = true"), include_deleted=True
        ):
            yield from (str(row["Id"]) for row in page)

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        """The live records among ``ids``, by ``Id IN (...)`` queries of 200 ids."""
        valid = [i for i in ids if _ID.match(i)]
        for start in range(0, len(valid), IDS_PER_QUERY):
            quoted = ", ".join(f"'{i}'" for i in valid[start : start + IDS_PER_QUERY])
            conditions = [f"Id IN ({quoted})", *self._live_conditions()]
            soql = f"SELECT {', '.join(self._fields)} FROM {self._object} "
            for page in self.api.query_pages(soql + f"WHERE {' AND '.join(conditions)}"):
                yield from self._records(page)

    def check(self) -> list[str]:
        """Log in, read one record, and warn when the daily API usage is already high."""
        for _ in self.api.query_pages(f"SELECT Id FROM {self._object} LIMIT 1"):
            break
        daily = self.api.restful("limits/", budget=False).get("DailyApiRequests") or {}
        allowance, remaining = int(daily.get("Max", 0)), int(daily.get("Remaining", 0))
        if allowance <= 0:
            return []
        used = (allowance - remaining) / allowance
        share = self.settings.max_api_share
        if used >= share:
            return [
                f"the org has used {used:.0%} of its {allowance} daily API requests, past "
                f"max_api_share ({share:.0%}): runs stop at once until usage drops"
            ]
        if used >= 0.8 * share:
            return [
                f"the org has used {used:.0%} of its {allowance} daily API requests; runs "
                f"stop at max_api_share ({share:.0%})"
            ]
        return []

    def close(self) -> None:
        """Close the HTTP session."""
        self.api.close()

    # -- mapping -------------------------------------------------------------------------------

    def to_lead(self, record: SourceRecord) -> Lead:
        """The default mapping (see the class docstring)."""
        fields = record.fields
        names = (_text(fields.get("FirstName")), _text(fields.get("LastName")))
        name = _text(fields.get("Name")) or " ".join(part for part in names if part) or None
        converted = fields.get("IsConverted") is True
        custom: dict[str, str] = {}
        for key in self._custom_fields:
            if key in CONVERTED_FIELDS and not converted:
                continue
            value = _text(fields.get(key))
            if value is not None:
                custom[key] = value
        return Lead(
            lead_id=record.id,
            name=name,
            phone=_text(fields.get("Phone")) or _text(fields.get("MobilePhone")),
            email=_text(fields.get("Email")),
            custom_fields=custom,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _bulk_types(self, window: Window) -> dict[str, str] | None:
        """The selected fields' types (lowercase name -> describe type) when ``window`` is read
        through Bulk API 2.0, else None.

        Bulk is for backfills (no ``start``) of more than ``bulk_threshold`` records, by a
        ``SELECT COUNT()`` over the window; a selected compound field keeps REST.
        """
        threshold = self.settings.bulk_threshold
        if window.start is not None or threshold == 0:
            return None
        total = self.api.count(self._soql("COUNT()", window, *self._live_conditions()))
        if total <= threshold:
            return None
        described = self.api.restful(f"sobjects/{self._object}/describe/")
        types = {str(f["name"]).lower(): str(f["type"]) for f in described.get("fields") or []}
        compound = [name for name in self._fields if types.get(name.lower()) in _COMPOUND]
        if compound:
            log.info("Salesforce Bulk API refuses compound fields (%s); reading by REST", compound)
            return None
        log.info("%s %s records to read: through a Bulk API 2.0 job", total, self._object)
        return types

    def _live_conditions(self) -> list[str]:
        return ["IsConverted = false"] if self._converted_deleted else []

    def _soql(self, fields: str, window: Window, *conditions: str) -> str:
        """``SELECT fields`` with ``start <= SystemModstamp < end`` and ``conditions``."""
        where = [*conditions, f"SystemModstamp < {_soql_time(window.end)}"]
        if window.start is not None:
            where.append(f"SystemModstamp >= {_soql_time(window.start)}")
        return f"SELECT {fields} FROM {self._object} WHERE {' AND '.join(where)}"

    def _changed_soql(self, window: Window, after: tuple[datetime, str] | None) -> str:
        """The changed-records query, after the compound cursor ``after`` when given."""
        conditions = self._live_conditions()
        if after is not None:
            stamp, last_id = _soql_time(after[0]), after[1]
            conditions.append(
                f"(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > '{last_id}'))"
            )
            window = Window(None, window.end)
        soql = self._soql(", ".join(self._fields), window, *conditions)
        return f"{soql} ORDER BY SystemModstamp, Id"

    def _delete_log(self, start: datetime, end: datetime) -> Iterator[str]:
        """getDeleted for ``[start, end)``; a purged log also reads the recycle bin."""
        answer = self.api.restful(
            f"sobjects/{self._object}/deleted/",
            {"start": _iso(start), "end": _iso(end)},
        )
        yield from (str(row["id"]) for row in answer.get("deletedRecords") or [])
        earliest = answer.get("earliestDateAvailable")
        if earliest and datetime.fromisoformat(str(earliest)) > start:
            raise SalesforceCallError(
                f"Salesforce's delete log starts at {earliest}", "INVALID_REPLICATION_DATE"
            )

    def _records(
        self, rows: Iterable[dict[str, Any]], *, bare: bool = False
    ) -> Iterator[SourceRecord]:
        """Records from REST rows (their ``attributes`` left out), or from rows that are
        already the records' fields (``bare``: Bulk rows, from :func:`_bulk_rows`)."""
        for row in rows:
            record_id = _text(row.get("Id"))
            stamp = row.get("SystemModstamp")
            try:
                modified = datetime.fromisoformat(str(stamp)).astimezone(UTC)
            except ValueError:
                modified = None
            if record_id is None or modified is None:
                self.context.report_bad_record(
                    f"Salesforce {self._object} {record_id}",
                    f"no usable Id or SystemModstamp ({stamp!r}); it is read again when it changes",
                    record_id,
                )
                continue
            fields = row if bare else {k: v for k, v in row.items() if k != "attributes"}
            yield SourceRecord(record_id, modified, fields)
