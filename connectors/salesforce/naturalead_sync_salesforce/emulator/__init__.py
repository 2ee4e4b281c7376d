"""A Salesforce emulator for offline tests: the REST, SOAP-login, OAuth and Bulk API 2.0 calls an
incremental Lead/Contact sync makes, served over loopback HTTP.

Use it with simple-salesforce through :class:`~naturalead_sync_salesforce.testing.LoopbackSession`
(simple-salesforce always builds ``https://`` URLs; the session sends them to the emulator)::

    emulator = SalesforceEmulator(Clock(datetime(2024, 5, 1, tzinfo=UTC), frozen=True))
    emulator.seed_leads(10)
    with serve(emulator) as server:
        sf = Salesforce(username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD,
                        security_token=DEFAULT_SECURITY_TOKEN,
                        session=LoopbackSession(server.url))
        sf.query_all("SELECT Id, Email FROM Lead")

What it serves (``vNN.N`` is any version from 31.0 to 66.0, echoed back in every URL):

- ``POST /services/Soap/u/{v}`` and ``POST /services/oauth2/token``: logins (:mod:`.auth`).
- ``GET /services/data/``: the version list.
- ``GET vNN.N/query?q=`` and ``queryAll?q=``, next pages at ``query/{locator}-{offset}``
  (:mod:`.rest`, SOQL subset in :mod:`.soql`).
- ``GET vNN.N/sobjects/{Lead|Contact}/deleted/?start=&end=`` and ``.../updated/``.
- ``GET vNN.N/sobjects/``, ``sobjects/{type}``, ``sobjects/{type}/describe``,
  ``sobjects/{type}/{id}`` and ``limits/``.
- ``vNN.N/jobs/query`` (Bulk API 2.0 query jobs, :mod:`.bulk`).
- ``/_emulator/`` admin routes: ``GET stats``, ``POST seed``, ``GET|POST clock``,
  ``GET|POST|DELETE faults``, ``POST sessions/expire``, ``GET requests``.

Documented choices (details in each module's docstring): routing, auth and the API budget in
:mod:`.app`; logins in :mod:`.auth`; cursors and replication windows in :mod:`.rest`; query
semantics in :mod:`.soql`; Bulk jobs in :mod:`.bulk`; faults in :mod:`.faults`; stamps, the
recycle bin and the delete log in :mod:`.store`; seed data in :mod:`.seed`. Write calls
(``POST``/``PATCH``/``DELETE`` on sObjects) are not served: the hooks of :class:`Org` change
the data.
"""

from __future__ import annotations

from naturalead_sync.loopback import LoopbackServer, serve

from .app import RequestRecord, SalesforceEmulator
from .auth import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    Credentials,
    Session,
)
from .clock import Clock
from .faults import ENDPOINTS
from .ids import normalize_id, sfid18
from .schema import SCHEMAS
from .store import Org

__all__ = [
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_CONSUMER_SECRET",
    "DEFAULT_PASSWORD",
    "DEFAULT_SECURITY_TOKEN",
    "DEFAULT_USERNAME",
    "ENDPOINTS",
    "SCHEMAS",
    "Clock",
    "Credentials",
    "LoopbackServer",
    "Org",
    "RequestRecord",
    "SalesforceEmulator",
    "Session",
    "normalize_id",
    "serve",
    "sfid18",
]
