"""Where the HQ and Workspace databases are: configured URLs, or the embedded server."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.db.embedded import (
    HQ_DATABASE,
    WORKSPACE_DATABASE,
    EmbeddedPostgres,
    start_embedded,
)
from orchestrator.settings import Settings


class ConfigurationError(ValueError):
    """The environment names an impossible database setup."""


@dataclass(frozen=True)
class DatabaseUrls:
    hq: str
    workspace: str
    embedded: EmbeddedPostgres | None = None

    @property
    def shared(self) -> bool:
        """HQ and Workspace tables live in one database (a single Supabase project)."""
        return self.hq == self.workspace


def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    hq, workspace = settings.hq_url(), settings.workspace_url()
    if workspace and not hq:
        raise ConfigurationError(
            "WORKSPACE_DATABASE_URL is set but DATABASE_URL (the HQ database) is not; "
            "set both, or only DATABASE_URL to keep both sets of tables in one database"
        )
    if hq:
        return DatabaseUrls(hq=hq, workspace=workspace or hq)
    embedded = start_embedded(settings.enrich_home / "pgdata")
    embedded.ensure_database(HQ_DATABASE)
    embedded.ensure_database(WORKSPACE_DATABASE)
    return DatabaseUrls(
        hq=embedded.conninfo(HQ_DATABASE),
        workspace=embedded.conninfo(WORKSPACE_DATABASE),
        embedded=embedded,
    )
