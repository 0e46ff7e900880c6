"""`PUT | GET /clients/{client}/customers`: a client's customer list, which the alumni filter
matches its leads' past jobs against."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Path, Query, UploadFile
from pydantic import BaseModel

from orchestrator.reports.leads import MAX_PAGE, customer_count, list_customers
from orchestrator.upload.customers import CustomerFileError, upload_customers
from orchestrator.web.auth import RuntimeDep, require_api_key
from orchestrator.web.refusals import UploadErrorResponse, refused_file

ClientPath = Annotated[str, Path(min_length=1, max_length=200)]


class CustomerUploadResponse(BaseModel):
    client: str
    # Rows now listed; duplicates (same domain, or same name without one) and blank rows skipped.
    customers: int
    duplicates: int
    blank_rows: int


class CustomerOut(BaseModel):
    name: str
    domain: str | None


class CustomerListResponse(BaseModel):
    client: str
    count: int
    customers: list[CustomerOut]
    # Pass as `after` for the next page; null on the last.
    next_cursor: str | None


def add_customer_routes(app: FastAPI) -> None:
    secured = [Depends(require_api_key)]

    @app.put(
        "/clients/{client}/customers",
        response_model=CustomerUploadResponse,
        responses={422: {"model": UploadErrorResponse}},
        dependencies=secured,
        tags=["customers"],
    )
    def put_customers(
        runtime: RuntimeDep,
        client: ClientPath,
        file: Annotated[UploadFile, File(description="CSV, UTF-8: name and/or domain columns")],
    ) -> Any:
        """Replace the client's customer list with the file's; a bad file changes nothing."""
        try:
            result = upload_customers(runtime.dbs, file.file, client)
        except CustomerFileError as exc:
            return refused_file(exc)
        return CustomerUploadResponse(
            client=result.client_name,
            customers=result.customers,
            duplicates=result.duplicates,
            blank_rows=result.blank_rows,
        )

    @app.get(
        "/clients/{client}/customers",
        response_model=CustomerListResponse,
        dependencies=secured,
        tags=["customers"],
    )
    def get_customers(
        runtime: RuntimeDep,
        client: ClientPath,
        after: Annotated[str | None, Query(max_length=2000)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> CustomerListResponse:
        """How many customers the client has, and a page of them by name."""
        with runtime.dbs.hq.connection() as conn:
            try:
                page = list_customers(conn, client, after=after, limit=limit)
            except ValueError as exc:  # a malformed cursor
                raise HTTPException(422, str(exc)) from None
            count = customer_count(conn, client)
        return CustomerListResponse(
            client=client,
            count=count,
            customers=[CustomerOut(name=c.name, domain=c.domain) for c in page.rows],
            next_cursor=page.next_cursor,
        )
