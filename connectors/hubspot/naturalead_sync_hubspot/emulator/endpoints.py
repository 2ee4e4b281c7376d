"""The CRM endpoints the emulator answers, one handler per route kind.

Handlers run after routing, authentication, scope checks and rate limiting (see ``app.py``),
read a :class:`~.wire.Request` and return a :class:`~.wire.Reply` or raise
:class:`~.wire.ApiError`. Record JSON is HubSpot's ``SimplePublicObject`` shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from .routes import Route
from .schema import READ_ONLY, SCHEMAS, iso
from .search import RESULT_CAP, SearchCache, SearchError, parse_search
from .store import EmailTaken, Record, Store, Table
from .wire import ApiError, Reply, Request, bad_request, not_found

__all__ = ["LEAD_TO_CONTACT", "Endpoints"]

#: v4 association types between a lead and its primary contact, both directions.
LEAD_TO_CONTACT = 578
CONTACT_TO_LEAD = 579
_LABELS = {"leads": "lead_to_primary_contact", "contacts": "primary_contact_to_lead"}
MAX_PAGE = 100
MAX_PAGE_WITH_HISTORY = 50
MAX_BATCH = 100
MAX_ASSOCIATION_BATCH = 1000


def _object_id(text: str) -> int | None:
    return int(text) if text.isdigit() else None


class Endpoints:
    """Answers the CRM routes from ``store``; ``now_ms`` is the emulator clock."""

    def __init__(self, store: Store, now_ms: Callable[[], int], cap_mode: str) -> None:
        self.store = store
        self.now_ms = now_ms
        self.cap_mode = cap_mode
        self.cache = SearchCache()

    # -- rendering ------------------------------------------------------------------------

    def _wanted(self, table: Table, requested: Iterable[str] | None) -> list[str]:
        """The properties to show: the defaults, or the defined requested ones plus
        ``createdate``, ``hs_object_id`` and the last-modified property."""
        schema = table.schema
        if requested is None:
            return list(schema.default_properties)
        base = ("createdate", "hs_object_id", schema.modified_property)
        return list(dict.fromkeys([*(p for p in requested if p in table.defined), *base]))

    def render(
        self,
        table: Table,
        record: Record,
        wanted: Iterable[str] | None = None,
        *,
        history: Iterable[str] = (),
        associations: Iterable[Table] = (),
    ) -> dict[str, Any]:
        """``record`` as JSON; ``wanted`` None shows every property it has set."""
        properties = record.properties
        if wanted is None:
            wanted = [name for name, value in properties.items() if value is not None]
        body: dict[str, Any] = {
            "id": str(record.id),
            "properties": {name: properties.get(name) for name in wanted},
            "createdAt": properties["createdate"],
            "updatedAt": properties[table.schema.modified_property],
            "archived": record.archived_ms is not None,
        }
        if record.archived_ms is not None:
            body["archivedAt"] = iso(record.archived_ms)
        shown = [name for name in history if name in table.defined]
        if shown:
            body["propertiesWithHistory"] = {
                name: [
                    {
                        "value": v.value,
                        "timestamp": iso(v.timestamp_ms),
                        "sourceType": v.source_type,
                    }
                    for v in table.history(record, name)
                ]
                for name in shown
            }
        kind = _LABELS[table.schema.name]
        linked = {
            other.schema.name: {"results": [{"id": str(i), "type": kind} for i in ids]}
            for other in associations
            if (ids := self._linked(table, record.id, other))
        }
        if linked:
            body["associations"] = linked
        return body

    def _linked(self, table: Table, object_id: int, other: Table) -> list[int]:
        """The active records of ``other`` associated with ``object_id`` of ``table``."""
        store = self.store
        if table is store.leads and other is store.contacts:
            contact = store.contact_of(object_id)
            ids = [] if contact is None else [contact]
        elif table is store.contacts and other is store.leads:
            ids = store.leads_of(object_id)
        else:
            ids = []
        return [i for i in ids if other.get(i) is not None]

    def _association_tables(self, request: Request) -> list[Table]:
        names = request.query.names("associations") or []
        aliases = {**SCHEMAS, "contact": SCHEMAS["contacts"], "lead": SCHEMAS["leads"]}
        return [self.store.tables[aliases[n].name] for n in dict.fromkeys(names) if n in aliases]

    # -- reads ----------------------------------------------------------------------------

    def list(self, route: Route, request: Request) -> Reply:
        """``GET /crm/v3/objects/{type}``: a page in id order; ``after`` is the next id."""
        table, query = route.table, request.query
        history = query.names("propertiesWithHistory") or []
        limit = min(query.number("limit", 10), MAX_PAGE_WITH_HISTORY if history else MAX_PAGE)
        after = query.last("after") or "0"
        if not after.isdigit():
            raise bad_request(f"after must be a cursor from paging.next.after, got {after!r}")
        records, more = table.page(int(after), limit, archived=query.flag("archived"))
        wanted = self._wanted(table, query.names("properties"))
        linked = self._association_tables(request)
        results = [
            self.render(table, r, wanted, history=history, associations=linked) for r in records
        ]
        body: dict[str, Any] = {"results": results}
        if more:
            cursor = str(records[-1].id + 1)
            link = f"{request.base_url}{request.path}?{query.replaced('after', cursor)}"
            body["paging"] = {"next": {"after": cursor, "link": link}}
        return Reply(200, body, len(results))

    def _find(
        self, table: Table, key: str, id_property: str | None, archived: bool
    ) -> Record | None:
        if id_property in (None, "", "hs_object_id"):
            object_id = _object_id(key)
            return None if object_id is None else table.get(object_id, archived=archived)
        if id_property == "email" and "email" in table.defined:
            return table.by_email(key, archived=archived)
        raise bad_request(f"{id_property} is not a unique property of {table.schema.name}")

    def get(self, route: Route, request: Request) -> Reply:
        """``GET /crm/v3/objects/{type}/{id}``; a merged-away id answers with the survivor."""
        table, query = route.table, request.query
        key = unquote(route.object_id or "")
        record = self._find(table, key, query.last("idProperty"), query.flag("archived"))
        if record is None:
            raise not_found()
        body = self.render(
            table,
            record,
            self._wanted(table, query.names("properties")),
            history=query.names("propertiesWithHistory") or [],
            associations=self._association_tables(request),
        )
        return Reply(200, body, 1)

    def search(self, route: Route, request: Request) -> Reply:
        """``POST /crm/v3/objects/{type}/search``: see ``search.py``; archived never shows."""
        table = route.table
        try:
            wanted = parse_search(request.json())
            end = wanted.after + wanted.limit
            capped = self.cap_mode == "after_plus_limit" and end > RESULT_CAP
            if wanted.after >= RESULT_CAP or capped:
                raise SearchError(
                    f"Cannot page beyond {RESULT_CAP} results: after={wanted.after}, "
                    f"limit={wanted.limit}. Narrow the search with filters instead."
                )
            table.index.settle(self.now_ms())
            found = self.cache.matches(table.index, table.schema, wanted)
        except SearchError as exc:
            raise bad_request(str(exc)) from None
        shown = self._wanted(table, wanted.properties)
        results = [self.render(table, record, shown) for record in found[wanted.after : end]]
        body: dict[str, Any] = {"total": len(found), "results": results}
        if end < len(found):
            body["paging"] = {"next": {"after": str(end)}}
        return Reply(200, body, len(results))

    def batch_read(self, route: Route, request: Request) -> Reply:
        """``POST /crm/v3/objects/{type}/batch/read``: 200, or 207 naming the missing ids."""
        table, payload = route.table, request.json_object()
        started = iso(self.now_ms())
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise bad_request('inputs must be a list of {"id": ...} objects')
        if len(inputs) > MAX_BATCH:
            raise bad_request(f"Too many inputs: {len(inputs)}, maximum {MAX_BATCH}")
        archived = request.query.flag("archived")
        found: dict[int, Record] = {}
        missing: list[str] = []
        for item in inputs:
            key = str(item.get("id", ""))
            record = self._find(table, key, payload.get("idProperty"), archived)
            if record is None:
                missing.append(key)
            else:
                found.setdefault(record.id, record)
        wanted = self._wanted(table, payload.get("properties") or None)
        history = payload.get("propertiesWithHistory") or []
        results = [self.render(table, r, wanted, history=history) for r in found.values()]
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started}
        if missing:
            message = (
                f"Could not get some {table.schema.label} objects, they may be deleted or not "
                "exist. Check that ids are valid."
            )
            error = {"status": "error", "category": "OBJECT_NOT_FOUND", "message": message}
            body["numErrors"] = 1
            body["errors"] = [{**error, "context": {"ids": missing}}]
        body["completedAt"] = iso(self.now_ms())
        return Reply(207 if missing else 200, body, len(results))

    def associations(self, route: Route, request: Request) -> Reply:
        """``POST /crm/v4/associations/{from}/{to}/batch/read``: each input's associated ids;
        inputs with none (or unknown) come back as errors in a 207."""
        source, target = route.tables
        inputs = request.json_object().get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise bad_request('inputs must be a list of {"id": ...} objects')
        if len(inputs) > MAX_ASSOCIATION_BATCH:
            raise bad_request(f"Too many inputs: {len(inputs)}, maximum {MAX_ASSOCIATION_BATCH}")
        started = iso(self.now_ms())
        type_id = LEAD_TO_CONTACT if source is self.store.leads else CONTACT_TO_LEAD
        spec = {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": "Primary"}
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            key = str(item.get("id", ""))
            object_id = _object_id(key)
            record = None if object_id is None else source.get(object_id)
            linked = [] if record is None else self._linked(source, record.id, target)
            if record is not None and linked:
                to = [{"toObjectId": i, "associationTypes": [spec]} for i in linked]
                results.append({"from": {"id": str(record.id)}, "to": to})
                continue
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {target.schema.label.lower()} is associated with "
                    f"{source.schema.label.lower()} {key}.",
                    "context": {"fromObjectId": [key]},
                }
            )
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        body["completedAt"] = iso(self.now_ms())
        return Reply(207 if errors else 200, body, len(results))

    # -- writes ---------------------------------------------------------------------------

    def _values(self, table: Table, payload: dict[str, Any]) -> dict[str, str | None]:
        """The ``properties`` of a write body as stored strings; read-only ones are dropped,
        unknown ones refused."""
        raw = payload.get("properties", {})
        if not isinstance(raw, dict):
            raise bad_request("properties must be an object")
        unknown = [name for name in raw if name not in table.defined]
        if unknown:
            raise bad_request(
                "Property values were not valid",
                errors=[
                    {
                        "message": f'Property "{name}" does not exist',
                        "code": "PROPERTY_DOESNT_EXIST",
                        "context": {"propertyName": [name]},
                    }
                    for name in unknown
                ],
            )
        values: dict[str, str | None] = {}
        for name, value in raw.items():
            if name in READ_ONLY:
                continue
            if isinstance(value, dict | list):
                raise bad_request(f"Property {name} must be a string, number or boolean")
            if isinstance(value, bool):
                value = "true" if value else "false"
            values[name] = None if value is None or value == "" else str(value)
        return values

    def create(self, route: Route, request: Request) -> Reply:
        """``POST /crm/v3/objects/{type}``: 201; a lead needs its primary contact (578)."""
        table, payload = route.table, request.json_object()
        values = self._values(table, payload)
        contact = None
        if table is self.store.leads:
            contact = self._primary_contact(payload.get("associations"))
        try:
            record = table.create(values, self.now_ms(), "API")
        except EmailTaken as taken:
            raise ApiError(409, "CONFLICT", str(taken)) from None
        if contact is not None:
            self.store.associate(record.id, contact)
        return Reply(201, self.render(table, record), 1)

    def _primary_contact(self, associations: Any) -> int:
        for association in associations if isinstance(associations, list) else []:
            to = association.get("to") if isinstance(association, dict) else None
            types = association.get("types") if isinstance(association, dict) else None
            object_id = _object_id(str(to.get("id", ""))) if isinstance(to, dict) else None
            primary = any(
                isinstance(t, dict) and t.get("associationTypeId") == LEAD_TO_CONTACT
                for t in (types if isinstance(types, list) else [])
            )
            if primary and object_id is not None and self.store.contacts.get(object_id):
                return object_id
        raise bad_request(
            "A lead must be associated with an existing contact "
            f"(associationTypeId {LEAD_TO_CONTACT}, HUBSPOT_DEFINED)"
        )

    def update(self, route: Route, request: Request) -> Reply:
        """``PATCH /crm/v3/objects/{type}/{id}``: 200 with the record."""
        table, key = route.table, unquote(route.object_id or "")
        record = self._find(table, key, request.query.last("idProperty"), False)
        if record is None:
            raise not_found()
        values = self._values(table, request.json_object())
        try:
            record = table.update(record.id, values, self.now_ms(), "API")
        except EmailTaken as taken:
            raise ApiError(409, "CONFLICT", str(taken)) from None
        return Reply(200, self.render(table, record), 1)

    def archive(self, route: Route, request: Request) -> Reply:
        """``DELETE /crm/v3/objects/{type}/{id}``: 204, also for ids not (or no longer) active."""
        object_id = _object_id(route.object_id or "")
        if object_id is not None and route.table.get(object_id) is not None:
            route.table.archive(object_id, self.now_ms())
        return Reply(204)

    def merge(self, route: Route, request: Request) -> Reply:
        """``POST /crm/v3/objects/{type}/merge``: 200 with the new record."""
        payload = request.json_object()
        primary = _object_id(str(payload.get("primaryObjectId", "")))
        merged = _object_id(str(payload.get("objectIdToMerge", "")))
        if primary is None or merged is None:
            raise bad_request("primaryObjectId and objectIdToMerge must be object ids")
        try:
            record = self.store.merge(route.table, primary, merged, self.now_ms())
        except KeyError as exc:
            raise not_found(f"Object not found: {exc.args[0]}") from None
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return Reply(200, self.render(route.table, record), 1)

    def gdpr_delete(self, route: Route, request: Request) -> Reply:
        """``POST /crm/v3/objects/{type}/gdpr-delete``: 204; an unknown email is fine (it is
        blocklisted all the same), an unknown id is 404."""
        table, payload = route.table, request.json_object()
        key, id_property = str(payload.get("objectId", "")), payload.get("idProperty")
        record = self._find(table, key, id_property, False) or self._find(
            table, key, id_property, True
        )
        if record is not None:
            self.store.purge(table, record.id, self.now_ms())
        elif id_property != "email":
            raise not_found()
        return Reply(204)
