"""Upload: a CSV becomes one upload batch, its raw rows, its batch items and their first step.

One upload is one transaction, and nothing is held in memory. The data records stream to the
server unparsed and COPY parses them (`copy_ingest`); a file COPY might read differently from
the Python reader, or that fails anywhere, is then read again by the Python reader
(`csv_reader`), whose records stream into `raw_apollo_uploads` with COPY. Either way batch items
are projected in SQL, and a file that fails validation leaves no row behind.

A client has one batch per file, kept by a unique index (`idx_upload_batches_one_per_file`):
the batch row goes in with the file's hash when the file could be hashed first, or takes the
hash once the file was read; either way an upload of a file the client already has, or is
uploading at this moment, ends in that batch and stores nothing of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO
from uuid import UUID

import psycopg
from psycopg import sql

from entities.apollo import HeaderMapping
from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.state.progress import HELD_FOR_LAUNCH
from orchestrator.state.registry import DEFAULT_PLAY, Play, RegistryError, load_play
from orchestrator.upload.copy_ingest import Loaded, copyable, load_records
from orchestrator.upload.csv_reader import ApolloCsv, UploadError
from orchestrator.upload.item_fields import WHITESPACE_PARAM, item_columns, item_values

__all__ = ["UploadError", "UploadResult", "ingest_upload"]

# The unique index that keeps a client's file to one batch, deliberate repeats aside.
ONE_BATCH_PER_FILE = "idx_upload_batches_one_per_file"


@dataclass(frozen=True)
class Launch:
    """How an uploaded batch starts: `hold` keeps it HELD (nothing is sent) until launched, so
    its forecast can be read first; `reuse` lets it reuse the client's fresh results;
    `credit_cap` stops its sending once it has spent that many credits."""

    hold: bool = False
    reuse: bool = True
    credit_cap: Decimal | None = None


@dataclass(frozen=True)
class UploadResult:
    batch_id: UUID
    rows: int
    blank_rows: int
    file_sha256: str
    # Set when the same file was already uploaded for this client and no new batch was made;
    # `rows` is then the existing batch's, and `blank_rows` and `repeated_headers` are 0.
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
        {"batch_id": batch_id, **WHITESPACE_PARAM},
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
    """The client already has a batch of this file: the upload's transaction is to roll back."""

    def __init__(self, sha256: str) -> None:
        super().__init__(sha256)
        self.sha256 = sha256


def _existing_batch(conn: Conn, client_name: str, sha256: str) -> UploadResult:
    row = conn.execute(
        query("find_batch_by_file"), {"client_name": client_name, "sha256": sha256}
    ).fetchone()
    if row is None:
        # Only a batch deleted between the conflict and this read gets here.
        raise UploadError("the earlier batch of this file was just deleted; upload it again")
    return UploadResult(UUID(str(row["id"])), int(row["row_count"]), 0, sha256, existing=True)


class UploadOptionError(UploadError):
    """What the upload was asked to do is wrong (a client or play name), not the file."""


def checked_label(value: str, what: str, limit: int = 200) -> str:
    """Client and play names are identifiers people type: printable and short, and the same
    name whatever spaces surround it (a client's caps and reuse go by its name)."""
    label = value.strip()
    if not label or len(label) > limit or not label.isprintable():
        raise UploadOptionError(
            f"{what} must be 1 to {limit} printable characters, got {value[:40]!r}"
        )
    return label


def _file_label(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable())[:255] or "upload.csv"


def check_takes_rows(play: Play) -> None:
    """A play whose first step works on companies or people (a manual play, run on companies
    already known) has nothing to do with the rows of a file: every row would fail."""
    first = play.steps[0].workflow
    if first.entity_type != "item":
        raise UploadOptionError(
            f"play {play.name!r} cannot take a file: its step 1 ({first.workflow_slug}) runs on"
            f" {first.entity_type}s already known, not on the rows of an upload. Upload to a play"
            f" that starts with row steps, such as {DEFAULT_PLAY!r}, and run {play.name!r} on its"
            " companies from its step queue."
        )


def ingest_upload(
    dbs: Databases,
    stream: BinaryIO,
    *,
    file_name: str,
    client_name: str = "default",
    play_name: str = DEFAULT_PLAY,
    allow_duplicate: bool = False,
    python_reader: bool = False,
    launch: Launch = Launch(),
) -> UploadResult:
    """Load one CSV as a new batch, or raise UploadError and leave the database untouched.

    The same file uploaded again for the same client returns the existing batch (`existing`,
    with its row count) and stores nothing, even when both uploads run at once: the database
    holds one batch per client and file. `allow_duplicate` makes a second batch of a file the
    client has (a deliberate repeat, `duplicate_allowed`). The server parses the records with
    COPY when the stream is seekable and the file reads the same that way (`copy_ingest`);
    otherwise, or with `python_reader`, they are parsed in Python, the reference the fast path
    must match.
    """
    client_name = checked_label(client_name, "client name")
    play_name = checked_label(play_name, "play name")
    file_name = _file_label(file_name)
    # Hashed first when it can be, so that the batch row goes in with its file's hash and a
    # second upload of the file stops there, before loading anything.
    known_sha = _file_sha256(stream)
    with dbs.hq.connection() as conn:
        try:
            play = load_play(conn, play_name)
        except RegistryError as exc:
            raise UploadOptionError(str(exc)) from None
        check_takes_rows(play)
        use_copy = not python_reader and stream.seekable() and copyable(conn)
        file = _File(stream, file_name, client_name, known_sha, allow_duplicate, launch)
        try:
            return _load_batch(conn, file, play, use_copy)
        except _DuplicateUploadError as dup:
            # Everything of this upload was rolled back; the other upload has committed.
            return _existing_batch(conn, client_name, dup.sha256)


@dataclass(frozen=True)
class _File:
    stream: BinaryIO
    name: str
    client_name: str
    # The file's hash when it was read before loading (a seekable stream), else None.
    known_sha: str | None
    allow_duplicate: bool
    launch: Launch


def _load_batch(conn: Conn, file: _File, play: Play, use_copy: bool) -> UploadResult:
    """Runs in one transaction; any exception, validation errors and _DuplicateUploadError
    included, rolls it all back."""
    stream = file.stream
    start = stream.tell() if use_copy else 0
    with conn.transaction():
        reader = _HashingReader(stream)
        csv_file = ApolloCsv(reader)
        batch_id = _insert_batch(conn, csv_file.headers, file, play)
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
            loaded = _read_in_python(conn, csv_file, reader, batch_id, play, file)
        sha256 = reader.sha256.hexdigest()
        if file.known_sha is not None and sha256 != file.known_sha:
            raise UploadError("the file changed while it was read; upload it again")
        conn.execute(query("finish_upload_batch"), {"batch_id": batch_id, "rows": loaded.rows})
    return UploadResult(
        batch_id, loaded.rows, loaded.blank_rows, sha256, repeated_headers=loaded.repeated_headers
    )


def _insert_batch(conn: Conn, headers: tuple[str, ...], file: _File, play: Play) -> UUID:
    """The batch row, with the file's hash when known. A file the client already has a batch
    of raises _DuplicateUploadError, or with `allow_duplicate` becomes a deliberate repeat; an
    upload of the file still in progress is waited for first (the unique index's row lock)."""
    params = {
        "client_name": file.client_name,
        "play_name": play.name,
        "file_name": file.name,
        "headers": list(headers),
        "sha256": file.known_sha,
        "duplicate_allowed": False,
        "status": HELD_FOR_LAUNCH if file.launch.hold else "RUNNING",
        "reuse_results": file.launch.reuse,
        "credit_cap": file.launch.credit_cap,
    }
    batch = conn.execute(query("insert_upload_batch"), params).fetchone()
    if batch is None:
        assert file.known_sha is not None, "only a known hash can conflict"
        if not file.allow_duplicate:
            raise _DuplicateUploadError(file.known_sha)
        params["duplicate_allowed"] = True
        batch = conn.execute(query("insert_upload_batch"), params).fetchone()
    assert batch is not None
    return UUID(str(batch["id"]))


def _claim_file(conn: Conn, batch_id: UUID, file: _File, sha256: str) -> None:
    """Gives the batch its file's hash once the file was read (it could not be hashed first).
    A file the client already has a batch of, or one another upload has just given its hash
    (waited for until that upload ends), raises _DuplicateUploadError, or with
    `allow_duplicate` makes this batch a deliberate repeat."""
    params = {"batch_id": batch_id, "sha256": sha256, "duplicate_allowed": False}
    try:
        with conn.transaction():
            conn.execute(query("claim_upload_file"), params)
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != ONE_BATCH_PER_FILE:
            raise
        if not file.allow_duplicate:
            raise _DuplicateUploadError(sha256) from None
        conn.execute(query("claim_upload_file"), params | {"duplicate_allowed": True})


def _rewound(stream: BinaryIO, start: int) -> _HashingReader:
    stream.seek(start)
    return _HashingReader(stream)


def _read_in_python(
    conn: Conn,
    csv_file: ApolloCsv,
    reader: _HashingReader,
    batch_id: UUID,
    play: Play,
    file: _File,
) -> Loaded:
    """The reference path: every record parsed and checked in Python, then projected in SQL.

    A file whose hash was not known before (a stream that cannot seek) takes it as soon as it
    was read, so that a file the client already has stops before anything is projected.
    """
    rows = _copy_raw_rows(conn, batch_id, csv_file)
    if file.known_sha is None:
        _claim_file(conn, batch_id, file, reader.sha256.hexdigest())
    _project_items(conn, csv_file.mapping, batch_id)
    conn.execute(
        query("start_first_step"),
        {"batch_id": batch_id, "step": play.first.slug, "number": play.first.step_number},
    )
    return Loaded(
        rows=rows, blank_rows=csv_file.blank_rows, repeated_headers=csv_file.repeated_headers
    )
