"""The alumni filter on a million jobs: first page, a later page and the count, with the plans.

    python bench/leads.py                 # 1,000,000 jobs, 50,000 companies, 5,000 customers
    python bench/leads.py --repeat 50 --json > result.json

A fresh database on the test server (TEST_DATABASE_URL, else a Docker or embedded PostgreSQL,
as the test suite picks), migrated directly and dropped at the end. Set-based SQL fills it:
~250,000 people with 1 to 7 jobs each (about 4), `--jobs` rows of `person_work_history` in all
(the first job of each person current, the others past), at `--companies` companies picked
with a skew (a few large employers, a long tail), their names written as "Acme Labs",
"Acme Labs Inc.", "ACME LABS INC", "Acme Labs, LLC", "acme labs", "Acme Labs GmbH" or
"Acme Labs Ltd.", their domains as acme.com, www.acme.com, https://www.acme.com/, ACME.COM or
http://acme.com, and a fifth of the jobs without a domain; one `final_leads` row per person
(and the batches, items, companies and people the foreign keys need), in five batches of three
clients. Customer lists go in through `upload_customers`, as CSV: `--customers` of
"bench-client" (every tenth company; a fifth of them by name only, in other spellings:
"ACME LABS", "Acme Labs Corp.", "Acme Labs S.A."), as many of "other-client", and ten rarely
seen ones of "rare-client".

Timed, `--repeat` times each after three untimed calls, median and p95 printed (never
asserted): `find_leads(alumni=True, limit=50)` for bench-client's first page and for its
twentieth (through the cursors), `alumni_count`, the first page without the filter, and
rare-client's first page (where alumni are rare and the customers' side answers). Then each
statement of one call of each, under EXPLAIN (ANALYZE), reduced to the lines that show the
indexes used.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from psycopg import sql
from rich.console import Console

from common import (
    bench_parser,
    console_for,
    emit_json,
    fmt,
    log,
    machine_state,
    parse_counts,
    source_fingerprint,
    table,
)
from orchestrator.db.migrate import migrate_all
from orchestrator.db.pool import Conn, CountingCursor, Databases, open_databases
from orchestrator.db.urls import DatabaseUrls
from orchestrator.reports.leads import LeadFilter, alumni_count, find_leads
from orchestrator.settings import Settings
from orchestrator.upload.customers import upload_customers
from support.postgres import create_database, drop_database, find_postgres, unique_name

TARGET_MS = 100.0
CLIENTS = ("bench-client", "bench-client", "bench-client", "other-client", "rare-client")
SEED = 0.42

_FILL = """
SELECT setseed(%(seed)s);
CREATE TEMP TABLE bench_companies AS
SELECT k,
       initcap(s[1 + k %% 40] || s[1 + (k / 40) %% 40] || s[1 + (k / 1600) %% 40])
           || ' ' || w[1 + k %% 12] AS name,
       s[1 + k %% 40] || s[1 + (k / 40) %% 40] || s[1 + (k / 1600) %% 40] || '.'
           || t[1 + k %% 5] AS domain
FROM generate_series(1, %(companies)s) k,
     (SELECT ARRAY['ka','lo','mi','ne','ra','to','vi','zu','be','da','fe','go','hu','ja','ki',
                   'lu','mo','nu','pa','qui','ri','sa','te','ul','va','we','xa','yo','zo','bri',
                   'cla','dro','fly','gra','kro','plu','sta','tri','vor','zen'] AS s,
             ARRAY['Analytics','Labs','Systems','Health','Logistics','Foods','Capital',
                   'Energy','Media','Robotics','Software','Partners'] AS w,
             ARRAY['com','io','co.uk','de','net'] AS t) words;
INSERT INTO upload_batches (client_name, file_name, source_headers, status)
SELECT client, 'bench-' || n || '.csv', ARRAY['Name'], 'COMPLETED'
FROM unnest(%(clients)s::text[]) WITH ORDINALITY AS c(client, n);
CREATE TEMP TABLE bench_batches AS
SELECT row_number() OVER (ORDER BY file_name)::int AS b, id AS batch_id
FROM upload_batches WHERE file_name LIKE 'bench-%%';
INSERT INTO normalized_companies (batch_id, domain, name)
SELECT batch_id, 'bench.example', 'Bench' FROM bench_batches;
CREATE TEMP TABLE bench_people AS
SELECT p, 1 + floor(random() * %(batches)s)::int AS b, gen_random_uuid() AS item_id,
       gen_random_uuid() AS person_id, 1 + floor(random() * 7)::int AS jobs,
       (ARRAY['Ada','Ben','Chloe','Dev','Emma','Farid','Grace','Hugo','Ines','Jon','Kai','Lena',
              'Mo','Nina','Omar','Pia','Quinn','Rosa','Sam','Tara'])[1 + floor(random() * 20)::int]
           AS first_name,
       (ARRAY['Adams','Brown','Chen','Diaz','Evans','Fischer','Garcia','Hill','Ito','Jones',
              'Khan','Lopez','Moore','Novak','Olsen','Patel','Rossi','Smith','Tanaka','Weber',
              'Young','Zhang'])[1 + floor(random() * 22)::int] AS last_name
FROM generate_series(1, %(jobs)s / 4 + 1000) p;
INSERT INTO batch_items (id, batch_id, row_number)
SELECT p.item_id, bb.batch_id, p.p FROM bench_people p JOIN bench_batches bb USING (b);
INSERT INTO normalized_people (id, batch_id, batch_item_id, company_id, dedupe_key)
SELECT p.person_id, bb.batch_id, p.item_id, c.id, 'bench:' || p.p
FROM bench_people p JOIN bench_batches bb USING (b)
JOIN normalized_companies c ON c.batch_id = bb.batch_id;
CREATE TEMP TABLE bench_jobs AS
SELECT p.p, p.person_id, p.item_id, bb.batch_id, j AS position,
       1 + floor(%(companies)s * random() ^ 2)::int AS k, random() AS r1, random() AS r2,
       random() AS r3
FROM bench_people p JOIN bench_batches bb USING (b), generate_series(1, p.jobs) j
ORDER BY p.p, j
LIMIT %(jobs)s;
INSERT INTO person_work_history (batch_id, batch_item_id, person_id, position, company_name,
                                 company_domain, title, start_date, end_date, is_current)
SELECT j.batch_id, j.item_id, j.person_id, j.position,
       (ARRAY[c.name, c.name || ' Inc.', upper(c.name) || ' INC', c.name || ', LLC',
              lower(c.name), c.name || ' GmbH', c.name || ' Ltd.'])[1 + floor(j.r1 * 7)::int],
       CASE WHEN j.r2 < 0.2 THEN NULL
            ELSE (ARRAY[c.domain, 'www.' || c.domain, 'https://www.' || c.domain || '/',
                        upper(c.domain), 'http://' || c.domain])[1 + floor(j.r3 * 5)::int] END,
       (ARRAY['Engineer','Account Executive','Product Manager','Designer','VP Sales','Analyst',
              'Director of Operations','CTO'])[1 + j.k %% 8],
       DATE '2024-01-01' - (j.position * 700 + j.k %% 300),
       CASE WHEN j.position > 1 THEN DATE '2024-01-01' - (j.position - 1) * 700 END,
       j.position = 1
FROM bench_jobs j JOIN bench_companies c USING (k);
INSERT INTO final_leads (batch_id, batch_item_id, person_id, company_id, first_name, last_name,
                         full_name, title, email, linkedin_url, company_name, company_domain)
SELECT j.batch_id, j.item_id, j.person_id, nc.id, p.first_name, p.last_name,
       p.first_name || ' ' || p.last_name, w.title,
       lower(p.first_name || '.' || p.last_name) || j.p || '@' || c.domain,
       'https://www.linkedin.com/in/' || lower(p.first_name || p.last_name) || j.p,
       c.name, c.domain
FROM bench_jobs j
JOIN bench_people p USING (p)
JOIN bench_companies c USING (k)
JOIN normalized_companies nc ON nc.batch_id = j.batch_id
JOIN person_work_history w ON w.person_id = j.person_id AND w.position = 1
WHERE j.position = 1;
"""

# Which companies each client's list names, and how ("name" is how a customer row writes it).
_CUSTOMER_LISTS = {
    "bench-client": "k %% 10 = 0",
    "other-client": "k %% 10 = 3",
    "rare-client": "k > %(companies)s - 10",
}
_LISTED = """
SELECT k, CASE k %% 3 WHEN 0 THEN upper(name) WHEN 1 THEN name || ' Corp.'
                      ELSE name || ' S.A.' END AS name,
       CASE WHEN k %% 50 <> 0 THEN 'https://www.' || domain || '/' END AS website
FROM bench_companies WHERE {where} ORDER BY k LIMIT %(customers)s
"""


@dataclass
class Timing:
    name: str
    ms: list[float]
    rows: int

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.ms)
        p95 = ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]
        return {
            "what": self.name,
            "runs": len(ordered),
            "median_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(p95, 2),
            "min_ms": round(ordered[0], 2),
            "max_ms": round(ordered[-1], 2),
            "rows": self.rows,
        }


@dataclass
class Result:
    server: str
    machine: str
    source: str
    data: dict[str, Any]
    timings: list[Timing] = field(default_factory=list)
    plans: dict[str, list[str]] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__, "timed calls of each measurement (default 30)")
    parser.set_defaults(repeat=30)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="person_work_history rows")
    parser.add_argument("--companies", type=int, default=50_000, help="distinct companies")
    parser.add_argument("--customers", type=int, default=5_000, help="bench-client's customers")
    return parse_counts(parser, argv, "jobs", "companies", "customers")


@contextmanager
def bench_database() -> Iterator[tuple[str, str]]:
    with find_postgres() as server:
        name = unique_name("bench_leads")
        url = create_database(server, name)
        try:
            migrate_all(url, url)
            yield url, f"{server.kind}, PostgreSQL {server.version}"
        finally:
            drop_database(server, name)


def fill(conn: Conn, args: argparse.Namespace) -> dict[str, Any]:
    params = {
        "seed": SEED,
        "companies": args.companies,
        "jobs": args.jobs,
        "clients": list(CLIENTS),
        "batches": len(CLIENTS),
    }
    started = time.perf_counter()
    # One statement at a time: statements with parameters go one per round trip.
    for statement in filter(str.strip, _FILL.split(";\n")):
        conn.execute(statement, params)
    log(f"  filled in {time.perf_counter() - started:.0f}s")
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM person_work_history) AS jobs,"
        " (SELECT count(*) FROM person_work_history WHERE NOT is_current) AS past_jobs,"
        " (SELECT count(*) FROM final_leads) AS leads,"
        " (SELECT count(DISTINCT company_name_key(company_name)) FROM person_work_history)"
        " AS companies,"
        " (SELECT count(*) FROM person_work_history WHERE company_domain_key(company_domain)"
        " IS NULL) AS jobs_without_domain"
    ).fetchone()
    assert counts is not None
    return dict(counts)


def customer_csv(conn: Conn, where: str, args: argparse.Namespace) -> bytes:
    statement = _LISTED.replace("{where}", where)
    rows = conn.execute(statement, {"companies": args.companies, "customers": args.customers})
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["Company Name", "Website"])
    writer.writerows([r["name"], r["website"] or ""] for r in rows)
    return out.getvalue().encode()


def upload_lists(dbs: Databases, conn: Conn, args: argparse.Namespace) -> dict[str, Any]:
    uploaded: dict[str, Any] = {}
    for client, where in _CUSTOMER_LISTS.items():
        data = customer_csv(conn, where, args)
        started = time.perf_counter()
        result = upload_customers(dbs, io.BytesIO(data), client)
        took = time.perf_counter() - started
        uploaded[client] = {"customers": result.customers, "upload_s": round(took, 2)}
        log(f"  {client}: {result.customers} customers uploaded in {took:.2f}s")
    return uploaded


def timed(name: str, call: Callable[[], int], repeat: int) -> Timing:
    for _ in range(3):
        call()
    ms: list[float] = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = call()
        ms.append((time.perf_counter() - started) * 1000)
    return Timing(name, ms, rows)


def cursor_of_page(conn: Conn, lead_filter: LeadFilter, page: int) -> str | None:
    after = None
    for _ in range(page - 1):
        after = find_leads(conn, lead_filter, after=after, limit=50).next_cursor
    return after


@contextmanager
def recorded() -> Iterator[list[tuple[Any, Any]]]:
    """The statements (and parameters) sent while inside, as `bench/common.SqlTimer` sees them."""
    original = CountingCursor.execute
    seen: list[tuple[Any, Any]] = []

    def execute(cursor: Any, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        seen.append((statement, params))
        return original(cursor, statement, params, **kwargs)

    CountingCursor.execute = execute  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        CountingCursor.execute = original  # type: ignore[method-assign]


def plan_lines(conn: Conn, call: Callable[[], object]) -> list[str]:
    """Each statement of one call under EXPLAIN (ANALYZE), cut to the lines naming indexes
    and the scans and totals around them; settings statements replayed as they were."""
    with recorded() as seen:
        call()
    conn.rollback()
    lines: list[str] = []
    for statement, params in seen:
        text = statement.as_string(conn) if not isinstance(statement, str) else statement
        if "set_config(" in text:
            conn.execute(statement, params)
            continue
        explain = sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) ") + statement
        explained = conn.execute(explain, params).fetchall()
        lines.append(_first_line(text))
        lines.extend(_interesting(r["QUERY PLAN"]) for r in explained if _shown(r["QUERY PLAN"]))
    conn.rollback()
    return lines


def _first_line(text: str) -> str:
    """What names a statement in the plans: its comment's first line (the named SQL's)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    comment = next((line for line in lines if line.startswith("--")), None)
    return (comment or f"-- {lines[0] if lines else ''}")[:100]


def _shown(line: str) -> bool:
    return any(word in line for word in ("Index", "Seq Scan", "Hash Join", "Execution Time"))


def _interesting(line: str) -> str:
    return line if len(line) <= 160 else line[:157] + "..."


def measure(conn: Conn, args: argparse.Namespace) -> tuple[list[Timing], dict[str, list[str]]]:
    alumni = LeadFilter(client="bench-client", alumni=True)
    later = cursor_of_page(conn, alumni, 20)
    rare = LeadFilter(client="rare-client", alumni=True)
    calls: dict[str, Callable[[], int]] = {
        "alumni, first page": lambda: len(find_leads(conn, alumni, limit=50).rows),
        "alumni, page 20 (cursor)": lambda: len(find_leads(conn, alumni, after=later).rows),
        "alumni_count": lambda: alumni_count(conn, alumni),
        "no filter, first page": lambda: len(
            find_leads(conn, LeadFilter(client="bench-client"), limit=50).rows
        ),
        "alumni, rare-client first page": lambda: len(find_leads(conn, rare, limit=50).rows),
    }
    timings = []
    for name, call in calls.items():
        runs = args.repeat if name != "alumni_count" else max(5, args.repeat // 3)
        log(f"timing {name} ({runs} runs)")
        timings.append(timed(name, call, runs))
    plans = {name: plan_lines(conn, call) for name, call in calls.items()}
    return timings, plans


def benchmark(args: argparse.Namespace) -> Result:
    with bench_database() as (url, server):
        log(f"database on {server}")
        settings = Settings(pool_min_size=1, pool_max_size=2)
        urls = DatabaseUrls(hq=url, workspace=url)
        dbs = open_databases(urls, settings=settings, migrate=False)
        with dbs, dbs.hq.connection() as conn:
            log(f"filling {args.jobs:,} jobs at {args.companies:,} companies")
            data = fill(conn, args)
            data["customers"] = upload_lists(dbs, conn, args)
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
            conn.autocommit = False
            machine = machine_state().describe()
            timings, plans = measure(conn, args)
    return Result(server, machine, source_fingerprint(), data, timings, plans)


def render(console: Console, result: Result) -> None:
    console.print(f"server: {result.server}\nmachine: {result.machine}\n{result.source}")
    console.print(f"data: {result.data}")
    lines = []
    for timing in result.timings:
        s = timing.summary()
        lines.append([s["what"], s["runs"], *(fmt(s[k], 2) for k in _MS_COLUMNS), s["rows"]])
    console.print(table("find_leads and alumni_count", ["", "runs", *_MS_COLUMNS, "rows"], lines))
    first = result.timings[0].summary()
    verdict = "met" if first["median_ms"] < TARGET_MS else "MISSED"
    console.print(f"target: first alumni page median under {TARGET_MS:.0f} ms: {verdict}")
    for name, plan in result.plans.items():
        console.print(f"\n[bold]{name}[/bold]: EXPLAIN (ANALYZE), index lines", highlight=False)
        for line in plan:
            console.print(line, highlight=False, markup=False, soft_wrap=True)


_MS_COLUMNS = ("median_ms", "p95_ms", "min_ms", "max_ms")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = benchmark(args)
    render(console_for(args.json), result)
    if args.json:
        emit_json(
            {
                "server": result.server,
                "machine": result.machine,
                "source": result.source,
                "data": result.data,
                "timings": [t.summary() for t in result.timings],
                "plans": result.plans,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
