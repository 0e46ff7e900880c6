"""The COPY fast path of an upload stores exactly what the Python reader stores, or steps aside.

Every file here goes through both paths (`python_reader=True` is the reference); the stored
batch, raw rows, items and first steps must be identical, and so must any error.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from entities.apollo import APOLLO_FIELDS, map_headers
from orchestrator.db.pool import Databases
from orchestrator.upload import copy_ingest
from orchestrator.upload.copy_ingest import (
    CHUNK_BYTES,
    PYTHON_WHITESPACE,
    NotCopyableError,
    RecordScanner,
)
from orchestrator.upload.csv_reader import FIELD_LIMIT, ApolloCsv, UploadError
from orchestrator.upload.ingest import UploadResult, ingest_upload
from support.pipeline import OneWayStream, apollo_csv, table_counts

HEADER = "First Name,Last Name,Title,Company,Email,Website,Mobile Phone,Corporate Phone"
ROW = "Ana,Silva,CEO,Acme,ana@acme.com,acme.com,+1 555,+2 555"


def _file(*lines: str, end: str = "\r\n", bom: bool = False) -> bytes:
    text = end.join(lines) + end
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


# Files both paths accept, and on which COPY must be used.
COPYABLE = {
    "generated": apollo_csv(400, 60, seed=3),
    "generated_other_seed": apollo_csv(150, 150, seed=11),
    "bom_crlf_quoted_newlines": _file(
        "\ufeff" + "first name , LAST_NAME,Job Title,Company Name,Email Address,Company Website",
        'Zoë,"O\'Neil","VP, Sales","Acme, Inc.",zoe@acme.com,HTTPS://WWW.Acme.COM/en-us',
        'José,Núñez,"Head of\r\nGrowth",Acme,jose@acme.com,acme.com.',
        'Li,"Wei ""Will""","multi\nline\r\nmixed\rends","",li@x.cn,""',
    ),
    "lf_no_trailing_newline": (HEADER + "\n" + ROW + "\n" + ROW.replace("Ana", "Bo")).encode(),
    "blank_records": _file(
        HEADER,
        ",,,,,,,",
        ROW,
        " ,\t,\u00a0,\u3000, , ,\u2003,\x0b",
        '"",""," ","\r\n",,,,',
        ROW.replace("Ana", "Cy"),
        "  ,,,,,,,",
    ),
    "blank_first_column": _file(HEADER, " ,Silva,CEO,Acme,ana@acme.com,acme.com,,"),
    "phone_alternates": _file(
        HEADER,
        "A,B,C,D,a@d.com,d.com,,+2 corporate",
        "A,B,C,D,a@d.com,d.com,   ,+2 corporate",
        "A,B,C,D,a@d.com,d.com,+1 mobile,+2 corporate",
        "A,B,C,D,a@d.com,d.com, , ",
    ),
    "duplicate_aliases": _file(
        "Company,First Name,Last Name,Organization Name,Email,Work Email,Phone,Website",
        ",Ana,Silva,Acme Org,,ana@acme.com,1,acme.com",
        "Acme,Bo,Li,Other,bo@acme.com,x@y.com,2,",
    ),
    "unicode_and_odd_bytes": _file(
        HEADER,
        "伟,李,\u200bzero width,\U0001f600 Emoji Co,e@x.io,x.io,\u2028,\ufeffbom",
        "Back\\slash,\\.,\\N,NULL,e@x.io,x.io,\\,\t",
    ),
    "header_with_a_quoted_newline": _file(
        '"First\r\nName",Last Name,Company,Email', "Ana,Silva,Acme,ana@acme.com"
    ),
    "crlf_header_lf_data": (HEADER + "\r\n" + ROW + "\n" + ROW + "\n").encode(),
    "end_marker_inside_quotes": _file(HEADER, '"A\n\\.\nB",B,C,D,e@x.io,x.io,,'),
    "only_cr_inside_quotes": _file(HEADER, '"A\rB",B,C,D,e@x.io,x.io,,', end="\n"),
    "concatenated_exports": _file(
        HEADER, ROW, "\ufeff" + HEADER, " First Name ," + HEADER[11:], ROW.replace("Ana", "Bo")
    ),
}

# Files the Python reader accepts but COPY could misread or refuses: the Python reader loads them.
PYTHON_ONLY = {
    "quote_inside_unquoted_value": _file(
        HEADER, 'Dwayne "The Rock",Johnson,Actor,"Seven, Bucks",d@7b.com,7b.com,,'
    ),
    "quote_after_space": _file(HEADER, 'A, "B",C,D,e@x.io,x.io,,'),
    "empty_line": _file(HEADER, ROW, "", ROW),
    "trailing_empty_lines": _file(HEADER, ROW, "", ""),
    "mixed_line_ends": (HEADER + "\r\n" + ROW + "\n" + ROW + "\r\n").encode(),
    "cr_before_crlf": (HEADER + "\r\n" + ROW + "\r\r\n").encode(),
    "short_blank_record": _file(HEADER, ROW, ",,", ROW),
    "blank_last_line_without_newline": (HEADER + "\n" + ROW + "\n   ").encode(),
    # COPY reads a file of lone CRs only if every line ends so, and counts records on LF.
    "cr_only_line_ends": _file(HEADER, ROW, ROW, end="\r"),
    "cr_only_data_lines": (HEADER + "\n" + ROW + "\r" + ROW + "\r").encode(),
    "record_over_the_field_limit": _file(
        HEADER, "A,B,C,D,e@x.io,x.io" + ("," + "x" * CHUNK_BYTES) * 2
    ),
}

# Files both paths refuse: the error, row and column must be the Python reader's.
REFUSED = {
    "end_marker_line": _file(HEADER, ROW, "\\.", ROW),
    "end_marker_first": _file(HEADER, "\\.", ROW),
    "text_after_closing_quote": _file(HEADER, ROW, '"A"x,B,C,D,e@x.io,x.io,,'),
    "unterminated_quote_at_end": _file(HEADER, ROW, 'A,B,"never closed,D,e,f,,'),
    "too_many_fields": _file(HEADER, ROW, ROW + ",extra"),
    "too_few_fields": _file(HEADER, ROW, "A,B,C"),
    "nul_byte": _file(HEADER, ROW, "A,B\x00,C,D,e@x.io,x.io,,"),
    "invalid_utf8": _file(HEADER, ROW) + b"A,B,C\xe9,D,e@x.io,x.io,,\r\n",
    "only_blank_records": _file(HEADER, ",,,,,,,", " ,,,,,,,"),
    "header_only": _file(HEADER),
    "field_over_limit": _file(HEADER, ROW, ROW + "y" * FIELD_LIMIT),
}


@dataclass
class PathSpy:
    """What the fast path did on each upload: Loaded, or None when it stepped aside."""

    outcomes: list[object]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> PathSpy:
    seen = PathSpy([])
    real = copy_ingest.load_records

    def recording(*args: Any, **kwargs: Any) -> copy_ingest.Loaded | None:
        outcome = real(*args, **kwargs)
        seen.outcomes.append(outcome)
        return outcome

    monkeypatch.setattr("orchestrator.upload.ingest.load_records", recording)
    return seen


def _upload(dbs: Databases, data: bytes, *, python_reader: bool) -> UploadResult:
    return ingest_upload(
        dbs,
        io.BytesIO(data),
        file_name="f.csv",
        allow_duplicate=True,
        python_reader=python_reader,
    )


def _stored(dbs: Databases, batch_id: UUID) -> dict[str, Any]:
    """Everything an upload writes, without the ids and timestamps that differ per upload."""
    fields = ", ".join(APOLLO_FIELDS)
    params = {"b": batch_id}
    with dbs.hq.connection() as conn:
        return {
            "batch": conn.execute(
                "SELECT client_name, play_name, file_name, file_sha256, source_headers,"
                " row_count, status FROM upload_batches WHERE id = %(b)s",
                params,
            ).fetchall(),
            "raw": conn.execute(
                "SELECT row_number, raw_values FROM raw_apollo_uploads"
                " WHERE batch_id = %(b)s ORDER BY row_number",
                params,
            ).fetchall(),
            "items": conn.execute(
                f"SELECT row_number, {fields}, normalized, company_id, person_id"
                " FROM batch_items WHERE batch_id = %(b)s ORDER BY row_number",
                params,
            ).fetchall(),
            "states": conn.execute(
                "SELECT i.row_number, s.step_name, s.step_number, s.status, s.meta, s.attempts"
                " FROM workflow_states s JOIN batch_items i ON i.id = s.item_id"
                " WHERE s.batch_id = %(b)s ORDER BY i.row_number",
                params,
            ).fetchall(),
        }


def _outcome(result: UploadResult, dbs: Databases) -> tuple[object, ...]:
    counts = (result.rows, result.blank_rows, result.repeated_headers)
    return (*counts, result.file_sha256, _stored(dbs, result.batch_id))


@pytest.mark.parametrize("name", list(COPYABLE))
def test_copy_stores_what_the_python_reader_stores(name: str, dbs: Databases, spy: PathSpy) -> None:
    data = COPYABLE[name]
    reference = _upload(dbs, data, python_reader=True)
    fast = _upload(dbs, data, python_reader=False)
    assert len(spy.outcomes) == 1 and spy.outcomes[0] is not None, "COPY was not used"
    assert _outcome(fast, dbs) == _outcome(reference, dbs)
    assert reference.rows > 0


@pytest.mark.parametrize("name", list(PYTHON_ONLY))
def test_files_copy_could_misread_are_read_in_python(
    name: str, dbs: Databases, spy: PathSpy
) -> None:
    data = PYTHON_ONLY[name]
    reference = _upload(dbs, data, python_reader=True)
    before = table_counts(dbs)
    result = _upload(dbs, data, python_reader=False)
    assert spy.outcomes == [None]
    assert _outcome(result, dbs) == _outcome(reference, dbs)
    # The refused attempt left nothing behind: one batch more, as one upload makes.
    after = table_counts(dbs)
    assert after["upload_batches"] == before["upload_batches"] + 1
    assert after["raw_apollo_uploads"] == before["raw_apollo_uploads"] + reference.rows


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_files_give_the_python_readers_error(name: str, dbs: Databases) -> None:
    data = REFUSED[name]
    with pytest.raises(UploadError) as reference:
        _upload(dbs, data, python_reader=True)
    before = table_counts(dbs)
    with pytest.raises(UploadError) as caught:
        _upload(dbs, data, python_reader=False)
    assert (str(caught.value), caught.value.row, caught.value.column) == (
        str(reference.value),
        reference.value.row,
        reference.value.column,
    )
    assert table_counts(dbs) == before


def test_uploads_after_one_another_all_use_copy(dbs: Databases, spy: PathSpy) -> None:
    for seed in range(3):
        _upload(dbs, apollo_csv(20, 5, seed=seed), python_reader=False)
    assert len(spy.outcomes) == 3 and None not in spy.outcomes


def test_a_stream_that_cannot_seek_is_read_in_python(dbs: Databases, spy: PathSpy) -> None:
    data = COPYABLE["blank_records"]
    reference = _upload(dbs, data, python_reader=True)
    stream = io.BufferedReader(OneWayStream(data))
    result = ingest_upload(dbs, stream, file_name="f.csv", allow_duplicate=True)
    assert spy.outcomes == []
    assert _outcome(result, dbs) == _outcome(reference, dbs)


def test_a_file_larger_than_a_chunk_keeps_row_numbers_and_hash(
    dbs: Databases, spy: PathSpy
) -> None:
    data = apollo_csv(4000, 500, seed=5)
    assert len(data) > 2 * CHUNK_BYTES
    reference = _upload(dbs, data, python_reader=True)
    fast = _upload(dbs, data, python_reader=False)
    assert spy.outcomes[0] is not None
    assert _outcome(fast, dbs) == _outcome(reference, dbs)


# --------------------------------------------------------------------------- the scanner


def _data_part(data: bytes) -> bytes:
    return data[ApolloCsv(io.BytesIO(data)).header_bytes :]


def _csv_records(data: bytes) -> int:
    text = data.decode("utf-8-sig")
    return sum(1 for _ in csv.reader(io.StringIO(text, newline=""), strict=True)) - 1


def _splits(data: bytes, seed: int) -> Iterator[list[bytes]]:
    """The data whole, byte by byte, and cut at random places."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 7)))
        yield [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]


def _scan(pieces: list[bytes]) -> int:
    scanner = RecordScanner()
    for piece in pieces:
        scanner.feed(piece)
    return scanner.finish()


@pytest.mark.parametrize("name", [n for n in COPYABLE if not n.startswith("generated")])
def test_scanner_counts_records_wherever_the_chunks_end(name: str) -> None:
    data = COPYABLE[name]
    expected = _csv_records(data)
    for pieces in _splits(_data_part(data), seed=len(name)):
        assert _scan(pieces) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'a "b",c\n',
        b'"a"b,c\n',
        b"a,b\rc,d\n",
        b"a,b\r\r\n",
        b"a,b\n\\.\n",
        b"\\.\r\n",
        b"a,b\n\\.",
        b'"open,b\n',
    ],
)
def test_scanner_refuses_what_copy_reads_differently(data: bytes) -> None:
    for pieces in _splits(data, seed=1):
        with pytest.raises(NotCopyableError):
            _scan(pieces)


def test_scanner_refuses_a_record_longer_than_the_field_limit() -> None:
    with pytest.raises(NotCopyableError):
        _scan([b"a," + b"x" * CHUNK_BYTES, b"x" * CHUNK_BYTES, b"\n"])


def test_whitespace_is_what_str_strip_removes() -> None:
    every = "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace())
    assert every == PYTHON_WHITESPACE


@pytest.mark.parametrize("python_reader", [True, False])
def test_a_blank_of_any_whitespace_falls_back_to_the_next_column_as_extract_does(
    python_reader: bool, dbs: Databases
) -> None:
    """Two columns of one field (Email, Work Email): one of only a tab or a no-break space is
    blank, as `HeaderMapping.extract` (and so the forecast) reads it, not a value."""
    data = (
        "First Name,Last Name,Company,Website,Email,Work Email\r\n"
        "Ada,Lovelace,Acme,,\t,ada@acme.com\r\n"
        "Alan,Turing,Acme,,\u00a0,alan@acme.com\r\n"
    ).encode()
    result = _upload(dbs, data, python_reader=python_reader)
    mapping = map_headers(next(csv.reader(io.StringIO(data.decode()))))
    expected = [
        mapping.extract(r)["email"] for r in list(csv.reader(io.StringIO(data.decode())))[1:]
    ]
    with dbs.hq.connection() as conn:
        stored = [
            r["email"]
            for r in conn.execute(
                "SELECT email FROM batch_items WHERE batch_id = %s ORDER BY row_number",
                (result.batch_id,),
            )
        ]
    assert stored == expected == ["ada@acme.com", "alan@acme.com"]
