"""Upload: a CSV becomes one upload batch, its raw rows, its batch items and their first step.

One upload is one transaction. Raw rows stream into `raw_apollo_uploads` with COPY; batch items
are then projected from them in SQL, so nothing is held in memory and a file that fails
validation anywhere leaves no row behind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO
from uuid import UUID

from psycopg import sql

from database.pool import Conn, Databases
from database.queries import query
from entities.apollo import APOLLO_FIELDS, HeaderMapping
from orchestrator.csv_reader import ApolloCsv, UploadError
from orchestrator.registry import DEFAULT_PLAY, Play, RegistryError, load_play

__all__ = ["UploadError", "UploadResult", "ingest_upload"]


@dataclass(frozen=True)
class UploadResult:
    batch_id: UUID
    rows: int
    blank_rows: int
    file_sha256: str
    # Set when the same file was already uploaded for this client and no new batch was made.
    existing: bool = False


class _HashingReader:
    """Hashes bytes as they are read, so a one-pass stream still yields its checksum."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.sha256.update(chunk)
        return chunk


def _file_sha256(stream: BinaryIO) -> str | None:
    if not stream.seekable():
        return None
    start = stream.tell()
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    stream.seek(start)
    return digest.hexdigest()


def _field_expression(mapping: HeaderMapping, field: str) -> sql.Composable:
    """First non-blank value among the columns mapped to `field` (Postgres arrays are 1-based)."""
    positions = mapping.alternates.get(field) or (
        (mapping.index[field],) if field in mapping.index else ()
    )
    if not positions:
        return sql.Literal("")
    cells = [sql.SQL("raw_values[{}]").format(sql.Literal(p + 1)) for p in positions]
    non_blank = [sql.SQL("CASE WHEN btrim({0}) <> '' THEN {0} END").format(c) for c in cells]
    return sql.SQL("COALESCE({}, {}, '')").format(sql.SQL(", ").join(non_blank), cells[0])


def _project_items(conn: Conn, mapping: HeaderMapping, batch_id: UUID) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(f) for f in APOLLO_FIELDS)
    values = sql.SQL(", ").join(_field_expression(mapping, f) for f in APOLLO_FIELDS)
    conn.execute(
        sql.SQL(
            "INSERT INTO batch_items (batch_id, row_number, {columns})"
            " SELECT batch_id, row_number, {values} FROM raw_apollo_uploads"
            " WHERE batch_id = %(batch_id)s ORDER BY row_number"
        ).format(columns=columns, values=values),
        {"batch_id": batch_id},
    )


def _copy_raw_rows(conn: Conn, batch_id: UUID, csv_file: ApolloCsv) -> int:
    rows = 0
    with conn.cursor() as cur, cur.copy(query("copy_raw_rows")) as copy:
        copy.set_types(["uuid", "int4", "text[]"])
        for record in csv_file:
            copy.write_row((batch_id, record.row, record.values))
            rows += 1
    return rows


class _DuplicateUploadError(Exception):
    def __init__(self, batch_id: UUID) -> None:
        super().__init__(str(batch_id))
        self.batch_id = batch_id


def _existing_batch(conn: Conn, client_name: str, sha256: str) -> UUID | None:
    row = conn.execute(
        query("find_batch_by_file"), {"client_name": client_name, "sha256": sha256}
    ).fetchone()
    return UUID(str(row["id"])) if row else None


def _label(value: str, what: str, limit: int = 200) -> str:
    """Client and play names are identifiers people type: printable and short."""
    if not value.strip() or len(value) > limit or not value.isprintable():
        raise UploadError(f"{what} must be 1 to {limit} printable characters, got {value[:40]!r}")
    return value


def _file_label(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable())[:255] or "upload.csv"


def ingest_upload(
    dbs: Databases,
    stream: BinaryIO,
    *,
    file_name: str,
    client_name: str = "default",
    play_name: str = DEFAULT_PLAY,
    allow_duplicate: bool = False,
) -> UploadResult:
    """Load one CSV as a new batch, or raise UploadError and leave the database untouched.

    The same file uploaded again for the same client returns the existing batch instead of a
    second copy, unless `allow_duplicate` is set.
    """
    client_name = _label(client_name, "client name")
    play_name = _label(play_name, "play name")
    file_name = _file_label(file_name)
    known_sha = None if allow_duplicate else _file_sha256(stream)
    reader = _HashingReader(stream)
    with dbs.hq.connection() as conn:
        try:
            play = load_play(conn, play_name)
        except RegistryError as exc:
            raise UploadError(str(exc)) from None
        if known_sha and not allow_duplicate:
            existing = _existing_batch(conn, client_name, known_sha)
            if existing:
                return UploadResult(existing, 0, 0, known_sha, existing=True)
        try:
            check = not allow_duplicate and known_sha is None
            return _load_batch(conn, reader, file_name, client_name, play, check)
        except _DuplicateUploadError as dup:
            return UploadResult(dup.batch_id, 0, 0, reader.sha256.hexdigest(), existing=True)


def _load_batch(
    conn: Conn,
    reader: _HashingReader,
    file_name: str,
    client_name: str,
    play: Play,
    check_duplicate: bool,
) -> UploadResult:
    """Runs in one transaction; any exception, validation errors included, rolls it all back."""
    with conn.transaction():
        csv_file = ApolloCsv(reader)
        batch = conn.execute(
            query("insert_upload_batch"),
            {
                "client_name": client_name,
                "play_name": play.name,
                "file_name": file_name,
                "headers": list(csv_file.headers),
            },
        ).fetchone()
        assert batch is not None
        batch_id = UUID(str(batch["id"]))
        rows = _copy_raw_rows(conn, batch_id, csv_file)
        sha256 = reader.sha256.hexdigest()
        if check_duplicate:
            existing = _existing_batch(conn, client_name, sha256)
            if existing:
                raise _DuplicateUploadError(existing)
        _project_items(conn, csv_file.mapping, batch_id)
        conn.execute(
            query("start_first_step"),
            {"batch_id": batch_id, "step": play.first.slug, "number": play.first.step_number},
        )
        conn.execute(
            query("finish_upload_batch"),
            {"batch_id": batch_id, "rows": rows, "sha256": sha256},
        )
    return UploadResult(batch_id, rows, csv_file.blank_rows, sha256)
