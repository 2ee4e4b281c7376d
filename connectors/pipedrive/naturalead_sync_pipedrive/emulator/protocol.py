"""Pipedrive's response envelope, error answers and query-parameter parsing.

Success: ``{"success": true, "data": …, "additional_data": …}``. Error:
``{"success": false, "error": …, "error_info": "Please check developers.pipedrive.com",
"data": null, "additional_data": null}`` plus ``errorCode`` on 401 and 403. A rejected
parameter gives 400 with ``"error": "Validation failed: <param>: <reason>"`` (the exact v2
wording is not documented).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from naturalead_sync.loopback import HTTPAnswer

if TYPE_CHECKING:
    from .auth import Credential

__all__ = [
    "ERROR_INFO",
    "ApiError",
    "EmulatorOptions",
    "Request",
    "html_answer",
    "json_answer",
    "offset_page",
    "success",
]

ERROR_INFO = "Please check developers.pipedrive.com"
_JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class EmulatorOptions:
    """Switches for the points the docs leave open; each default is the likelier behaviour.

    ``strict_timestamps``: v2 ``updated_since``/``updated_until`` reject fractional seconds
    and space-separated times with 400 (reported by peers, not documented).
    ``limit_over_max``: a v2 ``limit`` above 500 is a 400 (``"error"``) or clamped (v1 lists
    always clamp). ``deleted_person_get``: ``GET /api/v2/persons/{id}`` of a soft-deleted
    person answers it with ``is_deleted: true`` or 404. ``lead_pagination``: leads'
    ``additional_data.pagination`` (nested, as peers see live) or the flat documented form.
    ``query_token``: accept ``?api_token=``. ``empty_v1_contacts``: v1 persons without a
    phone or email show ``[{"value": "", "primary": true}]``. ``recents_days``: how far back
    ``/v1/recents`` reaches. ``slow_seconds``: the delay of a scripted ``slow`` fault.
    """

    strict_timestamps: bool = True
    limit_over_max: Literal["error", "clamp"] = "error"
    deleted_person_get: Literal["is_deleted", "404"] = "is_deleted"
    lead_pagination: Literal["nested", "flat"] = "nested"
    query_token: bool = True
    empty_v1_contacts: bool = True
    recents_days: int = 30
    slow_seconds: float = 3.0


def offset_page(
    items: list[Any], start: int, limit: int, *, flat: bool = False
) -> tuple[list[Any], dict[str, Any]]:
    """One v1 offset page of ``items`` and its ``additional_data``: nested ``pagination``
    with ``next_start`` when more items follow, or (``flat``) the documented flat
    ``start``/``limit``/``more_items_in_collection``."""
    page = items[start : start + limit]
    more = start + limit < len(items)
    pagination: dict[str, Any] = {
        "start": start,
        "limit": limit,
        "more_items_in_collection": more,
    }
    if more and not flat:
        pagination["next_start"] = start + limit
    return page, (pagination if flat else {"pagination": pagination})


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> HTTPAnswer:
    """A JSON answer (UTF-8, unicode kept as is)."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return HTTPAnswer(status, {"Content-Type": _JSON, **(headers or {})}, data)


def html_answer(status: int, html: str, headers: Mapping[str, str] | None = None) -> HTTPAnswer:
    """An HTML answer (gateway pages, the Cloudflare block page)."""
    return HTTPAnswer(
        status, {"Content-Type": "text/html; charset=UTF-8", **(headers or {})}, html.encode()
    )


def success(data: Any, additional_data: Any = None, *, status: int = 200) -> HTTPAnswer:
    """The success envelope; ``additional_data`` is left out when None."""
    body: dict[str, Any] = {"success": True, "data": data}
    if additional_data is not None:
        body["additional_data"] = additional_data
    return json_answer(status, body)


class ApiError(Exception):
    """An error answer in Pipedrive's envelope; ``extra`` adds keys such as ``errorCode``."""

    def __init__(
        self, status: int, error: str, *, error_info: str = ERROR_INFO, **extra: Any
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {
            "success": False,
            "error": error,
            **extra,
            "error_info": error_info,
            "data": None,
            "additional_data": None,
        }

    def answer(self, headers: Mapping[str, str] | None = None) -> HTTPAnswer:
        """This error as an answer."""
        return json_answer(self.status, self.body, headers)

    @classmethod
    def invalid(cls, name: str, reason: str) -> ApiError:
        """A 400 for the query parameter ``name``."""
        return cls(400, f"Validation failed: {name}: {reason}")


@dataclass
class Request:
    """One API request after routing: lowercased headers, parsed query, route parameters."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    credential: Credential | None = None

    @classmethod
    def parse(
        cls, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Request:
        """A request from the raw pieces (query values keep blanks)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        return cls(method.upper(), path, parse_qs(query, keep_blank_values=True), lowered, body)

    def one(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or None when absent."""
        values = self.query.get(name)
        return values[-1] if values else None

    def integer(self, name: str, default: int | None = None, *, minimum: int = 0) -> int | None:
        """An integer parameter (strict digits, no coercion of ``"1.0"``) at least ``minimum``."""
        raw = self.one(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < minimum:
            raise ApiError.invalid(name, f"must be an integer >= {minimum}, got '{raw}'")
        return int(raw)

    def names(self, name: str) -> list[str] | None:
        """A comma list (blank items dropped), or None when absent."""
        raw = self.one(name)
        return None if raw is None else [item.strip() for item in raw.split(",") if item.strip()]

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``; the first one when the parameter is absent."""
        raw = self.one(name)
        if raw is None:
            return choices[0]
        if raw not in choices:
            raise ApiError.invalid(name, f"must be one of {', '.join(choices)}, got '{raw}'")
        return raw
