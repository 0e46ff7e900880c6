"""Credits are money: a client's fresh results are reused instead of bought again (never across
clients, never past the window, never a FAILED or empty answer), the ledger matches what Clay
bills, and a credit cap stops sending at the cap without losing anything."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
import requests

from entities.apollo_sample import APOLLO_HEADERS, SampleRow
from orchestrator.db.pool import Databases
from orchestrator.engine.recovery import launch_batch
from orchestrator.providers.simulators.clay import ClayPrice, SimulatorConfig
from orchestrator.reports import integrity
from orchestrator.reports.credits import batch_credits
from orchestrator.reports.queues import company_pipelines
from orchestrator.reports.verify import verify_batch
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from orchestrator.state.credit_caps import set_batch_cap, set_client_cap
from orchestrator.state.registry import WorkflowConfig, clear_registry_cache
from orchestrator.upload.ingest import Launch
from support.faults import rows, scalar, wait_until
from support.pipeline import apollo_rows, upload

PLAY = "apollo-lead-enrichment"
COMPANY = "enrich_company_via_waterfall_in_clay"
PERSON = "enrich_person_via_waterfall_in_clay"
# Priced on data types the simulator always returns, and one it does not always (email).
PRICES = {
    COMPANY: ClayPrice(Decimal(1), Decimal(1), {"industry": Decimal("1.5")}),
    PERSON: ClayPrice(Decimal(2), Decimal(1), {"email": Decimal(3), "work_history": Decimal(1)}),
}
LEAD_COLUMNS = (
    "email, full_name, title, seniority, email_verified, linkedin_url, company_name,"
    " company_domain, company_linkedin_url, company_industry, company_employee_count,"
    " company_founded_year, company_hq_city, company_hq_country, company_revenue_range"
)


@pytest.fixture
def priced(dbs: Databases) -> Iterator[None]:
    """The seed workflows at PRICES, reusing results of the last 30 days."""
    with dbs.hq.connection() as conn:
        for slug, price in PRICES.items():
            conn.execute(
                "UPDATE db_driven_enrichment_workflows SET actions_per_run = %s,"
                " callback_actions = %s, data_credits = %s::jsonb, reuse_window_days = 30"
                " WHERE workflow_slug = %s",
                (
                    price.actions_per_run,
                    price.callback_actions,
                    _json(price.data_credits),
                    slug,
                ),
            )
    clear_registry_cache()
    yield
    clear_registry_cache()


def _json(prices: dict[str, Decimal] | Any) -> str:
    return "{" + ", ".join(f'"{k}": {v}' for k, v in prices.items()) + "}"


def _csv(sample: Iterable[SampleRow]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(APOLLO_HEADERS)
    for row in sample:
        writer.writerow(row.values)
    return buffer.getvalue().encode()


def _two_weeks_of_files() -> tuple[bytes, bytes]:
    """Two files of one client whose companies (with all their rows) overlap by 40%."""
    sample = apollo_rows(240, 50, seed=11)
    domains = sorted({r.expected_domain for r in sample if r.expected_domain})
    first = set(domains[:30])
    second = set(domains[18:48])  # 12 of 30 shared
    week1 = [r for r in sample if r.expected_domain in first]
    week2 = [r for r in sample if r.expected_domain in second]
    return _csv(week1), _csv(week2)


def _simulator() -> SimulatorConfig:
    return SimulatorConfig(prices=PRICES)


def _run(
    dbs: Databases,
    settings: Settings,
    data: bytes,
    client: str,
    *,
    reuse: bool = True,
    days_later: int = 0,
    simulator: SimulatorConfig | None = None,
) -> tuple[UUID, dict[str, Any]]:
    """Upload held, move the upload `days_later` days on (simulated time), launch and run it;
    the batch and the simulator's figures."""
    launch = Launch(hold=True, reuse=reuse)
    batch = upload(dbs, data, PLAY, client_name=client, allow_duplicate=True, launch=launch)
    with dbs.hq.connection() as conn:
        conn.execute(
            "UPDATE upload_batches SET created_at = created_at + make_interval(days => %s)"
            " WHERE id = %s",
            (days_later, batch.batch_id),
        )
    with LocalService(settings, dbs, simulator=simulator or _simulator()) as service:
        launch_batch(dbs, batch.batch_id)
        service.runtime.run_batch(batch.batch_id, timeout=180)
        assert service.simulator is not None
        assert service.simulator.wait_idle(30)
        stats = service.simulator.stats()
    assert [c.name for c in verify_batch(dbs, batch.batch_id) if not c.passed] == []
    return batch.batch_id, stats


def _leads(dbs: Databases, batch: UUID) -> list[dict[str, Any]]:
    return rows(
        dbs,
        f"SELECT {LEAD_COLUMNS} FROM final_leads WHERE batch_id = %s"
        " ORDER BY email, linkedin_url, full_name",
        batch,
    )


def _new_entities(dbs: Databases, earlier: UUID, batch: UUID) -> int:
    """Entities of `batch` whose key the earlier batch did not have: what must be called."""
    companies = scalar(
        dbs,
        "SELECT count(*) FROM normalized_companies c WHERE c.batch_id = %s AND NOT EXISTS ("
        " SELECT 1 FROM normalized_companies o WHERE o.batch_id = %s AND o.domain = c.domain)",
        batch,
        earlier,
    )
    people = scalar(
        dbs,
        "SELECT count(*) FROM normalized_people p WHERE p.batch_id = %s AND NOT EXISTS ("
        " SELECT 1 FROM normalized_people o WHERE o.batch_id = %s"
        " AND o.dedupe_key = p.dedupe_key AND p.dedupe_key NOT LIKE 'item:%%')",
        batch,
        earlier,
    )
    return int(companies) + int(people)


def _entities(dbs: Databases, batch: UUID) -> int:
    return int(
        scalar(
            dbs,
            "SELECT (SELECT count(*) FROM normalized_companies WHERE batch_id = %s)"
            " + (SELECT count(*) FROM normalized_people WHERE batch_id = %s)",
            batch,
            batch,
        )
    )


def _reuse_price(dbs: Databases, batch: UUID) -> Decimal:
    """What the reused results cost when they were bought: their Actions and data credits."""
    value = scalar(
        dbs,
        "SELECT COALESCE(sum(w.actions_per_run + w.callback_actions"
        " + data_credits_for(w.data_credits, v.data)), 0)"
        " FROM (SELECT s.workflow_slug, r.data FROM company_workflow_states s"
        "       JOIN normalized_companies c ON c.id = s.company_id"
        "       JOIN company_enrichment_results r ON r.id = s.reused_result_id"
        "       WHERE c.batch_id = %s"
        "       UNION ALL SELECT s.workflow_slug, r.data FROM person_workflow_states s"
        "       JOIN normalized_people p ON p.id = s.person_id"
        "       JOIN person_enrichment_results r ON r.id = s.reused_result_id"
        "       WHERE p.batch_id = %s) v"
        " JOIN db_driven_enrichment_workflows w ON w.workflow_slug = v.workflow_slug",
        batch,
        batch,
    )
    return Decimal(value)


def test_a_client_s_second_week_sends_only_what_is_new_and_leads_match_a_fresh_run(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    week1, week2 = _two_weeks_of_files()
    first, _ = _run(dbs, local_settings, week1, "acme")
    second, stats = _run(dbs, local_settings, week2, "acme", days_later=7)

    new = _new_entities(dbs, first, second)
    reused = scalar(
        dbs,
        "SELECT (SELECT count(*) FROM company_workflow_states s JOIN normalized_companies c"
        " ON c.id = s.company_id WHERE c.batch_id = %s AND s.reused_result_id IS NOT NULL)"
        " + (SELECT count(*) FROM person_workflow_states s JOIN normalized_people p"
        " ON p.id = s.person_id WHERE p.batch_id = %s AND s.reused_result_id IS NOT NULL)",
        second,
        second,
    )
    assert reused > 40  # the 12 shared companies and their people
    assert stats["accepted"] == new  # provider calls, counted at the simulator
    with dbs.hq.connection() as conn:
        credits = batch_credits(conn, [second])[second]
    assert credits.reused == reused
    assert credits.saved_by_reuse == _reuse_price(dbs, second) > 0
    # Items of a reused entity say where its result came from.
    meta = rows(
        dbs,
        "SELECT meta->'reused_from' AS source FROM workflow_states"
        " WHERE batch_id = %s AND step_name = %s AND meta ? 'reused_from' LIMIT 1",
        second,
        COMPANY,
    )[0]["source"]
    assert meta["batch_id"] == str(first) and UUID(meta["result_id"])

    fresh, fresh_stats = _run(dbs, local_settings, week2, "acme", reuse=False, days_later=7)
    assert fresh_stats["accepted"] == new + reused
    assert _leads(dbs, second) == _leads(dbs, fresh)

    other, other_stats = _run(dbs, local_settings, week2, "globex", days_later=7)
    assert other_stats["accepted"] == new + reused  # never across clients
    assert (
        scalar(
            dbs, "SELECT count(*) FROM credit_ledger WHERE batch_id = %s AND entry = 'reuse'", other
        )
        == 0
    )


def test_results_older_than_the_window_failed_or_empty_are_never_reused(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    week1, week2 = _two_weeks_of_files()
    # Every answer of the first batch finds nothing.
    empty_answers = SimulatorConfig(prices=PRICES, no_result_rate=1.0)
    first, _ = _run(dbs, local_settings, week1, "acme", simulator=empty_answers)
    assert not scalar(
        dbs,
        "SELECT count(*) FROM person_enrichment_results r JOIN normalized_people p"
        " ON p.id = r.person_id WHERE p.batch_id = %s AND result_has_data(r.data)",
        first,
    )
    second, stats = _run(dbs, local_settings, week2, "acme", days_later=1)
    assert stats["accepted"] == _entities(dbs, second), "no empty answer may be reused"

    # A good first batch, then one 31 days later: past the 30-day window, all is sent again.
    good, _ = _run(dbs, local_settings, week1, "initech")
    late, late_stats = _run(dbs, local_settings, week1, "initech", days_later=31)
    everything = _entities(dbs, late)
    assert late_stats["accepted"] == everything
    # Within the window, with --no-reuse, everything is sent too.
    _, no_reuse = _run(dbs, local_settings, week1, "initech", reuse=False, days_later=2)
    assert no_reuse["accepted"] == everything
    assert good != late


def test_failed_answers_are_never_reused(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    week1, _ = _two_weeks_of_files()
    failing = SimulatorConfig(prices=PRICES, callback_failure_rate=1.0)
    first, _ = _run_failing(dbs, local_settings, week1, failing)
    with LocalService(local_settings, dbs, simulator=_simulator()) as service:
        second = upload(dbs, week1, PLAY, client_name="acme", allow_duplicate=True).batch_id
        service.runtime.run_batch(second, timeout=180)
        assert service.simulator is not None
        accepted = service.simulator.stats()["accepted"]
    assert accepted == _entities(dbs, second)  # every entity was called again
    assert (
        scalar(
            dbs,
            "SELECT count(*) FROM credit_ledger WHERE batch_id = %s AND entry = 'reuse'",
            second,
        )
        == 0
    )
    assert first != second


def _run_failing(
    dbs: Databases, settings: Settings, data: bytes, simulator: SimulatorConfig
) -> tuple[UUID, dict[str, Any]]:
    batch = upload(dbs, data, PLAY, client_name="acme", allow_duplicate=True).batch_id
    quick = settings.model_copy(update={"clay_max_attempts": 1})
    with LocalService(quick, dbs, simulator=simulator) as service:
        service.runtime.run_batch(batch, timeout=180)
        assert service.simulator is not None
        service.simulator.wait_idle(30)
        return batch, service.simulator.stats()


def test_the_ledger_equals_what_the_simulator_billed_and_empty_answers_cost_no_data_credits(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    week1, _ = _two_weeks_of_files()
    simulator = SimulatorConfig(prices=PRICES, no_result_rate=0.3, seed=5)
    batch, stats = _run(dbs, local_settings, week1, "acme", simulator=simulator)
    billing = stats["billing"]
    assert billing["no_result_answers"] > 0
    with dbs.hq.connection() as conn:
        credits = batch_credits(conn, [batch])[batch]
    assert credits.actions == Decimal(billing["actions"])
    assert credits.data_credits == Decimal(billing["data_credits"])
    # An empty answer: its Actions (run and callback), no data credits.
    empty = rows(
        dbs,
        "SELECT l.entry, l.actions, l.data_credits FROM credit_ledger l"
        " JOIN person_enrichment_results r ON r.dispatch_id = l.dispatch_id"
        " WHERE l.batch_id = %s AND NOT result_has_data(r.data) ORDER BY l.entry",
        batch,
    )
    assert empty
    for row in empty:
        price = PRICES[PERSON]
        expected = price.actions_per_run if row["entry"] == "run" else price.callback_actions
        assert (row["actions"], row["data_credits"]) == (expected, 0)


def test_a_credit_cap_stops_sending_at_the_cap_and_raising_it_loses_nothing(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    week1, _ = _two_weeks_of_files()
    cap = Decimal(100)
    launch = Launch(credit_cap=cap)
    batch = upload(dbs, week1, PLAY, client_name="acme", launch=launch).batch_id
    with LocalService(local_settings, dbs, simulator=_simulator()) as service:
        service.runtime.run_batch(batch, timeout=180)
        progress = service.runtime.progress(batch)
    assert progress.stopped_by_hold and "credit cap of 100" in next(iter(progress.held.values()))
    with dbs.hq.connection() as conn:
        spent = batch_credits(conn, [batch])[batch].spent
    ceiling = max(
        p.actions_per_run + p.callback_actions + sum(p.data_credits.values())
        for p in PRICES.values()
    )
    assert cap - ceiling < spent <= cap

    with dbs.hq.connection() as conn:
        set_batch_cap(conn, batch, None)
    with LocalService(local_settings, dbs, simulator=_simulator()) as service:
        service.runtime.run_batch(batch, timeout=180)
    assert [c.name for c in verify_batch(dbs, batch) if not c.passed] == []
    calls = scalar(
        dbs,
        "SELECT count(*) FROM entity_dispatches WHERE batch_id = %s AND status <> 'SUPERSEDED'",
        batch,
    )
    assert calls == _entities(dbs, batch)  # each entity called once: nothing lost or twice


def test_the_api_holds_launches_and_caps_a_batch(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    week1, _ = _two_weeks_of_files()
    with LocalService(local_settings, dbs, simulator=_simulator()) as service:
        base, key = service.server.url, {"x-api-key": service.runtime.api_key}
        made = requests.post(
            f"{base}/batches",
            files={"file": ("week1.csv", week1, "text/csv")},
            data={"client": "acme", "hold": "true", "credit_cap": "60"},
            headers=key,
            timeout=30,
        )
        assert made.status_code == 201 and made.json()["held"] is True, made.text
        batch = made.json()["batch_id"]
        time.sleep(1.0)  # a pass ran for it (the upload asked for one): it sent nothing
        assert scalar(dbs, "SELECT count(*) FROM entity_dispatches WHERE batch_id = %s", batch) == 0
        status = requests.get(f"{base}/batches/{batch}", headers=key, timeout=10).json()
        assert status["status"] == "HELD" and status["credits"]["credits_spent"] == 0

        refused = requests.put(
            f"{base}/batches/{batch}/credit-cap", json={"credits": -1}, headers=key, timeout=10
        )
        assert refused.status_code == 422
        unknown = requests.post(f"{base}/batches/{uuid4()}/launch", headers=key, timeout=10)
        assert unknown.status_code == 404, unknown.text

        launched = requests.post(f"{base}/batches/{batch}/launch", headers=key, timeout=10)
        assert launched.status_code == 200, launched.text
        again = requests.post(f"{base}/batches/{batch}/launch", headers=key, timeout=10)
        assert again.status_code == 409 and "launched already" in again.json()["detail"]

        def held() -> bool:
            answer = requests.get(f"{base}/batches/{batch}", headers=key, timeout=10).json()
            return bool(answer["held"]) and "credit cap of 60" in str(answer["held"])

        wait_until(held, timeout=60)
        raised = requests.put(
            f"{base}/batches/{batch}/credit-cap", json={"credits": None}, headers=key, timeout=10
        )
        assert raised.status_code == 200, raised.text

        def done() -> bool:
            answer = requests.get(f"{base}/batches/{batch}", headers=key, timeout=10).json()
            return answer["status"] == "COMPLETED"

        wait_until(done, timeout=120)
        final = requests.get(f"{base}/batches/{batch}", headers=key, timeout=10).json()
    assert final["credits"]["credits_spent"] > 60 and not final["held"]
    assert [c.name for c in verify_batch(dbs, UUID(batch)) if not c.passed] == []


def _capped_run(
    dbs: Databases, settings: Settings, data: bytes, cap: Decimal, simulator: SimulatorConfig
) -> tuple[UUID, Decimal]:
    batch = upload(dbs, data, PLAY, client_name="acme", launch=Launch(credit_cap=cap)).batch_id
    with LocalService(settings, dbs, simulator=simulator) as service:
        service.runtime.run_batch(batch, timeout=180)
        assert service.simulator is not None
        service.simulator.wait_idle(30)
    with dbs.hq.connection() as conn:
        return batch, batch_credits(conn, [batch])[batch].spent


CEILING = max(
    p.actions_per_run + p.callback_actions + sum(p.data_credits.values()) for p in PRICES.values()
)


def test_a_cap_holds_when_many_chunks_are_sent_at_once(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    """Four senders claim chunks of one batch at the same moment: together they stay within
    the cap, each counting what the one before it claimed."""
    data = _csv(apollo_rows(3000, 200, seed=3))
    _, spent = _capped_run(dbs, local_settings, data, Decimal(100), _simulator())
    assert Decimal(100) - CEILING < spent <= Decimal(100)


def test_a_batch_at_its_cap_goes_on_when_answers_cost_less_than_their_most(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    """Sending stops while the calls in flight could still cost up to the cap; answers that
    found nothing cost less, and the batch spends the room they leave, up to the cap."""
    week1, _ = _two_weeks_of_files()
    empty = SimulatorConfig(prices=PRICES, no_result_rate=1.0)
    batch, spent = _capped_run(dbs, local_settings, week1, Decimal(60), empty)
    assert Decimal(60) - CEILING < spent <= Decimal(60)
    assert scalar(dbs, "SELECT count(*) FROM budget_holds WHERE batch_id = %s", batch) == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actions_per_run", "'NaN'"),
        ("actions_per_run", "-1"),
        ("callback_actions", "1e6"),
        ("data_credits", """'{"industry": 1e308}'"""),
        ("data_credits", """'{"industry": -2}'"""),
        ("data_credits", """'{"industry": "2"}'"""),
        ("reuse_window_days", "100000000"),
        ("reuse_window_days", "0"),
    ],
)
def test_prices_a_call_could_not_be_billed_at_are_refused(
    dbs: Databases, column: str, value: str
) -> None:
    """A price the ledger could not hold would make storing every answer fail."""
    with dbs.hq.connection() as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            f"UPDATE db_driven_enrichment_workflows SET {column} = {value}"
            " WHERE workflow_slug = %s",
            (COMPANY,),
        )


def test_a_client_cap_covers_the_client_whatever_spaces_surround_its_name(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    with dbs.hq.connection() as conn:
        set_client_cap(conn, "acme", Decimal(10))
    week1, _ = _two_weeks_of_files()
    batch = upload(dbs, week1, PLAY, client_name="  acme ").batch_id
    with LocalService(local_settings, dbs, simulator=_simulator()) as service:
        service.runtime.run_batch(batch, timeout=180)
    assert scalar(dbs, "SELECT client_name FROM upload_batches WHERE id = %s", batch) == "acme"
    with dbs.hq.connection() as conn:
        assert batch_credits(conn, [batch])[batch].spent <= 10


def test_a_cap_left_out_of_the_request_is_not_a_cap_removed(
    dbs: Databases, local_settings: Settings
) -> None:
    week1, _ = _two_weeks_of_files()
    batch = upload(dbs, week1, PLAY, launch=Launch(hold=True, credit_cap=Decimal(5))).batch_id
    with LocalService(local_settings, dbs, simulator=_simulator()) as service:
        base, key = service.server.url, {"x-api-key": service.runtime.api_key}
        for body in ({}, {"credit": 5}, {"credits": "lots"}, {"credits": 1e12}):
            answer = requests.put(
                f"{base}/batches/{batch}/credit-cap", json=body, headers=key, timeout=10
            )
            assert answer.status_code == 422, (body, answer.text)
        # JSON has no NaN, but Python's parser takes one: refused, not a server error.
        for text in ('{"credits": NaN}', '{"credits": Infinity}', '{"credits": 1e400}'):
            answer = requests.put(
                f"{base}/batches/{batch}/credit-cap",
                data=text,
                headers=key | {"content-type": "application/json"},
                timeout=10,
            )
            assert answer.status_code == 422, (text, answer.text)
        blank = requests.put(
            f"{base}/clients/%20/credit-cap", json={"credits": 5}, headers=key, timeout=10
        )
        assert blank.status_code == 422
    assert scalar(dbs, "SELECT credit_cap FROM upload_batches WHERE id = %s", batch) == 5


def test_a_client_cap_holds_for_two_runners_sending_its_batches_at_once(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    """Two processes (two runtimes here) send two batches of one client at the same moment:
    together they stay within the client's cap."""
    with dbs.hq.connection() as conn:
        set_client_cap(conn, "acme", Decimal(300))
    batches = [
        upload(dbs, _csv(apollo_rows(3000, 200, seed=s)), PLAY, client_name="acme").batch_id
        for s in (21, 22)
    ]
    errors: list[BaseException] = []

    def run(batch: UUID) -> None:
        try:
            with LocalService(local_settings, dbs, simulator=_simulator()) as service:
                service.runtime.run_batch(batch, timeout=180)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not errors
    with dbs.hq.connection() as conn:
        spent = sum(c.spent for c in batch_credits(conn, batches).values())
    assert Decimal(300) - CEILING < spent <= Decimal(300)


def test_a_cap_never_holds_back_what_a_fresh_result_covers(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    """The second week's new companies spend the cap; the people a fresh result covers cost
    nothing and complete all the same, though they reach their step after the cap was hit."""
    week1, week2 = _two_weeks_of_files()
    first, _ = _run(dbs, local_settings, week1, "acme")
    second, spent = _capped_run(dbs, local_settings, week2, Decimal(20), _simulator())
    assert spent <= 20
    waiting_but_free = scalar(
        dbs,
        "SELECT count(*) FROM workflow_states ws JOIN batch_items bi ON bi.id = ws.item_id"
        " JOIN normalized_people p ON p.id = bi.person_id"
        " WHERE ws.batch_id = %s AND ws.step_name = %s AND ws.status = 'PENDING'"
        " AND p.dedupe_key IN (SELECT dedupe_key FROM normalized_people WHERE batch_id = %s)",
        second,
        PERSON,
        first,
    )
    reused = scalar(
        dbs,
        "SELECT count(*) FROM credit_ledger WHERE batch_id = %s AND entry = 'reuse'"
        " AND workflow_slug = %s",
        second,
        PERSON,
    )
    assert waiting_but_free == 0 and reused > 0


def test_a_reused_result_is_the_proof_of_its_company_s_step(
    dbs: Databases, local_settings: Settings, priced: None
) -> None:
    """Integrity (which `--fix` deletes completions by) and the company page find a reused
    company's data where it is: in the result it links."""
    week1, week2 = _two_weeks_of_files()
    _run(dbs, local_settings, week1, "acme")
    second, _ = _run(dbs, local_settings, week2, "acme", days_later=1)
    assert integrity.check(dbs).orphans == []
    reused = scalar(
        dbs,
        "SELECT s.company_id FROM company_workflow_states s JOIN normalized_companies c"
        " ON c.id = s.company_id WHERE c.batch_id = %s AND s.reused_result_id IS NOT NULL"
        " LIMIT 1",
        second,
    )
    pipeline = next(p for p in company_pipelines(dbs, reused) if p.play_name == PLAY)
    step = next(s for s in pipeline.steps if s.workflow_slug == COMPANY)
    assert step.proof is not None and step.proof["reused_from_company_id"] != str(reused)


@pytest.mark.parametrize(
    ("destination", "entity_type", "reused"),
    [
        (None, "company", True),
        ("company_enrichment_results", "company", True),
        ("person_enrichment_results", "person", True),
        ("company_homepage_scrapes", "company", False),  # a row of its own per company
        (None, "item", False),
    ],
)
def test_only_results_kept_in_their_entity_s_result_table_are_reused(
    destination: str | None, entity_type: str, reused: bool
) -> None:
    workflow = WorkflowConfig.model_validate(
        {
            "id": uuid4(),
            "workflow_slug": "w",
            "title": "w",
            "overall_step_number": 1,
            "provider": "clay",
            "entity_type": entity_type,
            "destination_table_name": destination,
            "reuse_window_days": 30,
        }
    )
    assert workflow.reuse_days == (30 if reused else None)
