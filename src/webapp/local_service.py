"""The whole service in one process: what `enrich run` and the end-to-end tests use.

The local runtime (database, dispatcher, orchestrator passes), the HTTP API with the receivers
on a loopback port, and Clay: the real one when webhooks are configured, else the built-in
simulator calling our receivers back over real HTTP.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

from database.pool import Databases
from orchestrator.clay_gateway import ClayGateway
from orchestrator.runtime import LocalRuntime
from providers.clay_simulator import ClaySimulator, SimulatorConfig
from settings import Settings, get_settings
from webapp.app import create_app

log = logging.getLogger(__name__)


def clay_workflows(dbs: Databases) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT workflow_slug, webhook_url_secret_name FROM db_driven_enrichment_workflows"
            " WHERE provider = 'clay' AND is_active"
        ).fetchall()
    return [dict(r) for r in rows]


def real_clay_configured(dbs: Databases) -> bool:
    return any(os.environ.get(w["webhook_url_secret_name"] or "") for w in clay_workflows(dbs))


def setup_clay(
    runtime: LocalRuntime, callback_base_url: str, simulator: SimulatorConfig | None = None
) -> ClaySimulator | None:
    """Give the runtime a Clay gateway; start and return the simulator unless Clay is real."""
    settings = runtime.settings
    token = settings.clay_webhook_auth_token
    if simulator is None and real_clay_configured(runtime.dbs):
        base = settings.public_base_url or callback_base_url
        runtime.ctx.providers["clay"] = ClayGateway(
            callback_base_url=base,
            auth_token=token.get_secret_value() if token else None,
            rate_per_second=settings.clay_rate_per_second,
            max_attempts=settings.clay_max_attempts,
        )
        return None
    config = simulator or SimulatorConfig(
        rate_limit_per_second=settings.clay_simulator_rate_per_second,
        callback_delay_seconds=settings.clay_simulator_delay_seconds,
    )
    config = dataclasses.replace(
        config,
        auth_token=config.auth_token or "simulator-webhook-token",
        callback_secret=runtime.receiver_config.callback_secret,
        callback_secret_header=runtime.receiver_config.secret_header,
    )
    sim = ClaySimulator(config).start()
    runtime.ctx.providers["clay"] = ClayGateway(
        callback_base_url=callback_base_url,
        auth_token=config.auth_token,
        # The simulator enforces its own limit (if any) with 429s, which the client honours.
        rate_per_second=float("inf"),
        max_attempts=settings.clay_max_attempts,
        overrides={
            w["workflow_slug"]: sim.webhook_url(w["workflow_slug"])
            for w in clay_workflows(runtime.dbs)
        },
    )
    return sim


class ReceiverServer:
    """An ASGI app on a free loopback port, served by uvicorn in a background thread.

    The port is bound at construction, so the URL is known before the app is built.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def serve(self, app: Any) -> ReceiverServer:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._socket.close()


def runtime_app(runtime: LocalRuntime) -> Any:
    app = create_app(lambda: runtime)
    app.state.runtime = runtime
    return app


class LocalService:
    def __init__(
        self,
        settings: Settings | None = None,
        dbs: Databases | None = None,
        *,
        simulator: SimulatorConfig | None = None,
        **runtime_options: Any,
    ) -> None:
        self.runtime = LocalRuntime(settings or get_settings(), dbs, **runtime_options)
        self.server = ReceiverServer()
        self._simulator_config = simulator
        self.simulator: ClaySimulator | None = None

    @property
    def dbs(self) -> Databases:
        return self.runtime.dbs

    def __enter__(self) -> LocalService:
        self.server.serve(runtime_app(self.runtime))
        self.simulator = setup_clay(self.runtime, self.server.url, self._simulator_config)
        self.runtime.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
        gateway = self.runtime.ctx.providers.get("clay")
        if isinstance(gateway, ClayGateway):
            gateway.close()
        self.runtime.close()
        self.server.stop()
