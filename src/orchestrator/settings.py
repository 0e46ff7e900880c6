"""Process configuration, read from the environment (and a `.env` file) with pydantic-settings.

Every knob has a default that gives a working laptop setup: no database URL means the embedded
Postgres, no Clay webhook means the built-in Clay simulator.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, description="HQ database: orchestration, registry, logs, results."
    )
    workspace_database_url: SecretStr | None = Field(
        default=None, description="Workspace database: destination tables of enrichment steps."
    )
    enrich_home: Path = Field(
        default=Path(".enrich"),
        description="Local state: the embedded Postgres data directory lives here.",
    )
    pool_min_size: int = 1
    pool_max_size: int = 10

    # Clay: an empty webhook URL selects the built-in simulator.
    clay_company_webhook_url: SecretStr | None = None
    clay_person_webhook_url: SecretStr | None = None
    clay_webhook_auth_token: SecretStr | None = None
    clay_rate_per_second: float = 10.0
    clay_max_attempts: int = 5
    callback_secret: SecretStr | None = Field(
        default=None, description="Shared secret Clay's HTTP-API column sends back in a header."
    )
    callback_signing_key: SecretStr | None = Field(
        default=None,
        description="Hex key signing per-dispatch callback tokens; local runs keep one on disk.",
    )
    clay_simulator_rate_per_second: float | None = None
    clay_simulator_delay_seconds: float = 0.0
    callback_secret_header: str = "x-callback-secret"  # noqa: S105 (a header name)
    public_base_url: str | None = Field(
        default=None, description="Base URL Clay calls back, e.g. the deployed app's URL."
    )

    api_key: SecretStr | None = None
    sweep_interval_seconds: float = Field(
        default=10.0, description="How often the local runtime looks for work past its lease."
    )
    pass_coalesce_seconds: float = Field(
        default=1.0, description="Deployed mode: pass requests within this window share one pass."
    )
    dispatch_workers: int = 4
    interrupt_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="After Ctrl-C or SIGTERM: how long a run keeps receiving callbacks before"
        " it exits (a second Ctrl-C exits at once).",
    )

    def hq_url(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    def workspace_url(self) -> str | None:
        if self.workspace_database_url:
            return self.workspace_database_url.get_secret_value()
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
