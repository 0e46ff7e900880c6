"""The HTTP front: a threading server whose handler hands webhook POSTs to the simulator."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from orchestrator.providers.simulators.clay.config import ABSOLUTE_MAX_BODY_BYTES
from orchestrator.providers.simulators.clay.records import CallbackJob, Reply

logger = logging.getLogger(__name__)

AUTH_HEADER = "x-clay-webhook-auth"
# Over ABSOLUTE_MAX_BODY_BYTES a body is discarded unread, in chunks, so the sender
# still gets its 413 instead of a reset; over this much the connection is just closed.
_MAX_DRAIN_BYTES = 8 * ABSOLUTE_MAX_BODY_BYTES
_DRAIN_CHUNK = 64 * 1024


class SubmissionBackend(Protocol):
    """What the handler needs from the simulator; narrow, so this module never imports it."""

    def _track(self, connection: socket.socket, *, add: bool) -> None: ...

    def _handle_submission(self, path: str, auth: str | None, body: bytes) -> Reply: ...

    def _handle_oversized(self, length: int) -> Reply: ...

    def stats(self) -> dict[str, Any]: ...

    def _dispatch(self, jobs: Sequence[tuple[CallbackJob, float]]) -> None: ...


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default of 5 drops connects under bursts

    def __init__(self, address: tuple[str, int], simulator: SubmissionBackend) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: senders reuse connections
    disable_nagle_algorithm = True  # headers and body are separate writes
    timeout = 60  # idle keep-alive connections are closed after this
    server: WebhookServer

    def setup(self) -> None:
        super().setup()
        self.server.simulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.simulator._track(self.connection, add=False)

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        auth = self.headers.get(AUTH_HEADER)
        reply = self.server.simulator._handle_submission(self.path, auth, body)
        try:
            self._send_json(reply.status, reply.payload, reply.headers)
        finally:
            # Enqueue only after the 200 is written, so callbacks do not
            # systematically overtake the response.
            self.server.simulator._dispatch(reply.jobs)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/health", "/healthz"):
            self._send_json(200, {"status": "ok"})
        elif path == "/stats":
            self._send_json(200, self.server.simulator.stats())
        else:
            self._send_json(404, {"error": "not found"})

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_json(400, {"error": "bad Content-Length"})
            return None
        if length > ABSOLUTE_MAX_BODY_BYTES:
            self.close_connection = True
            if length <= _MAX_DRAIN_BYTES:
                self._discard(length)
            reply = self.server.simulator._handle_oversized(length)
            self._send_json(reply.status, reply.payload, reply.headers)
            return None
        return self.rfile.read(length) if length else b""

    def _discard(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, _DRAIN_CHUNK))
            if not chunk:
                return
            left -= len(chunk)

    def _send_json(
        self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("clay-sim %s " + format, self.address_string(), *args)
