"""Where the HQ and Workspace databases are: configured URLs, or the embedded server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from psycopg.conninfo import conninfo_to_dict

from orchestrator.db.embedded import (
    HQ_DATABASE,
    WORKSPACE_DATABASE,
    EmbeddedPostgres,
    start_embedded,
)
from orchestrator.settings import Settings


class ConfigurationError(ValueError):
    """The environment names an impossible database setup."""


# Supabase's transaction pooler listens on 6543; its session pooler and direct
# connections on 5432.
TRANSACTION_POOLER_PORT = 6543

Pooler = Literal["transaction", "session", "none"]


def pooler_of(url: str, setting: str = "auto") -> Pooler:
    """What a URL points at: `setting` when explicit, else a transaction pooler on port 6543."""
    if setting in ("transaction", "session", "none"):
        return setting  # type: ignore[return-value]
    return "transaction" if _port(url) == TRANSACTION_POOLER_PORT else "none"


def _port(url: str) -> int | None:
    try:
        port = conninfo_to_dict(url).get("port")
        return int(str(port).split(",")[0]) if port else None
    except (ValueError, TypeError):
        return None


def describe_url(url: str) -> str:
    """host:port/dbname of a URL, never its password."""
    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "(unparsable database URL)"
    host = str(params.get("host") or "localhost")
    if host.startswith("/"):
        host = f"socket {host}"
    port = params.get("port") or 5432
    return f"{host}:{port}/{params.get('dbname') or ''}"


@dataclass(frozen=True)
class DatabaseUrls:
    hq: str
    workspace: str
    embedded: EmbeddedPostgres | None = None
    pooler: Pooler = "none"
    workspace_pooler: Pooler = "none"

    @property
    def shared(self) -> bool:
        """HQ and Workspace tables live in one database (a single Supabase project)."""
        return self.hq == self.workspace

    def describe(self) -> str:
        """Where the databases are, for the one line `enrich run` prints; no secrets."""
        if self.embedded is not None:
            return "embedded"
        where = describe_url(self.hq)
        if not self.shared:
            where += f" + workspace {describe_url(self.workspace)}"
        modes = {self.pooler, self.workspace_pooler} if not self.shared else {self.pooler}
        labels = {"transaction": "transaction pooler", "session": "session pooler"}
        return f"{where} ({' + '.join(sorted(labels.get(m, 'direct') for m in modes))})"


def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    hq, workspace = settings.hq_url(), settings.workspace_url()
    if workspace and not hq:
        raise ConfigurationError(
            "WORKSPACE_DATABASE_URL is set but DATABASE_URL (the HQ database) is not; "
            "set both, or only DATABASE_URL to keep both sets of tables in one database"
        )
    if hq:
        # DATABASE_POOLER names what DATABASE_URL points at; the Workspace URL, when it is a
        # second one, is told by its port.
        pooler = pooler_of(hq, settings.database_pooler)
        workspace_pooler = pooler_of(workspace, "auto") if workspace else pooler
        return DatabaseUrls(hq, workspace or hq, pooler=pooler, workspace_pooler=workspace_pooler)
    embedded = start_embedded(settings.enrich_home / "pgdata")
    embedded.ensure_database(HQ_DATABASE)
    embedded.ensure_database(WORKSPACE_DATABASE)
    return DatabaseUrls(
        hq=embedded.conninfo(HQ_DATABASE),
        workspace=embedded.conninfo(WORKSPACE_DATABASE),
        embedded=embedded,
    )


def require_session(urls: DatabaseUrls) -> DatabaseUrls:
    """The URLs, if migrations can run through them: they hold a session-level lock, which a
    transaction pooler cannot keep."""
    for name, url, pooler in (
        ("DATABASE_URL", urls.hq, urls.pooler),
        ("WORKSPACE_DATABASE_URL", urls.workspace, urls.workspace_pooler),
    ):
        if pooler == "transaction":
            raise ConfigurationError(
                f"{name} points at a transaction pooler ({describe_url(url)}: port 6543, or"
                " DATABASE_POOLER=transaction), which cannot hold the lock migrations take;"
                " migrate through the session pooler or the direct connection (port 5432),"
                f" e.g. {name}='...:5432/postgres' DATABASE_POOLER=auto enrich db migrate"
            )
    return urls
