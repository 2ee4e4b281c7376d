"""The REST resources: query/queryAll with cursors, getDeleted/getUpdated, sObject get and
describe, limits and the version list.

Choices where Salesforce documents nothing firm:

- A cursor keeps the records of the first call; ``nextRecordsUrl`` is ``/services/data/vNN.N/
  query/{01g locator}-{offset}`` with the caller's version, and any offset of a live locator can
  be read again. Locators expire 2 days (org clock) after the query; the newest 1,000 are kept.
  The page size comes from ``Sforce-Query-Options: batchSize=N`` (clamped to 200..2000) of the
  request, else of the query's first request, else ``batch_size_default``.
- getDeleted/getUpdated truncate ``start`` and ``end`` to the minute and need ``end`` at least
  one minute after ``start``; they cover ``start <= date < latestDateCovered`` where
  ``latestDateCovered = min(end, now)`` truncated to the minute, so the next call can start at
  ``latestDateCovered`` without gaps or repeats. ``earliestDateAvailable`` is now - 15 days (30 for
  getUpdated), or later after :meth:`Org.purge_delete_log`. A ``start`` before it, in the future,
  or unparsable (e.g. a naive datetime from simple-salesforce) is 400 ``INVALID_REPLICATION_DATE``.
  getUpdated lists live records only; getDeleted lists soft, merge and hard deletes.
- ``GET sobjects/{type}/{id}`` of a record in the recycle bin is 404 ``ENTITY_IS_DELETED``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from naturalead_sync.loopback import HTTPAnswer

from .auth import Session
from .errors import APIError, json_answer
from .faults import Fault
from .ids import normalize_id
from .schema import SCHEMAS, FieldDef, Record, SObjectSchema, describe, wire_datetime
from .soql import parse
from .store import Org

__all__ = ["Request", "RestAPI", "project"]

_BATCH = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
_LOCATOR_LIFETIME = timedelta(days=2)
_KEEP_CURSORS = 1000
#: Oldest and newest API versions served (older ones get 410, newer ones 404).
OLDEST_VERSION, NEWEST_VERSION = 31, 66
_SEASONS = ("Winter", "Spring", "Summer")


@dataclass(frozen=True)
class Request:
    """One authenticated REST call as a resource sees it (``headers`` lower-cased, ``params``
    the last value of each query parameter, ``match`` the route's named groups)."""

    method: str
    version: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    match: dict[str, str]
    session: Session
    fault: Fault | None

    @property
    def fault_name(self) -> str | None:
        """The scripted fault's name, if any."""
        return None if self.fault is None else self.fault.name


@dataclass
class _Cursor:
    schema: SObjectSchema
    fields: tuple[FieldDef, ...]
    rows: list[Record]
    total: int
    created: datetime
    batch: int


def project(
    schema: SObjectSchema, fields: tuple[FieldDef, ...], rows: list[Record], version: str
) -> list[dict[str, Any]]:
    """Records as the REST API writes them: ``attributes`` first, then each field."""
    prefix = f"/services/data/v{version}/sobjects/{schema.name}/"
    getters = [(f.name, f.json) for f in fields]
    return [
        {
            "attributes": {"type": schema.name, "url": prefix + r["Id"]},
            **{name: get(r) for name, get in getters},
        }
        for r in rows
    ]


def _schema(name: str) -> SObjectSchema:
    if name not in SCHEMAS:
        raise APIError(404, "NOT_FOUND", "The requested resource does not exist")
    return SCHEMAS[name]


def _minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def _date_param(params: dict[str, str], name: str) -> datetime:
    try:
        value = datetime.fromisoformat(params[name])
    except (KeyError, ValueError):
        value = None
    if value is None or value.tzinfo is None:
        message = f"{name} must be an ISO 8601 datetime with an offset, not {params.get(name)!r}"
        raise APIError(400, "INVALID_REPLICATION_DATE", message)
    return value.astimezone(UTC)


class RestAPI:
    """The REST resources over one :class:`Org`."""

    def __init__(
        self,
        org: Org,
        *,
        batch_size_default: int,
        replication_id_limit: int,
        api_usage: Callable[[], tuple[int, int]],
    ) -> None:
        self.org = org
        self.batch_size_default = batch_size_default
        self.replication_id_limit = replication_id_limit
        self._api_usage = api_usage
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()

    @property
    def open_cursors(self) -> int:
        """How many query locators are kept."""
        return len(self._cursors)

    # -- query -------------------------------------------------------------------------------

    def query(self, req: Request) -> HTTPAnswer:
        """``GET query?q=`` / ``queryAll?q=``: the first page."""
        text = req.params.get("q", "").strip()
        if not text:
            raise APIError(400, "MALFORMED_QUERY", "A query string has to be specified")
        query = parse(text)
        if req.fault_name == "query_timeout":
            raise APIError(400, "QUERY_TIMEOUT", "Your query request was running for too long.")
        rows = self.org.select(query, include_deleted=req.match["kind"] == "queryAll")
        if query.count:
            return json_answer(200, {"totalSize": len(rows), "done": True, "records": []})
        batch = self._batch(req.headers, self.batch_size_default)
        cursor = _Cursor(query.schema, query.fields, rows, len(rows), self.org.now(), batch)
        return self._page(req, cursor, None, 0)

    def query_more(self, req: Request) -> HTTPAnswer:
        """``GET query/{locator}-{offset}``: a later page of a kept result set."""
        locator, _, offset = req.match["locator"].rpartition("-")
        cursor = self._cursors.get(locator)
        if cursor is not None and self.org.now() - cursor.created > _LOCATOR_LIFETIME:
            del self._cursors[locator]
            cursor = None
        if cursor is None or int(offset) > len(cursor.rows):
            raise APIError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        self._cursors.move_to_end(locator)
        return self._page(req, cursor, locator, int(offset))

    @staticmethod
    def _batch(headers: dict[str, str], default: int) -> int:
        found = _BATCH.search(headers.get("sforce-query-options", ""))
        return min(2000, max(200, int(found.group(1)))) if found else default

    def _page(self, req: Request, cursor: _Cursor, locator: str | None, offset: int) -> HTTPAnswer:
        batch = self._batch(req.headers, cursor.batch)
        if req.fault_name == "short":
            batch = max(1, batch // 2)
        rows = cursor.rows
        end = min(offset + batch, len(rows))
        if 0 < end < len(rows) and req.fault_name == "duplicate":
            rows.insert(end, rows[end - 1])
        elif 0 < end < len(rows) and req.fault_name == "reorder":
            rows[end - 1], rows[end] = rows[end], rows[end - 1]
        done = end >= len(rows)
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done}
        if not done:
            if locator is None:
                locator = self.org.new_id("01g")
                self._cursors[locator] = cursor
                while len(self._cursors) > _KEEP_CURSORS:
                    self._cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/v{req.version}/query/{locator}-{end}"
        body["records"] = project(cursor.schema, cursor.fields, rows[offset:end], req.version)
        return json_answer(200, body)

    # -- replication -------------------------------------------------------------------------

    def replication(self, req: Request) -> HTTPAnswer:
        """``GET sobjects/{type}/deleted/`` and ``.../updated/`` (``?start=&end=``)."""
        schema, kind = _schema(req.match["sobject"]), req.match["kind"]
        start = _minute(_date_param(req.params, "start"))
        end = _minute(_date_param(req.params, "end"))
        now = self.org.now()
        earliest = _minute(now - timedelta(days=15 if kind == "deleted" else 30))
        purged = self.org.delete_log_purged_until
        if kind == "deleted" and purged is not None:
            earliest = max(earliest, _minute(purged))
        if start < earliest:
            message = f"startDate {start:%Y-%m-%dT%H:%M}Z is before the earliest date available"
            raise APIError(400, "INVALID_REPLICATION_DATE", message)
        if start > now:
            raise APIError(400, "INVALID_REPLICATION_DATE", "startDate is in the future")
        if end - start < timedelta(minutes=1):
            message = "startDate must chronologically precede endDate by more than one minute"
            raise APIError(400, "INVALID_REPLICATION_DATE", message)
        latest = min(end, _minute(now))
        if kind == "deleted":
            found: list[Any] = [
                {"id": record_id, "deletedDate": wire_datetime(when)}
                for when, record_id in self.org.deleted_between(schema.name, start, latest)
            ]
        else:
            found = self.org.modified_between(schema.name, start, latest)
        if len(found) > self.replication_id_limit:
            message = f"More than {self.replication_id_limit} ids; narrow the time window"
            raise APIError(400, "EXCEEDED_ID_LIMIT", message)
        if kind == "updated":
            return json_answer(200, {"ids": found, "latestDateCovered": wire_datetime(latest)})
        body = {
            "deletedRecords": found,
            "earliestDateAvailable": wire_datetime(earliest),
            "latestDateCovered": wire_datetime(latest),
        }
        return json_answer(200, body)

    # -- sObjects, limits, versions ----------------------------------------------------------

    def record(self, req: Request) -> HTTPAnswer:
        """``GET sobjects/{type}/{id}[?fields=A,B]``."""
        schema = _schema(req.match["sobject"])
        record_id = normalize_id(req.match["id"])
        record = self.org.get(record_id) if record_id else None
        if record is None or not str(record["Id"]).startswith(schema.key_prefix):
            raise APIError(404, "NOT_FOUND", "The requested resource does not exist")
        if record["IsDeleted"]:
            raise APIError(404, "ENTITY_IS_DELETED", "entity is deleted")
        fields = schema.fields
        if req.params.get("fields"):
            wanted = [name.strip() for name in req.params["fields"].split(",")]
            if any(schema.field(name) is None for name in wanted):
                unknown = next(name for name in wanted if schema.field(name) is None)
                message = f"No such column '{unknown}' on sobject of type {schema.name}"
                raise APIError(400, "INVALID_FIELD", message)
            fields = tuple(f for f in schema.fields if f.name.lower() in map(str.lower, wanted))
        return json_answer(200, project(schema, fields, [record], req.version)[0])

    def describe(self, req: Request) -> HTTPAnswer:
        """``GET sobjects/``, ``sobjects/{type}`` and ``sobjects/{type}/describe``."""
        name = req.match.get("sobject")
        if name is None:
            listing = [
                {k: v for k, v in describe(s, req.version).items() if k != "fields"}
                for s in SCHEMAS.values()
            ]
            return json_answer(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": listing})
        full = describe(_schema(name), req.version)
        if req.match.get("describe"):
            return json_answer(200, full)
        summary = {k: v for k, v in full.items() if k != "fields"}
        return json_answer(200, {"objectDescribe": summary, "recentItems": []})

    def limits(self, req: Request) -> HTTPAnswer:
        """``GET limits/``."""
        used, limit = self._api_usage()
        daily = {"Max": limit, "Remaining": max(0, limit - used)}
        return json_answer(200, {"DailyApiRequests": daily})


def versions() -> list[dict[str, str]]:
    """The body of ``GET /services/data/``: every served version with its release label."""
    out = []
    for number in range(OLDEST_VERSION, NEWEST_VERSION + 1):
        offset = number - 59  # 59.0 is Winter '24
        season = _SEASONS[offset % 3]
        year = 24 + (offset + 2) // 3 - (season != "Winter")
        version = f"{number}.0"
        out.append(
            {"label": f"{season} '{year}", "url": f"/services/data/v{version}", "version": version}
        )
    return out
