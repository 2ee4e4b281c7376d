"""The REST source of the custom connector: leads from a JSON API described in the settings.

Requests go through core's HTTP client (``ConnectorContext.http_client``: timeouts, retries,
user agent). Every listing pages until the API says it is done, and stops with an error when
a page makes no progress (the same cursor, link or records again) or after ``max_pages``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

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

from .mapping import as_text, default_lead
from .records import RecordReader
from .rest_settings import RestSettings
from .zones import zone

__all__ = ["RestSource", "dig"]


def dig(body: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``body`` (``""`` is the body), or None when absent."""
    value = body
    for part in path.split(".") if path else ():
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _headers(settings: RestSettings) -> dict[str, str]:
    if settings.auth == "header" and settings.token is not None:
        return {settings.auth_header: settings.token.get_secret_value()}
    if settings.auth == "bearer" and settings.token is not None:
        return {"Authorization": f"Bearer {settings.token.get_secret_value()}"}
    return {"Accept": "application/json"}


class RestSource(Connector):
    """Reads leads from a paged JSON listing; deletes from a deleted-records listing.

    Without ``deleted_url``, deletes come from reconciliation (:meth:`fetch_all_ids` lists every
    record). :meth:`fetch_by_ids` scans the full listing for the ids wanted.
    """

    name = "custom"
    Settings: ClassVar[type[ConnectorSettings]] = RestSettings
    ordered = False  # unless settings.sorted

    settings: RestSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.ordered = self.settings.sorted
        auth = None
        if self.settings.auth == "basic" and self.settings.username and self.settings.password:
            auth = httpx.BasicAuth(
                self.settings.username, self.settings.password.get_secret_value()
            )
        self._http = context.http_client(headers=_headers(self.settings), auth=auth)
        self._reader = RecordReader(
            context,
            id_setting="id_path",
            modified_setting="modified_path",
            timezone=zone(self.settings.timezone),
        )

    # -- paging ---------------------------------------------------------------------------------

    def _get(self, url: str, params: Mapping[str, str | int]) -> httpx.Response:
        try:
            response = self._http.get(url, params=dict(params) or None)  # None keeps url's query
        except httpx.HTTPError as exc:
            raise ConnectorError(
                f"GET {url}: {type(exc).__name__}: {exc}; check settings.url"
            ) from None
        if response.status_code in (401, 403):
            raise ConnectorError(
                f"GET {url}: {response.status_code}; the API refused the credentials: check "
                "settings.auth and settings.token (or username and password)"
            )
        if response.is_error:
            raise ConnectorError(
                f"GET {response.url}: {response.status_code} {response.text[:200]!r}; check "
                "settings.url and settings.params"
            )
        return response

    def _pages(
        self, url: str, records_path: str, since: datetime | None
    ) -> Generator[tuple[str, list[Any]], None, None]:
        """Each page's location and records, following ``settings.pagination`` to the end."""
        settings = self.settings
        params: dict[str, str | int] = dict(settings.params)
        if since is not None and settings.updated_since_param is not None:
            params[settings.updated_since_param] = (
                since.astimezone(UTC).isoformat().replace("+00:00", "Z")
            )
        if settings.pagination in ("page", "offset") and settings.size_param is not None:
            params[settings.size_param] = settings.page_size
        seen: set[str] = set()
        previous: list[Any] | None = None
        next_url: str | None = url
        for number in range(settings.max_pages):
            if settings.pagination == "page":
                params[settings.page_param] = settings.first_page + number
            elif settings.pagination == "offset":
                params[settings.offset_param] = number * settings.page_size
            assert next_url is not None
            response = self._get(next_url, params)
            body = response.json()
            records = dig(body, records_path)
            if not isinstance(records, list):
                raise ConnectorError(
                    f"GET {response.url}: no list at {records_path or 'the top'} of the body; "
                    "fix settings.records_path"
                )
            where = f"{url} page {number + 1}"
            if records and records == previous:
                raise ConnectorError(
                    f"{where} repeats the previous page: the API ignores the paging "
                    f"parameters; fix settings.pagination ({settings.pagination!r})"
                )
            yield where, records
            previous = records
            if settings.pagination == "none" or not records:
                return
            if settings.pagination in ("page", "offset"):
                if len(records) < settings.page_size:
                    return
                continue
            if settings.pagination == "cursor":
                cursor = as_text(dig(body, settings.cursor_path))
                if cursor is None:
                    return
                token = f"cursor:{cursor}"
                params[settings.cursor_param] = cursor
            else:
                link = response.links.get("next", {}).get("url")
                if not link:
                    return
                next_url = str(response.url.join(link))
                params = {}  # the link carries every parameter
                token = f"link:{next_url}"
            if token in seen:
                raise ConnectorError(
                    f"{where}: the API handed back a {settings.pagination} it gave before; "
                    "the listing would never end. Check settings.pagination"
                )
            seen.add(token)
        raise ConnectorError(
            f"{url}: stopped after settings.max_pages ({settings.max_pages}) pages; raise it if "
            "the listing really is that long, or check settings.pagination"
        )

    def _records(self, since: datetime | None) -> Iterator[SourceRecord]:
        settings = self.settings
        for where, items in self._pages(settings.url, settings.records_path, since):
            for index, item in enumerate(items, 1):
                if not isinstance(item, dict):
                    self.context.report_bad_record(
                        f"{where} item {index}", "not a JSON object; fix settings.records_path"
                    )
                    continue
                record = self._reader.record(
                    f"{where} item {index}",
                    dig(item, settings.id_path),
                    dig(item, settings.modified_path),
                    item,
                )
                if record is not None:
                    yield record

    # -- the connector contract -----------------------------------------------------------------

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        """Yield the records modified inside ``window`` (asking the API from its start)."""
        for record in self._records(window.start):
            if record.modified_at in window:
                yield record

    def fetch_deleted(self, window: Window) -> Iterator[str]:
        """Yield the ids listed by ``deleted_url`` (since the window's start); none without it."""
        settings = self.settings
        if settings.deleted_url is None:
            return
        records_path = settings.deleted_records_path or settings.records_path
        id_path = settings.deleted_id_path or settings.id_path
        for _, items in self._pages(settings.deleted_url, records_path, window.start):
            for item in items:
                record_id = as_text(item if not isinstance(item, dict) else dig(item, id_path))
                if record_id is not None:
                    yield record_id

    def fetch_all_ids(self) -> Iterator[str]:
        """Yield every record's id: the full listing, for reconciliation."""
        for record in self._records(None):
            yield record.id

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        """Yield the current records of ``ids``, found by scanning the full listing."""
        wanted = set(ids)
        for record in self._records(None):
            if record.id in wanted:
                wanted.discard(record.id)
                yield record
                if not wanted:
                    return

    def to_lead(self, record: SourceRecord) -> Lead:
        """The default mapping (:func:`~naturalead_sync_custom.mapping.default_lead`)."""
        return default_lead(record)

    def check(self) -> list[str]:
        """Fetch the first page; raises :class:`ConnectorError` naming what to fix."""
        pages = self._pages(self.settings.url, self.settings.records_path, None)
        try:
            first = next(pages, None)
        finally:
            pages.close()
        if first is None or not first[1]:
            return [f"{self.settings.url} lists no records yet"]
        return []

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()
