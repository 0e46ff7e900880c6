"""Leads for the dashboard: filters, the "alumni" filter (a past job at one of the lead's
client's customers), keyset pages, and the client and customer lists around them.

The matching rule lives in the database (migration `20261205000100_client_customers.sql`:
the normalizers and the view `customer_alumni_jobs`); the statements are in
`db/sql/leads.sql`. An alumni page is searched from the leads' side first (a bounded walk in
name order, fast where alumni are common) and, where that window held too few, from the
customers' side (fast where they are rare); see `_alumni_rows`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.rows import DictRow

from orchestrator.db.pool import Conn
from orchestrator.db.queries import query

# Leads an alumni page looks at from the leads' side before it asks the customers' side: past
# this many, alumni are rarer than one in twenty and the customers' side is the quicker.
WALK_WINDOW = 1000
MAX_PAGE = 500


@dataclass(frozen=True)
class LeadFilter:
    client: str | None = None
    batch_id: UUID | None = None
    company: str | None = None  # case-insensitive substring of company name or domain
    title: str | None = None  # case-insensitive substring of title
    search: str | None = None  # case-insensitive substring of full name or email
    alumni: bool = False  # only leads with a past job at one of their client's customers


@dataclass(frozen=True)
class AlumniMatch:
    customer_name: str
    customer_domain: str | None
    company_name: str  # as written in the work history
    title: str | None
    start_date: date | None
    end_date: date | None


@dataclass(frozen=True)
class LeadRow:
    id: UUID
    batch_id: UUID
    client_name: str
    full_name: str
    title: str
    email: str
    company_name: str
    company_domain: str
    linkedin_url: str
    match: AlumniMatch | None  # set when alumni=True (the first matching past job)


@dataclass(frozen=True)
class LeadPage:
    rows: list[LeadRow]
    next_cursor: str | None  # opaque; None on the last page


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    domain: str | None


@dataclass(frozen=True)
class CustomerPage:
    rows: list[Customer]
    next_cursor: str | None


def find_leads(
    conn: Conn, lead_filter: LeadFilter, *, after: str | None = None, limit: int = 50
) -> LeadPage:
    """One page of leads in name order; `after` is the `next_cursor` of the page before."""
    _check_limit(limit)
    params = _filter_params(lead_filter) | _after_params(after, UUID)
    if lead_filter.alumni:
        rows = _alumni_rows(conn, params, limit + 1)
    else:
        rows = conn.execute(_lead_query("leads_page"), params | {"limit": limit + 1}).fetchall()
    leads = [_lead(row, lead_filter.alumni) for row in rows]
    if len(leads) <= limit:
        return LeadPage(leads, None)
    last = leads[limit - 1]
    return LeadPage(leads[:limit], encode_cursor(last.full_name, str(last.id)))


def alumni_count(conn: Conn, lead_filter: LeadFilter) -> int:
    """Leads of the filter (whatever its `alumni`) with a past job at their client's customer."""
    params = _filter_params(lead_filter) | _after_params(None, UUID)
    with _hash_joins_off(conn):
        row = conn.execute(_lead_query("alumni_count"), params).fetchone()
    return int(row["leads"]) if row else 0


def clients(conn: Conn) -> list[str]:
    """Client names that have batches, for a filter dropdown."""
    return [str(r["client_name"]) for r in conn.execute(query("lead_clients"))]


def customer_count(conn: Conn, client: str) -> int:
    row = conn.execute(query("customer_count"), {"client": client}).fetchone()
    return int(row["customers"]) if row else 0


def list_customers(
    conn: Conn, client: str, *, after: str | None = None, limit: int = 50
) -> CustomerPage:
    """One page of a client's customers in name order."""
    _check_limit(limit)
    params = {"client": client, "limit": limit + 1} | _after_params(after, int)
    rows = conn.execute(query("customers_page"), params).fetchall()
    customers = [Customer(int(r["id"]), str(r["name"]), r["domain"]) for r in rows]
    if len(customers) <= limit:
        return CustomerPage(customers, None)
    last = customers[limit - 1]
    return CustomerPage(customers[:limit], encode_cursor(last.name, str(last.id)))


def encode_cursor(name: str, row_id: str) -> str:
    """The key of the last row of a page, opaque to callers (URL-safe text)."""
    text = json.dumps([name, row_id], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (name, id) an `encode_cursor` cursor holds; ValueError for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (UnicodeError, binascii.Error, ValueError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError(
            f"malformed cursor {cursor[:40]!r}: pass the next_cursor of the page before unchanged"
        )
    return value[0], value[1]


def _after_params(after: str | None, id_type: type[UUID] | type[int]) -> dict[str, Any]:
    if after is None:
        return {"after_name": None, "after_id": None}
    name, row_id = decode_cursor(after)
    try:
        return {"after_name": name, "after_id": id_type(row_id)}
    except ValueError:
        raise ValueError(
            f"malformed cursor {after[:40]!r}: it belongs to another list, or was altered"
        ) from None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}, got {limit}")


def _filter_params(lead_filter: LeadFilter) -> dict[str, Any]:
    def needle(text: str | None) -> str | None:
        # Blank is no filter; the statements compare with lower(column).
        if text is None or not text.strip():
            return None
        return text.strip().lower()

    return {
        "client": lead_filter.client,
        "batch_id": lead_filter.batch_id,
        "company": needle(lead_filter.company),
        "title": needle(lead_filter.title),
        "search": needle(lead_filter.search),
    }


def _lead_query(name: str) -> sql.Composed:
    return query(name).format(
        filters=query("lead_filters"),
        first_match=query("alumni_first_match"),
        lead_columns=query("lead_columns"),
    )


def _alumni_rows(conn: Conn, params: dict[str, Any], wanted: int) -> list[DictRow]:
    """Up to `wanted` alumni after the cursor, in name order.

    A walk over the next WALK_WINDOW leads finds them where they are common, at a cost bound
    by the window. Where it found too few in a full window, the customers' side gives the rest
    after it: alumni are rare there, so they are few to fetch, sort and look up.
    """
    walk = {"window": WALK_WINDOW, "limit": wanted}
    found = conn.execute(_lead_query("alumni_walk"), params | walk).fetchall()
    rows = [r for r in found if r["id"] is not None]
    head = found[0]
    if len(rows) >= wanted or (head["walked"] or 0) < WALK_WINDOW:
        return rows
    rest = {
        "after_name": head["walked_to_name"],
        "after_id": head["walked_to_id"],
        "limit": wanted - len(rows),
    }
    with _hash_joins_off(conn):
        rows += conn.execute(_lead_query("alumni_after"), params | rest).fetchall()
    return rows


@contextmanager
def _hash_joins_off(conn: Conn) -> Iterator[None]:
    """Hash joins off for the statements inside (see `leads_hash_joins_off`), then as before.

    In a transaction, a savepoint if the caller has one open: the setting is LOCAL to it, and
    a savepoint rolled back restores it by itself, but one released keeps it: hence the reset.
    """
    with conn.transaction():
        saved = conn.execute(query("leads_hash_joins_off")).fetchone()
        assert saved is not None
        yield
        conn.execute(query("leads_restore_hash_joins"), saved)


def _lead(row: Mapping[str, Any], alumni: bool) -> LeadRow:
    return LeadRow(
        id=row["id"],
        batch_id=row["batch_id"],
        client_name=str(row["client_name"]),
        full_name=str(row["full_name"]),
        title=str(row["title"]),
        email=str(row["email"]),
        company_name=str(row["company_name"]),
        company_domain=str(row["company_domain"]),
        linkedin_url=str(row["linkedin_url"]),
        match=_match(row) if alumni else None,
    )


def _match(row: Mapping[str, Any]) -> AlumniMatch:
    return AlumniMatch(
        customer_name=str(row["customer_name"]),
        customer_domain=row["customer_domain"],
        company_name=str(row["job_company"]),
        title=row["job_title"],
        start_date=row["start_date"],
        end_date=row["end_date"],
    )
