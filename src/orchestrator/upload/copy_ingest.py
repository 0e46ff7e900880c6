"""The fast path of an upload: the data records go to the server as bytes, through COPY (CSV).

Reading every record in Python (`csv_reader.ApolloCsv`) costs many times what COPY does. COPY
and the csv module read well-formed CSV alike, but not all CSV: COPY honours a quote in the
middle of an unquoted value and text after a closing quote, takes a lone CR as a line end, and
stops at a line `\\.`. So the bytes are checked as they stream past (`RecordScanner`), and a file
on which the two could disagree, or that COPY or the checks in SQL refuse, is left to the Python
reader: `load_records` rolls its work back and returns None. The Python reader then either
loads the file or names the row and column at fault, which COPY's errors do not do reliably.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import psycopg
from psycopg import sql

from entities.apollo import HeaderMapping, clean_header
from orchestrator.db.pool import Conn
from orchestrator.db.queries import query
from orchestrator.state.registry import PlayStep
from orchestrator.upload.csv_reader import FIELD_LIMIT, ByteSource
from orchestrator.upload.item_fields import PYTHON_WHITESPACE, item_columns, item_values

__all__ = ["CHUNK_BYTES", "PYTHON_WHITESPACE", "Loaded", "NotCopyableError", "RecordScanner"]

log = logging.getLogger(__name__)

# Half the reader's field limit: a piece of the file checked at once is then over the limit
# only when a single record is over half of it, and such files are few enough to read in Python.
CHUNK_BYTES = FIELD_LIMIT // 2

_STAGING = sql.Identifier("pg_temp", "upload_staging")

# A quoted value as the csv module reads one: opened at the start of a field, "" for a quote
# inside, closed right before a delimiter or a line end. COPY reads these the same way.
_QUOTED_VALUE = re.compile(rb'"(?<=[,\n]")[^"]*+(?:""[^"]*+)*+"(?=[,\r\n])')


class NotCopyableError(Exception):
    """The file is to be read in Python: COPY might read it differently, or refused it."""


@dataclass(frozen=True)
class Loaded:
    rows: int
    blank_rows: int
    repeated_headers: int


class RecordScanner:
    """Checks, piece by piece, that COPY splits the data into the records and values the csv
    module would, and counts the records.

    A piece ends at a line end after an even number of quotes (outside quoted values). Once its
    quoted values are cut out, what is left must hold no quote (one inside an unquoted value, or
    a value left open), no CR but in CRLF (the csv module takes a lone CR as a line end, COPY only
    if every line ends so, and records are counted on LF: such rare files are read in Python), and
    no line starting with `\\.` (COPY's end-of-data marker); the rest COPY reads as the csv module
    does.
    A piece longer than the reader's field limit is refused too, so that no value or line can
    be over the reader's limits; with reads of `CHUNK_BYTES`, only a record over half the field
    limit makes one.
    """

    def __init__(self) -> None:
        # A piece starts with the line end before it, so the data's first record looks like any
        # other to the checks that look one byte back.
        self._pending = b"\n"
        self.records = 0

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        end = _record_end(data)
        if end:
            self._check(data[:end])
            data = data[end - 1 :]
        if len(data) > FIELD_LIMIT:
            raise NotCopyableError(
                "no record end within the field limit (a huge record, or a stray quote)"
            )
        self._pending = data

    def finish(self) -> int:
        """The number of records; the end of the data ends the last one, as a line end would."""
        if len(self._pending) > 1:
            self._check(self._pending + b"\n")
            self._pending = b"\n"
        return self.records

    def _check(self, piece: bytes) -> None:
        if len(piece) > FIELD_LIMIT:
            raise NotCopyableError("a record too long to check (over half the field limit)")
        rest = _QUOTED_VALUE.sub(b"", piece)
        if b'"' in rest:
            raise NotCopyableError("a quote that COPY and the csv module read differently")
        if rest.count(b"\r") != rest.count(b"\r\n"):
            raise NotCopyableError("a carriage return that is not part of a CRLF line end")
        if b"\n\\." in rest:
            raise NotCopyableError("a line starting with \\., COPY's end-of-data marker")
        self.records += rest.count(b"\n") - 1


def _record_end(data: bytes) -> int:
    """Index just past the last line end after an even number of quotes, or 0 if none."""
    quotes = data.count(b'"')
    end = len(data)
    while (newline := data.rfind(b"\n", 1, end)) > 0:
        quotes -= data.count(b'"', newline, end)
        if quotes % 2 == 0:
            return newline + 1
        end = newline
    return 0


def copyable(conn: Conn) -> bool:
    """Whether the server refuses bytes that are not UTF-8, as the Python reader does (an
    SQL_ASCII database checks nothing, another client encoding would convert)."""
    return conn.info.encoding == "utf-8" and conn.info.parameter_status("server_encoding") == "UTF8"


def load_records(
    conn: Conn,
    source: ByteSource,
    *,
    header_bytes: int,
    mapping: HeaderMapping,
    batch_id: UUID,
    first_step: PlayStep,
) -> Loaded | None:
    """Raw rows, batch items and their first step for the data records of a whole file.

    `source` is read from the start of the file to its end; the first `header_bytes` are the
    header. None, with nothing written, when the file is to be read in Python instead.
    """
    columns = [sql.Identifier(f"c{n}") for n in range(1, len(mapping.headers) + 1)]
    try:
        with conn.transaction():
            staged = _stage(conn, _data_chunks(source, header_bytes), columns)
            return _project(conn, staged, columns, mapping, batch_id, first_step)
    except (NotCopyableError, psycopg.Error) as exc:
        if conn.broken:
            raise
        log.info("upload %s is read in Python: %s", batch_id, _reason(exc))
        return None


def _reason(exc: Exception) -> str:
    # Only the primary message: the context of a COPY error quotes the record, that is, lead data.
    if isinstance(exc, psycopg.Error):
        return exc.diag.message_primary or type(exc).__name__
    return str(exc)


def _stage(conn: Conn, chunks: Iterator[bytes], columns: list[sql.Identifier]) -> int:
    """The data records in a fresh staging table, one text column per header; their number."""
    column_defs = sql.SQL(", ").join(sql.SQL("{} text").format(c) for c in columns)
    conn.execute(query("create_upload_staging").format(staging=_STAGING, column_defs=column_defs))
    return _copy(conn, chunks, columns)


def _project(
    conn: Conn,
    staged: int,
    columns: list[sql.Identifier],
    mapping: HeaderMapping,
    batch_id: UUID,
    first_step: PlayStep,
) -> Loaded:
    """Raw rows, batch items and their first step from the `staged` records, in one statement."""
    row = conn.execute(
        query("project_staged_upload").format(
            staging=_STAGING,
            columns=sql.SQL(", ").join(columns),
            item_columns=item_columns(),
            item_values=item_values(mapping, lambda position: columns[position]),
            non_blank=_non_blank(columns),
            repeated_header=_repeated_header(columns, mapping),
        ),
        {
            "batch_id": batch_id,
            "step": first_step.slug,
            "number": first_step.step_number,
            "whitespace": PYTHON_WHITESPACE,
        },
    ).fetchone()
    assert row is not None
    rows, repeated = int(row["rows"]), int(row["repeated_headers"])
    if not rows:
        raise NotCopyableError("no data rows")
    return Loaded(rows=rows, blank_rows=staged - rows - repeated, repeated_headers=repeated)


def _copy(conn: Conn, chunks: Iterator[bytes], columns: list[sql.Identifier]) -> int:
    """Streams the data into the staging table; the number of records staged."""
    scanner = RecordScanner()
    statement = query("copy_upload_staging").format(
        staging=_STAGING, columns=sql.SQL(", ").join(columns)
    )
    with conn.cursor() as cur:
        with cur.copy(statement) as copy:
            for chunk in chunks:
                scanner.feed(chunk)
                copy.write(chunk)
            records = scanner.finish()
        # Guards against COPY ending early or splitting records in a way the checks missed.
        if cur.rowcount != records:
            raise NotCopyableError(
                f"COPY staged {cur.rowcount} records, the csv module reads {records}"
            )
        return records


def _data_chunks(source: ByteSource, header_bytes: int) -> Iterator[bytes]:
    skip = header_bytes
    while chunk := source.read(CHUNK_BYTES):
        if skip < len(chunk):
            yield chunk[skip:]
        skip = max(0, skip - len(chunk))


def _repeated_header(columns: list[sql.Identifier], mapping: HeaderMapping) -> sql.Composable:
    """True for a record equal to the header once trimmed as `clean_header` trims (BOM removed,
    then what str.strip() removes), as `csv_reader` skips it."""
    return sql.SQL("({})").format(
        sql.SQL(" AND ").join(
            _is_header_cell(column, clean_header(header))
            for column, header in zip(columns, mapping.headers, strict=True)
        )
    )


def _is_header_cell(column: sql.Identifier, name: str) -> sql.Composable:
    # Trimming only shortens a value, so one shorter than the name cannot be it: that cheap test
    # spares most leads the btrim (several times dearer), and AND stops at the first cell.
    return sql.SQL("(octet_length({0}) >= {1} AND btrim(replace({0}, {2}, ''), {3}) = {4})").format(
        column,
        sql.Literal(len(name.encode())),
        sql.Literal("\ufeff"),
        sql.Placeholder("whitespace"),
        sql.Literal(name),
    )


def _non_blank(columns: list[sql.Identifier]) -> sql.Composable:
    # OR stops at the first non-blank value, so a typical record costs one btrim.
    return sql.SQL("({})").format(
        sql.SQL(" OR ").join(
            sql.SQL("btrim({}, %(whitespace)s) <> ''").format(column) for column in columns
        )
    )
