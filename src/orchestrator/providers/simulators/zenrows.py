"""A Zenrows stand-in over real HTTP: checks the API key and answers deterministic HTML
for the requested URL, echoing the js_render and premium_proxy options it was given."""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        status, body = self.server.simulator.answer(query)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, simulator: ZenrowsSimulator) -> None:
        self.simulator = simulator
        super().__init__(("127.0.0.1", 0), _Handler)


class ZenrowsSimulator:
    def __init__(
        self, api_key: str = "zenrows-test-key", failing_hosts: frozenset[str] = frozenset()
    ):
        self.api_key = api_key
        self.failing_hosts = failing_hosts
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1/"

    def start(self) -> ZenrowsSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, query: dict[str, str]) -> tuple[int, str]:
        with self._lock:
            self.requests.append({k: v for k, v in query.items() if k != "apikey"})
        if query.get("apikey") != self.api_key:
            return 401, "invalid apikey"
        target = query.get("url", "")
        host = urlsplit(target).hostname or ""
        if not host:
            return 400, "url is required"
        if host in self.failing_hosts:
            return 422, "could not get content"
        return 200, homepage_html(target, query)


def homepage_html(url: str, query: dict[str, str]) -> str:
    host = html.escape(urlsplit(url).hostname or "")
    flags = {name: query.get(name, "false") for name in ("js_render", "premium_proxy")}
    options = html.escape("; ".join(f"{k}={v}" for k, v in flags.items()))
    return (
        f"<!doctype html><html><head><title>{host}</title>"
        f'<meta name="scraped-with" content="{options}"></head>'
        f'<body><h1>Welcome to {host}</h1><a href="/customers">Customers</a></body></html>'
    )
