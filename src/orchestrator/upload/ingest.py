"""Upload: a CSV becomes one upload batch, its raw rows, its batch items and their first step.

One upload is one transaction, and nothing is held in memory. The data records stream to the
server unparsed and COPY parses them (`copy_ingest`); a file COPY might read differently from
the Python reader, or that fails anywhere, is then read again by the Python reader
(`csv_reader`), whose records stream into `raw_apollo_uploads` with COPY. Either way batch items
are projected in SQL, and a file that fails validation leaves no row behind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO
from uuid import UUID

from psycopg import sql

from entities.apollo import HeaderMapping
from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.state.registry import DEFAULT_PLAY, Play, RegistryError, load_play
from orchestrator.upload.copy_ingest import Loaded, copyable, load_records
from orchestrator.upload.csv_reader import ApolloCsv, UploadError
from orchestrator.upload.item_fields import item_columns, item_values

__all__ = ["UploadError", "UploadResult", "ingest_upload"]


@dataclass(frozen=True)
class UploadResult:
    batch_id: UUID
    rows: int
    blank_rows: int
    file_sha256: str
    # Set when the same file was already uploaded for this client and no new batch was made.
    existing: bool = False
    # Records equal to the header row (exports concatenated into one file), skipped like blank
    # rows; counted so the upload summary can say why the file holds fewer leads than records.
    repeated_headers: int = 0


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


def _project_items(conn: Conn, mapping: HeaderMapping, batch_id: UUID) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO batch_items (batch_id, row_number, {columns})"
            " SELECT batch_id, row_number, {values} FROM raw_apollo_uploads"
            " WHERE batch_id = %(batch_id)s ORDER BY row_number"
        ).format(columns=item_columns(), values=item_values(mapping, _raw_value)),
        {"batch_id": batch_id},
    )


def _raw_value(position: int) -> sql.Composable:
    # Postgres arrays are 1-based.
    return sql.SQL("raw_values[{}]").format(sql.Literal(position + 1))


def _copy_raw_rows(conn: Conn, batch_id: UUID, csv_file: ApolloCsv) -> int:
    rows = 0
    with conn.cursor() as cur, cur.copy(query("copy_raw_rows")) as copy:
        copy.set_types(["uuid", "int4", "text[]"])
        for record in csv_file:
            copy.write_row((batch_id, record.row, record.values))
            rows += 1
    return rows


class _DuplicateUploadError(Exception):
    def __init__(self, batch_id: UUID, sha256: str) -> None:
        super().__init__(str(batch_id))
        self.batch_id = batch_id
        self.sha256 = sha256


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
    python_reader: bool = False,
) -> UploadResult:
    """Load one CSV as a new batch, or raise UploadError and leave the database untouched.

    The same file uploaded again for the same client returns the existing batch instead of a
    second copy, unless `allow_duplicate` is set. The server parses the records with COPY when
    the stream is seekable and the file reads the same that way (`copy_ingest`); otherwise, or
    with `python_reader`, they are parsed in Python, the reference the fast path must match.
    """
    client_name = _label(client_name, "client name")
    play_name = _label(play_name, "play name")
    file_name = _file_label(file_name)
    known_sha = None if allow_duplicate else _file_sha256(stream)
    with dbs.hq.connection() as conn:
        try:
            play = load_play(conn, play_name)
        except RegistryError as exc:
            raise UploadError(str(exc)) from None
        if known_sha and not allow_duplicate:
            existing = _existing_batch(conn, client_name, known_sha)
            if existing:
                return UploadResult(existing, 0, 0, known_sha, existing=True)
        # A seekable stream was hashed above unless duplicates are allowed, so only the Python
        # reader ever has to look for a duplicate as it goes.
        check = not allow_duplicate and known_sha is None
        use_copy = not python_reader and stream.seekable() and copyable(conn)
        try:
            return _load_batch(conn, stream, file_name, client_name, play, check, use_copy)
        except _DuplicateUploadError as dup:
            return UploadResult(dup.batch_id, 0, 0, dup.sha256, existing=True)


def _load_batch(
    conn: Conn,
    stream: BinaryIO,
    file_name: str,
    client_name: str,
    play: Play,
    check_duplicate: bool,
    use_copy: bool,
) -> UploadResult:
    """Runs in one transaction; any exception, validation errors included, rolls it all back."""
    start = stream.tell() if use_copy else 0
    with conn.transaction():
        reader = _HashingReader(stream)
        csv_file = ApolloCsv(reader)
        batch_id = _insert_batch(conn, csv_file.headers, file_name, client_name, play)
        loaded = None
        if use_copy:
            reader = _rewound(stream, start)
            loaded = load_records(
                conn,
                reader,
                header_bytes=csv_file.header_bytes,
                mapping=csv_file.mapping,
                batch_id=batch_id,
                first_step=play.first,
            )
        if loaded is None:
            if use_copy:
                # COPY stepped aside, its work rolled back: the Python reader starts over.
                reader = _rewound(stream, start)
                csv_file = ApolloCsv(reader)
            duplicate_of = client_name if check_duplicate else None
            loaded = _read_in_python(conn, csv_file, reader, batch_id, play, duplicate_of)
        sha256 = reader.sha256.hexdigest()
        conn.execute(
            query("finish_upload_batch"),
            {"batch_id": batch_id, "rows": loaded.rows, "sha256": sha256},
        )
    return UploadResult(
        batch_id, loaded.rows, loaded.blank_rows, sha256, repeated_headers=loaded.repeated_headers
    )


def _insert_batch(
    conn: Conn, headers: tuple[str, ...], file_name: str, client_name: str, play: Play
) -> UUID:
    batch = conn.execute(
        query("insert_upload_batch"),
        {
            "client_name": client_name,
            "play_name": play.name,
            "file_name": file_name,
            "headers": list(headers),
        },
    ).fetchone()
    assert batch is not None
    return UUID(str(batch["id"]))


def _rewound(stream: BinaryIO, start: int) -> _HashingReader:
    stream.seek(start)
    return _HashingReader(stream)


def _read_in_python(
    conn: Conn,
    csv_file: ApolloCsv,
    reader: _HashingReader,
    batch_id: UUID,
    play: Play,
    duplicate_of: str | None,
) -> Loaded:
    """The reference path: every record parsed and checked in Python, then projected in SQL.

    With `duplicate_of` (a client name), a file that client already uploaded is found as soon
    as its hash is known, before anything is projected.
    """
    rows = _copy_raw_rows(conn, batch_id, csv_file)
    if duplicate_of is not None:
        sha256 = reader.sha256.hexdigest()
        existing = _existing_batch(conn, duplicate_of, sha256)
        if existing:
            raise _DuplicateUploadError(existing, sha256)
    _project_items(conn, csv_file.mapping, batch_id)
    conn.execute(
        query("start_first_step"),
        {"batch_id": batch_id, "step": play.first.slug, "number": play.first.step_number},
    )
    return Loaded(
        rows=rows, blank_rows=csv_file.blank_rows, repeated_headers=csv_file.repeated_headers
    )
