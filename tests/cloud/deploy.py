"""Deploying the app's containers in the stand-in, and deploying again with other secrets.

`deploy(standin)` starts what `modal deploy` brings up: the receivers (`api`), the pass
container(s), the Steps containers and the sweeper, each a process with the environment the
Modal secret gives it (`container_env`). `redeploy(standin, config)` is what a user does after
adding a webhook URL to the secret: every container is stopped (SIGTERM: each finishes the input
in hand) and started again with the new variables. The Clay simulator, PgBouncer, the database
and Modal's queue live on (Clay's lifetime counts are Clay's; inputs queued meanwhile wait).

Order of a redeploy: the workers go first (steps, pass, sweeper), so no container configured
with the old list sends after a new one lifted a hold; then the new receivers start on the same
port (SO_REUSEPORT, see `container.listening_socket`) before the old one stops, so Clay's
callbacks always find a receiver, as Modal's endpoint URL keeps answering during a deploy; then
the new workers. Each new container lifts the holds its webhooks have room for (CloudRuntime
does so at its start) and asks a pass for each batch that waited; nothing here touches them.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from cloud.config import StandInConfig, container_env

if TYPE_CHECKING:
    from cloud.harness import StandIn

WORKER_ROLES = ("steps", "pass", "sweeper")
# A graceful stop lets the input in hand finish: a paced Clay chunk may take a while.
STOP_TIMEOUT = 90.0


def _suffix(generation: int) -> str:
    return "" if generation == 0 else f"-d{generation}"


def start_container(standin: StandIn, name: str, role: str, *, port: int = 0) -> str:
    argv = [sys.executable, "-m", "cloud.container", role, "--name", name]
    argv += ["--control", standin.control.url, "--interval", str(standin.config.sweep_interval)]
    if port:
        argv += ["--port", str(port)]
    standin.processes.start(name, role, argv)
    return name


def _wait_ready(standin: StandIn, names: list[str]) -> None:
    from cloud.harness import StandInError

    missing = standin.control.wait_ready(names, timeout=90)
    if missing:
        raise StandInError(f"containers not ready: {missing}\n{standin.processes.tails()}")


def _set_env(standin: StandIn) -> None:
    assert standin.bouncer is not None
    standin.processes.env = container_env(
        standin.config,
        standin.secrets,
        standin.run_dir,
        standin.bouncer.url(standin.dbname),
        standin.clay_url,
    )
    standin.processes.env["PUBLIC_BASE_URL"] = standin.receivers_url


def _start_workers(standin: StandIn, generation: int) -> list[str]:
    cfg, tag = standin.config, _suffix(generation)
    names = [start_container(standin, f"pass-{i}{tag}", "pass") for i in range(cfg.pass_containers)]
    names += [start_container(standin, f"steps-{i}{tag}", "steps") for i in range(cfg.containers)]
    names.append(start_container(standin, f"sweeper{tag}", "sweeper"))
    return names


def deploy(standin: StandIn) -> int:
    """The first deploy: every container, ready; returns how many."""
    _set_env(standin)
    names = [start_container(standin, "receivers", "receivers", port=standin.receivers_port)]
    names += _start_workers(standin, 0)
    _wait_ready(standin, names)
    return len(names)


def redeploy(standin: StandIn, config: StandInConfig) -> list[str]:
    """Stop every container gracefully, start them again with `config`'s secrets; returns the
    new containers' names."""
    standin.generation += 1
    generation, tag = standin.generation, _suffix(standin.generation)
    started = time.monotonic()
    old_workers = [p for p in standin.processes.all if p.role in WORKER_ROLES and p.alive()]
    standin.processes.stop(old_workers, timeout=STOP_TIMEOUT)
    for process in old_workers:
        # Killed after the timeout with an input in hand: Modal runs that input again.
        retried = standin.control.container_died(process.name)
        if retried is not None:
            standin.notes.append(
                f"redeploy {generation}: {process.name} was killed running {retried.summary};"
                " retried"
            )
    standin.config = config
    _set_env(standin)
    old_receivers = [p for p in standin.processes.all if p.role == "receivers" and p.alive()]
    receivers = start_container(
        standin, f"receivers{tag}", "receivers", port=standin.receivers_port
    )
    _wait_ready(standin, [receivers])
    standin.processes.stop(old_receivers, timeout=STOP_TIMEOUT)
    names = [receivers, *_start_workers(standin, generation)]
    _wait_ready(standin, names)
    standin.say(
        f"redeploy {generation}: {len(old_workers) + len(old_receivers)} containers stopped,"
        f" {len(names)} started in {time.monotonic() - started:.1f}s with"
        f" {config.company_webhooks} company and {config.person_webhooks} person webhook(s)"
    )
    return names
