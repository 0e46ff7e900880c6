"""`/api/columnline/`: the V2 dossier API a Make.com scenario calls while it builds a dossier.

Each route's body is checked and read by `columnline_http.ColumnlineRoute`, then one function of
`orchestrator.columnline` runs in one HQ transaction (`read`, or `write` for the routes that
change something, which honours the Idempotency-Key header). See docs/columnline-api.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel

from orchestrator.columnline import config, inputs, outputs, publish, runs
from orchestrator.db.pool import Conn
from orchestrator.web.auth import require_api_key, runtime_of
from orchestrator.web.columnline_http import ColumnlineRoute, read, write
from orchestrator.web.columnline_params import (
    KEYED,
    WRITE_ERRORS,
    ClientFilter,
    Limit,
    PromptKey,
    QueryFlag,
    RunId,
    SectionKey,
    Slug,
    StageFilter,
    StatusFilter,
    errors,
)

PREFIX = "/api/columnline"


def _stale_after(request: Request) -> timedelta:
    return timedelta(minutes=runtime_of(request).settings.columnline_stale_after_minutes)


def add_columnline_routes(app: FastAPI) -> None:
    router = APIRouter(
        prefix=PREFIX,
        tags=["columnline"],
        route_class=ColumnlineRoute,
        dependencies=[Depends(require_api_key)],
        responses={401: {"description": "Missing or wrong x-api-key header"}},
    )
    _add_config_routes(router)
    _add_section_routes(router)
    _add_run_routes(router)
    _add_stage_routes(router)
    app.include_router(router)


def _add_config_routes(router: APIRouter) -> None:
    @router.get("/clients/{slug}", response_model=outputs.ClientOut, responses=errors(404))
    def get_client(request: Request, slug: Slug) -> outputs.ClientOut:
        """A client's configuration (ICP, industry research, settings)."""
        return read(request, config.get_client, slug)

    @router.put(
        "/clients/{slug}",
        response_model=outputs.ClientOut,
        responses=errors(*WRITE_ERRORS),
        dependencies=KEYED,
    )
    def put_client(request: Request, slug: Slug, body: inputs.ClientIn) -> Response:
        """Create or replace a client's configuration."""
        return write(
            request, body, lambda conn: config.put_client(conn, slug, body), status_code=200
        )

    @router.get("/prompts", response_model=list[outputs.PromptOut])
    def list_prompts(request: Request, stage: StageFilter = None) -> list[outputs.PromptOut]:
        """The prompt templates, by stage then key."""
        return read(request, config.list_prompts, stage)

    @router.get("/prompts/{prompt_key}", response_model=outputs.PromptOut, responses=errors(404))
    def get_prompt(request: Request, prompt_key: PromptKey) -> outputs.PromptOut:
        """One prompt template."""
        return read(request, config.get_prompt, prompt_key)

    @router.put(
        "/prompts/{prompt_key}",
        response_model=outputs.PromptOut,
        responses=errors(*WRITE_ERRORS),
        dependencies=KEYED,
    )
    def put_prompt(request: Request, prompt_key: PromptKey, body: inputs.PromptIn) -> Response:
        """Create or replace a prompt; `version` goes up by one when the template changes."""
        return write(
            request, body, lambda conn: config.put_prompt(conn, prompt_key, body), status_code=200
        )


def _add_section_routes(router: APIRouter) -> None:
    definitions = list[outputs.SectionDefinitionOut]

    @router.get("/section-definitions", response_model=definitions)
    def list_section_definitions(request: Request) -> definitions:
        """The shared section definitions, in order: every client's dossiers have them unless
        the client has its own of the same key."""
        return read(request, config.list_section_definitions)

    @router.put(
        "/section-definitions/{section_key}",
        response_model=outputs.SectionDefinitionOut,
        responses=errors(*WRITE_ERRORS),
        dependencies=KEYED,
    )
    def put_section_definition(
        request: Request, section_key: SectionKey, body: inputs.SectionDefinitionIn
    ) -> Response:
        """Create or replace a shared section definition."""
        return write(
            request,
            body,
            lambda conn: config.put_section_definition(conn, section_key, body),
            status_code=200,
        )

    @router.delete(
        "/section-definitions/{section_key}",
        status_code=204,
        responses=errors(404, 400),
        dependencies=KEYED,
    )
    def delete_section_definition(request: Request, section_key: SectionKey) -> Response:
        """Delete a shared section definition (published dossiers keep their copy)."""
        return write(
            request,
            None,
            lambda conn: config.delete_section_definition(conn, section_key),
            status_code=204,
        )

    @router.get(
        "/clients/{slug}/section-definitions", response_model=definitions, responses=errors(404)
    )
    def client_section_definitions(request: Request, slug: Slug) -> definitions:
        """What the client's dossiers are built from, in order: its own definitions (with its
        `client_slug`) and the shared ones it has none of the same key for."""
        return read(request, config.effective_section_definitions, slug)

    @router.put(
        "/clients/{slug}/section-definitions/{section_key}",
        response_model=outputs.SectionDefinitionOut,
        responses=errors(404, *WRITE_ERRORS),
        dependencies=KEYED,
    )
    def put_client_section_definition(
        request: Request, slug: Slug, section_key: SectionKey, body: inputs.SectionDefinitionIn
    ) -> Response:
        """Create or replace the client's own definition of a section: it replaces a shared one
        of the same key (`included: false` leaves that one out of the client's dossiers)."""
        return write(
            request,
            body,
            lambda conn: config.put_section_definition(conn, section_key, body, slug),
            status_code=200,
        )

    @router.delete(
        "/clients/{slug}/section-definitions/{section_key}",
        status_code=204,
        responses=errors(404, 400),
        dependencies=KEYED,
    )
    def delete_client_section_definition(
        request: Request, slug: Slug, section_key: SectionKey
    ) -> Response:
        """Delete the client's own definition: a shared one of the same key applies again."""
        return write(
            request,
            None,
            lambda conn: config.delete_section_definition(conn, section_key, slug),
            status_code=204,
        )


def _add_run_routes(router: APIRouter) -> None:
    @router.post(
        "/runs",
        status_code=201,
        response_model=outputs.RunStarted,
        responses=errors(404, *WRITE_ERRORS),
        dependencies=KEYED,
    )
    def start_run(request: Request, body: inputs.RunStart) -> Response:
        """Start a dossier run for a client; returns the run id the other calls need."""
        return write(request, body, lambda conn: runs.start_run(conn, body), status_code=201)

    @router.get("/runs", response_model=list[outputs.RunSummary])
    def list_runs(
        request: Request,
        client_slug: ClientFilter = None,
        status: StatusFilter = None,
        stale: Annotated[
            QueryFlag, Query(description="true: only running runs idle past the stale time.")
        ] = None,
        limit: Limit = None,
    ) -> list[outputs.RunSummary]:
        """Runs, latest activity first, without their logs."""
        return read(
            request,
            runs.list_runs,
            stale_after=_stale_after(request),
            client_slug=client_slug,
            status=status,
            stale=stale,
            limit=limit or 100,
        )

    @router.get("/runs/{run_id}", response_model=outputs.RunDetail, responses=errors(404))
    def get_run(
        request: Request,
        run_id: RunId,
        outputs_: Annotated[
            QueryFlag,
            Query(
                alias="outputs",
                description="false: leave out prompts, inputs, outputs and contact data, and"
                " show the start of each error.",
            ),
        ] = None,
    ) -> outputs.RunDetail:
        """A run with its logs (steps and stage events, in order) and contacts."""
        with_outputs = outputs_ is not False
        return read(
            request, runs.get_run, run_id, stale_after=_stale_after(request), outputs=with_outputs
        )

    @router.post(
        "/runs/end",
        response_model=outputs.RunEnded,
        responses=errors(404, 409, *WRITE_ERRORS),
        dependencies=KEYED,
    )
    def end_run(request: Request, body: inputs.RunEnd) -> Response:
        """End a run without publishing it: `failed` with its reason, or `completed`. It then
        takes no more writes."""
        return write(
            request,
            body,
            lambda conn: runs.end_run(conn, body),
            status_code=200,
            run_id=body.run_id,
        )


def _add_run_write(
    router: APIRouter,
    path: str,
    work: Callable[[Conn, Any], BaseModel],
    body_type: type[BaseModel],
    response_model: type[BaseModel],
    description: str,
) -> None:
    """A POST that writes to the run its body names: 201 with what `work` answers."""

    def route(request: Request, body: Any) -> Response:
        return write(
            request, body, lambda conn: work(conn, body), status_code=201, run_id=body.run_id
        )

    # FastAPI reads the body's model from the annotations.
    route.__annotations__ = {"request": Request, "body": body_type, "return": Response}
    route.__name__ = work.__name__
    router.post(
        path,
        status_code=201,
        response_model=response_model,
        responses=errors(404, 409, *WRITE_ERRORS),
        dependencies=KEYED,
        description=description,
    )(route)


def _add_stage_routes(router: APIRouter) -> None:
    _add_run_write(
        router,
        "/stages/start",
        runs.start_stage,
        inputs.StageStart,
        outputs.StageEvent,
        "Mark a stage as started; sent again, it answers the first start.",
    )
    _add_run_write(
        router,
        "/stages/complete",
        runs.complete_stage,
        inputs.StageComplete,
        outputs.StageEvent,
        "Mark a started stage as completed with its consolidated output; sent again with the"
        " same output, it answers the first completion.",
    )
    _add_run_write(
        router,
        "/steps",
        runs.log_step,
        inputs.StepLog,
        outputs.StepLogged,
        "Log one LLM step (prompt, input, output, model, tokens, duration, status).",
    )
    _add_run_write(
        router,
        "/contacts",
        runs.add_contacts,
        inputs.ContactsIn,
        outputs.ContactsAdded,
        "Add enriched contacts to a run.",
    )

    @router.post(
        "/publish",
        status_code=201,
        response_model=outputs.PublishResult,
        responses={
            200: {
                "model": outputs.PublishResult,
                "description": "Already published: the same dossier",
            },
            **errors(404, 409, *WRITE_ERRORS),
        },
        dependencies=KEYED,
    )
    def publish_run(request: Request, body: inputs.PublishIn) -> Response:
        """Publish a finished run to `dossiers` and `contacts`; idempotent."""
        return write(
            request,
            body,
            lambda conn: publish.publish(conn, body),
            status_code=lambda result: 200 if result.already_published else 201,
            run_id=body.run_id,
        )
