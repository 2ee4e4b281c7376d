"""The ``acme`` connector: contacts from Acme CRM's API to Naturalead.

Replace the calls in this module with your CRM's. Keep the shape: ``fetch_changed`` pages
through the records modified inside the window, in ascending modification order when the API
can sort (then ``ordered = True`` lets the engine checkpoint after every batch), with a cursor
that cannot repeat forever; ``fetch_deleted`` names what was deleted; ``fetch_by_ids`` reads
records again by id; ``to_lead`` maps one record; ``check`` proves the credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from naturalead_sync import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorSettings,
    Lead,
    SourceRecord,
    Window,
)

from .settings import AcmeSettings

__all__ = ["AcmeConnector"]

#: Ids per ``fetch_by_ids`` request.
_IDS_PER_REQUEST = 100


class AcmeConnector(Connector):
    """Reads Acme CRM contacts. ``lead_id`` is the contact's id."""

    name = "acme"
    Settings = AcmeSettings
    ordered = True  # the API sorts by (modified_at, id)
    settings: AcmeSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        token = self.settings.api_token.get_secret_value()
        # Core's client: its timeout, user agent and bounded retries (429, 5xx, dropped
        # connections). The token goes in a header, never in a URL that could be logged.
        self._http = context.http_client(
            base_url=self.settings.base_url, headers={"Authorization": f"Bearer {token}"}
        )

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        """Contacts modified inside ``window``, oldest first, a page at a time."""
        params: dict[str, Any] = {
            "modified_before": window.end.isoformat(),
            "limit": self.settings.page_size,
        }
        if window.start is not None:
            params["modified_since"] = window.start.isoformat()
        seen: set[str] = set()
        while True:
            page = self._get("/api/contacts", params)
            for item in page.get("data") or []:
                if (record := self._record(item)) is not None:
                    yield record
            cursor = page.get("next")
            if not cursor:
                return
            if cursor in seen:  # a server that repeats itself must not keep us here
                raise ConnectorError(f"Acme CRM repeated the page cursor {cursor!r}")
            seen.add(cursor)
            params["after"] = cursor

    def fetch_deleted(self, window: Window) -> Iterator[str]:
        """Ids of contacts deleted inside ``window``."""
        params = {"before": window.end.isoformat()}
        if window.start is not None:
            params["since"] = window.start.isoformat()
        for item in self._get("/api/deleted", params).get("data") or []:
            yield str(item["id"])

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        """The contacts among ``ids`` that still exist."""
        for start in range(0, len(ids), _IDS_PER_REQUEST):
            chunk = ids[start : start + _IDS_PER_REQUEST]
            for item in self._get("/api/contacts", {"ids": ",".join(chunk)}).get("data") or []:
                if (record := self._record(item)) is not None:
                    yield record

    def to_lead(self, record: SourceRecord) -> Lead:
        """Name from first and last name, phone, email, and the company as a custom field."""
        fields = record.fields
        names = (fields.get("first_name"), fields.get("last_name"))
        company = fields.get("company")
        return Lead(
            lead_id=record.id,
            name=" ".join(str(part) for part in names if part) or None,
            phone=fields.get("phone") or None,
            email=fields.get("email") or None,
            custom_fields={"company": str(company)} if company else {},
        )

    def check(self) -> list[str]:
        """One cheap call that proves the token works."""
        self._get("/api/me", {})
        return []

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET ``path`` and return its JSON body; errors name the fix, never the token."""
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ConnectorError(
                f"Acme CRM could not be reached at {self.settings.base_url} "
                f"({type(exc).__name__}); check settings.base_url and the network"
            ) from None
        if response.status_code in (401, 403):
            raise ConnectorError(
                f"Acme CRM refused the token (HTTP {response.status_code}); check "
                "settings.api_token"
            )
        if response.status_code != 200:
            raise ConnectorError(f"Acme CRM answered HTTP {response.status_code} to {path}")
        body = response.json()
        if not isinstance(body, dict):
            raise ConnectorError(f"Acme CRM answered {path} with something other than an object")
        return body

    def _record(self, item: Any) -> SourceRecord | None:
        """A SourceRecord, or None after reporting a record that cannot be read."""
        record_id = str(item.get("id") or "") if isinstance(item, dict) else ""
        try:
            modified = datetime.fromisoformat(str(item["modified_at"]))
            if modified.tzinfo is None:
                raise ValueError("no time zone")
        except (KeyError, TypeError, ValueError) as exc:
            self.context.report_bad_record(
                f"Acme CRM contact {record_id or '?'}",
                f"modified_at is missing or unreadable ({exc}); fix it in Acme CRM",
                record_id or None,
            )
            return None
        if not record_id:
            self.context.report_bad_record(f"Acme CRM contact at {modified}", "no id")
            return None
        return SourceRecord(record_id, modified, item)
