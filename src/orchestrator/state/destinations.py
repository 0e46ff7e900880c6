"""The storage worker: generic and config-driven, it knows nothing of what the data means.

Given a workflow and a result, it maps the result's fields into the workflow's destination
table in the configured database (HQ or Workspace), then reads the row back. Only a verified
row lets the caller complete the step. Table and column names come from configuration, so they
are validated against the live table and quoted as identifiers, never pasted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query
from orchestrator.state.registry import WorkflowConfig

REQUIRED_COLUMNS = ("company_id", "company_domain")


class StorageError(RuntimeError):
    """The destination cannot take this result: named table, column or database problem."""


@dataclass(frozen=True)
class StoredRow:
    table: str
    row_id: Any


def _pool(dbs: Databases, workflow: WorkflowConfig) -> Any:
    return dbs.workspace if workflow.destination_db == "workspace" else dbs.hq


def destination_problems(dbs: Databases, workflow: WorkflowConfig) -> list[str]:
    """What is wrong with the workflow's destination; empty when it can be written."""
    table = workflow.destination_table_name
    if not table:
        return [f"workflow {workflow.workflow_slug!r} has no destination_table_name"]
    with _pool(dbs, workflow).connection() as conn:
        rows = conn.execute(query("destination_columns"), {"table": table})
        found = {r["column_name"] for r in rows}
    where = f"the {workflow.destination_db} database"
    if not found:
        return [f"destination table {table!r} does not exist in {where}"]
    wanted = [*REQUIRED_COLUMNS, *workflow.destination_field_mappings.values()]
    return [
        f"destination table {table!r} ({workflow.destination_db}) has no column {column!r}"
        for column in wanted
        if column not in found
    ]


def _value(value: Any) -> Any:
    # Lists and objects go to json/jsonb columns; scalars as they are.
    return Jsonb(value) if isinstance(value, dict | list) else value


def store_mapped(
    dbs: Databases,
    workflow: WorkflowConfig,
    company_id: UUID | None,
    company_domain: str | None,
    data: dict[str, Any],
) -> StoredRow:
    """Insert the mapped fields, then verify the row is there; raise StorageError if not."""
    problems = destination_problems(dbs, workflow)
    if problems:
        raise StorageError("; ".join(problems))
    table = workflow.destination_table_name
    assert table is not None
    values = {"company_id": company_id, "company_domain": company_domain}
    mappings = workflow.destination_field_mappings
    values |= {column: _value(data.get(key)) for key, column in mappings.items()}
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(map(sql.Placeholder, values)),
    )
    verify = sql.SQL("SELECT 1 FROM {} WHERE id = %(id)s").format(sql.Identifier(table))
    with _pool(dbs, workflow).connection() as conn:
        row = conn.execute(insert, values).fetchone()
        conn.commit()
        if row is None or conn.execute(verify, {"id": row["id"]}).fetchone() is None:
            raise StorageError(f"row written to {table!r} could not be read back")
    return StoredRow(table, row["id"])
