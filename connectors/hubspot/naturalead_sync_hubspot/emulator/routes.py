"""Which endpoint answers a request: the route table of the emulated API."""

from __future__ import annotations

from dataclasses import dataclass

from .schema import SCHEMAS
from .store import Store, Table
from .wire import ApiError, bad_request

__all__ = ["Route", "route_of"]

#: Route kinds that read (they need ``.read`` scopes; the others ``.write``).
READS = frozenset({"list", "get", "search", "batch_read", "associations"})
#: ``/crm/v3/objects/{type}/...`` suffixes and the kind each method maps to.
OBJECT_ROUTES: dict[tuple[str, ...], dict[str, str]] = {
    (): {"GET": "list", "POST": "create"},
    ("search",): {"POST": "search"},
    ("batch", "read"): {"POST": "batch_read"},
    ("merge",): {"POST": "merge"},
    ("gdpr-delete",): {"POST": "gdpr_delete"},
    ("{id}",): {"GET": "get", "PATCH": "update", "DELETE": "archive"},
}


@dataclass(frozen=True)
class Route:
    """Which handler answers a request, on which table(s) (``(from, to)`` for associations),
    and the object id from the path."""

    kind: str
    tables: tuple[Table, ...] = ()
    object_id: str | None = None

    @property
    def table(self) -> Table:
        """The (first) table the route is about."""
        return self.tables[0]

    @property
    def scopes(self) -> list[str]:
        """The scopes a token needs for this route."""
        access = "read" if self.kind in READS else "write"
        return [f"crm.objects.{table.schema.name}.{access}" for table in self.tables]


def _table(store: Store, name: str) -> Table:
    schema = SCHEMAS.get(name)
    if schema is None:
        raise bad_request(f"Unable to infer object type from: {name}")
    return store.tables[schema.name]


def route_of(store: Store, method: str, path: str) -> Route:
    """The route of ``method path``: 404 unknown, 405 wrong method, 400 unknown type."""
    parts = tuple(part for part in path.split("/") if part)
    kinds: dict[str, str] | None = None
    tables: tuple[Table, ...] = ()
    object_id = None
    if parts == ("oauth", "v1", "token"):
        kinds = {"POST": "oauth"}
    elif parts[:3] == ("crm", "v3", "objects") and len(parts) > 3:
        rest = parts[4:]
        if len(rest) == 1 and (rest[0],) not in OBJECT_ROUTES:
            rest, object_id = ("{id}",), rest[0]
        kinds = OBJECT_ROUTES.get(rest)
        tables = (_table(store, parts[3]),) if kinds else ()
    elif parts[:3] == ("crm", "v4", "associations") and parts[5:] == ("batch", "read"):
        kinds = {"POST": "associations"}
        tables = (_table(store, parts[3]), _table(store, parts[4]))
    if kinds is None:
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to route {method} {path}")
    if method not in kinds:
        allowed = {"Allow": ", ".join(kinds)}
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed", headers=allowed)
    return Route(kinds[method], tables, object_id)
