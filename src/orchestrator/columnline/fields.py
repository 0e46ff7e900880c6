"""Field types and limits shared by the bodies of `/api/columnline/`.

Every string and JSON document is checked here for what Postgres cannot store (NUL characters,
unpaired surrogates, NaN/Infinity in JSON) and every integer is bounded to the INTEGER columns'
range, so bad input is answered with a 422 naming the field instead of a database error.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

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
