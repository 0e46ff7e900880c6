"""The HTTP API: uploads and batch status (receivers and the V2 API mount on the same app)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, File, Form, HTTPException, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic import Field as PydanticField

from orchestrator.engine.passes import UnknownBatchError
from orchestrator.engine.recovery import NotHeldError, launch_batch
from orchestrator.reports.credits import Credits, batch_credits
from orchestrator.reports.summary import BatchCounts, FailureReason, summarize
from orchestrator.state.credit_caps import set_batch_cap, set_client_cap
from orchestrator.state.progress import read_progress
from orchestrator.state.registry import DEFAULT_PLAY
from orchestrator.upload.csv_reader import UploadError
from orchestrator.upload.ingest import Launch, UploadOptionError, checked_label, ingest_upload
from orchestrator.web.auth import AppRuntime, RuntimeDep, require_api_key
from orchestrator.web.columnline_routes import add_columnline_routes
from orchestrator.web.customer_routes import add_customer_routes
from orchestrator.web.play_routes import add_play_routes
from orchestrator.web.receiver_routes import add_receiver_routes
from orchestrator.web.refusals import UploadErrorResponse, refused_file
from orchestrator.web.ui import add_ui_routes


class UploadResponse(BaseModel):
    batch_id: UUID
    # The batch's leads: for an existing batch, the rows it was loaded with.
    rows: int
    # The client already had a batch of this file: no batch was made, and this is that one's.
    existing: bool
    # Header rows repeated inside the file (exports pasted together), skipped like blank rows.
    repeated_headers: int = 0
    # Held for launch: nothing is sent until POST /batches/{batch_id}/launch.
    held: bool = False


class StepStatus(BaseModel):
    step_number: int
    step_name: str
    counts: dict[str, int]


@dataclass
class BatchStatus(BatchCounts):
    steps: list[StepStatus]
    top_failure_reasons: list[FailureReason]
    # Workflows that stopped sending (their webhooks are spent, or the batch reached its credit
    # cap): slug -> what to do.
    held: dict[str, str] = field(default_factory=dict)
    # Spent (Actions and data credits apart), saved by dedupe and by reuse.
    credits: dict[str, Any] = field(default_factory=dict)


class CreditCap(BaseModel):
    # Actions + data credits; null (given, never left out) removes the cap.
    credits: Decimal | None = PydanticField(
        ge=0, max_digits=14, decimal_places=4, allow_inf_nan=False
    )


def create_app(runtime_factory: Callable[[], AppRuntime]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "runtime", None) is None:
            app.state.runtime = runtime_factory()
        yield

    app = FastAPI(
        title="Enrichment orchestrator",
        summary="Upload Apollo lead exports and follow their enrichment.",
        lifespan=lifespan,
    )
    app.state.runtime = None
    _add_batch_routes(app)
    add_receiver_routes(app)
    add_play_routes(app)
    add_columnline_routes(app)
    add_customer_routes(app)
    add_ui_routes(app)
    return app


def _add_batch_routes(app: FastAPI) -> None:
    secured = [Depends(require_api_key)]

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/batches",
        status_code=status.HTTP_201_CREATED,
        response_model=UploadResponse,
        responses={
            200: {
                "model": UploadResponse,
                "description": "The client already has a batch of this file: that batch.",
            },
            422: {"model": UploadErrorResponse},
        },
        dependencies=secured,
        tags=["batches"],
    )
    def upload_batch(
        runtime: RuntimeDep,
        response: Response,
        file: Annotated[UploadFile, File(description="Apollo CSV export, UTF-8")],
        client: Annotated[str, Form(max_length=200)] = "default",
        play: Annotated[str, Form(max_length=200)] = DEFAULT_PLAY,
        allow_duplicate: Annotated[bool, Form()] = False,
        hold: Annotated[bool, Form(description="Send nothing until launched.")] = False,
        reuse: Annotated[bool, Form(description="Reuse the client's fresh results.")] = True,
        credit_cap: Annotated[Decimal | None, Form(ge=0, max_digits=14, decimal_places=4)] = None,
    ) -> Any:
        try:
            result = ingest_upload(
                runtime.dbs,
                file.file,
                file_name=file.filename or "upload.csv",
                client_name=client,
                play_name=play,
                allow_duplicate=allow_duplicate,
                launch=Launch(hold, reuse, credit_cap),
            )
        except UploadError as exc:
            return refused_file(exc)
        runtime.trigger.request(result.batch_id)
        if result.existing:
            # One batch per file per client: the same file again is that batch, which this
            # request continues (the pass above), and no new one.
            response.status_code = status.HTTP_200_OK
        return UploadResponse(
            batch_id=result.batch_id,
            rows=result.rows,
            existing=result.existing,
            repeated_headers=result.repeated_headers,
            held=hold and not result.existing,
        )

    @app.get(
        "/batches/{batch_id}",
        response_model=BatchStatus,
        dependencies=secured,
        tags=["batches"],
    )
    def batch_status(runtime: RuntimeDep, batch_id: UUID) -> BatchStatus:
        with runtime.dbs.hq.connection() as conn:
            try:
                summary = summarize(conn, batch_id)
            except LookupError:
                raise HTTPException(404, f"no upload batch {batch_id}") from None
            progress = read_progress(conn, batch_id)
            credits = batch_credits(conn, [batch_id]).get(batch_id, Credits())
        return BatchStatus(
            **summary.counts(),
            top_failure_reasons=summary.top_failure_reasons,
            steps=[
                StepStatus(step_number=s.step_number, step_name=s.step_name, counts=dict(s.counts))
                for s in progress.steps
            ],
            held=progress.held,
            credits=credits.as_json(),
        )

    @app.post("/batches/{batch_id}/launch", dependencies=secured, tags=["batches"])
    def launch(runtime: RuntimeDep, batch_id: UUID, reuse: bool | None = None) -> dict[str, Any]:
        """Launch a batch uploaded with `hold`: it starts sending."""
        try:
            launch_batch(runtime.dbs, batch_id, reuse=reuse)
        except UnknownBatchError as exc:
            raise HTTPException(404, str(exc)) from None
        except NotHeldError as exc:
            raise HTTPException(409, str(exc)) from None
        runtime.trigger.request(batch_id)
        return {"batch_id": str(batch_id), "status": "RUNNING"}

    @app.put("/batches/{batch_id}/credit-cap", dependencies=secured, tags=["batches"])
    def batch_cap(runtime: RuntimeDep, batch_id: UUID, cap: CreditCap) -> dict[str, Any]:
        """Set, raise or remove (null) a batch's credit cap; a batch held at it goes on."""
        with runtime.dbs.hq.connection() as conn:
            if not set_batch_cap(conn, batch_id, cap.credits):
                raise HTTPException(404, f"no upload batch {batch_id}")
        runtime.trigger.request(batch_id)
        return {"batch_id": str(batch_id), "credit_cap": cap.credits}

    @app.put("/clients/{client}/credit-cap", dependencies=secured, tags=["batches"])
    def client_cap(runtime: RuntimeDep, client: str, cap: CreditCap) -> dict[str, Any]:
        """Set, raise or remove (null) a cap over all of a client's batches."""
        try:
            client = checked_label(client, "client name")
        except UploadOptionError as exc:
            raise HTTPException(422, str(exc)) from None
        with runtime.dbs.hq.connection() as conn:
            waiting = set_client_cap(conn, client, cap.credits)
        for batch_id in waiting:
            runtime.trigger.request(batch_id)
        return {"client": client, "credit_cap": cap.credits, "batches_resumed": waiting}
