"""Field types and limits shared by the bodies of `/api/columnline/`.

Every string is checked here for what Postgres cannot store (NUL characters, unpaired
surrogates) and every counter is bounded to the INTEGER columns' range, so bad input is answered
with a 422 naming the field instead of a database error. JSON documents are checked whole by
`json_problem` when the API reads a body (orchestrator.web.columnline_http), in a worker thread,
before the models see them.

One rule for empty values (see `blank`): `null`, `""` or a string of only whitespace means "not
given". Make.com maps an empty variable to either, so an optional field takes its default and a
required one is refused naming the field, whichever it sends.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

INT32_MAX = 2**31 - 1
MAX_JSON_DEPTH = 64
# A request body is refused past this many bytes, before it is parsed.
MAX_BODY_BYTES = 10 * 2**20
# What one run's logs and contacts may hold, counted as Postgres holds them (JSONB sizes, text
# lengths). A dossier is one JSONB document, which Postgres caps at 256 MB: a run within this
# budget can always be published.
MAX_RUN_BYTES = 100 * 2**20
# Past the budget, stage events without an output may still use this much: a full run can
# close its stages and be published.
STAGE_EVENT_RESERVE = 2**20
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


def _value_problem(value: Any) -> str | None:
    """What makes a scalar unstorable; None for the fine ones (and for containers)."""
    kind = type(value)
    if kind is str:
        return _text_problem(value)
    if kind is float:
        if not math.isfinite(value):
            return NOT_FINITE
        if value and not MIN_NUMBER <= abs(value) < MAX_NUMBER:
            return f"{value!r}: {TOO_MANY_DIGITS}"
    return None


NOT_FINITE = (
    "not a number Postgres can store: NaN, Infinity and numbers out of range (past 1.8e308)"
    " are not valid JSON numbers"
)
# Postgres keeps a JSON number as a decimal and writes out every digit when it is read: 1e308
# takes 16 bytes stored and 309 characters read. Past these bounds a number is refused.
MAX_NUMBER = 1e30
MIN_NUMBER = 1e-30
TOO_MANY_DIGITS = (
    "Postgres keeps JSON numbers as decimals and writes out every digit: numbers past"
    f" {MAX_NUMBER:g} or nearer zero than {MIN_NUMBER:g} would take more than 30 digits; send"
    " such a number as a string"
)
_PLAIN = frozenset({int, bool, type(None)})
_NUMBERS = frozenset({int, bool, float})


def _fine_at_once(values: list[Any]) -> bool:
    """Whether a list of scalars of one family is fine, checked at C speed: long arrays of
    numbers or strings are what large LLM outputs are made of. False means "look closer"."""
    kinds = set(map(type, values))
    if kinds <= _PLAIN:
        return True
    if kinds <= _NUMBERS:
        return (
            all(map(math.isfinite, values))
            and max(map(abs, values), default=0) < MAX_NUMBER
            and min(map(abs, filter(None, values)), default=1) >= MIN_NUMBER
        )
    if kinds == {str}:
        return _text_problem("".join(values)) is None
    return False


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> tuple[Loc, str] | None:
    """Where `value` is unstorable as JSONB and why; None when it is fine.

    `max_depth` counts `value` itself as level 1. Iterative on purpose (a deeply nested document
    must not blow the Python stack), and cheap per value: only containers are stacked, with the
    index of their parent's path, so a list of millions of numbers costs one pass and no tuples.
    """
    if (problem := _value_problem(value)) is not None:
        return (), problem
    paths: list[tuple[int, str | int]] = [(-1, "")]  # (parent path, key) of each container
    stack: list[tuple[Any, int, int]] = [(value, 0, 1)]  # (container, its path, depth)
    while stack:
        item, path, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            return _loc(paths, path), f"nested deeper than {max_depth} levels"
        if isinstance(item, list) and _fine_at_once(item):
            continue
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if type(key) is str and (problem := _text_problem(key)) is not None:
                return _loc(paths, path), f"key {problem}"
            if isinstance(child, dict | list):
                paths.append((path, key))
                stack.append((child, len(paths) - 1, depth + 1))
            elif (problem := _value_problem(child)) is not None:
                return (*_loc(paths, path), key), problem
    return None


def _loc(paths: list[tuple[int, str | int]], path: int) -> Loc:
    keys: list[str | int] = []
    while path > 0:
        path, key = paths[path]
        keys.append(key)
    return tuple(reversed(keys))


def a_count(value: Any) -> Any:
    """A whole number sent as a JSON number (120, or 120.0).

    Python counts True as 1 and reads "120" and "1_000" as numbers: a counter sent as either is
    a mapping mistake, not a count.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, str):
        raise ValueError("must be a number, not text: map the value without quotes")
    return value


def a_boolean(value: Any) -> Any:
    """JSON true/false, or the words Make.com writes when a boolean is mapped into text."""
    if value in ("true", "false"):
        return value == "true"
    if not isinstance(value, bool):
        raise ValueError('must be true or false (or the text "true" or "false")')
    return value


def _trimmed(value: str) -> str:
    # After the length checks, so the schema's maxLength counts what is sent.
    return check_text(value).strip()


# Names are trimmed: a stray space from a mapped variable must not make another stage or section.
Name = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_trimmed)]
ShortText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(check_text)]
LongText = Annotated[str, StringConstraints(max_length=1_000_000), AfterValidator(check_text)]
Key = Annotated[
    str, StringConstraints(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)
]
StageName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=KEY_MAX_LENGTH),
    AfterValidator(_trimmed),
    Field(description="Pipeline stage, e.g. `research`, `claims`, `sections`."),
]
Int32 = Annotated[
    int,
    BeforeValidator(a_count),
    Field(ge=0, le=INT32_MAX),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": INT32_MAX}),
]
FLAG_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "boolean"}, {"enum": ["true", "false"]}]}
Flag = Annotated[bool, BeforeValidator(a_boolean), WithJsonSchema(FLAG_SCHEMA)]
JsonObject = dict[str, Any]
JsonValue = Any
StepStatus = Literal["success", "error"]
RunStatus = Literal["running", "completed", "failed", "published"]
EndStatus = Literal["completed", "failed"]
EventType = Literal["step", "stage_start", "stage_complete"]
