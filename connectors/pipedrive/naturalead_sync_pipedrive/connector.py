"""The ``pipedrive`` connector: persons (or Leads Inbox leads) from Pipedrive to Naturalead.

Persons come from ``GET /api/v2/persons`` over the frozen window: ``updated_since`` is the
window's start rounded *down* to the second (inclusive), ``updated_until`` its end rounded
*up* (exclusive). Pipedrive keeps ``update_time`` in whole seconds, so ``[floor(start),
ceil(end))`` holds every record of ``[start, end)`` and nothing after it. Pages are sorted by
``update_time`` ascending and follow Pipedrive's keyset cursor (500 a page), so records come
in order (``ordered``: the engine checkpoints per batch), many records sharing one second
cost nothing special, and a record changed mid-run leaves the window (its new time is after
its end) and is read by the next run.

Leads mode reads ``GET /v1/leads`` (offset paging, ``updated_since`` and ``update_time ASC``),
re-anchoring ``updated_since`` on the last second read after every page so a lead edited
mid-run shifts no later page, and joins each page's persons (``ids``, 100 a request). A
person's edit does not touch its leads' ``update_time``, so after a first sync the leads of
persons changed in the window are read again too. Records are then no longer in one order:
leads mode is unordered (the cursor moves at the end of a run).

Deletes: Pipedrive lists no deleted persons (soft deletes and merge losers just vanish from
lists), so they come from ``reconcile_deletes = true``, which uses :meth:`fetch_all_ids`, a
complete listing of live ids (10 tokens per 500). v2 has no field selector for the base
fields, only ``custom_fields`` (a subset of at most 15 custom fields), so the listing asks
for a single custom field instead of all of them. In leads mode, leads archived in the window
are deletes as well.

Organization and owner names come through :class:`~.names.Names`: one organizations
request per page of persons at most (100 new ids a request), one users request per run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from naturalead_sync import (
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Lead,
    SourceRecord,
    Window,
)

from .api import IDS_PER_REQUEST, PipedriveApi
from .fields import CustomField, FieldCatalog, text
from .names import USERS, Names
from .settings import PipedriveSettings

__all__ = ["PipedriveConnector"]

_PERSONS = "/api/v2/persons"
_LEADS = "/v1/leads"


def _rfc3339(moment: datetime, *, up: bool) -> str:
    """``moment`` as v2's whole-second RFC 3339 time, rounded down or up."""
    seconds = moment.timestamp()
    whole = math.ceil(seconds) if up else math.floor(seconds)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    """A Pipedrive time (``…Z``, with or without milliseconds) as an aware datetime."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _primary(entries: Any) -> str | None:
    """The primary non-empty ``value`` of an emails/phones array, else the first non-empty."""
    values = [
        (bool(entry.get("primary")), value)
        for entry in entries or []
        if isinstance(entry, Mapping) and (value := text(entry.get("value")))
    ]
    return next((value for primary, value in values if primary), None) or next(
        (value for _, value in values), None
    )


class PipedriveConnector(Connector):
    """Reads Pipedrive persons (or leads) over its REST API with core's httpx client.

    ``lead_id`` is the person id (the lead's UUID in leads mode). The default mapping:
    ``name`` (else first and last name; in leads mode the person's, else the lead's title),
    the primary email (lowercased) and phone (else the first), person labels as tags (lead
    labels in leads mode), the names of the organization (``organization``) and the owner
    (``owner``), and the fields named in ``settings.custom_fields`` as custom fields (enum and
    set values as labels); leads mode takes the person's organization and owner, else the
    lead's, and adds the lead's ``title`` and ``source``. The raw person is the record's
    fields (in leads mode the lead, with its person under ``person``).
    """

    name = "pipedrive"
    Settings = PipedriveSettings
    ordered = True
    default_lookback = timedelta(minutes=5)
    default_settle = timedelta(seconds=30)
    settings: PipedriveSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.api = PipedriveApi(self.settings, context)
        self._names = Names(self.api)
        self._leads = self.settings.object == "leads"
        self.ordered = not self._leads
        self._catalog: FieldCatalog | None = None
        self._fields: list[CustomField] = []
        self._lead_labels: dict[str, str] | None = None

    # -- reading ----------------------------------------------------------------------------

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        """Records updated inside ``window`` (see the module docstring)."""
        self._load_fields()
        if not self._leads:
            for page in self._person_pages(window):
                yield from self._person_records(page)
            return
        for leads in self._lead_pages(window):
            yield from self._lead_records(leads)
        if window.start is not None:
            changed = {str(row["id"]) for page in self._person_pages(window) for row in page}
            if changed:
                followed = [
                    lead
                    for page in self.api.offset_pages(_LEADS, {"limit": self.settings.page_size})
                    for lead in page
                    if str(lead.get("person_id")) in changed
                ]
                yield from self._lead_records(followed)

    def fetch_deleted(self, window: Window) -> Iterator[str]:
        """Leads mode: leads archived inside ``window``. Persons: nothing (Pipedrive lists no
        deleted persons; use ``reconcile_deletes``)."""
        if not self._leads:
            return
        params: dict[str, Any] = {"limit": self.settings.page_size}
        if window.start is not None:
            params["updated_since"] = _rfc3339(window.start, up=False)
        for page in self.api.offset_pages(f"{_LEADS}/archived", params):
            yield from (str(lead["id"]) for lead in page)

    def fetch_all_ids(self) -> Iterator[str]:
        """Every live person id (every non-archived lead id in leads mode), 500 a page; persons
        come with one custom field rather than all (the field definitions are read once per
        run anyway, deletes first)."""
        size = self.settings.page_size
        if self._leads:
            pages = self.api.offset_pages(_LEADS, {"limit": size})
        else:
            self._load_fields()
            params: dict[str, Any] = {"sort_by": "id", "limit": size}
            assert self._catalog is not None
            if self._catalog.person_keys:
                params["custom_fields"] = self._catalog.person_keys[0]
            pages = self.api.cursor_pages(_PERSONS, params)
        for page in pages:
            yield from (str(row["id"]) for row in page)

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        """The live records among ``ids`` (persons 100 a request; leads one by one)."""
        self._load_fields()
        if not self._leads:
            numeric = [i for i in ids if i.isdigit()]
            for start in range(0, len(numeric), IDS_PER_REQUEST):
                yield from self._person_records(
                    self._persons(numeric[start : start + IDS_PER_REQUEST])
                )
            return
        found = []
        for lead_id in ids:
            lead = self._lead(lead_id)
            if lead is not None and not lead.get("is_archived"):
                found.append(lead)
        yield from self._lead_records(found)

    def check(self) -> list[str]:
        """One limit-1 page (persons, and leads in leads mode) and the users (the default
        mapping's owner names), proving the credentials and every scope a run needs; then the
        field names; warns when the daily budget is nearly spent."""
        self.api.get(_PERSONS, {"limit": 1})
        if self._leads:
            self.api.get(_LEADS, {"limit": 1})
        self.api.get(USERS)
        self._load_fields()
        return self.api.budget_warnings()

    def close(self) -> None:
        """Close the HTTP client."""
        self.api.close()

    # -- mapping ----------------------------------------------------------------------------

    def to_lead(self, record: SourceRecord) -> Lead:
        """The default mapping (see the class docstring)."""
        fields = record.fields
        person: Mapping[str, Any] = (fields.get("person") or {}) if self._leads else fields
        names = (text(person.get("first_name")), text(person.get("last_name")))
        name = text(person.get("name")) or " ".join(p for p in names if p) or None
        org = self._names.organization(person.get("org_id") or fields.get("organization_id"))
        owner = self._names.owner(person.get("owner_id") or fields.get("owner_id"))
        custom = {key: value for key, value in (("organization", org), ("owner", owner)) if value}
        for field in self._fields:
            if field.source == "lead":
                value = field.from_root(fields)
            else:
                value = field.decode((person.get("custom_fields") or {}).get(field.key))
            if value is not None:
                custom[field.name] = value
        if self._leads:
            name = name or text(fields.get("title"))
            labels = self._lead_labels or {}
            for key, source in (("title", "title"), ("source", "source_name")):
                if (value := text(fields.get(source))) is not None:
                    custom[key] = value
        else:
            labels = self._catalog.person_labels if self._catalog else {}
        email = _primary(person.get("emails"))
        return Lead(
            lead_id=record.id,
            name=name,
            email=email.lower() if email else None,
            phone=_primary(person.get("phones")),
            custom_fields=custom,
            tags=[labels[str(i)] for i in fields.get("label_ids") or [] if str(i) in labels],
        )

    # -- helpers ----------------------------------------------------------------------------

    def _load_fields(self) -> None:
        """Read the field definitions (and lead labels) once per run; resolve the names."""
        if self._catalog is not None:
            return
        size = {"limit": self.settings.page_size}
        person_fields = [
            f for page in self.api.offset_pages("/v1/personFields", size) for f in page
        ]
        lead_fields: list[dict[str, Any]] = []
        if self._leads:
            lead_fields = [
                f for page in self.api.offset_pages("/v1/leadFields", size) for f in page
            ]
            labels = self.api.get("/v1/leadLabels").get("data") or []
            self._lead_labels = {str(label["id"]): str(label["name"]) for label in labels}
        catalog = FieldCatalog(person_fields, lead_fields)
        self._fields = catalog.resolve(self.settings.custom_fields)
        self._catalog = catalog

    def _person_pages(self, window: Window) -> Iterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {
            "sort_by": "update_time",
            "sort_direction": "asc",
            "limit": self.settings.page_size,
            "updated_until": _rfc3339(window.end, up=True),
        }
        if window.start is not None:
            params["updated_since"] = _rfc3339(window.start, up=False)
        return self.api.cursor_pages(_PERSONS, params)

    def _persons(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """The live persons among ``ids`` (at most 100)."""
        wanted = ",".join(ids)
        if not wanted:
            return []
        params = {"ids": wanted, "limit": IDS_PER_REQUEST}
        return [row for page in self.api.cursor_pages(_PERSONS, params) for row in page]

    def _identified(self, kind: str, row: Mapping[str, Any]) -> tuple[str, datetime] | None:
        """A row's id and ``update_time``, or None (reported as a bad record) without them."""
        record_id = str(row.get("id") or "")
        modified = _parse_time(row.get("update_time"))
        if record_id and modified is not None:
            return record_id, modified
        self.context.report_bad_record(
            f"Pipedrive {kind} {record_id or '(no id)'}",
            f"no usable id or update_time ({row.get('update_time')!r}); it is read again "
            "when it changes",
            record_id or None,
        )
        return None

    def _person_records(self, rows: list[dict[str, Any]]) -> Iterator[SourceRecord]:
        """One page of persons as records, their organization and owner names learnt first."""
        self._names.learn(
            (row.get("org_id") for row in rows), (row.get("owner_id") for row in rows)
        )
        for row in rows:
            if (found := self._identified("person", row)) is not None:
                yield SourceRecord(found[0], found[1], dict(row))

    def _lead_pages(self, window: Window) -> Iterator[list[dict[str, Any]]]:
        """Leads with ``update_time`` in ``window``, oldest first. After each page the next
        request starts at the last page's final second (``updated_since``), skipping the
        leads already read from that second; only a second holding more leads than a page
        falls back to an offset within it."""
        since = None if window.start is None else math.floor(window.start.timestamp())
        start = 0
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {
                "sort": "update_time ASC",
                "limit": self.settings.page_size,
                "start": start,
            }
            if since is not None:
                params["updated_since"] = _rfc3339(datetime.fromtimestamp(since, UTC), up=False)
            body = self.api.get(_LEADS, params)
            rows: list[dict[str, Any]] = body.get("data") or []
            fresh: list[dict[str, Any]] = []
            for row in rows:
                moment = _parse_time(row.get("update_time"))
                if moment is not None and moment >= window.end:
                    yield fresh
                    return
                if str(row["id"]) not in seen:
                    fresh.append(row)
            yield fresh
            extra = body.get("additional_data") or {}
            if not rows or not (extra.get("pagination") or extra).get("more_items_in_collection"):
                return
            last = _parse_time(rows[-1].get("update_time"))
            second = math.floor(last.timestamp()) if last is not None else since
            if second == since:
                start += len(rows)
            else:
                since, start, seen = second, 0, set()
            seen.update(
                str(row["id"])
                for row in rows
                if (moment := _parse_time(row.get("update_time"))) is not None
                and since is not None
                and moment.timestamp() >= since
            )

    def _lead(self, lead_id: str) -> dict[str, Any] | None:
        """One lead by id, or None when Pipedrive no longer has it (404)."""
        body = self.api.find(f"{_LEADS}/{lead_id}")
        data = None if body is None else body.get("data")
        return data if isinstance(data, dict) else None

    def _lead_records(self, leads: list[dict[str, Any]]) -> Iterator[SourceRecord]:
        """Leads joined to their persons (one ``ids`` request per 100 persons)."""
        wanted = list(
            dict.fromkeys(str(lead["person_id"]) for lead in leads if lead.get("person_id"))
        )
        persons: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            for row in self._persons(wanted[start : start + IDS_PER_REQUEST]):
                persons[str(row["id"])] = row
        rows = [*leads, *persons.values()]
        self._names.learn(
            (row.get("org_id") or row.get("organization_id") for row in rows),
            (row.get("owner_id") for row in rows),
        )
        for lead in leads:
            if (found := self._identified("lead", lead)) is None:
                continue
            record_id, modified = found
            person = persons.get(str(lead.get("person_id")))
            if person is not None and (joined := _parse_time(person.get("update_time"))):
                modified = max(modified, joined)  # the lead as it reads now
            yield SourceRecord(record_id, modified, {**lead, "person": person or {}})
