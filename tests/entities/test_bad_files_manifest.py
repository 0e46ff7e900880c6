"""Self-checks of the bad-file corpus, so the ingest tests built on it can trust it.

These only check that each file really contains the fault its manifest entry
describes (and, for header faults, that ``map_headers`` says what the manifest
promises); how ingest reports the faults is tested by the ingest suite.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from entities.apollo import HeaderError, map_headers
from entities.apollo_sample_data import APOLLO_HEADERS

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_files"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["files"]
BY_KIND = {entry["kind"]: entry for entry in ENTRIES}
HEADER_KINDS = {
    "missing_required_column",
    "missing_domain_columns",
    "duplicate_header",
    "empty_header",
}
CP1252_UNDEFINED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}


def data(kind: str) -> bytes:
    name: str = BY_KIND[kind]["file"]
    return (CORPUS / name).read_bytes()


def records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_manifest_shape() -> None:
    assert {"row", "column", "message_contains", "encoding_rule"} <= set(MANIFEST["conventions"])
    assert len(ENTRIES) >= 12
    assert len(BY_KIND) == len(ENTRIES), "kinds are unique"
    listed = {entry["file"] for entry in ENTRIES}
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "manifest.json"}
    assert listed == on_disk
    for entry in ENTRIES:
        assert set(entry) >= {"file", "kind", "row", "column", "message_contains"}
        assert entry["row"] is None or (isinstance(entry["row"], int) and entry["row"] >= 1)
        assert entry["column"] is None or entry["column"] in APOLLO_HEADERS
        assert entry["message_contains"]
        assert all(isinstance(s, str) and s for s in entry["message_contains"])
        assert (CORPUS / entry["file"]).stat().st_size < 10_000


@pytest.mark.parametrize("kind", sorted(HEADER_KINDS))
def test_header_faults_match_map_headers(kind: str) -> None:
    entry = BY_KIND[kind]
    header = records(data(kind).decode("utf-8-sig"))[0]
    with pytest.raises(HeaderError) as err:
        map_headers(header)
    message = str(err.value).lower()
    for part in entry["message_contains"]:
        assert part.lower() in message
    if entry["row"] is not None:
        assert entry["row"] == 1


def test_empty_files() -> None:
    assert data("empty_file") == b""
    assert data("bom_only") == b"\xef\xbb\xbf"
    assert records(data("no_data_rows").decode()) == [list(APOLLO_HEADERS)]


@pytest.mark.parametrize(
    ("kind", "width"),
    [("ragged_row_too_many_fields", 26), ("ragged_row_too_few_fields", 24)],
)
def test_ragged_rows(kind: str, width: int) -> None:
    widths = [len(r) for r in records(data(kind).decode())]
    bad = [number for number, w in enumerate(widths, start=1) if w != 25]
    assert bad == [BY_KIND[kind]["row"]]
    assert widths[bad[0] - 1] == width


@pytest.mark.parametrize("kind", ["undecodable_bytes", "latin1_encoding"])
def test_encoding_faults_point_at_the_first_bad_byte(kind: str) -> None:
    entry = BY_KIND[kind]
    raw, offset = data(kind), entry["byte_offset"]
    prefix = raw[:offset].decode("utf-8")  # everything before is fine...
    with pytest.raises(UnicodeDecodeError) as err:
        raw.decode("utf-8")
    assert err.value.start == offset  # ...and the named byte is the first bad one
    assert str(offset) in entry["message_contains"]
    assert prefix.count("\n") + 1 == entry["row"]  # no multi-line cells before it
    column = records(prefix + "\n")[-1]
    assert APOLLO_HEADERS[len(column) - 1] == entry["column"]


def test_latin1_file_is_plausible_cp1252_and_the_other_is_not() -> None:
    latin1 = data("latin1_encoding")
    assert not CP1252_UNDEFINED & set(latin1)
    assert "José" in latin1.decode("cp1252")
    assert CP1252_UNDEFINED & set(data("undecodable_bytes"))


def test_unterminated_quote() -> None:
    text = data("unterminated_quote").decode()
    with pytest.raises(csv.Error):
        list(csv.reader(io.StringIO(text, newline=""), strict=True))
    complete = text[: text.rindex("\r\n", 0, len(text) - 2) + 2]
    assert len(records(complete)) + 1 == BY_KIND["unterminated_quote"]["row"]


def test_nul_byte() -> None:
    entry = BY_KIND["nul_byte"]
    raw = data("nul_byte")
    assert raw.count(b"\x00") == 1
    assert raw.index(b"\x00") == entry["byte_offset"]
    assert raw[: entry["byte_offset"]].count(b"\n") + 1 == entry["row"]


def test_binary_files_are_what_they_claim() -> None:
    assert data("binary_file").startswith(b"\x89PNG\r\n\x1a\n")
    assert data("compressed_file").startswith(b"\x1f\x8b")
    assert data("excel_workbook").startswith(b"PK\x03\x04")
    assert b"[Content_Types].xml" in data("excel_workbook")
    utf16 = data("utf16_encoding")
    assert utf16.startswith(b"\xff\xfe")
    assert utf16[2:].decode("utf-16-le").startswith("First Name,")


@pytest.mark.parametrize(
    ("kind", "delimiter"), [("semicolon_delimited", ";"), ("tab_delimited", "\t")]
)
def test_other_delimiters(kind: str, delimiter: str) -> None:
    text = data(kind).decode()
    widths = [len(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    assert widths == [len(APOLLO_HEADERS)] * 3
    header = records(text)[0]
    assert len(header) == 1  # read with commas, the whole header is one cell...
    with pytest.raises(HeaderError, match="missing required column"):
        map_headers(header)  # ...which is why it used to be reported as missing columns
