"""A client's customer list and the alumni filter, against the real database: the upload and
every refusal (row and column named, nothing changed), replacing a list, the matching rule
(domain when both sides know one, else name), keyset pages, an independent reference query,
a batch through the whole pipeline, and the command and HTTP routes."""

from __future__ import annotations

import base64
import io
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests

from conftest import DatabasePair
from orchestrator.db.pool import Conn, Databases
from orchestrator.reports import leads
from orchestrator.reports.leads import LeadFilter, alumni_count, find_leads
from orchestrator.runtimes.service import LocalService, ReceiverServer
from orchestrator.settings import Settings
from orchestrator.upload import customers
from orchestrator.upload.customers import CustomerFileError, upload_customers
from support.cli import cli_env, enrich_argv
from support.pipeline import apollo_csv, upload
from test_columnline_api import API_KEY, columnline_app, wait_until_serving

CLIENT, OTHER = "acme-client", "umbrella-client"


def _csv(*lines: str, bom: bool = False) -> bytes:
    return (("\ufeff" if bom else "") + "\n".join(lines) + "\n").encode()


def _upload(dbs: Databases, data: bytes, client: str = CLIENT) -> customers.CustomerUpload:
    return upload_customers(dbs, io.BytesIO(data), client)


def _listed(dbs: Databases, client: str = CLIENT) -> list[tuple[str, str | None, str | None]]:
    with dbs.hq.connection() as conn:
        rows = conn.execute(
            "SELECT name, domain, name_key FROM client_customers WHERE client_name = %s"
            " ORDER BY id",
            (client,),
        ).fetchall()
    return [(r["name"], r["domain"], r["name_key"]) for r in rows]


# --------------------------------------------------------------------------- leads, directly


@dataclass(frozen=True)
class Job:
    company: str
    domain: str | None = None
    current: bool = False
    title: str = "Engineer"


class Leads:
    """Leads inserted as consolidation leaves them: a batch per client, one person a lead."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self._batches: dict[str, tuple[UUID, UUID]] = {}
        self._rows = 0

    def batch(self, client: str) -> UUID:
        if client not in self._batches:
            batch = self._one(
                "INSERT INTO upload_batches (client_name, source_headers) VALUES (%s, '{}')"
                " RETURNING id",
                client,
            )
            company = self._one(
                "INSERT INTO normalized_companies (batch_id, domain) VALUES (%s, 'x.example')"
                " RETURNING id",
                batch,
            )
            self._batches[client] = (batch, company)
        return self._batches[client][0]

    def add(self, client: str, name: str | None, *jobs: Job, email: str = "") -> UUID:
        batch = self.batch(client)
        company = self._batches[client][1]
        self._rows += 1
        item = self._one(
            "INSERT INTO batch_items (batch_id, row_number) VALUES (%s, %s) RETURNING id",
            batch,
            self._rows,
        )
        person = self._one(
            "INSERT INTO normalized_people (batch_id, batch_item_id, company_id, dedupe_key)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            batch,
            item,
            company,
            f"k{self._rows}",
        )
        for position, job in enumerate(jobs, start=1):
            self.conn.execute(
                "INSERT INTO person_work_history (batch_id, batch_item_id, person_id, position,"
                " company_name, company_domain, title, start_date, end_date, is_current)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (batch, item, person, position, job.company, job.domain, job.title,
                 date(2020 - position, 1, 1), None if job.current else date(2021 - position, 1, 1),
                 job.current),
            )  # fmt: skip
        current = next((j for j in jobs if j.current), Job(""))
        return self._one(
            "INSERT INTO final_leads (batch_id, batch_item_id, person_id, company_id, full_name,"
            " title, email, company_name, company_domain)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            batch, item, person, company, name, current.title, email, current.company,
            current.domain,
        )  # fmt: skip

    def _one(self, statement: str, *params: Any) -> UUID:
        row = self.conn.execute(statement.encode(), params).fetchone()
        assert row is not None
        return UUID(str(row["id"]))


@pytest.fixture
def lead_factory(dbs: Databases) -> Iterator[Leads]:
    with dbs.hq.connection() as conn:
        yield Leads(conn)
        conn.commit()


def _all_pages(dbs: Databases, lead_filter: LeadFilter, limit: int) -> list[leads.LeadRow]:
    rows: list[leads.LeadRow] = []
    after = None
    with dbs.hq.connection() as conn:
        while True:
            page = find_leads(conn, lead_filter, after=after, limit=limit)
            assert len(page.rows) <= limit
            rows += page.rows
            if page.next_cursor is None:
                return rows
            after = page.next_cursor


def _alumni_names(dbs: Databases, client: str | None = CLIENT) -> list[str]:
    return [r.full_name for r in _all_pages(dbs, LeadFilter(client=client, alumni=True), 50)]


# The rule, written independently of the view customer_alumni_jobs and of leads.sql.
REFERENCE = """
SELECT f.id FROM final_leads f JOIN upload_batches b ON b.id = f.batch_id
WHERE (%(client)s::text IS NULL OR b.client_name = %(client)s)
  AND EXISTS (
      SELECT 1 FROM person_work_history w, client_customers c
      WHERE w.person_id = f.person_id AND NOT w.is_current AND c.client_name = b.client_name
        AND CASE WHEN c.domain IS NOT NULL AND company_domain_key(w.company_domain) IS NOT NULL
                 THEN c.domain = company_domain_key(w.company_domain)
                 ELSE c.name_key = company_name_key(w.company_name) END)
ORDER BY COALESCE(f.full_name, ''), f.id
"""


def _reference(dbs: Databases, client: str | None) -> list[UUID]:
    with dbs.hq.connection() as conn:
        return [r["id"] for r in conn.execute(REFERENCE, {"client": client})]


# --------------------------------------------------------------------------- the upload


def test_an_upload_reads_aliases_and_a_bom_and_skips_blank_and_duplicate_rows(
    dbs: Databases,
) -> None:
    data = _csv(
        "Account Name,COMPANY DOMAIN,Notes",
        "Stripe Inc,https://www.Stripe.com/en-us,a",
        "STRIPE,stripe.com,same domain",
        "Globex Corporation,,",
        "globex corp,,same name",
        ",initech.io,",
        ",,",
        "",
        "Hooli,hooli.xyz:443,",
        bom=True,
    )
    result = _upload(dbs, data)
    assert result == customers.CustomerUpload(CLIENT, 4, 2, 2)
    assert _listed(dbs) == [
        ("Stripe Inc", "stripe.com", "stripe"),
        ("Globex Corporation", None, "globex"),
        ("initech.io", "initech.io", None),
        ("Hooli", "hooli.xyz", "hooli"),
    ]


@pytest.mark.parametrize(
    ("data", "row", "column", "says"),
    [
        (_csv("foo,bar", "1,2"), 1, None, "no customer name or domain column"),
        (_csv("name;domain", "a;a.com"), 1, None, "semicolon-delimited"),
        (_csv("Name,Company", "a,b"), 1, "Company", "keep one"),
        (_csv("Company,Website,Notes", "Acme,acme.com,", ",,x"), 3, "Company", "no name"),
        (_csv("Company,Website", "Acme,acme.com", "Foo,not a domain"), 3, "Website", "not a dom"),
        (_csv("website", "acme.com", "http://10.0.0.1/"), 3, "website", "not a domain"),
        (_csv("Company", "Acme", "---"), 3, "Company", "no letters or digits"),
        (b"Company\nAcme\nCaf\xe9 GmbH\n", 3, "Company", "not UTF-8"),
        (b"PK\x03\x04 a workbook", None, None, "binary file"),
        (b"", None, None, "empty"),
        (_csv("Company"), None, None, "no customers"),
        (_csv("Company", "Acme, Inc."), 2, None, "unquoted comma"),
        (_csv("Company", '"Acme'), 2, "Company", "never closed"),
        (_csv("Company", "x" * 501), 2, "Company", "over the 500"),
    ],
)
def test_a_bad_file_names_its_row_and_column_and_changes_nothing(
    dbs: Databases, data: bytes, row: int | None, column: str | None, says: str
) -> None:
    _upload(dbs, _csv("name", "Before Ltd"))
    with pytest.raises(CustomerFileError) as caught:
        _upload(dbs, data)
    assert (caught.value.row, caught.value.column) == (row, column)
    assert says in str(caught.value)
    if row is not None:
        assert str(caught.value).startswith(f"row {row}")
    assert _listed(dbs) == [("Before Ltd", None, "before")]


def test_a_blank_client_name_is_refused(dbs: Databases) -> None:
    with pytest.raises(CustomerFileError, match="client name"):
        _upload(dbs, _csv("name", "Acme"), client=" ")


def test_more_customers_than_a_list_holds_is_refused(
    dbs: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customers, "MAX_CUSTOMERS", 3)
    assert _upload(dbs, _csv("name", "a", "", "b", "c")).customers == 3
    with pytest.raises(CustomerFileError, match="more than 3 customers") as caught:
        _upload(dbs, _csv("name", "a", "b", "c", "d"))
    assert caught.value.row == 5
    assert [name for name, _, _ in _listed(dbs)] == ["a", "b", "c"]


def test_an_upload_replaces_the_clients_list_and_no_other(dbs: Databases) -> None:
    _upload(dbs, _csv("name,domain", "Old One,old.com", "Kept,kept.com"))
    _upload(dbs, _csv("name", "Theirs"), client=OTHER)
    _upload(dbs, _csv("domain", "kept.com", "new.io"))
    assert _listed(dbs) == [("kept.com", "kept.com", None), ("new.io", "new.io", None)]
    assert _listed(dbs, OTHER) == [("Theirs", None, "theirs")]


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("HTTPS://WWW.Acme.COM/en-us?x=1#top", "acme.com"),
        ("acme.com.", "acme.com"),
        ("//acme.com:8080", "acme.com"),
        ("www.com", "www.com"),
        ("blog.acme.co.uk", "blog.acme.co.uk"),
        ("  ", None),
        ("n/a", None),
        ("localhost", None),
        ("192.168.0.1", None),
        ("jane@acme.com", None),
    ],
)
def test_company_domain_key(dbs: Databases, raw: str, domain: str | None) -> None:
    with dbs.hq.connection() as conn:
        row = conn.execute("SELECT company_domain_key(%s) AS key", (raw,)).fetchone()
    assert row is not None and row["key"] == domain


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Acme, Inc.", "acme"),
        ("ACME INC", "acme"),
        ("Acme L.L.C.", "acme"),
        ("Acme S.A.", "acme"),
        ("Acme GmbH", "acme"),
        ("Acme Co., Ltd.", "acme"),
        ("acme  corp", "acme"),
        ("Acme Labs", "acmelabs"),
        ("Macy\u2019s", "macys"),
        ("Company", "company"),
        ("MÜLLER GMBH", "müller"),
        ("...", None),
    ],
)
def test_company_name_key(dbs: Databases, name: str, key: str | None) -> None:
    with dbs.hq.connection() as conn:
        row = conn.execute("SELECT company_name_key(%s) AS key", (name,)).fetchone()
    assert row is not None and row["key"] == key


# --------------------------------------------------------------------------- the rule


def test_alumni_match_by_domain_else_by_name(dbs: Databases, lead_factory: Leads) -> None:
    _upload(
        dbs,
        _csv(
            "Company,Website",
            "Stripe,https://www.stripe.com/",
            "Globex Corporation,globex.com",
            "Initech LLC,",
            "Hooli,hooli.com",
        ),
    )
    _upload(dbs, _csv("domain", "umbrella.com"), client=OTHER)
    add = lead_factory.add
    add(
        CLIENT,
        "Domain Match",
        Job("Now Co", "now.com", current=True),
        Job("Stripe, Inc.", "STRIPE.COM"),
    )
    add(CLIENT, "Name Match, No Job Domain", Job("GLOBEX CORP", None))
    add(CLIENT, "Name Match, No Customer Domain", Job("initech", "initech.io"))
    add(CLIENT, "Different Domains", Job("Hooli Inc", "hooli.xyz"))
    add(CLIENT, "Current Job Only", Job("Stripe", "stripe.com", current=True))
    add(CLIENT, "Other Client's Customer", Job("Umbrella", "umbrella.com"))
    add(OTHER, "Umbrella Alumna", Job("Umbrella Corp", "https://umbrella.com"))
    add(OTHER, "Stripe Alumna Elsewhere", Job("Stripe", "stripe.com"))
    lead_factory.conn.commit()

    assert _alumni_names(dbs) == [
        "Domain Match",
        "Name Match, No Customer Domain",
        "Name Match, No Job Domain",
    ]
    assert _alumni_names(dbs, OTHER) == ["Umbrella Alumna"]
    assert _alumni_names(dbs, None) == [
        "Domain Match",
        "Name Match, No Customer Domain",
        "Name Match, No Job Domain",
        "Umbrella Alumna",
    ]
    first = _all_pages(dbs, LeadFilter(client=CLIENT, alumni=True), 50)[0]
    assert first.match == leads.AlumniMatch(
        "Stripe", "stripe.com", "Stripe, Inc.", "Engineer", date(2018, 1, 1), date(2019, 1, 1)
    )
    assert first.company_name == "Now Co"
    with dbs.hq.connection() as conn:
        assert alumni_count(conn, LeadFilter(client=CLIENT)) == 3
        assert alumni_count(conn, LeadFilter()) == 4


def test_the_first_matching_past_job_is_the_first_in_the_work_history(
    dbs: Databases, lead_factory: Leads
) -> None:
    _upload(dbs, _csv("name,domain", "Alpha,alpha.com", "Beta,"))
    lead_factory.add(
        CLIENT,
        "Two Matches",
        Job("Alpha", "alpha.com", current=True),
        Job("Beta GmbH", None, title="CTO"),
        Job("Alpha Inc", "www.alpha.com", title="Intern"),
    )
    lead_factory.conn.commit()
    [row] = _all_pages(dbs, LeadFilter(client=CLIENT, alumni=True), 10)
    assert row.match is not None
    assert (row.match.customer_name, row.match.company_name, row.match.title) == (
        "Beta",
        "Beta GmbH",
        "CTO",
    )


# --------------------------------------------------------------------------- pages and reference


COMPANIES = [
    (f"{word} {kind}", f"{word.lower()}.{tld}")
    for word, kind, tld in zip(
        [
            *("Acme", "Globex", "Initech", "Hooli", "Umbrella", "Stark", "Wayne", "Wonka"),
            *("Tyrell", "Cyberdyne", "Soylent", "Aperture", "Vandelay", "Kramerica", "Dunder"),
            *("Prestige", "Oscorp", "Massive", "Virtucon", "Gringotts"),
        ],
        ["Labs", "Systems", "Foods", "Capital"] * 5,
        ["com", "io", "co.uk", "de", "net"] * 4,
        strict=True,
    )
]
SUFFIXES = ["", " Inc.", " INC", ", LLC", " GmbH", " Ltd.", " S.A.", " Corp"]


def _spelling(rng: random.Random, name: str) -> str:
    written = name + rng.choice(SUFFIXES)
    return rng.choice([written, written.upper(), written.lower()])


def _website(rng: random.Random, domain: str) -> str | None:
    return rng.choice(
        [None, "", domain, f"www.{domain}", f"https://www.{domain}/x", domain.upper(), "n/a",
         "other-" + domain]
    )  # fmt: skip


def _random_world(dbs: Databases, lead_factory: Leads, seed: int) -> None:
    rng = random.Random(seed)
    for client in (CLIENT, OTHER):
        chosen = rng.sample(COMPANIES, 8)
        lines = ["Customer,URL"]
        for name, domain in chosen:
            website = rng.choice(["", domain, f"https://{domain.upper()}/"])
            lines.append(f"{_spelling(rng, name).replace(',', '')},{website}")
        _upload(dbs, _csv(*lines), client=client)
    names = [None, "", "Ann Lee", "ann lee", "Bo Chan", "Zed", "Émile Roy"]
    for i in range(220):
        jobs = []
        for position in range(rng.randint(0, 5)):
            name, domain = rng.choice(COMPANIES)
            jobs.append(Job(_spelling(rng, name), _website(rng, domain), current=position == 0))
        who = rng.choice(names)
        lead_factory.add(rng.choice([CLIENT, OTHER]), who, *jobs, email=f"p{i}@x.example")
    lead_factory.conn.commit()


@pytest.mark.parametrize("window", [1000, 5, 1])
def test_alumni_pages_equal_an_independent_reference_query(
    dbs: Databases, lead_factory: Leads, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """`window` below the leads' count makes the pages come from both sides."""
    monkeypatch.setattr(leads, "WALK_WINDOW", window)
    customers_side = []
    original = leads._hash_joins_off

    def spy(conn: Conn) -> Any:
        customers_side.append(conn)
        return original(conn)

    monkeypatch.setattr(leads, "_hash_joins_off", spy)
    _random_world(dbs, lead_factory, seed=window)
    for client in (CLIENT, OTHER, None):
        customers_side.clear()
        expected = _reference(dbs, client)
        assert expected, client
        for limit in (1, 7, 50):
            found = _all_pages(dbs, LeadFilter(client=client, alumni=True), limit)
            assert [r.id for r in found] == expected
            assert all(r.match is not None for r in found)
        # A window smaller than the 220 leads hands pages over to the customers' side.
        assert bool(customers_side) == (window < 220)
        with dbs.hq.connection() as conn:
            assert alumni_count(conn, LeadFilter(client=client)) == len(expected)


def test_keyset_pages_cover_every_lead_exactly_once_in_name_order(
    dbs: Databases, lead_factory: Leads
) -> None:
    _random_world(dbs, lead_factory, seed=11)
    with dbs.hq.connection() as conn:
        every = [
            (r["name"], r["id"])
            for r in conn.execute(
                "SELECT COALESCE(full_name, '') AS name, id FROM final_leads ORDER BY 1, 2"
            )
        ]
    for limit in (1, 3, 50, 500):
        rows = _all_pages(dbs, LeadFilter(), limit)
        assert [(r.full_name, r.id) for r in rows] == every


def test_filters_narrow_by_batch_company_title_and_name_or_email(
    dbs: Databases, lead_factory: Leads
) -> None:
    add = lead_factory.add
    add(
        CLIENT,
        "Ann Lee",
        Job("Stripe", "stripe.com", current=True, title="VP Sales"),
        email="a@s.io",
    )
    add(CLIENT, "Bo Chan", Job("Globex", "globex.com", current=True, title="CTO"), email="bo@g.io")
    add(OTHER, "Cy Diaz", Job("Stripe", None, current=True, title="Sales Rep"), email="cy@s.io")
    lead_factory.conn.commit()

    def names(**kw: Any) -> list[str]:
        return [r.full_name for r in _all_pages(dbs, LeadFilter(**kw), 10)]

    assert names(company="STRIPE") == ["Ann Lee", "Cy Diaz"]
    assert names(company="globex.c") == ["Bo Chan"]
    assert names(title="sales") == ["Ann Lee", "Cy Diaz"]
    assert names(search="CHAN") == ["Bo Chan"]
    assert names(search="cy@") == ["Cy Diaz"]
    assert names(client=OTHER) == ["Cy Diaz"]
    assert names(batch_id=lead_factory.batch(CLIENT), title=" ") == ["Ann Lee", "Bo Chan"]
    assert names(company="%") == []
    with dbs.hq.connection() as conn:
        assert leads.clients(conn) == [CLIENT, OTHER]
        assert leads.customer_count(conn, CLIENT) == 0


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        leads.encode_cursor("Ann", "not-a-uuid"),
        "",
    ],
)
def test_a_malformed_cursor_is_a_value_error(dbs: Databases, cursor: str) -> None:
    with dbs.hq.connection() as conn, pytest.raises(ValueError, match="cursor"):
        find_leads(conn, LeadFilter(alumni=True), after=cursor)


def test_a_page_size_out_of_range_is_a_value_error(dbs: Databases) -> None:
    with dbs.hq.connection() as conn, pytest.raises(ValueError, match="limit"):
        find_leads(conn, LeadFilter(), limit=0)


# --------------------------------------------------------------------------- a real batch


def test_leads_of_a_batch_through_the_pipeline_find_their_alumni(
    dbs: Databases, local_settings: Settings
) -> None:
    with LocalService(local_settings, dbs) as service:
        batch = upload(dbs, apollo_csv(30, 10, seed=3), "apollo-lead-enrichment").batch_id
        service.runtime.run_batch(batch, timeout=120)
    with dbs.hq.connection() as conn:
        past = conn.execute(
            "SELECT DISTINCT company_name, company_domain FROM person_work_history"
            " WHERE NOT is_current ORDER BY 1 LIMIT 6"
        ).fetchall()
    assert past, "the simulator gave no past jobs"
    lines = ["Company,Website"]
    for i, job in enumerate(past):
        # Half by website in another shape, half by name only in another spelling.
        if i % 2:
            lines.append(f"{job['company_name']},https://www.{job['company_domain']}/")
        else:
            lines.append(f"{job['company_name'].upper()} INC,")
    _upload(dbs, _csv(*lines), client="default")
    expected = _reference(dbs, "default")
    assert expected
    found = _all_pages(dbs, LeadFilter(client="default", alumni=True), 4)
    assert [r.id for r in found] == expected


# --------------------------------------------------------------------------- command and HTTP


def _enrich(db_urls: DatabasePair, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(tmp_path / "home", db_urls)
    return subprocess.run(
        enrich_argv(*args), env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_customers_commands(dbs: Databases, db_urls: DatabasePair, tmp_path: Path) -> None:
    good = tmp_path / "customers.csv"
    good.write_bytes(_csv("Company,Domain", "Stripe,stripe.com", "STRIPE INC,stripe.com", "Acme,"))
    done = _enrich(db_urls, tmp_path, "customers", "upload", str(good), "--client", CLIENT)
    assert done.returncode == 0, done.stderr
    assert "2 customers listed (1 duplicates and 0 blank rows skipped)" in done.stdout

    listed = _enrich(db_urls, tmp_path, "customers", "list", "--client", CLIENT, "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    assert f"client {CLIENT}: 2 customers" in listed.stdout
    assert "Acme" in listed.stdout and "1 more" in listed.stdout

    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv("Company,Domain", "Foo,not a domain"))
    line = _one_line_error(
        _enrich(db_urls, tmp_path, "customers", "upload", str(bad), "--client", CLIENT)
    )
    assert line.startswith("error: bad.csv: row 2, column 'Domain': 'not a domain'")
    assert line.endswith("nothing was changed")
    missing = str(tmp_path / "missing.csv")
    line = _one_line_error(
        _enrich(db_urls, tmp_path, "customers", "upload", missing, "--client", CLIENT)
    )
    assert "missing.csv" in line
    assert [name for name, _, _ in _listed(dbs)] == ["Stripe", "Acme"]


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


@pytest.fixture
def api(dbs: Databases) -> Iterator[str]:
    server = ReceiverServer().serve(columnline_app(dbs))
    try:
        wait_until_serving(server.url)
        yield server.url
    finally:
        server.stop()


def _put(api: str, client: str, data: bytes, key: str | None = API_KEY) -> requests.Response:
    headers = {"x-api-key": key} if key else {}
    files = {"file": ("customers.csv", data, "text/csv")}
    return requests.put(
        f"{api}/clients/{client}/customers", files=files, headers=headers, timeout=30
    )


def _get(api: str, client: str, **params: Any) -> requests.Response:
    headers = {"x-api-key": API_KEY}
    url = f"{api}/clients/{client}/customers"
    return requests.get(url, params=params, headers=headers, timeout=30)


def test_the_customer_routes(dbs: Databases, api: str) -> None:
    data = _csv("name,website", "Acme Inc,acme.com", "ACME,www.acme.com", "Zeta,", "Beta GmbH,")
    assert _put(api, CLIENT, data, key=None).status_code == 401
    answer = _put(api, CLIENT, data)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"client": CLIENT, "customers": 3, "duplicates": 1, "blank_rows": 0}

    refused = _put(api, CLIENT, _csv("name,website", "Acme,acme.com", "Foo,no domain"))
    assert refused.status_code == 422
    assert refused.json() == {
        "error": "row 3, column 'website': 'no domain' is not a domain or website"
        " (e.g. acme.com or https://www.acme.com)",
        "row": 3,
        "column": "website",
    }

    first = _get(api, CLIENT, limit=2).json()
    assert first["count"] == 3 and first["client"] == CLIENT
    assert first["customers"] == [
        {"name": "Acme Inc", "domain": "acme.com"},
        {"name": "Beta GmbH", "domain": None},
    ]
    rest = _get(api, CLIENT, limit=2, after=first["next_cursor"]).json()
    assert rest["customers"] == [{"name": "Zeta", "domain": None}] and rest["next_cursor"] is None
    assert _get(api, CLIENT, after="garbage").status_code == 422
    assert _get(api, "nobody").json()["count"] == 0
