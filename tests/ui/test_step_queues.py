"""The step-queue page ("Manual GTM Enrichment Stages") and the company pipeline, in a browser."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from playwright.sync_api import Page, expect

from orchestrator.db.pool import Databases
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.browser import shoot, sign_in
from support.pipeline import add_normalize_split_play, apollo_csv, upload

PLAY = "company-research"
# Ready for step N: completed the play's previous company step (if any) and not step N.
READY_SQL = """
SELECT count(*) AS n FROM normalized_companies c
WHERE (%(previous)s::int IS NULL OR EXISTS (
        SELECT 1 FROM company_play_step_completions x WHERE x.company_id = c.id
        AND x.play_name = %(play)s AND x.step_number = %(previous)s))
  AND NOT EXISTS (
        SELECT 1 FROM company_play_step_completions x WHERE x.company_id = c.id
        AND x.play_name = %(play)s AND x.step_number = %(step)s)
"""


def _ready(dbs: Databases, step: int, previous: int | None) -> int:
    with dbs.hq.connection() as conn:
        row = conn.execute(READY_SQL, {"play": PLAY, "step": step, "previous": previous}).fetchone()
    assert row is not None
    return int(row["n"])


def _ids(dbs: Databases, sql: str) -> set[UUID]:
    with dbs.hq.connection() as conn:
        return {r["company_id"] for r in conn.execute(sql, {"play": PLAY})}  # type: ignore[arg-type]


@pytest.fixture
def companies_service(dbs: Databases, local_settings: Settings) -> Iterator[LocalService]:
    """Twelve companies (a batch through normalize and split), and a second step in the play
    after its homepage scrape: companies scraped become ready for Clay."""
    batch = upload(dbs, apollo_csv(60, 12, seed=8), add_normalize_split_play(dbs)).batch_id
    with dbs.hq.connection() as conn:
        conn.execute(
            "INSERT INTO play_steps VALUES (%s, 2, 'enrich_company_via_waterfall_in_clay')", (PLAY,)
        )
    with LocalService(local_settings, dbs) as running:
        running.runtime.run_batch(batch, timeout=60)
        yield running


def test_running_a_step_moves_exactly_the_chosen_companies(
    page: Page, companies_service: LocalService, dbs: Databases, request: pytest.FixtureRequest
) -> None:
    sign_in(page, companies_service, f"/ui/plays/{PLAY}?step=1")
    pill1, pill2 = page.get_by_test_id("pill-1"), page.get_by_test_id("pill-2")
    assert pill1.get_attribute("data-ready") == str(_ready(dbs, 1, None)) == "12"
    assert pill2.get_attribute("data-ready") == str(_ready(dbs, 2, 1)) == "0"
    shoot(page, request, "queue-before")

    boxes = page.locator("input[name=company]")
    chosen = {UUID(boxes.nth(i).get_attribute("value") or "") for i in range(3)}
    for i in range(3):
        boxes.nth(i).check()
    page.get_by_role("button", name="Run step 1 on selected").click()
    expect(page.get_by_test_id("credits")).to_have_text("3 credits")
    shoot(page, request, "confirm-run")
    page.get_by_role("button", name="Run step 1 for 3").click()

    expect(page.get_by_test_id("pill-1")).to_have_attribute("data-ready", "9", timeout=60_000)
    expect(page.get_by_test_id("pill-2")).to_have_attribute("data-ready", "3", timeout=60_000)
    assert _ready(dbs, 1, None) == 9 and _ready(dbs, 2, 1) == 3
    done = "SELECT company_id FROM company_play_step_completions WHERE play_name = %(play)s"
    assert _ids(dbs, done) == chosen
    logged = (
        "SELECT company_id FROM enrichment_results_log"
        " WHERE play_name = %(play)s AND status = 'success'"
    )
    assert _ids(dbs, logged) == chosen
    shoot(page, request, "queue-after")

    first = sorted(chosen)[0]
    page.goto(f"{companies_service.server.url}/ui/companies/{first}")
    expect(page.get_by_test_id(f"completed-{PLAY}")).to_have_text("1 / 2 steps completed")
    expect(page.get_by_text("company_homepage_scrapes")).to_be_visible()
    shoot(page, request, "company-pipeline")
    page.get_by_role("link", name="Workflows").click()
    expect(page.get_by_role("cell", name="valid").first).to_be_visible()
    shoot(page, request, "workflows")
