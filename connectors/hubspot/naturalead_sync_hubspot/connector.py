"""The ``hubspot`` connector: contacts (or CRM leads) from HubSpot to Naturalead.

Changed records come from CRM search over the frozen window, paged by record id
(``hs_object_id GT`` the last id, sorted by id, ``after`` always 0): no query nears the 10,000
result cap, many records sharing one modification time cost nothing special, and a record that
leaves the result set mid-run (modified again, so after the window) shifts no page. The pages go
by id, not by time, so the connector is unordered: the engine moves the cursor at the end of a
run (accepted leads are still committed per batch, so a crash costs HubSpot reads, not
Naturalead requests). ``settle`` (default one minute) keeps the window behind the search index's
lag and ``lookback`` (default ten minutes) reads the edge again.

Deletes: the archived list (it has no time filter, so every run pages all of it and keeps the
records archived inside the window), and merges: survivors modified in the window list the ids
they absorbed in ``hs_merged_object_ids``, and those ids are deleted. GDPR deletes leave no
trace; ``reconcile_deletes = true`` finds them by reading the synced ids back (batch read).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from naturalead_sync import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorSettings,
    Lead,
    SourceRecord,
    Window,
)

from .settings import HubSpotSettings

if TYPE_CHECKING:
    from hubspot.crm.objects import SimplePublicObject

__all__ = [
    "CONTACT_CUSTOM_FIELDS",
    "CONTACT_PROPERTIES",
    "LEAD_CUSTOM_FIELDS",
    "LEAD_PROPERTIES",
    "HubSpotConnector",
]

#: Contact properties read by default: the person, and what becomes custom fields.
CONTACT_PROPERTIES = (
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "company",
    "lifecyclestage",
    "hs_lead_status",
)
#: Contact properties sent as custom fields by default.
CONTACT_CUSTOM_FIELDS = ("company", "lifecyclestage", "hs_lead_status")
#: Lead (object 0-136) properties read by default.
LEAD_PROPERTIES = (
    "hs_lead_name",
    "hs_lead_type",
    "hs_lead_label",
    "hs_pipeline",
    "hs_pipeline_stage",
    "hubspot_owner_id",
)
#: In leads mode, the custom fields: the lead's own, then its contact's company.
LEAD_CUSTOM_FIELDS = ("hs_lead_name", "hs_lead_type", "hs_lead_label", "hs_pipeline_stage")
_MODIFIED = {"contacts": "lastmodifieddate", "leads": "hs_lastmodifieddate"}
_BATCH = 100


def _ms(moment: datetime, *, up: bool) -> str:
    """``moment`` as HubSpot's epoch milliseconds, rounded down or up."""
    value = moment.timestamp() * 1000
    return str(math.ceil(value) if up else math.floor(value))


def _text(value: Any) -> str | None:
    """A property value as stripped text, or None when empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _merged_ids(value: Any) -> list[str]:
    """The ids in ``hs_merged_object_ids`` (";"-separated; "," accepted too)."""
    text = _text(value) or ""
    return [part.strip() for part in text.replace(",", ";").split(";") if part.strip()]


class HubSpotConnector(Connector):
    """Reads HubSpot contacts (or CRM leads) with ``hubspot-api-client``.

    ``lead_id`` is the HubSpot record id. The default mapping: ``name`` from firstname and
    lastname, ``phone`` from phone (else mobilephone), ``email``, and company, lifecyclestage,
    hs_lead_status and every property in ``settings.properties`` as custom fields. In leads
    mode the person comes from the lead's primary contact (under ``contact.`` for mapping
    expressions, e.g. ``contact.city``).
    """

    name = "hubspot"
    Settings = HubSpotSettings
    ordered = False
    default_lookback = timedelta(minutes=10)
    default_settle = timedelta(minutes=1)
    settings: HubSpotSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        # The SDK loads here, not at import: every installed plugin is imported at each start.
        from .api import HubSpotApi

        self.api = HubSpotApi(self.settings, context)
        self._type = self.settings.object
        self._modified = _MODIFIED[self._type]
        defaults = LEAD_PROPERTIES if self._type == "leads" else CONTACT_PROPERTIES
        self._properties = list(
            dict.fromkeys([*defaults, self._modified, *self.settings.properties])
        )
        custom = LEAD_CUSTOM_FIELDS if self._type == "leads" else CONTACT_CUSTOM_FIELDS
        self._custom_fields = list(dict.fromkeys([*custom, *self.settings.properties]))

    # -- reading -------------------------------------------------------------------------------

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        """Records whose last-modified time is in ``window``, a search page at a time.

        In leads mode, also the leads whose primary contact changed in ``window`` (after a
        first sync, which reads every lead with its contact anyway): a lead's name, email and
        phone live on its contact.
        """
        filters = self._window_filters(window)
        for page in self._search(self._type, filters, self._properties):
            yield from self._records(page)
        if self._type == "leads" and window.start is not None:
            for contacts in self._search("contacts", self._window_filters(window, "contacts"), []):
                links = self.api.associated("contacts", "leads", [str(c.id) for c in contacts])
                lead_ids = list(dict.fromkeys(i for ids in links.values() for i in ids))
                yield from self.fetch_by_ids(lead_ids)

    def fetch_deleted(self, window: Window) -> Iterator[str]:
        """Ids archived inside ``window``, and ids merged into records modified inside it."""
        for record in self.api.archived(self._type, ["hs_object_id"]):
            if record.archived_at is None or record.archived_at in window:
                yield str(record.id)
        if self._type == "contacts":
            merges = [
                *self._window_filters(window),
                {"propertyName": "hs_merged_object_ids", "operator": "HAS_PROPERTY"},
            ]
            for page in self._search("contacts", merges, ["hs_merged_object_ids"]):
                for survivor in page:
                    yield from _merged_ids((survivor.properties or {}).get("hs_merged_object_ids"))

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        """The live records among ``ids`` by batch read (100 per request); a merged-away id
        comes back as its survivor, under the survivor's id."""
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            yield from self._records(self.api.batch_read(self._type, chunk, self._properties))

    def check(self) -> list[str]:
        """One search per object type read: proves the token, its scopes and search access."""
        self.api.search(self._type, [], ["hs_object_id"], 1)
        if self._type == "leads":
            self.api.search("contacts", [], ["hs_object_id"], 1)
        return []

    def close(self) -> None:
        """Close the SDK's connection pools."""
        self.api.close()

    # -- mapping -------------------------------------------------------------------------------

    def to_lead(self, record: SourceRecord) -> Lead:
        """The default mapping (see the class docstring)."""
        fields = record.fields
        person = (fields.get("contact") or {}) if self._type == "leads" else fields
        names = (_text(person.get("firstname")), _text(person.get("lastname")))
        name = " ".join(part for part in names if part) or _text(fields.get("hs_lead_name"))
        custom: dict[str, str] = {}
        for key in self._custom_fields:
            value = _text(fields.get(key)) or _text(person.get(key))
            if value is not None:
                custom[key] = value
        if self._type == "leads" and (company := _text(person.get("company"))):
            custom.setdefault("company", company)
        return Lead(
            lead_id=record.id,
            name=name,
            phone=_text(person.get("phone")) or _text(person.get("mobilephone")),
            email=_text(person.get("email")),
            custom_fields=custom,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _window_filters(
        self, window: Window, object_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Search filters for ``start <= last-modified < end`` in epoch milliseconds."""
        modified = _MODIFIED[object_type or self._type]
        filters: list[dict[str, Any]] = [
            {"propertyName": modified, "operator": "LT", "value": _ms(window.end, up=True)}
        ]
        if window.start is not None:
            start = _ms(window.start, up=False)
            filters.append({"propertyName": modified, "operator": "GTE", "value": start})
        return filters

    def _search(
        self, object_type: str, filters: list[dict[str, Any]], properties: list[str]
    ) -> Iterator[list[SimplePublicObject]]:
        """Every record matching ``filters``, a page at a time, paged by id."""
        last_id = 0
        while True:
            after_last = {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}
            page = self.api.search(
                object_type, [*filters, after_last], properties, self.settings.page_size
            )
            if page.results:
                yield page.results
            if not page.more:
                return
            highest = max((int(record.id) for record in page.results), default=last_id)
            if highest <= last_id:
                raise ConnectorError(
                    f"HubSpot's search of {object_type} returned no id above {last_id} but "
                    "says more follow; stopping instead of looping"
                )
            last_id = highest

    def _records(self, page: Iterable[SimplePublicObject]) -> Iterator[SourceRecord]:
        """SourceRecords from SDK objects (in leads mode, joined to their primary contact)."""
        objects = list(page)
        contacts: dict[str, SimplePublicObject] = {}
        links: dict[str, list[str]] = {}
        if self._type == "leads" and objects:
            links = self.api.associated("leads", "contacts", [str(o.id) for o in objects])
            wanted = list(dict.fromkeys(ids[0] for ids in links.values() if ids))
            for contact in self.api.batch_read("contacts", wanted, list(CONTACT_PROPERTIES)):
                contacts[str(contact.id)] = contact
        for obj in objects:
            record_id = str(obj.id)
            modified = obj.updated_at
            if not isinstance(modified, datetime) or modified.tzinfo is None:
                self.context.report_bad_record(
                    f"HubSpot {self._type} {record_id}",
                    f"no usable {self._modified} ({modified!r}); it is read again when it changes",
                    record_id,
                )
                continue
            fields: dict[str, Any] = dict(obj.properties or {})
            if self._type == "leads":
                contact_ids = links.get(record_id) or []
                contact = contacts.get(contact_ids[0]) if contact_ids else None
                fields["contact_id"] = contact_ids[0] if contact_ids else None
                fields["contact"] = dict(contact.properties or {}) if contact else {}
                if contact is not None and isinstance(contact.updated_at, datetime):
                    modified = max(modified, contact.updated_at)  # the lead as it reads now
            yield SourceRecord(record_id, modified.astimezone(UTC), fields)
