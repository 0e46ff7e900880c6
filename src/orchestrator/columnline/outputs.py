"""Response bodies of `/api/columnline/`: with `requests`, they are the API's OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.columnline.fields import EndStatus, EventType, RunStatus, StepStatus


class ErrorDetail(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. `run_not_found`.")
    message: str = Field(description="What is wrong, naming the run, stage or client.")
    context: dict[str, str] = Field(
        default_factory=dict, description="The identifiers the error is about."
    )


class ErrorResponse(BaseModel):
    """Body of every 400/404/409/413/415 of this API (its 422s have FastAPI's list shape)."""

    detail: ErrorDetail

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": {
                        "error": "stage_already_completed",
                        "message": "stage 'research' of run 3f6c...: already completed",
                        "context": {"run_id": "3f6c...", "stage": "research"},
                    }
                }
            ]
        }
    )


# --- config ------------------------------------------------------------------------------


class ClientOut(BaseModel):
    id: UUID
    slug: str
    name: str
    icp: dict[str, Any]
    industry_research: dict[str, Any]
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PromptOut(BaseModel):
    id: UUID
    prompt_key: str
    stage: str
    step_name: str
    model: str | None
    template: str
    version: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class SectionDefinitionOut(BaseModel):
    id: UUID
    section_key: str
    title: str
    position: int
    stage: str = Field(description="Only steps of this stage fill the section.")
    config: dict[str, Any]
    included: bool = Field(description="False: a client's definition leaving a shared one out.")
    client_slug: str | None = Field(
        description="The client whose own definition this is; null for a shared one."
    )
    created_at: datetime
    updated_at: datetime


# --- runs ----------------------------------------------------------------------------------


class RunStarted(BaseModel):
    run_id: UUID
    client_id: UUID
    status: RunStatus
    started_at: datetime


class RunEnded(BaseModel):
    run_id: UUID
    status: EndStatus
    reason: str | None
    ended_at: datetime


class StageEvent(BaseModel):
    log_id: int
    run_id: UUID
    stage: str
    event_type: EventType
    created_at: datetime


class StepLogged(BaseModel):
    log_id: int
    run_id: UUID
    stage: str
    step_name: str
    created_at: datetime


class ContactsAdded(BaseModel):
    run_id: UUID
    contact_ids: list[UUID] = Field(description="In the order of the request's contacts.")


class LogEntry(BaseModel):
    id: int
    event_type: EventType
    stage: str
    step_name: str | None
    prompt_key: str | None
    prompt: str | None
    input: Any
    output: Any
    model: str | None
    tokens_in: int | None
    tokens_out: int | None
    duration_ms: int | None
    status: StepStatus
    error: str | None
    created_at: datetime


class ContactOut(BaseModel):
    id: UUID
    full_name: str
    title: str | None
    email: str | None
    linkedin_url: str | None
    data: dict[str, Any]
    created_at: datetime


class RunSummary(BaseModel):
    id: UUID
    client_id: UUID
    client_slug: str
    target_company: str
    target_domain: str | None
    status: RunStatus
    end_reason: str | None = Field(description="Why the run was ended (POST /runs/end).")
    current_stage: str | None
    started_at: datetime
    completed_at: datetime | None = Field(description="When the run ended or was published.")
    published_at: datetime | None
    last_activity_at: datetime = Field(description="When the run's latest write was made.")
    stored_bytes: int = Field(description="What its logs and contacts hold, of 100 MiB.")
    stale: bool = Field(description="Running, and idle for longer than the stale time.")


class RunDetail(RunSummary):
    input: dict[str, Any]
    dossier_id: UUID | None = Field(description="Set once the run is published.")
    outputs_included: bool = Field(
        description="False when read with outputs=false: prompts, inputs, outputs and contact"
        " data are left out (null, or {} for contact data)."
    )
    logs: list[LogEntry] = Field(description="Steps and stage events, in the order logged.")
    contacts: list[ContactOut]


# --- publish -------------------------------------------------------------------------------


class PublishResult(BaseModel):
    dossier_id: UUID
    run_id: UUID
    already_published: bool = Field(description="True when an earlier call published the run.")
    dossier_batch_id: UUID | None
    published_at: datetime
    sections: list[str] = Field(description="Section keys filled, in dossier order.")
    missing_sections: list[str] = Field(description="Defined sections no step produced.")
    stages: list[str] = Field(description="Stages whose consolidated output is in the dossier.")
    contacts: int = Field(description="Contacts published with the dossier.")
