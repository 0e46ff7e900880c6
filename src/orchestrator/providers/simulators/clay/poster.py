"""Keep-alive HTTP POSTs for callback delivery."""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

_Origin = tuple[str, str, int | None]
# A reused keep-alive connection failing like this was most likely closed by
# the receiver while idle: worth one immediate retry on a fresh connection.
_STALE_CONNECTION = (
    ConnectionResetError,
    BrokenPipeError,
    http.client.BadStatusLine,
    http.client.CannotSendRequest,
)


class Poster:
    """Keep-alive HTTP POSTs over http.client, one connection per thread and origin.

    Callback delivery is the simulator's hot path; plain http.client costs about
    half of what `requests` does per call, which doubles callback throughput.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []
        self._ssl_context: ssl.SSLContext | None = None

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST and return the status; raises OSError/HTTPException on failure."""
        parts = urlsplit(url)
        origin: _Origin = (parts.scheme, parts.hostname or "", parts.port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection, reused = self._connection(origin)
        try:
            return self._roundtrip(connection, target, body, headers)
        except _STALE_CONNECTION:
            self._discard(origin)
            if not reused:
                raise
        except BaseException:
            self._discard(origin)
            raise
        connection, _ = self._connection(origin)
        try:
            return self._roundtrip(connection, target, body, headers)
        except BaseException:
            self._discard(origin)
            raise

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()

    def _roundtrip(
        self,
        connection: http.client.HTTPConnection,
        target: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> int:
        try:
            connection.request("POST", target, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read()  # drain, so the connection can be reused
        except BaseException:
            connection.close()
            raise
        return response.status

    def _connection(self, origin: _Origin) -> tuple[http.client.HTTPConnection, bool]:
        cache: dict[_Origin, http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None
        )
        if cache is None:
            cache = self._local.connections = {}
        connection = cache.get(origin)
        if connection is not None:
            return connection, True
        connection = self._open(origin)
        cache[origin] = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def _open(self, origin: _Origin) -> http.client.HTTPConnection:
        scheme, host, port = origin
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            return http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=self._ssl_context
            )
        return http.client.HTTPConnection(host, port, timeout=self._timeout)

    def _discard(self, origin: _Origin) -> None:
        cache: dict[_Origin, http.client.HTTPConnection] = getattr(self._local, "connections", {})
        connection = cache.pop(origin, None)
        if connection is not None:
            connection.close()
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)
