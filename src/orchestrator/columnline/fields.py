"""Field types and limits shared by the bodies of `/api/columnline/`.

Every string and JSON document is checked here for what Postgres cannot store (NUL characters,
unpaired surrogates, NaN/Infinity in JSON) and every integer is bounded to the INTEGER columns'
range, so bad input is answered with a 422 naming the field instead of a database error.

One rule for empty values (see `blank`): `null`, `""` or a string of only whitespace means "not
given". Make.com maps an empty variable to either, so an optional field takes its default and a
required one is refused naming the field, whichever it sends.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

INT32_MAX = 2**31 - 1
MAX_JSON_DEPTH = 64
# A request body is refused past this many bytes, before it is parsed.
MAX_BODY_BYTES = 10 * 2**20
# What one run's logs and contacts may hold, counted as Postgres holds them (JSONB sizes, text
# lengths). A dossier is one JSONB document, which Postgres caps at 256 MB: a run within this
# budget can always be published.
MAX_RUN_BYTES = 100 * 2**20
# Path keys (client slugs, prompt and section keys) end up in URLs: keep them URL-safe.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
KEY_MAX_LENGTH = 200

Loc = tuple[str | int, ...]


def blank(value: Any) -> bool:
    """Whether `value` means "not given": null, or a string holding nothing but whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


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


def _text_problem(value: str) -> str | None:
    try:
        check_text(value)
    except ValueError as exc:
        return str(exc)
    return None


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> tuple[Loc, str] | None:
    """Where `value` is unstorable as JSONB and why; None when it is fine.

    `max_depth` counts `value` itself as level 1. Iterative on purpose: a deeply nested document
    must not blow the Python stack.
    """
    stack: list[tuple[Any, Loc, int]] = [(value, (), 1)]
    while stack:
        item, loc, depth = stack.pop()
        if isinstance(item, str):
            if (problem := _text_problem(item)) is not None:
                return loc, problem
        elif isinstance(item, float) and not math.isfinite(item):
            return loc, "NaN and Infinity are not valid JSON numbers"
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return loc, f"nested deeper than {max_depth} levels"
            if isinstance(item, list):
                stack.extend((child, (*loc, i), depth + 1) for i, child in enumerate(item))
                continue
            for key, child in item.items():
                if (problem := _text_problem(str(key))) is not None:
                    return loc, f"key {problem}"
                stack.append((child, (*loc, str(key)), depth + 1))
    return None


def json_path(loc: Loc) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def check_json(value: Any) -> Any:
    problem = json_problem(value)
    if problem is not None:
        loc, message = problem
        raise ValueError(f"{json_path(loc)}: {message}")
    return value


def _not_a_boolean(value: Any) -> Any:
    # Python counts True as 1; a counter sent as `true` is a mapping mistake, not a count.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _a_boolean(value: Any) -> Any:
    # JSON true/false, or the words Make.com writes when a boolean is mapped into text.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
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
Int32 = Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=0, le=INT32_MAX)]
Flag = Annotated[bool, BeforeValidator(_a_boolean)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
JsonValue = Annotated[Any, AfterValidator(check_json)]
StepStatus = Literal["success", "error"]
RunStatus = Literal["running", "completed", "failed", "published"]
EndStatus = Literal["completed", "failed"]
EventType = Literal["step", "stage_start", "stage_complete"]
