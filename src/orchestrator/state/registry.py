"""The workflow registry (`db_driven_enrichment_workflows`) and plays (`play_steps`).

Configuration names tables and columns that end up in SQL, so it is validated here as well as
by the table's CHECK constraints: a bad row is refused with a message naming the field.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query

DEFAULT_PLAY = "apollo-lead-enrichment"

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")]
Provider = Literal["internal", "clay", "zenrows", "n8n"]
EntityType = Literal["item", "company", "person"]


class RegistryError(ValueError):
    pass


class WorkflowConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    workflow_slug: Slug
    title: str
    overall_step_number: int
    provider: Provider
    entity_type: EntityType = "item"
    destination_db: Literal["hq", "workspace"] = "hq"
    destination_table_name: Identifier | None = None
    destination_field_mappings: dict[str, Identifier] = Field(default_factory=dict)
    webhook_url_secret_name: str | None = None
    # Prices, as Clay bills: Actions of a run (at acceptance), the callback column's Action
    # and data credits per data type returned (at the answer).
    actions_per_run: Decimal = Field(default=Decimal(0), ge=0, le=1000, allow_inf_nan=False)
    callback_actions: Decimal = Field(default=Decimal(0), ge=0, le=1000, allow_inf_nan=False)
    data_credits: dict[str, Annotated[Decimal, Field(ge=0, le=10000, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    reuse_window_days: int | None = Field(default=None, ge=1, le=3650)
    timeout_seconds: int = Field(default=900, gt=0)
    max_attempts: int = Field(default=3, gt=0)
    provider_params: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True

    @property
    def call_ceiling(self) -> Decimal:
        """The most one call can cost: its Actions and every priced data type found."""
        return (
            self.actions_per_run
            + self.callback_actions
            + sum(self.data_credits.values(), Decimal(0))
        )

    @property
    def reuse_days(self) -> int | None:
        """The reuse window, when results can be reused: those of an entity workflow whose
        results stay in its entity's result table. A workflow that maps them to a destination
        table of its own is always called (a reused entity would have no row there)."""
        kept = self.destination_table_name in (
            None,
            "company_enrichment_results",
            "person_enrichment_results",
        )
        return self.reuse_window_days if kept and self.entity_type != "item" else None

    @property
    def priced(self) -> bool:
        return self.call_ceiling > 0


def parse_workflow(row: dict[str, Any]) -> WorkflowConfig:
    try:
        return WorkflowConfig.model_validate(row)
    except ValidationError as exc:
        slug = row.get("workflow_slug", "?")
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise RegistryError(f"workflow {slug!r} has invalid configuration: {problems}") from None


@dataclass(frozen=True)
class PlayStep:
    step_number: int
    workflow: WorkflowConfig

    @property
    def slug(self) -> str:
        return self.workflow.workflow_slug


@dataclass(frozen=True)
class Play:
    name: str
    steps: tuple[PlayStep, ...]

    @property
    def first(self) -> PlayStep:
        return self.steps[0]

    def step(self, slug: str) -> PlayStep:
        for step in self.steps:
            if step.slug == slug:
                return step
        raise RegistryError(f"play {self.name!r} has no step {slug!r}")


def load_play(conn: Conn, play_name: str) -> Play:
    rows = conn.execute(query("load_play"), {"play_name": play_name}).fetchall()
    if not rows:
        raise RegistryError(f"unknown play {play_name!r}: it has no rows in play_steps")
    steps = tuple(PlayStep(int(r["step_number"]), parse_workflow(r)) for r in rows)
    inactive = [s.slug for s in steps if not s.workflow.is_active]
    if inactive:
        raise RegistryError(f"play {play_name!r} uses inactive workflow(s): {', '.join(inactive)}")
    return Play(play_name, steps)


def load_workflow(conn: Conn, slug: str) -> WorkflowConfig:
    row = conn.execute(query("load_workflow"), {"slug": slug}).fetchone()
    if row is None:
        raise RegistryError(f"unknown workflow {slug!r}")
    return parse_workflow(row)


class _TtlCache:
    """Registry rows change rarely and are read on every callback, step call and pass; a
    short-lived cache saves those reads while an edited row still applies within seconds."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str], load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now, value)
        return value

    def peek(self, key: tuple[str, str, str]) -> Any:
        """The fresh cached value, or None: for callers that must not wait for a load."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE_SECONDS = 2.0
_cache = _TtlCache(CACHE_SECONDS)


def cached_workflow(dbs: Databases, slug: str) -> WorkflowConfig:
    def load() -> WorkflowConfig:
        with dbs.hq.connection() as conn:
            return load_workflow(conn, slug)

    workflow: WorkflowConfig = _cache.get((dbs.urls.hq, "workflow", slug), load)
    return workflow


def fresh_cached_workflow(dbs: Databases, slug: str) -> WorkflowConfig | None:
    """The cached row when it is fresh; None instead of reading the database."""
    workflow: WorkflowConfig | None = _cache.peek((dbs.urls.hq, "workflow", slug))
    return workflow


def cached_play(dbs: Databases, conn: Conn, play_name: str) -> Play:
    play: Play = _cache.get((dbs.urls.hq, "play", play_name), lambda: load_play(conn, play_name))
    return play


def clear_registry_cache() -> None:
    """Forget cached registry rows (after editing the registry in the same process)."""
    _cache.clear()
