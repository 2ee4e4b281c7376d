"""A loopback HTTP server for in-process emulators: the sandbox and the CRM emulators.

An emulator is an object with a ``handle(method, path, headers, body)`` method that returns an
:class:`HTTPAnswer` (:class:`HTTPApp`). :func:`serve` puts it on a threaded HTTP/1.1 server in a
daemon thread and returns a :class:`LoopbackServer` (a context manager; ``url`` is
``http://127.0.0.1:PORT``). An answer whose ``action`` is ``"drop"`` closes the connection
without a byte of response; one with a ``delay`` sleeps that long before writing. Request bodies
are read by ``Content-Length`` (``DELETE`` carries one); chunked bodies are refused with 411.
The default per-request logging is silenced; an exception in the emulator is logged and
answered with a 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, Protocol

__all__ = ["HTTPAnswer", "HTTPApp", "LoopbackServer", "serve"]

log = logging.getLogger(__name__)


class HTTPAnswer(NamedTuple):
    """An emulator's answer. ``action`` is ``"ok"`` (send it), ``"drop"`` (close the
    connection without answering) or a fault label kept for the emulator's own request log;
    ``delay`` is how long to wait before sending."""

    status: int
    headers: dict[str, str]
    body: bytes
    action: str = "ok"
    delay: float = 0.0


class HTTPApp(Protocol):
    """What :func:`serve` serves: one method that answers one HTTP request."""

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        """Answer one request; ``path`` carries the query string."""
        ...


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: HTTPApp) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a bad resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut every open client connection, so idle keep-alive handlers end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("loopback server: connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default request log."""

    def _answer(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._write(HTTPAnswer(411, {}, b'{"error": "Content-Length required"}'))
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._write(HTTPAnswer(400, {}, b'{"error": "Invalid Content-Length"}'))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        try:
            answer = self.server.app.handle(
                self.command, self.path, dict(self.headers.items()), body
            )
        except Exception:
            log.exception("emulator failed on %s %s", self.command, self.path)
            body = json.dumps({"error": "Internal emulator error"}).encode()
            answer = HTTPAnswer(500, {}, body)
        if answer.action == "drop":
            self.close_connection = True  # the write is committed; no answer at all
            return
        if answer.delay > 0:
            time.sleep(answer.delay)
        try:
            self._write(answer)
        except OSError:  # the client gave up waiting
            self.close_connection = True

    def _write(self, answer: HTTPAnswer) -> None:
        self.send_response(answer.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **answer.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)
        self.wfile.flush()

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _answer  # noqa: N815


class LoopbackServer:
    """A running loopback server for one emulator; ``close()`` stops it and joins its thread."""

    def __init__(self, app: HTTPApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._http = _HTTPServer((host, port), app)
        self.host = host
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"naturalead-loopback-{self.port}",
            daemon=True,
        )
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8765``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> LoopbackServer:
        """Start serving in the background thread."""
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until :meth:`close` is called (Ctrl-C interrupts the wait)."""
        while not self._closed.wait(0.5):
            pass

    def close(self) -> None:
        """Stop serving, close every connection and join the thread (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.drop_connections()
        self._http.server_close()
        if self._thread.ident is not None:
            self._thread.join()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def serve(app: HTTPApp, host: str = "127.0.0.1", port: int = 0) -> LoopbackServer:
    """Serve ``app`` on ``host:port`` (0 picks a free port); returns the started server."""
    return LoopbackServer(app, host, port).start()
