"""What a stand-in run is set up with: its options, its secrets, and each process's environment.

Every container gets the deployment's secrets as environment variables (`worker.py` reads them
from Modal secrets): DATABASE_URL at PgBouncer with DATABASE_POOLER=transaction, the Clay
webhook URLs (a comma-separated list when a workflow has several) and their tokens, the
callback secret and signing key, the API key, PUBLIC_BASE_URL (the receivers process) and
Clay's workspace limit. Nothing the settings read is inherited from the caller's shell, and
each process runs in the run's folder, so no `.env` is read either.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
SRC_DIR = TESTS_DIR.parent / "src"
SIMULATOR_MODULE = "orchestrator.providers.simulators.clay"
# Settings read from the environment: never inherited from the caller's shell.
OWN_PREFIXES = ("CLAY_", "DATABASE_", "WORKSPACE_DATABASE", "CALLBACK_", "POOL_", "ZENROWS_")
OWN_NAMES = ("API_KEY", "PUBLIC_BASE_URL", "ENRICH_HOME", "PASS_COALESCE_SECONDS", "PYTHONPATH")


@dataclass(frozen=True)
class StandInConfig:
    rows: int = 300
    companies: int = 50
    seed: int = 0
    containers: int = 6  # Steps containers
    pass_containers: int = 1
    # Clay's workspace limit: the simulator enforces it, the containers are configured with it.
    clay_rate: float = 40.0
    clay_burst: int = 20
    company_webhooks: int = 1
    person_webhooks: int = 1
    lifetime_limit: int | None = None  # per webhook; None: the simulator's Clay default
    clay_timeout_seconds: int | None = 20  # registry timeout of the Clay workflows; None: keep
    sweep_interval: float = 5.0
    callback_delay: float = 0.2
    callback_jitter: float = 0.5
    max_client_conn: int = 200  # Supabase's smallest pooler: 200 clients, 15 per pool
    default_pool_size: int = 15
    pool_max_size: int | None = None  # POOL_MAX_SIZE of each container; None: the default
    connection_budget: int | None = None  # DATABASE_CONNECTION_BUDGET; None: unset
    batch_timeout: float = 300.0
    retry_delay: float = 1.0
    respawn: bool = True
    # Another source tree for the code under test (containers, migrations, verify), e.g. an
    # export of the last commit for a before/after comparison; the simulator stays this tree's.
    src: Path | None = None
    extra_env: tuple[tuple[str, str], ...] = ()


@dataclass
class Secrets:
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    callback_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    signing_key: str = field(default_factory=lambda: secrets.token_hex(32))
    api_key: str = field(default_factory=lambda: secrets.token_hex(16))


def base_env(config: StandInConfig, run_dir: Path) -> dict[str, str]:
    """The caller's environment minus our settings, with the code under test importable."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES) and k not in OWN_NAMES
    }
    env["PYTHONPATH"] = os.pathsep.join([str(config.src or SRC_DIR), str(TESTS_DIR)])
    env["PYTHONUNBUFFERED"] = "1"
    env["ENRICH_HOME"] = str(run_dir / "enrich-home")
    return env


def simulator_env(config: StandInConfig, run_dir: Path) -> dict[str, str]:
    """The simulator stands for Clay, not for the code under test: always this tree's."""
    return {**base_env(config, run_dir), "PYTHONPATH": str(SRC_DIR)}


def webhook_urls(clay_url: str, kind: str, count: int) -> list[str]:
    return [f"{clay_url}/webhooks/{kind}-{i}" for i in range(1, count + 1)]


def container_env(
    config: StandInConfig, keys: Secrets, run_dir: Path, database_url: str, clay_url: str
) -> dict[str, str]:
    company = webhook_urls(clay_url, "company", config.company_webhooks)
    person = webhook_urls(clay_url, "person", config.person_webhooks)
    env = {
        **base_env(config, run_dir),
        "DATABASE_URL": database_url,
        "DATABASE_POOLER": "transaction",
        "CLAY_COMPANY_WEBHOOK_URL": ",".join(company),
        "CLAY_PERSON_WEBHOOK_URL": ",".join(person),
        "CLAY_COMPANY_WEBHOOK_AUTH_TOKEN": ",".join([keys.auth_token] * len(company)),
        "CLAY_PERSON_WEBHOOK_AUTH_TOKEN": ",".join([keys.auth_token] * len(person)),
        "CLAY_WEBHOOK_AUTH_TOKEN": keys.auth_token,
        "CLAY_RATE_PER_SECOND": str(config.clay_rate),
        "CLAY_RATE_BURST": str(config.clay_burst),
        "CALLBACK_SECRET": keys.callback_secret,
        "CALLBACK_SIGNING_KEY": keys.signing_key,
        "API_KEY": keys.api_key,
    }
    if config.lifetime_limit is not None:
        env["CLAY_WEBHOOK_SUBMISSION_LIMIT"] = str(config.lifetime_limit)
    if config.pool_max_size is not None:
        env["POOL_MAX_SIZE"] = str(config.pool_max_size)
    if config.connection_budget is not None:
        env["DATABASE_CONNECTION_BUDGET"] = str(config.connection_budget)
    env.update(dict(config.extra_env))
    return env


def simulator_argv(
    config: StandInConfig, keys: Secrets, run_dir: Path
) -> tuple[list[str], list[str]]:
    """The simulator's command line (Clay's limits at the configured workspace rate), and a
    note for each limit this simulator has no option for (it is then not enforced)."""
    wanted: dict[str, str | None] = {
        "--workspace-rate": str(config.clay_rate),
        "--workspace-burst": str(config.clay_burst),
        "--max-payload-bytes": "100000",
        "--lifetime-limit": None if config.lifetime_limit is None else str(config.lifetime_limit),
        "--stats-file": str(run_dir / "clay-stats.json"),
        "--clay-limits": "",  # a flag: Clay's own values for any limit not given above
    }
    help_text = subprocess.run(
        [sys.executable, "-m", SIMULATOR_MODULE, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=simulator_env(config, run_dir),
    ).stdout
    known = set(re.findall(r"--[a-z][a-z-]+", help_text))
    argv = [sys.executable, "-m", SIMULATOR_MODULE, "--port", "0"]
    argv += ["--auth-token", keys.auth_token, "--callback-secret", keys.callback_secret]
    argv += ["--delay", str(config.callback_delay), "--jitter", str(config.callback_jitter)]
    notes = []
    for flag, value in wanted.items():
        if value is None:
            continue
        if flag not in known:
            notes.append(f"the Clay simulator has no {flag}: not enforced")
            continue
        argv += [flag] if value == "" else [flag, value]
    return argv, notes
