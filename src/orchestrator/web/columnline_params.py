"""The parameters of `/api/columnline/`'s routes: path keys, query filters that follow the API's
empty-value rule (blank means "not given"), the documented Idempotency-Key header, and the
errors each route documents."""

from __future__ import annotations

from typing import Annotated, Any, get_args
from uuid import UUID

from fastapi import Depends, Header, Path, Query
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from orchestrator.columnline import outputs
from orchestrator.columnline.fields import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    RunStatus,
    a_boolean,
    blank,
    check_text,
)

DESCRIPTIONS = {
    400: "An Idempotency-Key header that is not a key",
    404: "Unknown run, client, prompt or section definition",
    409: "The request conflicts with the run's state",
    413: "The body, or what it adds to its run, is too large",
    415: "The body is not sent as JSON (Content-Type)",
}
WRITE_ERRORS = (400, 413, 415)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route can answer (FastAPI documents its 422)."""
    return {
        code: {"model": outputs.ErrorResponse, "description": DESCRIPTIONS[code]} for code in codes
    }


def _key_in_path(example: str) -> Any:
    return Path(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN, examples=[example])


def _or_blank(schema: dict[str, Any]) -> WithJsonSchema:
    """A query parameter's schema, saying that blank means "not given" as in bodies."""
    return WithJsonSchema({"anyOf": [schema, {"type": "string", "pattern": r"^\s*$"}]})


def _text_or_none(value: str | None) -> str | None:
    return None if blank(value) else check_text(str(value))


def _flag_or_none(value: Any) -> Any:
    # The body's rule for flags: true or false, nothing Python would also read as one.
    return None if blank(value) else a_boolean(str(value).strip())


def _count_or_none(value: Any) -> Any:
    # The body's rule for counters, for a query's digits: no "1_000", no "10.0".
    if blank(value):
        return None
    if not str(value).strip().isdigit() or not str(value).strip().isascii():
        raise ValueError("must be a whole number")
    return int(str(value).strip())


def _stripped_or_none(value: Any) -> Any:
    return None if blank(value) else str(value).strip()


QueryFlag = Annotated[
    bool | None, BeforeValidator(_flag_or_none), _or_blank({"enum": ["true", "false"]}), Query()
]


Slug = Annotated[str, _key_in_path("acme")]
PromptKey = Annotated[str, _key_in_path("research.extract_claims")]
SectionKey = Annotated[str, _key_in_path("overview")]
RunId = Annotated[UUID, Path(description="Id returned by POST /runs.")]
StageFilter = Annotated[
    Annotated[str, StringConstraints(max_length=KEY_MAX_LENGTH)] | None,
    AfterValidator(_text_or_none),
    Query(description="Only this stage's prompts; blank: all."),
]


def _idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes the write safe to retry: the same key and body answer the first"
            " answer again and change nothing; the same key with another body is a 422. Keys"
            " are kept per route and run (see docs/columnline-api.md).",
            json_schema_extra={"maxLength": 255, "pattern": "^[\\x20-\\x7e]*$"},
        ),
    ] = None,
) -> None:
    """Documents the header; `columnline_http.write` reads it."""


KEYED = [Depends(_idempotency_key)]


ClientFilter = Annotated[
    Annotated[str, StringConstraints(max_length=KEY_MAX_LENGTH)] | None,
    AfterValidator(_text_or_none),
    Query(description="Only this client's runs."),
]
StatusFilter = Annotated[
    RunStatus | None,
    BeforeValidator(_stripped_or_none),
    _or_blank({"enum": list(get_args(RunStatus))}),
    Query(description="Only runs of this status."),
]
Limit = Annotated[
    Annotated[int, Field(ge=1, le=1000)] | None,
    BeforeValidator(_count_or_none),
    _or_blank({"type": "integer", "minimum": 1, "maximum": 1000}),
    Query(description="At most this many runs (default 100)."),
]
