"""The configuration behind `/api/columnline/`: clients, prompts and section definitions.

Plain functions on one HQ connection, inside the caller's transaction.
"""

from __future__ import annotations

from uuid import UUID

from psycopg.types.json import Jsonb

from orchestrator.columnline.errors import NotFoundError
from orchestrator.columnline.inputs import ClientIn, PromptIn, SectionDefinitionIn
from orchestrator.columnline.outputs import ClientOut, PromptOut, SectionDefinitionOut
from orchestrator.columnline.rows import client_id, every, no_client, one, returned
from orchestrator.db.pool import Conn


def get_client(conn: Conn, slug: str) -> ClientOut:
    row = one(conn, "v2_get_client", {"slug": slug})
    if row is None:
        raise no_client(slug)
    return ClientOut.model_validate(row)


def put_client(conn: Conn, slug: str, body: ClientIn) -> ClientOut:
    params = {
        "slug": slug,
        "name": body.name,
        "icp": Jsonb(body.icp),
        "industry_research": Jsonb(body.industry_research),
        "config": Jsonb(body.config),
    }
    return ClientOut.model_validate(returned(conn, "v2_upsert_client", params))


def list_prompts(conn: Conn, stage: str | None) -> list[PromptOut]:
    return [PromptOut.model_validate(r) for r in every(conn, "v2_list_prompts", {"stage": stage})]


def get_prompt(conn: Conn, prompt_key: str) -> PromptOut:
    row = one(conn, "v2_get_prompt", {"prompt_key": prompt_key})
    if row is None:
        raise NotFoundError(
            "prompt_not_found", f"no prompt with key {prompt_key!r}", prompt_key=prompt_key
        )
    return PromptOut.model_validate(row)


def put_prompt(conn: Conn, prompt_key: str, body: PromptIn) -> PromptOut:
    params = {"prompt_key": prompt_key, **body.model_dump()}
    return PromptOut.model_validate(returned(conn, "v2_upsert_prompt", params))


# --- section definitions: a shared default set (client None) and each client's own ----------


def _owner(conn: Conn, client_slug: str | None) -> UUID | None:
    return None if client_slug is None else client_id(conn, client_slug)


def list_section_definitions(conn: Conn) -> list[SectionDefinitionOut]:
    """The shared definitions, by position."""
    rows = every(conn, "v2_shared_section_definitions", {})
    return [SectionDefinitionOut.model_validate(r) for r in rows]


def effective_section_definitions(conn: Conn, client_slug: str) -> list[SectionDefinitionOut]:
    """What the client's dossiers are built from: its own definitions and the shared ones it
    has none of the same key for, by position."""
    rows = every(
        conn, "v2_effective_section_definitions", {"client_id": client_id(conn, client_slug)}
    )
    return [SectionDefinitionOut.model_validate(r) for r in rows]


def put_section_definition(
    conn: Conn, section_key: str, body: SectionDefinitionIn, client_slug: str | None = None
) -> SectionDefinitionOut:
    params = {
        "client_id": _owner(conn, client_slug),
        "section_key": section_key,
        **body.model_dump(exclude={"config"}),
        "config": Jsonb(body.config),
    }
    return SectionDefinitionOut.model_validate(
        returned(conn, "v2_upsert_section_definition", params)
    )


def delete_section_definition(conn: Conn, section_key: str, client_slug: str | None = None) -> None:
    params = {"client_id": _owner(conn, client_slug), "section_key": section_key}
    if one(conn, "v2_delete_section_definition", params) is None:
        missing = (
            f"there is no shared section definition {section_key!r}"
            if client_slug is None
            else f"client {client_slug!r} has no section definition {section_key!r}"
        )
        raise NotFoundError(
            "section_definition_not_found",
            missing,
            section_key=section_key,
            **({} if client_slug is None else {"client_slug": client_slug}),
        )
