"""How the API refuses a file (an Apollo export, a customer list): 422 with what is wrong and
where, as every upload route answers it."""

from __future__ import annotations

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
