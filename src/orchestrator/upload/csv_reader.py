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

from entities.apollo import (
    HEADER_ALIASES,
    HeaderError,
    HeaderMapping,
    clean_header,
    map_headers,
)

CHUNK_BYTES = 1 << 20
# Apollo "Keywords" and description columns can be long; a field beyond this is a broken quote.
FIELD_LIMIT = 1 << 20

_BINARY_MAGIC = {
    b"\x1f\x8b": "a gzip archive",
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another ZIP archive",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SAVE_AS = "export or re-save it as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8)"


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
    """UTF-8 lines from a byte stream, decoded one line at a time.

    Splitting bytes on newline is safe in UTF-8 (the byte never occurs inside a multi-byte
    sequence), and decoding per line lets an encoding error name the record it is in.
    """

    def __init__(self, stream: ByteSource) -> None:
        self._stream = stream
        self.first_chunk = b""
        # Lines read since the last complete record: where a broken quote can be located.
        self.current_record_text: list[str] = []
        # Offset in the stream just past the last line handed out (BOM included).
        self.end_offset = 0

    def lines(self) -> Iterator[str]:
        for line in self._lines():
            self.current_record_text.append(line)
            yield line

    def _lines(self) -> Iterator[str]:
        offset, tail = 0, b""
        while chunk := self._stream.read(CHUNK_BYTES):
            if not self.first_chunk:
                chunk, offset = self._start(chunk)
            parts = (tail + chunk).split(b"\n")
            tail = parts.pop()
            if len(tail) > FIELD_LIMIT * 4:
                raise UploadError("a line is longer than 4 MiB: this does not look like a CSV file")
            for part in parts:
                self.end_offset = offset + len(part) + 1
                yield self._decode(part + b"\n", offset)
                offset = self.end_offset
        if tail:
            self.end_offset = offset + len(tail)
            yield self._decode(tail, offset)

    def _start(self, chunk: bytes) -> tuple[bytes, int]:
        self.first_chunk = chunk
        # A workbook or archive may decode as text for a while; refuse it up front.
        whole = _whole_file_problem(chunk)
        if whole:
            raise whole
        if chunk.startswith(codecs.BOM_UTF8):
            return chunk[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        return chunk, 0

    def _decode(self, line: bytes, offset: int) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _NotUtf8Error(line, exc.start, offset + exc.start) from None


class _NotUtf8Error(Exception):
    def __init__(self, chunk: bytes, index: int, offset: int) -> None:
        super().__init__()
        self.chunk, self.index, self.offset = chunk, index, offset


def _whole_file_problem(head: bytes) -> UploadError | None:
    for magic, kind in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return UploadError(f"this is a binary file ({kind}), not CSV text; {_SAVE_AS}")
    if head.startswith(_UTF16_BOMS):
        return UploadError(f"the file is UTF-16 encoded; only UTF-8 is accepted: {_SAVE_AS}")
    return None


def _field_at(line_prefix: bytes, headers: tuple[str, ...]) -> str | None:
    """Header of the field that the bytes before an offending byte end in."""
    text = line_prefix.decode("utf-8", errors="replace")
    index = len(next(csv.reader([text]), [""])) - 1
    return clean_header(headers[index]) if 0 <= index < len(headers) else None


def _encoding_error(
    failure: _NotUtf8Error, row: int, record_so_far: str, headers: tuple[str, ...]
) -> UploadError:
    line = failure.chunk
    bad = line[failure.index]
    column = _field_at(record_so_far.encode() + line[: failure.index], headers)
    where = f"byte 0x{bad:02X} at byte offset {failure.offset}"
    try:
        sample = line.decode("cp1252").strip()[:60]
    except UnicodeDecodeError:
        return UploadError(
            f"the file is not valid UTF-8: {where}; {_SAVE_AS}", row=row, column=column
        )
    return UploadError(
        f"the file is not UTF-8 ({where} looks like Windows-1252/Latin-1 text: {sample!r});"
        f" {_SAVE_AS}",
        row=row,
        column=column,
    )


def _open_quote_field(text: str) -> int | None:
    """Index of the field whose opening quote is never closed, if any."""
    in_quotes, field, opened_at, at_field_start = False, 0, None, True
    for ch in text:
        if in_quotes:
            in_quotes = ch != '"'
        elif ch == '"' and at_field_start:
            in_quotes, opened_at = True, field
        elif ch == ",":
            field += 1
        elif ch == "\n":
            field = 0
        at_field_start = ch in ",\n" and not in_quotes
    return opened_at if in_quotes else None


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
            f"too many fields: {len(values)} values but the header has {len(headers)} columns"
            f" (an unquoted comma? extra value {values[len(headers)][:40]!r})",
            row=row,
        )
    raise UploadError(
        f"too few fields: {len(values)} values but the header has {len(headers)} columns"
        f" (the first missing one is {clean_header(headers[len(values)])!r})",
        row=row,
    )


def _header_error(exc: HeaderError) -> UploadError:
    if exc.missing:
        # A single missing field is named by its usual header; alternatives name no one column.
        column = HEADER_ALIASES[exc.missing[0]][0] if len(exc.missing) == 1 else None
        return UploadError(exc.message, column=column)
    return UploadError(exc.message, row=1, column=exc.header or None)


class ApolloCsv:
    """An uploaded file: its header mapping, then its data records on iteration."""

    def __init__(self, stream: ByteSource) -> None:
        csv.field_size_limit(FIELD_LIMIT)
        self._decoder = _Decoder(stream)
        self._reader = csv.reader(self._decoder.lines(), strict=True)
        self.records_read = 0
        self.blank_rows = 0
        self._headers: tuple[str, ...] = ()
        header = self._next()
        if header is None or not any(v.strip() for v in header):
            raise UploadError("the file is empty: expected a header row and data rows")
        try:
            self.mapping: HeaderMapping = map_headers(header)
        except HeaderError as exc:
            raise _header_error(exc) from None
        self._headers = self.mapping.headers
        if any("\x00" in h for h in header):
            raise UploadError("the header contains a NUL byte (binary data?)", row=1)
        # The csv module pulls lines only as a record needs them, so this is where data starts.
        self.header_bytes = self._decoder.end_offset

    @property
    def headers(self) -> tuple[str, ...]:
        return self.mapping.headers

    def _next(self) -> list[str] | None:
        row = self.records_read + 1
        self._decoder.current_record_text.clear()
        try:
            values = next(self._reader)
        except StopIteration:
            return None
        except _NotUtf8Error as failure:
            before = "".join(self._decoder.current_record_text)
            raise _encoding_error(failure, row, before, self._headers) from None
        except csv.Error as exc:
            raise self._malformed(exc, row) from None
        self.records_read += 1
        return values

    def _malformed(self, exc: csv.Error, row: int) -> UploadError:
        field = _open_quote_field("".join(self._decoder.current_record_text))
        if field is not None:
            column = clean_header(self._headers[field]) if field < len(self._headers) else None
            return UploadError(
                "a quoted value is never closed (missing closing quote; was the file cut off?)",
                row=row,
                column=column,
            )
        return UploadError(f"malformed CSV: {exc}", row=row)

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
            raise UploadError("the file has a header row but no data rows")
