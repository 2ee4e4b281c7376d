"""An httpx transport that answers from a :class:`Sandbox` in-process, faults included.

A dropped answer raises :class:`httpx.RemoteProtocolError` (the write was committed, as a
connection lost after the server's commit would leave it); a slow answer sleeps, and when it
is slower than the request's read timeout, sleeps that timeout and raises
:class:`httpx.ReadTimeout`, as a real socket would.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from .app import Sandbox

__all__ = ["SandboxTransport"]


class SandboxTransport(httpx.BaseTransport):
    """Route an ``httpx.Client``'s requests to ``sandbox`` without a socket.

    With ``owns_sandbox`` the transport closes the sandbox when the client closes.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        owns_sandbox: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sandbox = sandbox
        self._owns_sandbox = owns_sandbox
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the sandbox, acting out a drop or a delay."""
        body = request.read()
        answer = self.sandbox.handle(
            request.method, request.url.raw_path.decode("ascii"), dict(request.headers), body
        )
        if answer.action == "drop":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if answer.delay > 0:
            delay = answer.delay
            timeouts = request.extensions.get("timeout", {})
            read_timeout = timeouts.get("read") if isinstance(timeouts, dict) else None
            if read_timeout is not None and delay >= read_timeout:
                self._sleep(read_timeout)
                raise httpx.ReadTimeout("timed out", request=request)
            self._sleep(delay)
        return httpx.Response(
            answer.status,
            headers=list(answer.headers.items()),
            content=answer.body,
            request=request,
        )

    def close(self) -> None:
        """Close the sandbox too when this transport owns it."""
        if self._owns_sandbox:
            self.sandbox.close()
