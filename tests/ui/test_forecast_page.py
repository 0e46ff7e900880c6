"""Upload held, read the forecast, launch: in a browser. A held batch sends nothing until its
Launch; a batch that is not held is not launched again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from playwright.sync_api import Page, expect

from orchestrator.db.pool import Databases
from orchestrator.runtimes.service import LocalService
from orchestrator.state.credit_caps import set_client_cap
from orchestrator.upload.forecast import forecast_batch
from orchestrator.upload.ingest import Launch
from support.browser import shoot, sign_in
from support.pipeline import apollo_csv, upload


def _scalar(dbs: Databases, sql: str, *params: object) -> int:
    with dbs.hq.connection() as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def _post_form(page: Page, action: str, token: str | None = None) -> None:
    """Sends a form to `action` from the page, with the page's CSRF token unless `token`."""
    page.evaluate(
        """([action, token]) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            const field = document.querySelector("input[name=csrf_token]").cloneNode();
            if (token !== null) field.value = token;
            form.appendChild(field);
            document.body.appendChild(form);
            form.submit();
        }""",
        [action, token],
    )


def _number(value: object) -> str:
    return f"{value:,}"


def test_upload_held_read_the_forecast_and_launch(
    page: Page,
    service: LocalService,
    dbs: Databases,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    sample = tmp_path / "leads-120.csv"
    sample.write_bytes(apollo_csv(120, 25, seed=13, underivable_fraction=0.05))

    sign_in(page, service)
    hold = page.get_by_label("Hold for launch")
    expect(hold).to_be_checked()
    page.get_by_label("CSV file").set_input_files(sample)
    page.get_by_label("Client").fill("acme")
    shoot(page, request, "upload-form")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/ui/batches/*")
    batch_id = UUID(page.url.split("/ui/batches/")[1].split("?")[0])

    expect(page.get_by_role("status")).to_contain_text("held")
    expect(page.get_by_test_id("batch-status")).to_have_text("HELD")
    forecast = forecast_batch(
        dbs, batch_id, clay_rate_per_second=service.runtime.settings.clay_rate_per_second
    )
    shown = page.get_by_test_id("forecast")
    expect(shown.get_by_test_id("forecast-companies")).to_have_text(_number(forecast.companies))
    expect(shown.get_by_test_id("forecast-people")).to_have_text(_number(forecast.people))
    expect(shown.get_by_test_id("forecast-reusable")).to_have_text("0")
    expect(shown.get_by_test_id("forecast-credits")).to_have_text(
        _number(int(forecast.credits_expected))
    )
    expect(shown.get_by_test_id("forecast-step")).to_have_count(2)
    expect(shown).to_contain_text("Actions")
    expect(shown).to_contain_text("data credits")
    expect(shown).to_contain_text("will not be enriched")
    shoot(page, request, "forecast")
    # Held: nothing normalized, nothing sent.
    assert _scalar(dbs, "SELECT count(*) FROM entity_dispatches") == 0
    assert _scalar(dbs, "SELECT count(*) FROM normalized_companies") == 0

    # A launch without the session's CSRF token is refused and launches nothing.
    _post_form(page, f"/ui/batches/{batch_id}/launch", token="forged")
    expect(page.get_by_role("heading", name="Action refused")).to_be_visible()
    assert _scalar(dbs, "SELECT count(*) FROM upload_batches WHERE status = 'HELD'") == 1
    page.go_back()

    reuse = page.get_by_label("Reuse this client's fresh results")
    expect(reuse).to_be_checked()
    # Unticked, the batch calls for every entity: the launch records it.
    reuse.uncheck()
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("status")).to_contain_text("Launched")
    assert _scalar(dbs, "SELECT count(*) FROM upload_batches WHERE NOT reuse_results") == 1
    expect(page.get_by_test_id("batch-status")).to_have_text("COMPLETED", timeout=120_000)
    expect(page.get_by_test_id("forecast")).to_have_count(0)
    assert _scalar(dbs, "SELECT count(*) FROM normalized_companies") == forecast.companies
    assert _scalar(dbs, "SELECT count(*) FROM normalized_people") == forecast.people
    page.reload()
    shoot(page, request, "launched-completed")

    # The same form again, to a batch that is not held: refused, with a page that says why.
    _post_form(page, f"/ui/batches/{batch_id}/launch")
    expect(page.get_by_role("heading", name="Not launched")).to_be_visible()
    expect(page.get_by_text("not waiting for a launch")).to_be_visible()
    shoot(page, request, "launch-refused")
    assert _scalar(dbs, "SELECT count(*) FROM upload_batches WHERE status = 'COMPLETED'") == 1


def test_the_forecast_warns_when_a_cap_stops_the_batch_before_its_end(
    page: Page, service: LocalService, dbs: Databases, request: pytest.FixtureRequest
) -> None:
    launch = Launch(hold=True, credit_cap=Decimal(50))
    batch = upload(dbs, apollo_csv(120, 25, seed=14), "apollo-lead-enrichment", launch=launch)
    with dbs.hq.connection() as conn:
        set_client_cap(conn, "default", Decimal(100_000))
    sign_in(page, service)
    page.goto(f"{service.server.url}/ui/batches/{batch.batch_id}")
    caps = page.get_by_test_id("credit-cap")
    expect(caps).to_have_count(2)
    expect(caps.nth(0)).to_contain_text("This batch has a credit cap of 50 credits")
    expect(caps.nth(0)).to_contain_text(f"enrich budget --batch {batch.batch_id} --credits N")
    expect(caps.nth(1)).to_contain_text("this batch fits under it")
    shoot(page, request, "forecast-with-caps")
