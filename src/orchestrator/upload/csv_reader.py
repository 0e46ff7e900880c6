"""Stream an uploaded CSV into validated records, failing with the row and column at fault.

Memory stays flat whatever the file size: bytes are decoded chunk by chunk and the csv module
pulls lines lazily. Lines end in CRLF, LF or a lone CR (old Mac exports), as with
`open(..., newline="")`. Only UTF-8 (with or without BOM) is accepted; a Latin-1 /
Windows-1252 export is refused with a message that says how to re-save it, because guessing an
encoding silently corrupts names.
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
# Bounds what is held of one line: a longer line is not a lead record (a binary or a broken file).
LINE_LIMIT = 4 * FIELD_LIMIT
_FIELD_TOO_LONG = "field is over 1 MiB"
_LINE_TOO_LONG = "the line is over 4 MiB: this does not look like a CSV file"
# Exports from a European-locale Excel use semicolons, TSV files tabs; either is refused by name.
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab"}

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

    Splitting bytes on CR and LF is safe in UTF-8 (neither byte occurs inside a multi-byte
    sequence), and decoding per line lets an encoding error name the record it is in. Every line
    end is kept, so the csv module sees the text as it would through `open(..., newline="")`.
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
            lines = (tail + chunk).splitlines(keepends=True)
            # The last line may go on in the next read, and so may a CR ending it (a CRLF cut
            # in two would otherwise read as a line end and a blank line).
            tail = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
            for line in lines:
                yield self._line(line, offset)
                offset = self.end_offset
            # Checked after the complete lines are handed out, so the error has the right row.
            _check_length(tail)
        if tail:
            yield self._line(tail, offset)

    def _line(self, line: bytes, offset: int) -> str:
        _check_length(line)
        self.end_offset = offset + len(line)
        return self._decode(line, offset)

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


class _LineTooLongError(Exception):
    """Raised by the decoder, which does not know the row: the reader names row and column."""

    def __init__(self, line: bytes) -> None:
        super().__init__()
        self.line = line


def _check_length(line: bytes) -> None:
    if len(line) > LINE_LIMIT:
        raise _LineTooLongError(line)


def _whole_file_problem(head: bytes) -> UploadError | None:
    for magic, kind in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return UploadError(f"this is a binary file ({kind}), not CSV text; {_SAVE_AS}")
    if head.startswith(_UTF16_BOMS):
        return UploadError(f"the file is UTF-16 encoded; only UTF-8 is accepted: {_SAVE_AS}")
    return None


def _column(headers: tuple[str, ...], index: int) -> str | None:
    return clean_header(headers[index]) if 0 <= index < len(headers) else None


def _field_at(line_prefix: bytes, headers: tuple[str, ...]) -> str | None:
    """Header of the field that the bytes before an offending byte end in."""
    fields, _ = _record_fields(line_prefix.decode("utf-8", errors="replace"))
    return _column(headers, len(fields) - 1)


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


def _record_fields(text: str, delimiter: str = ",") -> tuple[list[int], bool]:
    """The length of each field in the text of one record (or of its start), counted as the csv
    module counts it against its field limit, and whether the text ends inside a quoted value.

    The csv module names neither the field over its limit nor the one left open, so error
    messages walk the record again; only on errors, so a plain loop is fast enough.
    """
    lengths, in_quotes, after_quote, at_start = [0], False, False, True
    for ch in text:
        if in_quotes:
            if ch == '"':
                in_quotes, after_quote = False, True
            else:
                lengths[-1] += 1
            continue
        if ch == delimiter:
            lengths.append(0)
        elif ch == '"' and (at_start or after_quote):
            # A quote opens a value at its start; right after a closing one it is a "" escape.
            in_quotes = True
            lengths[-1] += 1 if after_quote else 0
        elif ch not in "\r\n":
            lengths[-1] += 1
        after_quote, at_start = False, ch == delimiter
    return lengths, in_quotes


def _first_over_limit(lengths: list[int]) -> int | None:
    return next((i for i, n in enumerate(lengths) if n > FIELD_LIMIT), None)


def _other_delimiter(header_text: str) -> str | None:
    """The delimiter, other than the comma, that splits the header into the most cells."""
    cells = {d: len(_record_fields(header_text, d)[0]) for d in (",", *_OTHER_DELIMITERS)}
    best = max(cells, key=cells.__getitem__)  # a tie goes to the comma, listed first
    return _OTHER_DELIMITERS.get(best)


def _delimiter_error(header_text: str) -> UploadError | None:
    name = _other_delimiter(header_text)
    if name is None:
        return None
    return UploadError(f"the file is {name}-delimited; export it comma-delimited", row=1)


def _is_repeated_header(values: list[str], header_cells: tuple[str, ...]) -> bool:
    """Whether a record is the header again (two exports in one file), once trimmed as header
    names are; `header_cells` are the header's names already trimmed."""
    return len(values) == len(header_cells) and all(
        clean_header(v) == h for v, h in zip(values, header_cells, strict=True)
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
        # Records equal to the header (concatenated exports): skipped like blank ones.
        self.repeated_headers = 0
        self._headers: tuple[str, ...] = ()
        header = self._next()
        if header is None or not any(v.strip() for v in header):
            raise UploadError("the file is empty: expected a header row and data rows")
        try:
            self.mapping: HeaderMapping = map_headers(header)
        except HeaderError as exc:
            header_text = "".join(self._decoder.current_record_text)
            raise _delimiter_error(header_text) or _header_error(exc) from None
        self._headers = self.mapping.headers
        self._header_cells = tuple(clean_header(h) for h in header)
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
        except _LineTooLongError as failure:
            raise self._too_long(failure.line, row) from None
        except csv.Error as exc:
            raise self._malformed(exc, row) from None
        self.records_read += 1
        return values

    def _malformed(self, exc: csv.Error, row: int) -> UploadError:
        text = "".join(self._decoder.current_record_text)
        # A quoted header of another delimiter breaks the comma reading before names are known.
        wrong_delimiter = _delimiter_error(text) if row == 1 else None
        if wrong_delimiter:
            return wrong_delimiter
        lengths, open_quote = _record_fields(text)
        over = _first_over_limit(lengths)
        if over is not None:
            # Over the limit and still open: the missing closing quote is the likely cause.
            hint = " (is its closing quote missing?)" if open_quote else ""
            return UploadError(_FIELD_TOO_LONG + hint, row=row, column=self._column(over))
        if open_quote:
            return UploadError(
                "a quoted value is never closed (missing closing quote; was the file cut off?)",
                row=row,
                column=self._column(len(lengths) - 1),
            )
        return UploadError(f"malformed CSV: {exc}", row=row)

    def _too_long(self, line: bytes, row: int) -> UploadError:
        """Names the field over 1 MiB if the line has one, else the field where it passes 4 MiB."""
        start = line[: LINE_LIMIT + 1].decode("utf-8", errors="replace")
        lengths, _ = _record_fields("".join(self._decoder.current_record_text) + start)
        over = _first_over_limit(lengths)
        if over is not None:
            return UploadError(_FIELD_TOO_LONG, row=row, column=self._column(over))
        return UploadError(_LINE_TOO_LONG, row=row, column=self._column(len(lengths) - 1))

    def _column(self, index: int) -> str | None:
        return _column(self._headers, index)

    def __iter__(self) -> Iterator[CsvRecord]:
        data_rows = 0
        while (values := self._next()) is not None:
            row = self.records_read
            if not any(v.strip() for v in values):
                self.blank_rows += 1
                continue
            if _is_repeated_header(values, self._header_cells):
                self.repeated_headers += 1
                continue
            _check_record(values, row, self.headers)
            data_rows += 1
            yield CsvRecord(row=row, values=values)
        if data_rows == 0:
            raise UploadError("the file has a header row but no data rows")
