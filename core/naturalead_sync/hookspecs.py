"""Every hook a naturalead-sync plugin can implement.

Plugins are modules (or objects) registered through the ``naturalead_sync`` entry-point group;
they implement hooks with the :data:`hookimpl` marker::

    from naturalead_sync import hookimpl

    @hookimpl
    def register_connectors(register):
        register(MyConnector)

Engine code never calls ``pm.hook`` directly; it goes through the typed functions in
:mod:`naturalead_sync.plugins`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .connector import Connector
    from .models import Lead, SourceRecord
    from .report import ConnectionReport

__all__ = ["hookimpl", "hookspec"]

PROJECT = "naturalead_sync"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Register connector classes.

    Called once when the plugin manager is built. Call ``register(ConnectorClass)`` once per
    connector the plugin provides; the class's ``name`` becomes the value of ``connector =`` in
    the config. Two plugins registering the same name is an error naming both distributions.
    The return value is ignored.
    """


@hookspec
def transform_lead(lead: Lead, record: SourceRecord, connection: str) -> Lead | None:
    """Change a lead after mapping and before validation and sending.

    Called once per record of every connection, after the connector's default mapping and the
    config's overrides, before phone/email normalisation. ``record`` is the source record the
    lead came from, ``connection`` the connection's name. Return a new :class:`Lead` to replace
    it, or None to keep it as it is; the next plugin receives the result. Raise
    :class:`~naturalead_sync.RecordError` to reject the lead (recorded as failed with that
    reason), or :class:`~naturalead_sync.SkipLead` to leave it out of this sync quietly.
    """


@hookspec
def run_finished(report: ConnectionReport) -> None:
    """Observe a finished run of one connection.

    Called once per connection at the end of ``naturalead-sync run`` (dry runs included, with
    ``report.dry_run`` set), whether the run succeeded or failed (``report.status``). Use it to
    send metrics or alerts. The return value is ignored; an exception is logged, not raised.
    """
