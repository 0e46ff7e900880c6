"""The batches pages in a browser: sign in, upload through the form, watch the batch finish
without a reload, retry a failure group, download the leads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.browser import shoot, sign_in
from support.pipeline import apollo_csv


@pytest.fixture
def failing_service(dbs: Databases, local_settings: Settings) -> Iterator[LocalService]:
    """Clay answers half its rows with an error: some companies and people fail for good."""
    settings = local_settings.model_copy(update={"clay_max_attempts": 1})
    simulator = SimulatorConfig(callback_failure_rate=0.3, seed=5)
    with LocalService(settings, dbs, simulator=simulator) as running:
        yield running


def _scalar(dbs: Databases, sql: str, *params: object) -> int:
    with dbs.hq.connection() as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def test_upload_watch_retry_and_download(
    page: Page,
    failing_service: LocalService,
    dbs: Databases,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    service = failing_service
    sample = tmp_path / "leads-300.csv"
    sample.write_bytes(apollo_csv(300, 60, seed=11, underivable_fraction=0.03))

    sign_in(page, service)
    shoot(page, request, "batches-empty")
    page.get_by_label("CSV file").set_input_files(sample)
    page.get_by_label("Client").fill("acme")
    page.get_by_label("Hold for launch").uncheck()  # runs at once, without a forecast first
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/ui/batches/*")
    batch_id = page.url.split("/ui/batches/")[1].split("?")[0]
    loads = page.evaluate("performance.getEntriesByType('navigation').length")
    page.evaluate("window.__same_page = true")

    status = page.get_by_test_id("batch-status")
    expect(status).to_have_text("COMPLETED", timeout=120_000)
    # Still the page the upload led to: htmx swapped the fragment, nothing reloaded.
    assert page.evaluate("window.__same_page") is True
    assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
    shoot(page, request, "batch-completed")

    failed = "SELECT count(*) FROM workflow_states WHERE batch_id = %s AND status = 'FAILED'"
    assert _scalar(dbs, failed, batch_id) > 0
    # A group a retry can help: its Retry form is there, hidden until the group is opened.
    retryable = page.locator("form[action$='/retry']")
    group = page.get_by_test_id("failure-group").filter(has=retryable).first
    group.locator("summary").click()
    expect(group.get_by_role("table")).to_be_visible()
    group_step = group.locator("input[name=step]").input_value()
    group_reason = group.locator("input[name=reason]").input_value()
    in_group = (
        "SELECT count(*) FROM workflow_states WHERE batch_id = %s AND status = 'FAILED'"
        " AND step_name = %s AND COALESCE(meta->>'reason', 'error') = %s"
    )
    before = _scalar(dbs, in_group, batch_id, group_step, group_reason)
    assert before > 0
    shoot(page, request, "failure-group-open")
    group.get_by_role("button", name="Retry these").click()
    expect(page.get_by_role("status")).to_contain_text("retried")
    expect(page.get_by_test_id("batch-status")).to_have_text("COMPLETED", timeout=120_000)
    retried = (
        "SELECT count(*) FROM workflow_states WHERE batch_id = %s AND step_name = %s"
        " AND meta->>'previous_failure' = %s"
    )
    assert _scalar(dbs, retried, batch_id, group_step, group_reason) == before

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download leads CSV").click()
    body = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(body)))
    leads = _scalar(dbs, "SELECT count(*) FROM final_leads WHERE batch_id = %s", batch_id)
    assert leads > 0 and len(rows) == leads
    shoot(page, request, "batch-after-retry")
    page.get_by_role("link", name="Batches").first.click()
    expect(page.get_by_role("cell", name="leads-300.csv")).to_be_visible()
    shoot(page, request, "batches")


def test_a_bad_file_is_refused_with_its_row_and_column(
    page: Page,
    service: LocalService,
    dbs: Databases,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"First Name,Last Name\nAda,Lovelace\n")
    sign_in(page, service)
    page.get_by_label("CSV file").set_input_files(bad)
    page.get_by_label("Client").fill("acme")
    page.get_by_role("button", name="Upload", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("nothing was stored")
    shoot(page, request, "upload-refused")
    assert _scalar(dbs, "SELECT count(*) FROM upload_batches") == 0
