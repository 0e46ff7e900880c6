"""Upload: messy but valid files load whole; bad files are refused with nothing left behind."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from conftest import DatabasePair
from orchestrator.cli.main import app
from orchestrator.db.pool import Databases
from orchestrator.settings import get_settings
from orchestrator.upload.csv_reader import UploadError
from orchestrator.upload.ingest import ingest_upload
from support.pipeline import apollo_csv, table_counts, upload

BAD_FILES = Path(__file__).parent / "data" / "bad_files"
MANIFEST = json.loads((BAD_FILES / "manifest.json").read_text())["files"]
HEADER = "First Name,Last Name,Title,Company,Email,Website,Person Linkedin Url\r\n"


@pytest.fixture
def enrich_cli(
    db_urls: DatabasePair, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Result]]:
    monkeypatch.setenv("DATABASE_URL", db_urls.urls.hq)
    monkeypatch.setenv("WORKSPACE_DATABASE_URL", db_urls.urls.workspace)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, list(args))
    get_settings.cache_clear()


@pytest.mark.parametrize("case", MANIFEST, ids=[c["file"] for c in MANIFEST])
def test_bad_file_is_refused_by_the_cli_and_leaves_nothing(
    case: dict[str, object], enrich_cli: Callable[..., Result], dbs: Databases
) -> None:
    before = table_counts(dbs)
    result = enrich_cli("upload", str(BAD_FILES / str(case["file"])))
    assert result.exit_code == 2  # refused: one line, nothing stored
    output = " ".join(result.output.split()).lower()
    for fragment in case["message_contains"]:  # type: ignore[attr-defined]
        assert str(fragment).lower() in output
    if case["row"] is not None:
        assert f"row {case['row']}" in output
    if case["column"] is not None:
        assert f"column '{str(case['column']).lower()}'" in output
    assert "nothing was stored" in output
    assert table_counts(dbs) == before


@pytest.mark.parametrize("case", MANIFEST, ids=[c["file"] for c in MANIFEST])
def test_bad_file_error_names_row_and_column(case: dict[str, object], dbs: Databases) -> None:
    with (BAD_FILES / str(case["file"])).open("rb") as fh, pytest.raises(UploadError) as caught:
        ingest_upload(dbs, fh, file_name=str(case["file"]), allow_duplicate=True)
    assert (caught.value.row, caught.value.column) == (case["row"], case["column"])


def test_error_deep_in_a_large_file_rolls_back_everything(dbs: Databases) -> None:
    good = apollo_csv(3000, 300)
    broken = (
        good
        + b"Ana,Broken,too,many,fields,here,x,y,z,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\r\n"
    )
    before = table_counts(dbs)
    with pytest.raises(UploadError, match="too many fields") as caught:
        upload(dbs, broken, "apollo-lead-enrichment")
    assert caught.value.row == 3002
    assert table_counts(dbs) == before


def test_messy_valid_file_keeps_every_row_at_full_fidelity(dbs: Databases) -> None:
    text = (
        "\ufeff"
        + "first name , LAST_NAME,Job Title,Company Name,Email Address,Company Website,LinkedIn\r\n"
        + 'Zoë,"O\'Neil","VP, Sales","Acme, Inc.",zoe@acme.com,HTTPS://WWW.Acme.COM/en-us,x\r\n'
        + 'José,Núñez,"Head of\r\nGrowth",Acme,jose@acme.com,acme.com.,\r\n'
        + ",,,,,,\r\n"
    )
    result = upload(dbs, text.encode("utf-8"), "apollo-lead-enrichment")
    assert (result.rows, result.blank_rows) == (2, 1)
    with dbs.hq.connection() as conn:
        batch = conn.execute(
            "SELECT source_headers FROM upload_batches WHERE id = %s", (result.batch_id,)
        ).fetchone()
        raw = conn.execute(
            "SELECT row_number, raw_values FROM raw_apollo_uploads WHERE batch_id = %s"
            " ORDER BY row_number",
            (result.batch_id,),
        ).fetchall()
        items = conn.execute(
            "SELECT first_name, title, company_name, website FROM batch_items"
            " WHERE batch_id = %s ORDER BY row_number",
            (result.batch_id,),
        ).fetchall()
    assert batch is not None and batch["source_headers"][0] == "first name "
    assert [r["row_number"] for r in raw] == [2, 3]
    assert raw[1]["raw_values"][2] == "Head of\r\nGrowth"
    assert items[0] == {
        "first_name": "Zoë",
        "title": "VP, Sales",
        "company_name": "Acme, Inc.",
        "website": "HTTPS://WWW.Acme.COM/en-us",
    }


def test_same_file_twice_gives_the_same_batch_unless_asked(dbs: Databases) -> None:
    data = apollo_csv(50, 10)
    first = upload(dbs, data, "apollo-lead-enrichment")
    again = upload(dbs, data, "apollo-lead-enrichment")
    forced = upload(dbs, data, "apollo-lead-enrichment", allow_duplicate=True)
    assert again.existing and again.batch_id == first.batch_id
    assert not forced.existing and forced.batch_id != first.batch_id


def test_unknown_play_is_refused(dbs: Databases) -> None:
    with pytest.raises(UploadError, match="unknown play 'nope'"):
        ingest_upload(dbs, io.BytesIO(apollo_csv(5, 2)), file_name="x.csv", play_name="nope")
