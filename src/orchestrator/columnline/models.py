"""Request and response bodies of `/api/columnline/`: they are the API's OpenAPI schema.

Every string and JSON document is checked here for what Postgres cannot store (NUL characters,
unpaired surrogates, NaN/Infinity in JSON) and every integer is bounded to the INTEGER columns'
range, so bad input is answered with a 422 naming the field instead of a database error.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

INT32_MAX = 2**31 - 1
MAX_JSON_DEPTH = 64
# Path keys (client slugs, prompt and section keys) end up in URLs: keep them URL-safe.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
KEY_MAX_LENGTH = 200


def check_text(value: str) -> str:
    """Reject what a Postgres TEXT (UTF-8) column cannot hold."""
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("unpaired surrogate characters are not allowed") from None
    return value


def _json_problem(value: Any) -> str | None:
    """What makes `value` unstorable as JSONB, with where it is; None when it is fine.

    Iterative on purpose: a deeply nested document must not blow the Python stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"{where}: nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str):
            try:
                check_text(item)
            except ValueError as exc:
                return f"{where}: {exc}"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{where}: NaN and Infinity are not valid JSON numbers"
        elif isinstance(item, dict):
            for key, child in item.items():
                try:
                    check_text(str(key))
                except ValueError as exc:
                    return f"{where}: key {exc}"
                stack.append((child, f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
    return None


def check_json(value: Any) -> Any:
    problem = _json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(check_text)]
ShortText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(check_text)]
LongText = Annotated[str, StringConstraints(max_length=1_000_000), AfterValidator(check_text)]
Key = Annotated[
    str, StringConstraints(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)
]
StageName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=KEY_MAX_LENGTH),
    AfterValidator(check_text),
    Field(description="Pipeline stage, e.g. `research`, `claims`, `sections`."),
]
Int32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
JsonValue = Annotated[Any, AfterValidator(check_json)]
StepStatus = Literal["success", "error"]
RunStatus = Literal["running", "completed", "failed", "published"]
EventType = Literal["step", "stage_start", "stage_complete"]


class RequestModel(BaseModel):
    # Unknown fields are rejected so a typo in a Make.com module (`tokens_input`) is a 422,
    # not silently lost data.
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. `run_not_found`.")
    message: str = Field(description="What is wrong, naming the run, stage or client.")
    context: dict[str, str] = Field(
        default_factory=dict, description="The identifiers the error is about."
    )


class ErrorResponse(BaseModel):
    """Body of every 404/409 (and 422 for values the database refuses) of this API."""

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


class ClientIn(RequestModel):
    """A client's configuration; PUT replaces all of it."""

    name: Name = Field(description="Display name of the client.")
    icp: JsonObject = Field(default_factory=dict, description="Ideal customer profile.")
    industry_research: JsonObject = Field(default_factory=dict)
    config: JsonObject = Field(default_factory=dict, description="Free-form scenario settings.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Robotics",
                    "icp": {"industries": ["logistics"], "employees": "200-2000"},
                    "industry_research": {"summary": "Warehouse automation is consolidating."},
                    "config": {"sections": ["overview", "signals"]},
                }
            ]
        }
    )


class ClientOut(BaseModel):
    id: UUID
    slug: str
    name: str
    icp: dict[str, Any]
    industry_research: dict[str, Any]
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PromptIn(RequestModel):
    """A prompt template; PUT replaces it and bumps `version` when the template changes."""

    stage: StageName
    step_name: Name = Field(description="The step that uses this prompt.")
    model: ShortText | None = Field(default=None, description="LLM to run it with.")
    template: LongText = Field(description="Prompt text, with the scenario's placeholders.")
    is_active: bool = True

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stage": "research",
                    "step_name": "extract_claims",
                    "model": "gpt-4.1",
                    "template": "List verifiable claims about {{company}} from: {{sources}}",
                    "is_active": True,
                }
            ]
        }
    )


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


class SectionDefinitionIn(RequestModel):
    """A dossier section; publishing fills it from the step named like its key."""

    title: Name
    position: Int32 = Field(description="Order of the section in the dossier.")
    config: JsonObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"title": "Company overview", "position": 1, "config": {"max_words": 300}}]
        }
    )


class SectionDefinitionOut(BaseModel):
    id: UUID
    section_key: str
    title: str
    position: int
    config: dict[str, Any]
    created_at: datetime


# --- runs ----------------------------------------------------------------------------------


class RunStart(RequestModel):
    client_slug: Key = Field(description="Slug of an existing client (see PUT /clients/{slug}).")
    target_company: Name
    target_domain: ShortText | None = None
    input: JsonObject = Field(default_factory=dict, description="The scenario's input document.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "client_slug": "acme",
                    "target_company": "Globex",
                    "target_domain": "globex.com",
                    "input": {"requested_by": "make.com", "notes": "Q3 target"},
                }
            ]
        }
    )


class RunStarted(BaseModel):
    run_id: UUID
    client_id: UUID
    status: RunStatus
    started_at: datetime


class StageStart(RequestModel):
    run_id: UUID
    stage: StageName

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"run_id": "0b9c4c8e-4d2a-4a53-9d0c-2f0a3a4f5b6c", "stage": "research"}]
        }
    )


class StageComplete(StageStart):
    output: JsonValue = Field(
        default=None,
        description="The stage's consolidated output (merged claims, context pack, ...).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "0b9c4c8e-4d2a-4a53-9d0c-2f0a3a4f5b6c",
                    "stage": "claims",
                    "output": {"merged_claims": [{"claim": "Globex has 1,200 staff"}]},
                }
            ]
        }
    )


class StageEvent(BaseModel):
    log_id: int
    run_id: UUID
    stage: str
    event_type: EventType
    created_at: datetime


class StepLog(RequestModel):
    """One LLM call of the scenario."""

    run_id: UUID
    stage: StageName
    step_name: Name = Field(
        description="Name of the step; a step named like a section key fills that section."
    )
    prompt_key: Key | None = None
    prompt: LongText | None = Field(default=None, description="The prompt as sent to the model.")
    input: JsonValue = None
    output: JsonValue = None
    model: ShortText | None = None
    tokens_in: Int32 | None = None
    tokens_out: Int32 | None = None
    duration_ms: Int32 | None = None
    status: StepStatus = "success"
    error: LongText | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "0b9c4c8e-4d2a-4a53-9d0c-2f0a3a4f5b6c",
                    "stage": "research",
                    "step_name": "extract_claims",
                    "prompt_key": "research.extract_claims",
                    "prompt": "List verifiable claims about Globex from: ...",
                    "input": {"sources": ["https://globex.com/about"]},
                    "output": {"claims": [{"claim": "Globex has 1,200 staff"}]},
                    "model": "gpt-4.1",
                    "tokens_in": 1830,
                    "tokens_out": 412,
                    "duration_ms": 5210,
                    "status": "success",
                }
            ]
        }
    )


class StepLogged(BaseModel):
    log_id: int
    run_id: UUID
    stage: str
    step_name: str
    created_at: datetime


class ContactIn(RequestModel):
    full_name: Name
    title: ShortText | None = None
    email: ShortText | None = None
    linkedin_url: ShortText | None = None
    data: JsonObject = Field(default_factory=dict, description="Anything else found about them.")


class ContactsIn(RequestModel):
    run_id: UUID
    contacts: list[ContactIn] = Field(min_length=1, max_length=500)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "0b9c4c8e-4d2a-4a53-9d0c-2f0a3a4f5b6c",
                    "contacts": [
                        {
                            "full_name": "Ada Lovelace",
                            "title": "VP Operations",
                            "email": "ada@globex.com",
                            "linkedin_url": "https://www.linkedin.com/in/ada",
                            "data": {"seniority": "vp"},
                        }
                    ],
                }
            ]
        }
    )


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


class RunDetail(BaseModel):
    id: UUID
    client_id: UUID
    client_slug: str
    target_company: str
    target_domain: str | None
    status: RunStatus
    current_stage: str | None
    input: dict[str, Any]
    started_at: datetime
    completed_at: datetime | None
    published_at: datetime | None
    dossier_id: UUID | None = Field(description="Set once the run is published.")
    logs: list[LogEntry] = Field(description="Steps and stage events, in the order logged.")
    contacts: list[ContactOut]


# --- publish -------------------------------------------------------------------------------


class PublishIn(RequestModel):
    run_id: UUID
    dossier_batch: Name | None = Field(
        default=None,
        description="Name of the client's dossier batch to file the dossier under; created if new.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"run_id": "0b9c4c8e-4d2a-4a53-9d0c-2f0a3a4f5b6c", "dossier_batch": "2026-W03"}
            ]
        }
    )


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
