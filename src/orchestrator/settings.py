"""Process configuration, read from the environment (and a `.env` file) with pydantic-settings.

Every knob has a default that gives a working laptop setup: no database URL means the embedded
Postgres, no Clay webhook means the built-in Clay simulator.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # The `.env` file(s) this instance read (`Settings(_env_file=...)` overrides the default).
    _env_files: Any = PrivateAttr(default=None)
    _dotenv_values: dict[str, str | None] | None = PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._env_files = values.get("_env_file", self.model_config.get("env_file"))

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
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    database_pooler: Literal["auto", "transaction", "session", "none"] = Field(
        default="auto",
        description="What DATABASE_URL points at. `transaction`: a transaction pooler (Supabase"
        " port 6543, PgBouncer pool_mode=transaction): no prepared statements, no session"
        " settings. `auto`: transaction when the port is 6543, else a session connection.",
    )
    database_connection_budget: int | None = Field(
        default=None,
        ge=2,
        description="Deployed mode: the most connections all containers together may hold; each"
        " container's pool gets its share (see docs/deploy.md for the figure per Supabase plan).",
    )

    # Clay: an empty webhook URL selects the built-in simulator. A workflow's URL variable is
    # named by its registry row and may list several webhook sources (comma or space separated),
    # used in order; `<NAME without _URL>_AUTH_TOKEN` lists their tokens in the same order.
    clay_company_webhook_url: SecretStr | None = None
    clay_company_webhook_auth_token: SecretStr | None = None
    clay_person_webhook_url: SecretStr | None = None
    clay_person_webhook_auth_token: SecretStr | None = None
    clay_webhook_auth_token: SecretStr | None = Field(
        default=None,
        description="Fallback token for a webhook whose own *_AUTH_TOKEN variable is unset.",
    )
    clay_rate_per_second: float = Field(
        default=10.0,
        gt=0,
        description="Rows per second a Clay workspace accepts, all webhooks (inf: no pacing).",
    )
    clay_rate_burst: int = Field(default=20, ge=1, description="Rows a workspace accepts at once.")
    clay_workspace: str = Field(
        default="default",
        min_length=1,
        description="Name of the Clay workspace the webhooks live in: every process sending to"
        " one workspace shares one rate limit, kept in the database.",
    )
    clay_webhook_submission_limit: int = Field(
        default=50_000, ge=1, description="Submissions a Clay webhook source accepts in its life."
    )
    clay_max_payload_bytes: int = Field(
        default=100_000, ge=1, description="Largest row Clay accepts; larger rows FAIL unsent."
    )
    clay_max_attempts: int = Field(default=5, ge=1)
    zenrows_api_key: SecretStr | None = None
    zenrows_api_url: str | None = None
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
    modal_proxy_auth: bool = Field(
        default=False,
        description="Deployed mode: the `api` endpoint also requires Modal's proxy auth"
        " (Modal-Key / Modal-Secret headers). The receivers never do: Clay cannot send them.",
    )
    sweep_interval_seconds: float = Field(
        default=10.0, description="How often the local runtime looks for work past its lease."
    )
    pass_coalesce_seconds: float = Field(
        default=1.0, description="Deployed mode: pass requests within this window share one pass."
    )
    dispatch_workers: int = 4
    # The V2 dossier API (/api/columnline/).
    columnline_idempotency_hours: float = Field(
        default=168.0,
        gt=0,
        le=24 * 3650,
        description="How long the answer to a write sent with an Idempotency-Key is kept: the same"
        " key answers it again until then.",
    )
    columnline_stale_after_minutes: float = Field(
        default=60.0,
        gt=0,
        le=60 * 24 * 3650,
        description="A running dossier run with no write for this long is shown as stale.",
    )
    interrupt_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="After Ctrl-C or SIGTERM: how long a run keeps receiving callbacks before"
        " it exits (a second Ctrl-C exits at once).",
    )

    @field_validator("callback_signing_key")
    @classmethod
    def _signing_key_is_hex(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                key = bytes.fromhex(value.get_secret_value())
            except ValueError:
                raise ValueError("must be hexadecimal (openssl rand -hex 32)") from None
            if len(key) < 16:
                raise ValueError("must be at least 16 bytes: 32 hex digits (openssl rand -hex 32)")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://<workspace>--...modal.run")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _pool_sizes_fit(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            low, high = self.pool_min_size, self.pool_max_size
            raise ValueError(f"POOL_MIN_SIZE ({low}) is above POOL_MAX_SIZE ({high})")
        return self

    def lookup(self, name: str) -> str | None:
        """A variable named at run time (a registry row names its webhook's), from the
        environment or else the `.env` file, as pydantic-settings reads declared fields."""
        declared = name.lower()
        if declared in type(self).model_fields:
            value = getattr(self, declared)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value not in (None, ""):
                return str(value)
        found = os.environ.get(name)
        if found is None:
            found = self._dotenv().get(name)
        return found or None

    def _dotenv(self) -> dict[str, str | None]:
        if self._dotenv_values is None:
            files = self._env_files
            paths = [files] if isinstance(files, str | Path) else list(files or ())
            values: dict[str, str | None] = {}
            for path in paths:
                if Path(path).is_file():
                    values.update(dotenv_values(path))
            self._dotenv_values = values
        return self._dotenv_values

    def hq_url(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    def workspace_url(self) -> str | None:
        if self.workspace_database_url:
            return self.workspace_database_url.get_secret_value()
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
