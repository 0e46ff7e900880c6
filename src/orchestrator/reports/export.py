"""Export a batch's final leads as CSV, streamed by Postgres itself (COPY ... TO STDOUT)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from orchestrator.db.pool import Databases
from orchestrator.db.queries import query


def export_final_leads(dbs: Databases, batch_id: UUID, path: Path) -> int:
    tmp = path.with_name(f".{path.name}.part")
    with dbs.hq.connection() as conn, tmp.open("wb") as fh:
        cur = conn.cursor()
        with cur.copy(query("export_final_leads"), {"batch_id": batch_id}) as copy:
            for chunk in copy:
                fh.write(chunk)
        count = conn.execute(
            "SELECT count(*) AS n FROM final_leads WHERE batch_id = %s", (batch_id,)
        ).fetchone()
    tmp.replace(path)
    return int(count["n"]) if count else 0
