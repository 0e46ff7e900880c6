"""Upload edge cases, each through both readers: the COPY path and the Python reference reader.

Concatenated exports (a repeated header row), files delimited by something other than commas,
CR-only line ends, and the size limits. Whatever the path, the outcome must be the same: the
same rows stored, or the same error naming the row and column at fault, with nothing stored.
"""

from __future__ import annotations

import io
from typing import Any
from uuid import UUID

import pytest

from orchestrator.db.pool import Databases
from orchestrator.upload import csv_reader
from orchestrator.upload.csv_reader import FIELD_LIMIT, UploadError
from orchestrator.upload.ingest import UploadResult, ingest_upload
from support.pipeline import table_counts

HEADER = "First Name,Last Name,Title,Company,Email,Website"
ROW = "Ana,Silva,CEO,Acme,ana@acme.com,acme.com"
OTHER = "Bo,Li,CTO,Beta,bo@beta.io,beta.io"
BOTH_PATHS = pytest.mark.parametrize("python_reader", [True, False], ids=["python", "copy"])


def _file(*lines: str, end: str = "\r\n") -> bytes:
    return (end.join(lines) + end).encode("utf-8")


def _upload(dbs: Databases, data: bytes, python_reader: bool) -> UploadResult:
    return ingest_upload(
        dbs, io.BytesIO(data), file_name="f.csv", allow_duplicate=True, python_reader=python_reader
    )


def _refused(dbs: Databases, data: bytes, python_reader: bool) -> UploadError:
    before = table_counts(dbs)
    with pytest.raises(UploadError) as caught:
        _upload(dbs, data, python_reader)
    assert table_counts(dbs) == before, "a refused upload left rows behind"
    return caught.value


def _rows(dbs: Databases, batch_id: UUID) -> list[dict[str, Any]]:
    with dbs.hq.connection() as conn:
        return conn.execute(
            "SELECT i.row_number, i.first_name, i.title, r.raw_values FROM batch_items i"
            " JOIN raw_apollo_uploads r USING (batch_id, row_number)"
            " WHERE i.batch_id = %s ORDER BY i.row_number",
            (batch_id,),
        ).fetchall()


# ------------------------------------------------------------ two exports in one file


@BOTH_PATHS
def test_a_repeated_header_row_is_skipped_and_counted(dbs: Databases, python_reader: bool) -> None:
    # `cat a.csv b.csv` of two Excel exports: the second header keeps its BOM, and a cell its
    # padding; the reader trims both from header names, so the row is still the header.
    data = _file(HEADER, ROW, ",,,,,", "\ufeff" + HEADER.replace("Title", " Title "), OTHER)
    result = _upload(dbs, data, python_reader)
    assert (result.rows, result.blank_rows, result.repeated_headers) == (2, 1, 1)
    rows = _rows(dbs, result.batch_id)
    # Row numbers stay the file's: the second export's lead is record 5.
    assert [(r["row_number"], r["first_name"]) for r in rows] == [(2, "Ana"), (5, "Bo")]


@BOTH_PATHS
def test_a_row_differing_from_the_header_is_a_lead(dbs: Databases, python_reader: bool) -> None:
    lookalike = HEADER.replace("Website", "acme.com")
    result = _upload(dbs, _file(HEADER, ROW, lookalike), python_reader)
    assert (result.rows, result.repeated_headers) == (2, 0)


@BOTH_PATHS
def test_errors_after_a_repeated_header_name_the_files_row(
    dbs: Databases, python_reader: bool
) -> None:
    error = _refused(dbs, _file(HEADER, ROW, HEADER, OTHER, "A,B,C"), python_reader)
    assert (error.row, error.column) == (5, None)
    assert "too few fields" in error.message


@BOTH_PATHS
def test_only_repeated_headers_is_a_file_without_data(dbs: Databases, python_reader: bool) -> None:
    error = _refused(dbs, _file(HEADER, HEADER, HEADER), python_reader)
    assert "no data rows" in str(error)


# ------------------------------------------------------------ other delimiters


@pytest.mark.parametrize(
    ("delimiter", "name"), [(";", "semicolon"), ("\t", "tab")], ids=["semicolon", "tab"]
)
@pytest.mark.parametrize("quoted", [False, True], ids=["bare", "quoted"])
@BOTH_PATHS
def test_a_file_not_comma_delimited_is_refused_with_the_reason(
    dbs: Databases, python_reader: bool, delimiter: str, name: str, quoted: bool
) -> None:
    def line(cells: str) -> str:
        quote = '"' if quoted else ""
        return delimiter.join(f"{quote}{c}{quote}" for c in cells.split(","))

    error = _refused(dbs, _file(line(HEADER), line(ROW)), python_reader)
    assert f"the file is {name}-delimited; export it comma-delimited" in error.message
    assert (error.row, error.column) == (1, None)


@BOTH_PATHS
def test_a_semicolon_in_a_comma_header_is_still_a_missing_column(
    dbs: Databases, python_reader: bool
) -> None:
    header = "First Name,Last Name,Notes; misc,Email"
    error = _refused(dbs, _file(header, "A,B,C,a@b.co"), python_reader)
    assert "missing required column" in error.message
    assert "delimited" not in error.message


# ------------------------------------------------------------ CR-only line ends


@BOTH_PATHS
def test_cr_only_line_ends_read_like_any_other(dbs: Databases, python_reader: bool) -> None:
    lines = (HEADER, ROW, 'Bo,Li,"Head of\rGrowth",Beta,bo@beta.io,beta.io', ",,,,,", OTHER)
    result = _upload(dbs, _file(*lines, end="\r"), python_reader)
    assert (result.rows, result.blank_rows) == (3, 1)
    rows = _rows(dbs, result.batch_id)
    assert [(r["row_number"], r["title"]) for r in rows] == [
        (2, "CEO"),
        (3, "Head of\rGrowth"),
        (5, "CTO"),
    ]


@BOTH_PATHS
def test_a_crlf_split_between_reads_is_one_line_end(dbs: Databases, python_reader: bool) -> None:
    # The Python reader reads 1 MiB at a time; a CR that ends one read and the LF that starts
    # the next are one line end, not a record and a blank line.
    head = _file(HEADER, ROW)
    pad = csv_reader.CHUNK_BYTES - len(head) - len(ROW) - 1
    data = head + _file(ROW + "x" * pad, ROW)
    assert data[csv_reader.CHUNK_BYTES - 1 : csv_reader.CHUNK_BYTES + 1] == b"\r\n"
    result = _upload(dbs, data, python_reader)
    assert (result.rows, result.blank_rows) == (3, 0)


# ------------------------------------------------------------ size limits


@BOTH_PATHS
def test_a_field_over_1_mib_names_its_row_and_column(dbs: Databases, python_reader: bool) -> None:
    big = "t" * (FIELD_LIMIT + 1)
    error = _refused(dbs, _file(HEADER, ROW, ROW, f"A,B,{big},D,e@x.io,x.io"), python_reader)
    assert str(error) == "row 4, column 'Title': field is over 1 MiB"


@BOTH_PATHS
def test_a_quoted_multiline_field_over_1_mib_names_its_row_and_column(
    dbs: Databases, python_reader: bool
) -> None:
    big = "\n".join(["k" * 1000] * (FIELD_LIMIT // 1000 + 1))
    error = _refused(dbs, _file(HEADER, ROW, f'A,B,C,"{big}",e@x.io,x.io'), python_reader)
    assert (error.row, error.column) == (3, "Company")
    assert "field is over 1 MiB" in error.message


@BOTH_PATHS
def test_a_line_over_4_mib_names_its_row_and_column(dbs: Databases, python_reader: bool) -> None:
    # No field is over the limit, but the line is: its last field takes it past 4 MiB.
    part = "p" * (FIELD_LIMIT - 10)
    long_line = ",".join(["A", part, part, part, part, "w" * 100])
    error = _refused(dbs, _file(HEADER, ROW, ROW, long_line), python_reader)
    assert (error.row, error.column) == (4, "Website")
    assert "line is over 4 MiB" in error.message


@BOTH_PATHS
def test_a_huge_field_on_a_line_over_4_mib_is_named_as_the_field(
    dbs: Databases, python_reader: bool
) -> None:
    huge = "h" * (5 * FIELD_LIMIT)
    error = _refused(dbs, _file(HEADER, ROW, f"A,{huge},C,D,e@x.io,x.io"), python_reader)
    assert str(error) == "row 3, column 'Last Name': field is over 1 MiB"
