"""Export a batch's final leads, or its failed items, as CSV streamed by Postgres itself
(COPY ... TO STDOUT).

Cells that start like a formula (`=`, `+`, `-`, `@`, a tab or a carriage return) are
prefixed with a single quote, as OWASP's CSV-injection guidance says, so a spreadsheet shows
them as text instead of running them; `raw=True` keeps them as stored.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Literal
from uuid import UUID

from psycopg import sql

from orchestrator.db.pool import Databases

ExportKind = Literal["leads", "failed"]

# (column, is text): only text can start a formula; numbers like -5 stay numbers.
LEAD_COLUMNS: tuple[tuple[str, bool], ...] = (
    ("full_name", True),
    ("first_name", True),
    ("last_name", True),
    ("title", True),
    ("seniority", True),
    ("email", True),
    ("email_verified", False),
    ("linkedin_url", True),
    ("company_name", True),
    ("company_domain", True),
    ("company_linkedin_url", True),
    ("company_industry", True),
    ("company_employee_count", False),
    ("company_founded_year", False),
    ("company_hq_city", True),
    ("company_hq_country", True),
    ("company_revenue_range", True),
)
FAILED_COLUMNS: tuple[tuple[str, bool], ...] = (
    ("source_row", False),
    ("step", True),
    ("reason", True),
    ("error", True),
    ("first_name", True),
    ("last_name", True),
    ("email", True),
    ("title", True),
    ("company_name", True),
    ("website", True),
)
FORMULA_START = "^[=+@\t\r-]"

_SOURCES = {
    "leads": sql.SQL(
        "SELECT * FROM final_leads WHERE batch_id = %(batch_id)s ORDER BY company_domain, full_name"
    ),
    "failed": sql.SQL(
        "SELECT bi.row_number AS source_row, ws.step_name AS step,"
        " COALESCE(ws.meta->>'reason', 'error') AS reason, ws.meta->>'error' AS error,"
        " bi.first_name, bi.last_name, bi.email, bi.title, bi.company_name, bi.website"
        " FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id"
        " WHERE ws.batch_id = %(batch_id)s AND ws.status = 'FAILED'"
        " ORDER BY bi.row_number, ws.step_number"
    ),
}
_COLUMNS = {"leads": LEAD_COLUMNS, "failed": FAILED_COLUMNS}


def _cell(column: str, is_text: bool, raw: bool) -> sql.Composable:
    name = sql.Identifier(column)
    if raw or not is_text:
        return name
    return sql.SQL("CASE WHEN {c} ~ {start} THEN '''' || {c} ELSE {c} END AS {c}").format(
        c=name, start=sql.Literal(FORMULA_START)
    )


def export_query(kind: ExportKind, raw: bool) -> sql.Composed:
    columns: Sequence[tuple[str, bool]] = _COLUMNS[kind]
    return sql.SQL(
        "COPY (SELECT {cells} FROM ({source}) s) TO STDOUT WITH (FORMAT csv, HEADER)"
    ).format(
        cells=sql.SQL(", ").join(_cell(c, text, raw) for c, text in columns),
        source=_SOURCES[kind],
    )


def csv_chunks(
    dbs: Databases, batch_id: UUID, kind: ExportKind = "leads", raw: bool = False
) -> Iterator[bytes]:
    """The CSV as Postgres writes it, chunk by chunk (a download streams it as it comes)."""
    with dbs.hq.connection() as conn:
        cur = conn.cursor()
        with cur.copy(export_query(kind, raw), {"batch_id": batch_id}) as copy:
            for chunk in copy:
                yield bytes(chunk)


def copy_out(
    dbs: Databases, batch_id: UUID, out: BinaryIO, kind: ExportKind = "leads", raw: bool = False
) -> int:
    """Write the CSV to `out`; returns the number of data rows."""
    for chunk in csv_chunks(dbs, batch_id, kind, raw):
        out.write(chunk)
    # Counted apart: a value holding a newline makes lines of the CSV differ from rows.
    return _rows(dbs, batch_id, kind)


def _rows(dbs: Databases, batch_id: UUID, kind: ExportKind) -> int:
    count = sql.SQL("SELECT count(*) AS n FROM ({source}) s").format(source=_SOURCES[kind])
    with dbs.hq.connection() as conn:
        row = conn.execute(count, {"batch_id": batch_id}).fetchone()
    return int(row["n"]) if row else 0


def export_csv(
    dbs: Databases, batch_id: UUID, path: Path | None, kind: ExportKind = "leads", raw: bool = False
) -> int:
    """To `path` (written whole or not at all), or to standard output when it is None."""
    if path is None:
        rows = copy_out(dbs, batch_id, sys.stdout.buffer, kind, raw)
        sys.stdout.buffer.flush()
        return rows
    tmp = path.with_name(f".{path.name}.part")
    try:
        with tmp.open("wb") as fh:
            rows = copy_out(dbs, batch_id, fh, kind, raw)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows
