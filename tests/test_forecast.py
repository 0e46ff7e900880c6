"""The forecast (`enrich estimate`, `forecast_file`, `forecast_batch`) against what a real run of
the same file then creates and spends: companies, people, Clay calls, Actions and data credits,
what dedupe and reuse save. The forecast writes nothing, and refuses a bad file as the upload
does."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from conftest import DatabasePair
from entities.apollo_sample import write_csv
from entities.apollo_sample_data import APOLLO_HEADERS
from orchestrator.db.pool import Databases
from orchestrator.reports.summary import summarize
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from orchestrator.state.registry import DEFAULT_PLAY, clear_registry_cache
from orchestrator.upload.csv_reader import UploadError
from orchestrator.upload.forecast import Forecast, forecast_batch, forecast_file
from orchestrator.upload.ingest import Launch, ingest_upload
from support.cli import cli_env, enrich_argv
from support.pipeline import table_counts

COMPANY_STEP = "enrich_company_via_waterfall_in_clay"
PERSON_STEP = "enrich_person_via_waterfall_in_clay"
RATE = 10.0
# Rows written by hand after the generated ones: the shapes dedupe and normalization must agree
# on. Cells are by header; the rest stay blank.
HAND_ROWS: list[dict[str, str]] = [
    {"Email": "ann@forecast-alpha.com", "Website": "HTTPS://WWW.FORECAST-ALPHA.COM/en-us"},
    # The same company written another way, a person known only by LinkedIn.
    {
        "First Name": "Ben",
        "Person Linkedin Url": "https://www.linkedin.com/in/ben-forecast-1",
        "Website": "forecast-alpha.com.",
    },
    # Ann again: her address in capitals, the company's website bare.
    {"Email": "ANN@Forecast-Alpha.com", "Website": "forecast-alpha.com"},
    {"Email": "ann@forecast-alpha.com", "Website": "HTTPS://WWW.FORECAST-ALPHA.COM/en-us"},
    # Email-only rows: the company comes from the work address.
    {"First Name": "Cid", "Email": "cid@forecast-beta.io"},
    {"First Name": "Dee", "Email": "dee@forecast-beta.io"},
    # Only a free-mail address: no company, not enriched.
    {"First Name": "Eve", "Email": "eve@gmail.com"},
    # Neither email nor LinkedIn, twice: each row is a person of its own.
    {"First Name": "Fay", "Website": "www.forecast-delta.org"},
    {"First Name": "Fay", "Website": "www.forecast-delta.org"},
    # A free-mail address, yet a website: enriched, keyed by the address.
    {"First Name": "Gus", "Email": "gus@yahoo.com", "Website": "forecast-epsilon.co.uk/about"},
    {"First Name": "", "Last Name": "", "Email": "nobody@forecast-zeta.com"},
    {"First Name": "Hal", "Website": "https://www.linkedin.com/company/forecast-eta"},
]


def messy_csv(rows: int = 150, companies: int = 30, seed: int = 4) -> bytes:
    """`enrich sample`'s generator (messy websites, email-only rows, duplicates), then
    HAND_ROWS."""
    out = io.StringIO(newline="")
    write_csv(out, rows, companies, seed)
    writer = csv.writer(out, lineterminator="\r\n")
    for cells in HAND_ROWS:
        row = {"First Name": "Ann", "Last Name": "Forecast", **cells}
        writer.writerow([row.get(header, "") for header in APOLLO_HEADERS])
    return out.getvalue().encode()


@pytest.fixture
def priced(dbs: Databases) -> Iterator[None]:
    """Prices of data types the simulator always returns, so a run spends the ceiling; an
    Action of a fraction to show decimals are kept."""
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE db_driven_enrichment_workflows SET actions_per_run = 0.5,"
            ' callback_actions = 1, data_credits = \'{"employee_count": 1, "industry": 2}\''
            " WHERE workflow_slug = %s",
            (COMPANY_STEP,),
        )
        conn.execute(
            "UPDATE db_driven_enrichment_workflows SET actions_per_run = 2,"
            ' callback_actions = 1, data_credits = \'{"linkedin_url": 2, "work_history": 1}\''
            " WHERE workflow_slug = %s",
            (PERSON_STEP,),
        )
    clear_registry_cache()
    yield
    clear_registry_cache()


def _reuse_for(dbs: Databases, days: int) -> None:
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE db_driven_enrichment_workflows SET reuse_window_days = %s"
            " WHERE workflow_slug IN (%s, %s)",
            (days, COMPANY_STEP, PERSON_STEP),
        )
    clear_registry_cache()


def _forecast(dbs: Databases, data: bytes, client: str = "acme", **kw: Any) -> Forecast:
    return forecast_file(
        dbs,
        io.BytesIO(data),
        client_name=client,
        file_name="leads.csv",
        clay_rate_per_second=RATE,
        **kw,
    )


def _run(service: LocalService, data: bytes, client: str = "acme") -> dict[str, Any]:
    """Uploads the file, drives its batch to the end, and gives its summary."""
    batch = ingest_upload(
        service.dbs, io.BytesIO(data), file_name="leads.csv", client_name=client
    ).batch_id
    service.runtime.run_batch(batch, timeout=180)
    with service.dbs.hq.connection() as conn:
        summary = summarize(conn, batch).as_json()
    assert summary["status"] == "COMPLETED", summary
    return summary


def _normalize_failures(dbs: Databases, batch_id: str) -> dict[str, int]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT meta->>'reason' AS reason, count(*) AS n FROM workflow_states"
            " WHERE batch_id = %s AND step_name = 'normalize_all_core_values'"
            " AND status = 'FAILED' GROUP BY 1",
            (batch_id,),
        ).fetchall()
    return {str(r["reason"]): int(r["n"]) for r in rows}


def _calls(forecast: Forecast) -> dict[str, int]:
    return {s.entity_type: s.calls for s in forecast.steps if s.provider == "clay"}


def assert_spent_as_forecast(forecast: Forecast, summary: dict[str, Any]) -> None:
    assert forecast.rows == summary["items"]
    assert forecast.companies == summary["companies"]
    assert forecast.people == summary["people"]
    assert _calls(forecast) == summary["clay_calls"]
    assert float(forecast.credits_expected) == pytest.approx(summary["credits_spent"])
    assert float(forecast.actions_expected) == pytest.approx(summary["actions_spent"])
    assert float(forecast.data_credits_expected) == pytest.approx(summary["data_credits_spent"])
    assert float(forecast.saved_by_dedupe) == pytest.approx(summary["credits_saved_by_dedupe"])
    assert float(forecast.saved_by_reuse) == pytest.approx(summary["credits_saved_by_reuse"])
    assert forecast.reusable == summary["entities_reused"]


def test_the_forecast_of_a_messy_file_is_what_its_run_creates_and_spends(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    data = messy_csv()
    forecast = _forecast(dbs, data)

    # The hand-written rows: the forecast sees through their shapes as normalize and split do.
    assert forecast.invalid["freemail_only"] >= 1
    assert forecast.invalid["missing_name"] >= 1
    assert forecast.invalid["invalid_website"] >= 1
    assert forecast.items == forecast.rows - forecast.invalid_rows
    assert forecast.reusable == 0 and forecast.saved_by_reuse == 0
    company, person = forecast.steps
    assert (company.call_ceiling, person.call_ceiling) == (Decimal("4.5"), Decimal(6))
    assert forecast.credits_expected == company.calls * Decimal("4.5") + person.calls * 6
    assert forecast.clay_seconds == pytest.approx((company.calls + person.calls) / RATE)

    with LocalService(local_settings, dbs) as service:
        summary = _run(service, data)
    assert_spent_as_forecast(forecast, summary)
    assert _normalize_failures(dbs, summary["batch_id"]) == forecast.invalid


def test_reuse_is_forecast_as_the_run_reuses_and_only_for_the_same_client(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    _reuse_for(dbs, 30)
    first = messy_csv(rows=80, companies=20, seed=9)
    # Its first 80 generated rows are the first file's: those companies and people are known.
    second = messy_csv(rows=140, companies=20, seed=9)
    with LocalService(local_settings, dbs) as service:
        _run(service, first)
        forecast = _forecast(dbs, second)
        assert forecast.reusable > 0 and forecast.saved_by_reuse > 0
        assert _forecast(dbs, second, client="globex").reusable == 0
        assert _forecast(dbs, second, reuse=False).reusable == 0
        summary = _run(service, second)
    assert_spent_as_forecast(forecast, summary)


def test_a_held_batch_forecasts_as_its_file_and_the_forecast_writes_nothing(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    _reuse_for(dbs, 1)
    earlier = messy_csv(rows=60, companies=15, seed=2)
    with LocalService(local_settings, dbs) as service:
        ran = UUID(_run(service, earlier)["batch_id"])
    data = messy_csv(rows=90, companies=15, seed=2)
    held = _hold(dbs, data, reuse=True)
    no_reuse = _hold(dbs, data, reuse=False)
    before = table_counts(dbs)

    from_file = _forecast(dbs, data)
    from_batch = forecast_batch(dbs, held, clay_rate_per_second=RATE)
    assert from_file.reusable > 0
    assert _comparable(from_batch) == _comparable(from_file)
    assert from_batch.as_of < from_file.as_of  # the upload's time, not now
    unreused = forecast_batch(dbs, no_reuse, clay_rate_per_second=RATE)
    assert _comparable(unreused) == _comparable(_forecast(dbs, data, reuse=False))
    assert unreused.reusable == 0 and not unreused.reuse
    assert table_counts(dbs) == before

    # A batch's own results are not reusable to it, though they are to a file of it.
    assert _forecast(dbs, earlier).reusable > 0
    assert forecast_batch(dbs, ran, clay_rate_per_second=RATE).reusable == 0
    # As of its upload: a batch uploaded two days after the results, with a window of one
    # day, reuses none of them.
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE upload_batches SET created_at = created_at + interval '2 days' WHERE id = %s",
            (held,),
        )
    assert forecast_batch(dbs, held, clay_rate_per_second=RATE).reusable == 0


def _hold(dbs: Databases, data: bytes, *, reuse: bool) -> UUID:
    return ingest_upload(
        dbs,
        io.BytesIO(data),
        file_name="leads.csv",
        client_name="acme",
        allow_duplicate=True,
        launch=Launch(hold=True, reuse=reuse),
    ).batch_id


def _comparable(forecast: Forecast) -> dict[str, Any]:
    return {k: v for k, v in forecast.as_json().items() if k != "as_of"}


def test_a_forecast_of_a_batch_that_does_not_exist_says_so(dbs: Databases) -> None:
    with pytest.raises(LookupError, match="no upload batch"):
        forecast_batch(dbs, UUID(int=7), clay_rate_per_second=RATE)


def _estimate(
    db_urls: DatabasePair, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        enrich_argv("estimate", *args),
        env=cli_env(tmp_path / "home", db_urls),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_enrich_estimate_prints_the_forecast_and_stores_nothing(
    dbs: Databases, db_urls: DatabasePair, tmp_path: Path, priced: None
) -> None:
    path = tmp_path / "messy.csv"
    path.write_bytes(messy_csv())
    before = table_counts(dbs)

    done = _estimate(db_urls, tmp_path, str(path), "--client", "acme", "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    expected = _forecast(dbs, path.read_bytes()).as_json()
    for differs in ("as_of", "file_name"):
        del printed[differs], expected[differs]
    assert printed == expected
    assert {"items", "companies", "people", "reusable", "credits_expected"} <= printed.keys()
    assert {"credits_saved", "clay_seconds", "workflows", "clay_rate_per_second"} <= printed.keys()

    table = _estimate(db_urls, tmp_path, str(path), "--client", "acme", "--no-reuse")
    assert table.returncode == 0, table.stderr
    for words in ("unique companies", "unique people", "credits expected", "Clay time"):
        assert words in table.stdout
    assert f"{expected['companies']:,}" in table.stdout
    assert table_counts(dbs) == before


@pytest.mark.parametrize(
    "content",
    [b"First Name;Last Name;Website\nAda;Lovelace;x.com\n", b"First Name,Website\n", b""],
    ids=["semicolons", "no-data-rows", "empty"],
)
def test_enrich_estimate_of_a_bad_file_is_one_line_exit_2_and_stores_nothing(
    dbs: Databases, db_urls: DatabasePair, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(UploadError) as refused:
        ingest_upload(dbs, io.BytesIO(content), file_name="broken.csv", play_name=DEFAULT_PLAY)
    before = table_counts(dbs)

    done = _estimate(db_urls, tmp_path, str(path))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: broken.csv: ")
    # The upload's own message, word for word.
    assert str(refused.value) in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert table_counts(dbs) == before
