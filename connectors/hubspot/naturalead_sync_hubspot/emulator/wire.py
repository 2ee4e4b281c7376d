"""HubSpot's wire formats as the emulator speaks them: error bodies, requests, answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from naturalead_sync.loopback import HTTPAnswer

__all__ = [
    "AUTH_MESSAGE",
    "CONTENT_TYPE",
    "ApiError",
    "Query",
    "Reply",
    "Request",
    "answer",
    "bad_request",
    "not_found",
]

CONTENT_TYPE = "application/json;charset=utf-8"
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


class ApiError(Exception):
    """An error answer: HubSpot's ``Error`` body (``status``, ``message``, ``correlationId``,
    ``category`` and the optional ``subCategory``, ``context``, ``errors``, ``links``).
    ``fields`` replaces the body outright (429 and OAuth errors have their own shapes)."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        fields: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self._fields = fields
        self._body: dict[str, Any] = {"status": "error", "message": message, "category": category}
        self._body.update({key: value for key, value in extra.items() if value is not None})

    def body(self, correlation_id: str) -> dict[str, Any]:
        """The JSON body, carrying ``correlation_id``."""
        if self._fields is not None:
            return {**self._fields, "correlationId": correlation_id}
        return {**self._body, "correlationId": correlation_id}


def bad_request(message: str, **extra: Any) -> ApiError:
    """A 400 ``VALIDATION_ERROR``."""
    return ApiError(400, "VALIDATION_ERROR", message, **extra)


def not_found(message: str = "resource not found") -> ApiError:
    """A 404 ``OBJECT_NOT_FOUND``."""
    return ApiError(404, "OBJECT_NOT_FOUND", message)


class Query:
    """A query string: repeated and comma-joined list parameters, case-insensitive flags."""

    def __init__(self, query: str) -> None:
        self.pairs = parse_qsl(query, keep_blank_values=True)

    def last(self, name: str) -> str | None:
        """The last value given for ``name``."""
        values = [value for key, value in self.pairs if key == name]
        return values[-1] if values else None

    def names(self, name: str) -> list[str] | None:
        """Every value of a list parameter (repeated, comma-joined or both); None if absent."""
        values = [value for key, value in self.pairs if key == name]
        if not values:
            return None
        return [part.strip() for value in values for part in value.split(",") if part.strip()]

    def flag(self, name: str) -> bool:
        """A boolean parameter (``true``/``false`` in any case; absent is false)."""
        value = self.last(name)
        if value is None or value.lower() == "false":
            return False
        if value.lower() == "true":
            return True
        raise bad_request(f"{name} must be true or false, got {value!r}")

    def number(self, name: str, default: int) -> int:
        """A positive integer parameter."""
        value = self.last(name)
        if value is None:
            return default
        if not value.isdigit() or int(value) < 1:
            raise bad_request(f"{name} must be a positive integer, got {value!r}")
        return int(value)

    def replaced(self, name: str, value: str) -> str:
        """The query string with ``name`` set to ``value`` (other parameters kept in order)."""
        pairs = [(key, old) for key, old in self.pairs if key != name]
        return urlencode([*pairs, (name, value)])


@dataclass
class Request:
    """One API request after routing: what the endpoint handlers read."""

    method: str
    path: str  # without the query string
    query: Query
    body: bytes
    base_url: str  # scheme and host the client used, for absolute ``paging.next.link``

    def json(self) -> Any:
        """The JSON body (an empty body reads as ``{}``); 400 when it is not JSON."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise bad_request(f"Invalid input JSON: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        payload = self.json()
        if not isinstance(payload, dict):
            raise bad_request("Invalid input JSON: expected an object")
        return payload


@dataclass
class Reply:
    """A handler's answer: status, JSON body (None: no body) and records it returned."""

    status: int
    body: Any = None
    records: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def answer(status: int, body: Any, headers: dict[str, str]) -> HTTPAnswer:
    """An HTTP answer with HubSpot's content type; ``body`` None sends no body."""
    data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    return HTTPAnswer(status, {"Content-Type": CONTENT_TYPE, **headers}, data)
