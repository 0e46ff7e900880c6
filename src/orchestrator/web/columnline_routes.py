"""`/api/columnline/`: the V2 dossier API a Make.com scenario calls while it builds a dossier.

Each route validates its body (orchestrator.columnline.inputs), runs one service function in one HQ
transaction and maps the service's errors to HTTP. See docs/columnline-api.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from orchestrator.columnline import inputs, outputs, service
from orchestrator.columnline.fields import KEY_MAX_LENGTH, KEY_PATTERN, StageName
from orchestrator.db.pool import Conn
from orchestrator.web.auth import require_api_key

PREFIX = "/api/columnline"
# How much of a rejected input a 422 echoes back.
MAX_ECHO_DEPTH = 8

P = ParamSpec("P")
T = TypeVar("T")

_STATUS = {service.NotFoundError: 404, service.ConflictError: 409}
_DESCRIPTIONS = {
    404: "Unknown run, client or prompt",
    409: "The request conflicts with the run's state",
}


def _key_in_path(example: str) -> Any:
    return Path(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN, examples=[example])


Slug = Annotated[str, _key_in_path("acme")]
PromptKey = Annotated[str, _key_in_path("research.extract_claims")]
SectionKey = Annotated[str, _key_in_path("overview")]
RunId = Annotated[UUID, Path(description="Id returned by POST /runs.")]
StageFilter = Annotated[StageName | None, Query(description="Only this stage's prompts.")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the 404/409s a route can answer (FastAPI documents its 422)."""
    return {
        code: {"model": outputs.ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes
    }


def _http_error(exc: service.ColumnlineError) -> HTTPException:
    detail = {"error": exc.error, "message": exc.message, "context": exc.context}
    return HTTPException(_STATUS[type(exc)], detail=detail)


def _invalid_value(exc: psycopg.DataError) -> HTTPException:
    # Shaped like FastAPI's own validation errors, so a client handles every 422 alike.
    message = exc.diag.message_primary or str(exc)
    return HTTPException(422, detail=[{"loc": ["body"], "msg": message, "type": "invalid_value"}])


def _in_transaction(
    request: Request,
    work: Callable[Concatenate[Conn, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run one service function in one HQ transaction; its errors become 404/409/422."""
    try:
        with request.app.state.runtime.dbs.hq.connection() as conn:
            return work(conn, *args, **kwargs)
    except service.ColumnlineError as exc:
        raise _http_error(exc) from None
    except psycopg.DataError as exc:
        # The models reject what Postgres would refuse; this is the backstop for anything they
        # miss (a value out of a column's range, an encoding problem): the client's fault.
        raise _invalid_value(exc) from None


def _printable(value: Any, depth: int = 0) -> Any:
    """`value` made safe to render as UTF-8 JSON (strings, finite numbers, bounded depth)."""
    if depth > MAX_ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {str(_printable(k, depth)): _printable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v, depth + 1) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


class _ColumnlineRoute(APIRoute):
    """A route answering its own validation errors, in FastAPI's body format.

    FastAPI's default handler echoes the rejected input and fails with a 500 on exactly the
    values the models reject (lone surrogates, NaN, very deep JSON); this one echoes a
    printable copy.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse({"detail": _printable(exc.errors())}, status_code=422)

        return handle


def add_columnline_routes(app: FastAPI) -> None:
    router = APIRouter(
        prefix=PREFIX,
        tags=["columnline"],
        route_class=_ColumnlineRoute,
        dependencies=[Depends(require_api_key)],
        responses={
            400: {"description": "Body that cannot be parsed (e.g. not UTF-8)"},
            401: {"description": "Missing or wrong x-api-key header"},
        },
    )
    _add_config_routes(router)
    _add_run_routes(router)
    _add_publish_route(router)
    app.include_router(router)


def _add_config_routes(router: APIRouter) -> None:
    @router.get("/clients/{slug}", response_model=outputs.ClientOut, responses=_errors(404))
    def get_client(request: Request, slug: Slug) -> outputs.ClientOut:
        """A client's configuration (ICP, industry research, settings)."""
        return _in_transaction(request, service.get_client, slug)

    @router.put("/clients/{slug}", response_model=outputs.ClientOut)
    def put_client(request: Request, slug: Slug, body: inputs.ClientIn) -> outputs.ClientOut:
        """Create or replace a client's configuration."""
        return _in_transaction(request, service.put_client, slug, body)

    @router.get("/prompts", response_model=list[outputs.PromptOut])
    def list_prompts(request: Request, stage: StageFilter = None) -> list[outputs.PromptOut]:
        """The prompt templates, by stage then key."""
        return _in_transaction(request, service.list_prompts, stage)

    @router.get("/prompts/{prompt_key}", response_model=outputs.PromptOut, responses=_errors(404))
    def get_prompt(request: Request, prompt_key: PromptKey) -> outputs.PromptOut:
        """One prompt template."""
        return _in_transaction(request, service.get_prompt, prompt_key)

    @router.put("/prompts/{prompt_key}", response_model=outputs.PromptOut)
    def put_prompt(
        request: Request, prompt_key: PromptKey, body: inputs.PromptIn
    ) -> outputs.PromptOut:
        """Create or replace a prompt; `version` goes up by one when the template changes."""
        return _in_transaction(request, service.put_prompt, prompt_key, body)

    @router.get("/section-definitions", response_model=list[outputs.SectionDefinitionOut])
    def list_section_definitions(request: Request) -> list[outputs.SectionDefinitionOut]:
        """The dossier's sections, in order."""
        return _in_transaction(request, service.list_section_definitions)

    @router.put(
        "/section-definitions/{section_key}",
        response_model=outputs.SectionDefinitionOut,
    )
    def put_section_definition(
        request: Request, section_key: SectionKey, body: inputs.SectionDefinitionIn
    ) -> outputs.SectionDefinitionOut:
        """Create or replace a section definition."""
        return _in_transaction(request, service.put_section_definition, section_key, body)


def _add_run_routes(router: APIRouter) -> None:
    @router.post(
        "/runs", status_code=201, response_model=outputs.RunStarted, responses=_errors(404)
    )
    def start_run(request: Request, body: inputs.RunStart) -> outputs.RunStarted:
        """Start a dossier run for a client; returns the run id the other calls need."""
        return _in_transaction(request, service.start_run, body)

    @router.get("/runs/{run_id}", response_model=outputs.RunDetail, responses=_errors(404))
    def get_run(request: Request, run_id: RunId) -> outputs.RunDetail:
        """A run with its logs (steps and stage events, in order) and contacts."""
        return _in_transaction(request, service.get_run, run_id)

    @router.post(
        "/stages/start",
        status_code=201,
        response_model=outputs.StageEvent,
        responses=_errors(404, 409),
    )
    def start_stage(request: Request, body: inputs.StageStart) -> outputs.StageEvent:
        """Mark a stage as started (once per run and stage)."""
        return _in_transaction(request, service.start_stage, body)

    @router.post(
        "/stages/complete",
        status_code=201,
        response_model=outputs.StageEvent,
        responses=_errors(404, 409),
    )
    def complete_stage(request: Request, body: inputs.StageComplete) -> outputs.StageEvent:
        """Mark a started stage as completed, storing its consolidated output."""
        return _in_transaction(request, service.complete_stage, body)

    @router.post(
        "/steps", status_code=201, response_model=outputs.StepLogged, responses=_errors(404, 409)
    )
    def log_step(request: Request, body: inputs.StepLog) -> outputs.StepLogged:
        """Log one LLM step (prompt, input, output, model, tokens, duration, status)."""
        return _in_transaction(request, service.log_step, body)

    @router.post(
        "/contacts",
        status_code=201,
        response_model=outputs.ContactsAdded,
        responses=_errors(404, 409),
    )
    def add_contacts(request: Request, body: inputs.ContactsIn) -> outputs.ContactsAdded:
        """Add enriched contacts to a run."""
        return _in_transaction(request, service.add_contacts, body)


def _add_publish_route(router: APIRouter) -> None:
    @router.post(
        "/publish",
        status_code=201,
        response_model=outputs.PublishResult,
        responses={
            200: {
                "model": outputs.PublishResult,
                "description": "Already published: the same dossier",
            },
            **_errors(404, 409),
        },
    )
    def publish(
        request: Request, response: Response, body: inputs.PublishIn
    ) -> outputs.PublishResult:
        """Publish a finished run to `dossiers` and `contacts`; idempotent."""
        result = _in_transaction(request, service.publish, body)
        if result.already_published:
            response.status_code = 200
        return result
