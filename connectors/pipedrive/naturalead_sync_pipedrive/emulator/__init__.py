"""A Pipedrive emulator for offline tests of the Pipedrive connector.

It emulates one company (section 9 of ``shared/reference/pipedrive.md``): v2 persons with
``updated_since``/``updated_until`` and keyset cursors, ``ids``, v1 leads and archived leads,
person and deal fields with hash keys and enum/set options, soft-deleted persons, merges,
token and OAuth auth, the error envelope, burst and daily budgets with ``x-ratelimit-*``
headers, the HTML 403 block, and scripted faults. Serve it over loopback::

    emulator = PipedriveEmulator(persons=1_000, leads=200)
    with serve(emulator) as server:
        httpx.get(f"{server.url}/api/v2/persons", headers={"x-api-token": DEFAULT_API_TOKEN})

or from a shell: ``python -m naturalead_sync_pipedrive.emulator --port 8765 --persons 1000``.

Choices where the reference says [unverified] or nothing (switches in :class:`EmulatorOptions`
and :class:`EmulatorLimits` give the other behaviour where the docs conflict):

- Hosts are ignored. v1 answers on ``/api/v1/`` and ``/v1/``, v2 only on ``/api/v2/``;
  every other path is a 404 envelope, before authentication. Only ``GET`` endpoints are
  served; writes go through the Python hooks or the ``/_emulator/`` admin interface.
- Auth: ``x-api-token``, then ``Authorization: Bearer``, then ``?api_token=`` (accepted
  unless ``query_token=False``). 401 ``unauthorized access`` with ``errorCode``. OAuth
  tokens without one of the route's scopes get 403 ``Scope and URL mismatch`` (persons
  and personFields: ``contacts:*``; leads, leadLabels: ``leads:*``; dealFields:
  ``deals:*``; recents: ``recents:read``; users/me: none). An API token sees everything.
- v2 validation: unknown ``sort_by``/``sort_direction``/``include_fields``, more than 100
  ``ids``, more than 15 ``custom_fields``, non-integer numbers and (``strict_timestamps``)
  fractional or space-separated times are 400 ``Validation failed: <param>: <reason>``;
  ``limit`` > 500 is a 400 (``limit_over_max="clamp"`` clamps). ``updated_since`` is
  inclusive and ``updated_until`` exclusive on whole seconds. An unknown ``filter_id`` is a
  404; ``deal_id`` matches nobody (there are no deals). v2 ``custom_fields`` lists every
  custom field, ``null`` when unset.
- The cursor is base64url JSON ``{field, fieldValue, sortDirection, id}`` of the next
  page's first row; reusing it with another sort is a 400.
- ``GET /api/v2/persons/{id}`` of a soft-deleted person returns it with ``is_deleted:
  true`` (``deleted_person_get="404"`` for the other reading); purged (30 days) is 404.
  Lists never show deleted persons, ``/v1/recents`` included.
- Merges: the winner keeps its primaries and gains the loser's other emails, phones,
  labels and unset custom values; the loser is soft-deleted; the loser's leads move to the
  winner, which bumps those leads' ``update_time`` (any other person edit does not).
- Leads: ``filter_id`` is not emulated (400); ``limit`` is clamped to 500; ``sort`` takes
  ``field ASC|DESC`` items. Archived leads are read-only; conversion deletes the lead.
  ``GET /v1/leads/{id}`` also returns archived leads.
- Rate limits and faults: see :mod:`.limits` and :mod:`.faults` (what counts, what is
  charged, the 429 body, ``Retry-After`` off by default, the block after 10 ignored 429s
  for 60 s, the daily period as a fixed window from the start on the monotonic clock).
- OAuth refresh (``POST /oauth/token``) keeps the refresh token and the old access token
  valid; ``api_domain`` defaults to ``http://<Host header>``.
- Organizations and users (:mod:`.routes_account`, shapes from Pipedrive's OpenAPI files,
  which the reference does not cover): ``GET /api/v2/organizations`` (``ids`` <= 100,
  ``owner_id``, id-ordered keyset cursor; soft-deleted organizations left out; 10 tokens
  like the persons list) and ``GET /v1/users`` (unpaged, scope ``users:read``, 20 tokens,
  the generic v1 list cost).
- Not emulated: webhooks, search, deals, organization writes beyond ``delete_org``, saved
  filters beyond ``add_filter`` conditions, per-token visibility.
"""

from __future__ import annotations

from naturalead_sync.loopback import LoopbackServer, serve

from .app import PipedriveEmulator, RequestRecord
from .auth import (
    DEFAULT_API_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_OAUTH_TOKEN,
    DEFAULT_REFRESH_TOKEN,
    OAUTH_SCOPES,
)
from .clock import EmulatorClock
from .faults import FAULTS
from .limits import DEFAULT_COSTS, PLANS, EmulatorLimits
from .protocol import EmulatorOptions
from .seed import AREA_CODES, phone_for

__all__ = [
    "AREA_CODES",
    "DEFAULT_API_TOKEN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_COSTS",
    "DEFAULT_OAUTH_TOKEN",
    "DEFAULT_REFRESH_TOKEN",
    "FAULTS",
    "OAUTH_SCOPES",
    "PLANS",
    "EmulatorClock",
    "EmulatorLimits",
    "EmulatorOptions",
    "LoopbackServer",
    "PipedriveEmulator",
    "RequestRecord",
    "phone_for",
    "serve",
]
