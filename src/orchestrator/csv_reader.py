"""Stream an uploaded CSV into validated records, failing with the row and column at fault.

Memory stays flat whatever the file size: bytes are decoded chunk by chunk and the csv module
pulls lines lazily. Only UTF-8 (with or without BOM) is accepted; a Latin-1 / Windows-1252
export is refused with a message that says how to re-save it, because guessing an encoding
silently corrupts names.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from entities.apollo import HeaderError, HeaderMapping, clean_header, map_headers

CHUNK_BYTES = 1 << 20
# Apollo "Keywords" and description columns can be long; a field beyond this is a broken quote.
FIELD_LIMIT = 1 << 20

_BINARY_MAGIC = {
    b"\x1f\x8b": "a gzip archive",
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "a ZIP archive or Excel workbook (.xlsx)",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
}


class ByteSource(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class UploadError(ValueError):
    """Why a file cannot be ingested, naming the 1-based row (the header is row 1) and column."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        self.message = message
        self.row = row
        self.column = column
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass(frozen=True)
class CsvRecord:
    row: int
    values: list[str]


class _Decoder:
    """UTF-8 lines from a byte stream, tracking the byte offset for error messages."""

    def __init__(self, stream: ByteSource) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self.offset = 0
        self.first_chunk = b""

    def lines(self) -> Iterator[str]:
        tail = ""
        while chunk := self._stream.read(CHUNK_BYTES):
            if not self.first_chunk:
                self.first_chunk = chunk
            text = self._decode(chunk, final=False)
            self.offset += len(chunk)
            parts = (tail + text).split("\n")
            tail = parts.pop()
            for part in parts:
                yield part + "\n"
        tail += self._decode(b"", final=True)
        if tail:
            yield tail

    def _decode(self, chunk: bytes, *, final: bool) -> str:
        try:
            return self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise _NotUtf8Error(chunk, exc.start, self.offset + exc.start) from None


class _NotUtf8Error(Exception):
    def __init__(self, chunk: bytes, index: int, offset: int) -> None:
        super().__init__()
        self.chunk, self.index, self.offset = chunk, index, offset


def _encoding_error(failure: _NotUtf8Error, row: int, first_chunk: bytes) -> UploadError:
    head = first_chunk or failure.chunk
    for magic, kind in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return UploadError(f"this is {kind}, not a CSV file; export the data as CSV (UTF-8)")
    bad = failure.chunk[failure.index]
    line_start = failure.chunk.rfind(b"\n", 0, failure.index) + 1
    line_end = failure.chunk.find(b"\n", failure.index)
    line = failure.chunk[line_start : line_end if line_end >= 0 else len(failure.chunk)]
    hint = "re-save it as 'CSV UTF-8'"
    try:
        sample = line.decode("cp1252").strip()[:80]
    except UnicodeDecodeError:
        return UploadError(
            f"the file is not valid UTF-8 text: byte 0x{bad:02X} at byte offset {failure.offset};"
            f" {hint}",
            row=row,
        )
    return UploadError(
        f"the file is not UTF-8: byte 0x{bad:02X} at byte offset {failure.offset} looks like"
        f" Latin-1/Windows-1252 text ({sample!r}); {hint} (Excel: File > Save As > CSV UTF-8)",
        row=row,
    )


def _check_record(values: list[str], row: int, headers: tuple[str, ...]) -> None:
    if len(values) == len(headers):
        for pos, value in enumerate(values):
            if "\x00" in value:
                raise UploadError(
                    "contains a NUL byte (binary data?)", row=row, column=headers[pos]
                )
        return
    if len(values) > len(headers):
        raise UploadError(
            f"has {len(values)} fields but the header has {len(headers)}: unexpected value"
            f" {values[len(headers)][:40]!r} after the last column (unquoted comma?)",
            row=row,
            column=clean_header(headers[-1]),
        )
    raise UploadError(
        f"has {len(values)} fields but the header has {len(headers)}: values missing from"
        f" this column on",
        row=row,
        column=clean_header(headers[len(values)]),
    )


def _header_error(exc: HeaderError) -> UploadError:
    column = exc.header if exc.header is not None else None
    if column is None and exc.missing:
        column = ", ".join(exc.missing)
    return UploadError(exc.message, row=1, column=column)


class ApolloCsv:
    """An uploaded file: its header mapping, then its data records on iteration."""

    def __init__(self, stream: ByteSource) -> None:
        csv.field_size_limit(FIELD_LIMIT)
        self._decoder = _Decoder(stream)
        self._reader = csv.reader(self._decoder.lines(), strict=True)
        self.records_read = 0
        self.blank_rows = 0
        header = self._next()
        if header is None or not any(v.strip() for v in header):
            raise UploadError("the file is empty: expected a header row and data rows")
        try:
            self.mapping: HeaderMapping = map_headers(header)
        except HeaderError as exc:
            raise _header_error(exc) from None
        if any("\x00" in h for h in header):
            raise UploadError("the header contains a NUL byte (binary data?)", row=1)

    @property
    def headers(self) -> tuple[str, ...]:
        return self.mapping.headers

    def _next(self) -> list[str] | None:
        row = self.records_read + 1
        try:
            values = next(self._reader)
        except StopIteration:
            return None
        except _NotUtf8Error as failure:
            raise _encoding_error(failure, row, self._decoder.first_chunk) from None
        except csv.Error as exc:
            raise UploadError(f"malformed CSV: {exc} (an unclosed quote?)", row=row) from None
        self.records_read += 1
        return values

    def __iter__(self) -> Iterator[CsvRecord]:
        data_rows = 0
        while (values := self._next()) is not None:
            row = self.records_read
            if not any(v.strip() for v in values):
                self.blank_rows += 1
                continue
            _check_record(values, row, self.headers)
            data_rows += 1
            yield CsvRecord(row=row, values=values)
        if data_rows == 0:
            raise UploadError("the file has a header row but no data rows", row=2)
