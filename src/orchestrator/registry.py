"""The workflow registry (`db_driven_enrichment_workflows`) and plays (`play_steps`).

Configuration names tables and columns that end up in SQL, so it is validated here as well as
by the table's CHECK constraints: a bad row is refused with a message naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from database.pool import Conn
from database.queries import query

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
    credits_per_call: Decimal = Decimal(0)
    timeout_seconds: int = Field(default=900, gt=0)
    max_attempts: int = Field(default=3, gt=0)
    provider_params: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True


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

    def transitions(self) -> list[tuple[int, str, int]]:
        """(from step number, next slug, next step number) for every step but the last."""
        return [
            (a.step_number, b.slug, b.step_number)
            for a, b in zip(self.steps, self.steps[1:], strict=False)
        ]


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
