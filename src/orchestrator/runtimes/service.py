"""The whole service in one process: what `enrich run` and the end-to-end tests use.

The local runtime (database, dispatcher, orchestrator passes), the HTTP API with the receivers
on a loopback port, and Clay: the real one when webhooks are configured, else the built-in
simulator calling our receivers back over real HTTP.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import ClaySimulator, SimulatorConfig
from orchestrator.runtimes.local import LocalRuntime
from orchestrator.runtimes.providers import Providers, lift_holds
from orchestrator.runtimes.simulated import setup_providers
from orchestrator.settings import Settings, get_settings
from orchestrator.web.app import create_app

log = logging.getLogger(__name__)


def start_providers(
    runtime: LocalRuntime, callback_base_url: str, clay: SimulatorConfig | None = None
) -> Providers:
    """Real providers where configured, simulators otherwise; plugged into the runtime."""
    config = runtime.receiver_config
    providers = setup_providers(
        runtime.dbs,
        runtime.settings,
        callback_base_url,
        (config.secret_header, config.callback_secret or ""),
        clay_simulator=clay,
    )
    runtime.ctx.providers.update(providers.gateways)
    # Configured with a webhook that has room (an edited .env): held workflows send again.
    lift_holds(runtime.dbs, providers.gateways)
    return providers


def targets_line(providers: Providers, dbs: Databases) -> str:
    """Where calls and rows go: `clay=simulator, ...; database=embedded`."""
    names = ", ".join(f"{name}={target}" for name, target in sorted(providers.targets.items()))
    return f"targets: {names}; database={dbs.urls.describe()}"


class ReceiverServer:
    """An ASGI app on a free loopback port, served by uvicorn in a background thread.

    The port is bound at construction, so the URL is known before the app is built.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        # Listening now: a request sent before uvicorn's loop runs waits in the backlog
        # instead of being refused.
        self._socket.listen(2048)
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
        self.providers = Providers()

    @property
    def simulator(self) -> ClaySimulator | None:
        """The Clay simulator, when Clay is simulated."""
        sim: ClaySimulator | None = self.providers.simulators.get("clay")
        return sim

    @property
    def dbs(self) -> Databases:
        return self.runtime.dbs

    def targets_line(self) -> str:
        return targets_line(self.providers, self.dbs)

    def __enter__(self) -> LocalService:
        self.server.serve(runtime_app(self.runtime))
        self.providers = start_providers(self.runtime, self.server.url, self._simulator_config)
        self.runtime.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wind_down(self, grace: float) -> None:
        """Stop claiming and sending, and keep receiving callbacks for up to `grace` seconds,
        or until nothing can still arrive (only simulators, none with a callback pending, and
        no step call running)."""
        self.runtime.stop_claiming()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self._quiet():
            time.sleep(0.1)

    def _quiet(self) -> bool:
        simulated_only = set(self.providers.simulators) >= set(self.providers.gateways)
        pending = sum(
            sim.pending_callbacks
            for sim in self.providers.simulators.values()
            if hasattr(sim, "pending_callbacks")
        )
        return simulated_only and pending == 0 and self.runtime.dispatcher.idle

    def close(self) -> None:
        # Requests first: a callback must not reach a runtime whose writer is closed.
        self.server.stop()
        self.runtime.close()
        self.providers.close()
