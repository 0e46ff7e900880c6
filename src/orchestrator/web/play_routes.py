"""`POST /plays/{play_name}/steps/{step_number}/run`: the UI's "Run Step" button."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, Field, model_validator

from orchestrator.engine.plays import run_play_step
from orchestrator.state.registry import RegistryError
from orchestrator.web.auth import require_api_key


class StepRunRequest(BaseModel):
    companies: list[UUID] = Field(default_factory=list, max_length=100_000)
    batch_id: UUID | None = None
    force: bool = Field(default=False, description="Run again for companies already done.")

    @model_validator(mode="after")
    def one_target(self) -> StepRunRequest:
        if bool(self.companies) == (self.batch_id is not None):
            raise ValueError("give either 'companies' or 'batch_id'")
        return self


class StepRunResponse(BaseModel):
    workflow_slug: str
    companies: int
    dispatched_calls: int


def add_play_routes(app: FastAPI) -> None:
    @app.post(
        "/plays/{play_name}/steps/{step_number}/run",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=StepRunResponse,
        dependencies=[Depends(require_api_key)],
        tags=["plays"],
    )
    def run_step(
        request: Request,
        play_name: Annotated[str, Field(max_length=200)],
        step_number: Annotated[int, Field(ge=1, le=10_000)],
        body: StepRunRequest,
    ) -> StepRunResponse:
        runtime = request.app.state.runtime
        try:
            run = run_play_step(
                runtime.dbs,
                runtime.dispatcher,
                play_name,
                step_number,
                company_ids=body.companies or None,
                batch_id=body.batch_id,
                force=body.force,
            )
        except RegistryError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        return StepRunResponse(
            workflow_slug=run.workflow.workflow_slug,
            companies=len(run.company_ids),
            dispatched_calls=run.calls,
        )
