"""Request bodies of `/api/columnline/`: with `responses`, they are the API's OpenAPI schema.

Their fields use the checked types of `fields`, so bad input is a 422 naming the field.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from orchestrator.columnline.fields import (
    EndStatus,
    Flag,
    Int32,
    JsonObject,
    JsonValue,
    Key,
    LongText,
    Name,
    ShortText,
    StageName,
    StepStatus,
    blank,
)


class RequestModel(BaseModel):
    # Unknown fields are rejected so a typo in a Make.com module (`tokens_input`) is a 422,
    # not silently lost data.
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_not_given(cls, value: Any, info: ValidationInfo) -> Any:
        """null, "" or only whitespace: the field's default, or a refusal naming the field
        when it is required."""
        if not blank(value) or info.field_name is None:
            return value
        field = cls.model_fields[info.field_name]
        if field.is_required():
            raise PydanticCustomError(
                "missing",
                '{field} is required: null, "" and blank text are not values',
                {"field": info.field_name},
            )
        return field.get_default(call_default_factory=True, validated_data=None)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The schema says what the rule above accepts: blank text for every optional field."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        properties: dict[str, JsonSchemaValue] = schema.get("properties", {})
        for name, field in cls.model_fields.items():
            prop = properties.get(name)
            if prop is None or field.is_required() or not _typed(prop):
                continue
            kept: dict[str, Any] = {
                k: prop.pop(k) for k in ("title", "description", "default") if k in prop
            }
            properties[name] = {"anyOf": [prop, *_BLANK], **kept}
        return schema


_BLANK: list[JsonSchemaValue] = [{"type": "null"}, {"type": "string", "pattern": r"^\s*$"}]


def _typed(prop: JsonSchemaValue) -> bool:
    """Whether a property's schema restricts its value at all (JSON values of any type don't)."""
    return bool(set(prop) - {"title", "description", "default", "examples"})


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


class PromptIn(RequestModel):
    """A prompt template; PUT replaces it and bumps `version` when the template changes."""

    stage: StageName
    step_name: Name = Field(description="The step that uses this prompt.")
    model: ShortText | None = Field(default=None, description="LLM to run it with.")
    template: LongText = Field(description="Prompt text, with the scenario's placeholders.")
    is_active: Flag = True

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


class SectionDefinitionIn(RequestModel):
    """A dossier section; publishing fills it from the latest successful step of `stage` whose
    step_name is the section's key."""

    title: Name
    position: Int32 = Field(description="Order of the section in the dossier.")
    stage: StageName = Field(description="Only steps of this stage fill the section.")
    config: JsonObject = Field(default_factory=dict)
    included: Flag = Field(
        default=True,
        description="False in a client's definition leaves the shared section out of its dossiers.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Company overview",
                    "position": 1,
                    "stage": "sections",
                    "config": {"max_words": 300},
                }
            ]
        }
    )


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


class RunEnd(RequestModel):
    """End a run without publishing it: `failed` (with the reason) or `completed`."""

    run_id: UUID
    status: EndStatus
    reason: LongText | None = Field(
        default=None,
        validate_default=True,
        description="Why the run ended; required when `status` is `failed`.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "0b9c4c8e-4d2a-4a53-9d0c-2f0a3a4f5b6c",
                    "status": "failed",
                    "reason": "OpenAI module: 429 Too Many Requests after 3 retries",
                }
            ]
        }
    )

    @field_validator("reason", mode="after")
    @classmethod
    def _failed_says_why(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if reason is None and info.data.get("status") == "failed":
            raise PydanticCustomError(
                "missing", "reason is required to end a run as failed: say what went wrong"
            )
        return reason


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
