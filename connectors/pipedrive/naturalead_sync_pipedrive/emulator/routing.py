"""The API's routes: path prefixes, path patterns, route names (the cost keys), handlers
and the OAuth scopes each route accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from naturalead_sync.loopback import HTTPAnswer

from . import routes_account, routes_leads, routes_persons
from .protocol import ApiError, EmulatorOptions, Request
from .store import Store

__all__ = ["ROUTES", "Route", "locate", "resolve"]

Handler = Callable[[Store, EmulatorOptions, Request], HTTPAnswer]
_CONTACTS = ("contacts:read", "contacts:full")
_LEADS = ("leads:read", "leads:full")
_DEALS = ("deals:read", "deals:full")


@dataclass(frozen=True, slots=True)
class Route:
    """One GET endpoint: ``name`` keys its token cost; OAuth tokens need one of ``scopes``."""

    method: str
    version: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler
    scopes: tuple[str, ...]


def _route(version: str, path: str, name: str, handler: Handler, scopes: tuple[str, ...]) -> Route:
    return Route("GET", version, re.compile(f"^{path}$"), name, handler, scopes)


ROUTES = (
    _route("v2", "/persons", "persons.list", routes_persons.list_persons, _CONTACTS),
    _route("v2", r"/persons/(?P<id>[^/]+)", "persons.get", routes_persons.get_person, _CONTACTS),
    _route(
        "v2", "/personFields", "personFields.v2", routes_persons.list_person_fields_v2, _CONTACTS
    ),
    _route(
        "v2", "/organizations", "organizations.list", routes_account.list_organizations, _CONTACTS
    ),
    _route("v1", "/persons", "persons.v1.list", routes_persons.list_persons_v1, _CONTACTS),
    _route("v1", "/recents", "recents", routes_persons.recents, ("recents:read",)),
    _route("v1", "/leads", "leads.list", routes_leads.list_leads, _LEADS),
    _route("v1", "/leads/archived", "leads.archived", routes_leads.list_archived_leads, _LEADS),
    _route("v1", r"/leads/(?P<id>[^/]+)", "leads.get", routes_leads.get_lead, _LEADS),
    _route("v1", "/leadLabels", "leadLabels", routes_leads.lead_labels, _LEADS),
    _route("v1", "/personFields", "personFields", routes_leads.person_fields, _CONTACTS),
    _route("v1", "/dealFields", "dealFields", routes_leads.lead_fields, _DEALS),
    _route("v1", "/leadFields", "leadFields", routes_leads.lead_fields, _LEADS + _DEALS),
    _route("v1", "/users", "users.list", routes_account.list_users, ("users:read",)),
    _route("v1", "/users/me", "users.me", routes_leads.users_me, ()),
)
_PREFIXES = (("/api/v2/", "v2"), ("/api/v1/", "v1"), ("/v1/", "v1"))


def locate(path: str) -> tuple[str, str] | None:
    """``(version, path below the prefix)`` of an API path, or None outside the API."""
    for prefix, version in _PREFIXES:
        if path.startswith(prefix):
            return version, "/" + path[len(prefix) :].rstrip("/")
    return None


def resolve(method: str, version: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for ``path`` (404 or 405 as an :class:`ApiError` when there is none)."""
    allowed = False
    for route in ROUTES:
        found = route.pattern.match(path) if route.version == version else None
        if found and route.method == method:
            return route, found.groupdict()
        allowed = allowed or found is not None
    if allowed:
        raise ApiError(405, "Method not allowed")
    raise ApiError(404, f"Unknown method {path}", error_info="Object was not found.")
