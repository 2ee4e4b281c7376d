"""Account endpoints the connector resolves names through: ``GET /api/v2/organizations``
and ``GET /v1/users``.

Organizations (v2, as Pipedrive's OpenAPI v2 describes the list): ``ids`` (at most 100;
missing, invisible and deleted ids are left out), ``owner_id``, ``limit`` (default 100, max
500) and the keyset ``cursor`` of the persons list, in id order only (``sort_by=id``; the
emulator keeps no organization times worth sorting on, so another ``sort_by`` is a 400).
Soft-deleted organizations appear in no list. Users (v1): every user of the company in one
unpaged answer, deactivated ones included (``active_flag: false``); Pipedrive deletes no
users.
"""

from __future__ import annotations

from naturalead_sync.loopback import HTTPAnswer

from .protocol import ApiError, EmulatorOptions, Request, success
from .routes_persons import decode_cursor, encode_cursor, id_set, page_limit
from .shapes import organization_v2, user_v1
from .store import Store

__all__ = ["list_organizations", "list_users"]


def list_organizations(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /api/v2/organizations``: live organizations by id, keyset paged."""
    limit = page_limit(request, options)
    request.choice("sort_by", ("id",))
    direction = request.choice("sort_direction", ("asc", "desc"))
    ids = id_set(request)
    owner = request.integer("owner_id", minimum=1)
    cursor = request.one("cursor")
    after = None if not cursor else decode_cursor(cursor, "id", direction)[1]
    descending = direction == "desc"
    orgs = sorted(
        (
            org
            for org in store.orgs.values()
            if not org.is_deleted
            and (ids is None or org.id in ids)
            and (owner is None or org.owner_id == owner)
            and (after is None or (org.id <= after if descending else org.id >= after))
        ),
        key=lambda org: org.id,
        reverse=descending,
    )
    page, rest = orgs[:limit], orgs[limit : limit + 1]
    following = None if not rest else encode_cursor((rest[0].id, rest[0].id), "id", direction)
    return success([organization_v2(org) for org in page], {"next_cursor": following})


def list_users(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/users``: every user, the token's own one marked ``is_you``."""
    if request.query:
        raise ApiError.invalid(next(iter(request.query)), "GET /v1/users takes no parameters")
    assert request.credential is not None
    me = request.credential.user_id
    return success([user_v1(user, is_you=user.id == me) for user in store.users.values()])
