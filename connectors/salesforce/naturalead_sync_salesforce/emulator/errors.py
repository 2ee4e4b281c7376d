"""The REST error shape and the JSON answers every emulator module builds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from naturalead_sync.loopback import HTTPAnswer

__all__ = ["APIError", "json_answer"]


class APIError(Exception):
    """An error answered as ``[{"message": ..., "errorCode": ...}]`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def answer(self, headers: Mapping[str, str] | None = None) -> HTTPAnswer:
        """This error as an HTTP answer."""
        body = [{"message": self.message, "errorCode": self.code}]
        return json_answer(self.status, body, headers)


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> HTTPAnswer:
    """A JSON answer (``body`` None gives an empty body, as a 204 needs)."""
    data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    return HTTPAnswer(
        status, {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}, data
    )
