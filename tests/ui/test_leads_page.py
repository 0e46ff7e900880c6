"""The leads page's headline filter in a browser: people who used to work at the client's
customers, against a reference query written here."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from playwright.sync_api import Page, expect

from orchestrator.db.pool import Databases
from orchestrator.runtimes.service import LocalService
from support.browser import shoot, sign_in
from support.pipeline import apollo_csv, upload

PLAY = "apollo-lead-enrichment"
Matches = dict[UUID, set[str]]


def _past_employers(dbs: Databases) -> list[tuple[str, str]]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT company_name, company_domain, count(DISTINCT person_id) AS people"
            " FROM person_work_history WHERE NOT is_current AND company_domain IS NOT NULL"
            " GROUP BY 1, 2 ORDER BY people DESC, 1"
        ).fetchall()
    return [(str(r["company_name"]), str(r["company_domain"])) for r in rows]


def _expected(dbs: Databases, customers: dict[str, tuple[str | None, str | None]]) -> Matches:
    """Lead -> the customers (by the name the page shows) it has a past job at: by the
    customer's domain when it has one, else by its company name."""
    found: Matches = {}
    with dbs.hq.connection() as conn:
        for shown, (name, domain) in customers.items():
            rows = conn.execute(
                "SELECT DISTINCT fl.id FROM final_leads fl"
                " JOIN upload_batches b ON b.id = fl.batch_id"
                " JOIN person_work_history w ON w.person_id = fl.person_id AND NOT w.is_current"
                " WHERE b.client_name = 'acme' AND CASE WHEN %(domain)s::text IS NULL"
                "   THEN lower(w.company_name) = lower(%(name)s)"
                "   ELSE lower(w.company_domain) = %(domain)s END",
                {"name": name, "domain": domain},
            ).fetchall()
            for row in rows:
                found.setdefault(row["id"], set()).add(shown)
    return found


def _shown(page: Page) -> dict[UUID, str]:
    """Every lead row of every page the filter shows, with its matched customer."""
    shown: dict[UUID, str] = {}
    while True:
        for row in page.locator("tr[data-lead]").all():
            shown[UUID(row.get_attribute("data-lead") or "")] = row.get_by_test_id(
                "match"
            ).inner_text()
        following = page.get_by_role("link", name="Next page")
        if not following.count():
            return shown
        following.click()
        page.wait_for_load_state()


def test_the_alumni_filter_shows_exactly_the_matching_leads(
    page: Page,
    service: LocalService,
    dbs: Databases,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    batch = upload(dbs, apollo_csv(80, 20, seed=21), PLAY, client_name="acme").batch_id
    service.runtime.run_batch(batch, timeout=120)
    employers = _past_employers(dbs)
    assert len(employers) >= 4
    (by_name, _), (_, domain_only), (both_name, both_domain) = employers[:3]
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "Account Name,Website\n"
        f'"{by_name.upper()}, Inc.",\n'  # name only, written differently
        f",https://www.{domain_only}/about\n"  # domain only, as a URL
        f"{both_name},{both_domain}\n"
        "Nobody Works Here LLC,nobody-works-here.example\n",
        encoding="utf-8",
    )
    # The name each customer is shown by -> (name matched when it has no domain, domain).
    listed: dict[str, tuple[str | None, str | None]] = {
        by_name.upper() + ", Inc.": (by_name, None),
        domain_only: (None, domain_only),
        both_name: (both_name, both_domain),
        "Nobody Works Here LLC": (None, "nobody-works-here.example"),
    }
    expected = _expected(dbs, listed)
    assert expected and len(expected) < 80  # the filter keeps some leads, not all

    sign_in(page, service, "/ui/leads?client=acme")
    page.get_by_label("CSV of names and/or domains").set_input_files(customers)
    page.get_by_role("button", name="Upload customers").click()
    expect(page.get_by_role("status")).to_contain_text("4 customers")
    expect(page.get_by_test_id("alumni-count")).to_have_text(str(len(expected)))
    shoot(page, request, "alumni")

    shown = _shown(page)
    assert set(shown) == set(expected)
    for lead, customer in shown.items():
        assert customer in expected[lead], (lead, customer, expected[lead])
