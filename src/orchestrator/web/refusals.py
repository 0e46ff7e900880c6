"""How the API refuses a file (an Apollo export, a customer list): 422 with what is wrong and
where, as every upload route answers it; and a request its models refuse."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from orchestrator.upload.csv_reader import UploadError


class UploadErrorResponse(BaseModel):
    error: str
    row: int | None = None
    column: str | None = None


def refused_file(exc: UploadError) -> JSONResponse:
    body = UploadErrorResponse(error=str(exc), row=exc.row, column=exc.column)
    return JSONResponse(body.model_dump(), status_code=422)


def _json_safe(value: Any) -> float | str:
    """A refused value as JSON can carry it: NaN and infinities (which Python's JSON parser
    accepts in a body) as text, since JSON has no such numbers."""
    number = float(value)
    return number if math.isfinite(number) else str(value)


def refused_request(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, with the refused values quoted as JSON can carry them (it answered 500 to
    a body holding NaN, failing to write the value back)."""
    safe: dict[Any, Callable[[Any], Any]] = {float: _json_safe, Decimal: _json_safe}
    return JSONResponse({"detail": jsonable_encoder(exc.errors(), custom_encoder=safe)}, 422)
