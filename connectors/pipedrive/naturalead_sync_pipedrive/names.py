"""Organization and owner names for the default mapping, resolved at most once per run.

Persons (and leads) carry only ``org_id``/``organization_id`` and ``owner_id``. Before a page
of records is handed on, :meth:`Names.learn` reads the organizations this run has not seen
yet through ``GET /api/v2/organizations?ids=`` (100 ids a request: one request per page of
persons unless the page names more than 100 new organizations) and, the first time an owner
appears, every user of the company through ``GET /v1/users`` (one request per run). An id
Pipedrive does not list (a deleted organization, an unknown user) resolves to None, so the
custom field is left out rather than failing the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .api import IDS_PER_REQUEST, PipedriveApi
from .fields import text

__all__ = ["USERS", "Names"]

_ORGANIZATIONS = "/api/v2/organizations"
USERS = "/v1/users"


def _key(value: Any) -> str | None:
    """An id as the cache key (None when it is not a positive integer)."""
    shown = text(value)
    return shown if shown is not None and shown.isdigit() and shown != "0" else None


class Names:
    """The organization and user names of one run, fetched in batches and cached."""

    def __init__(self, api: PipedriveApi) -> None:
        self._api = api
        self._orgs: dict[str, str | None] = {}
        self._users: dict[str, str] | None = None

    def learn(self, org_ids: Iterable[Any], owner_ids: Iterable[Any]) -> None:
        """Fetch the names of the organizations not seen yet, and the users on first need."""
        wanted = list(dict.fromkeys(k for k in map(_key, org_ids) if k and k not in self._orgs))
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            batch = wanted[start : start + IDS_PER_REQUEST]
            self._orgs.update(dict.fromkeys(batch))  # ids Pipedrive leaves out stay None
            params = {"ids": ",".join(batch), "limit": IDS_PER_REQUEST}
            for page in self._api.cursor_pages(_ORGANIZATIONS, params):
                for org in page:
                    if (key := _key(org.get("id"))) and not org.get("is_deleted"):
                        self._orgs[key] = text(org.get("name"))
        if self._users is None and any(_key(owner) for owner in owner_ids):
            users = self._api.get(USERS).get("data") or []
            self._users = {
                str(user["id"]): name
                for user in users
                if isinstance(user, dict) and (name := text(user.get("name")))
            }

    def organization(self, org_id: Any) -> str | None:
        """The name of organization ``org_id``, or None when unknown or deleted."""
        key = _key(org_id)
        return None if key is None else self._orgs.get(key)

    def owner(self, user_id: Any) -> str | None:
        """The name of user ``user_id``, or None when unknown."""
        key = _key(user_id)
        return None if key is None or self._users is None else self._users.get(key)
