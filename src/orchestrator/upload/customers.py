"""A client's customer list from a CSV of names and/or domains; an upload replaces the list.

The file is read with the Apollo upload's reader (UTF-8 only, binary files and other encodings
refused, every broken record named by its row and column) under a header of its own. Domains
and names are normalized by the database functions the alumni filter matches jobs with
(`company_domain_key`, `company_name_key`), so customers and jobs follow one rule. Everything
happens in one transaction: a file with a bad row changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from entities.apollo import clean_header, header_key
from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.upload.csv_reader import (
    FIELD_LIMIT,
    ApolloCsv,
    ByteSource,
    UploadError,
    _Decoder,
    _delimiter_error,
)

MAX_CUSTOMERS = 200_000
MAX_NAME_CHARS = 500
# A host name is at most 253 characters; a website may add a scheme and a path.
MAX_DOMAIN_CHARS = 1000
NAME_HEADERS = ("name", "company", "company name", "customer", "account name")
DOMAIN_HEADERS = ("domain", "website", "url", "company domain")
_NAME_KEYS = frozenset(header_key(h) for h in NAME_HEADERS)
_DOMAIN_KEYS = frozenset(header_key(h) for h in DOMAIN_HEADERS)


class CustomerFileError(UploadError):
    """Why a customer file cannot be used, naming the 1-based row (the header is row 1) and
    the column, as the Apollo upload's errors do."""


@dataclass(frozen=True)
class CustomerUpload:
    client_name: str
    customers: int  # rows now listed for the client
    duplicates: int  # rows skipped: the same domain, or without one the same name, as before
    blank_rows: int


@dataclass(frozen=True)
class _Columns:
    headers: tuple[str, ...]
    name: int | None
    domain: int | None

    def header(self, index: int | None) -> str | None:
        return None if index is None else clean_header(self.headers[index])


@dataclass
class _Listed:
    """The file's customers in file order, as the statements take them (one array a field)."""

    rows: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    blank_rows: int = 0

    def params(self, client: str) -> dict[str, Any]:
        return {"client": client, "rows": self.rows, "names": self.names, "domains": self.domains}


def upload_customers(dbs: Databases, stream: BinaryIO, client_name: str) -> CustomerUpload:
    """Replace the client's customer list with the file's; CustomerFileError changes nothing."""
    client = _client(client_name)
    listed, columns = _read(stream)
    params = listed.params(client)
    with dbs.hq.connection() as conn, conn.transaction():
        _check_keys(conn, params, columns)
        conn.execute(query("customers_lock"), params)
        conn.execute(query("customers_delete"), params)
        listed_now = conn.execute(query("customers_insert"), params).rowcount
    return CustomerUpload(client, listed_now, len(listed.rows) - listed_now, listed.blank_rows)


class _CustomerCsv(ApolloCsv):
    """The Apollo reader's decoding and record errors (`ApolloCsv._next`) under a customer
    header. ApolloCsv's own constructor is not run: it maps Apollo's columns."""

    def __init__(self, stream: ByteSource) -> None:
        csv.field_size_limit(FIELD_LIMIT)
        self._decoder = _Decoder(stream)
        self._reader = csv.reader(self._decoder.lines(), strict=True)
        self.records_read = 0
        self._headers = ()
        header = self._next()
        if header is None or not any(v.strip() for v in header):
            raise CustomerFileError("the file is empty: expected a header row and customer rows")
        self.columns = _columns(header, "".join(self._decoder.current_record_text))
        self._headers = self.columns.headers

    def records(self) -> Iterator[tuple[int, list[str]]]:
        while (values := self._next()) is not None:
            yield self.records_read, values


def _read(stream: ByteSource) -> tuple[_Listed, _Columns]:
    try:
        csv_file = _CustomerCsv(stream)
        return _listed(csv_file), csv_file.columns
    except CustomerFileError:
        raise
    except UploadError as exc:  # the Apollo reader's own errors, said the same way
        raise CustomerFileError(exc.message, row=exc.row, column=exc.column) from None


def _columns(header: Sequence[str], header_text: str) -> _Columns:
    keys = [header_key(h) for h in header]
    columns = _Columns(
        tuple(header),
        _role(header, keys, _NAME_KEYS, "name"),
        _role(header, keys, _DOMAIN_KEYS, "domain"),
    )
    if columns.name is None and columns.domain is None:
        wrong_delimiter = _delimiter_error(header_text)
        if wrong_delimiter is not None:
            raise CustomerFileError(wrong_delimiter.message, row=1)
        shown = ", ".join(repr(clean_header(h)) for h in header[:8])
        raise CustomerFileError(
            f"no customer name or domain column: the header has {shown}; name a column"
            f" {' or '.join(map(repr, NAME_HEADERS + DOMAIN_HEADERS))}",
            row=1,
        )
    return columns


def _role(header: Sequence[str], keys: list[str], known: frozenset[str], role: str) -> int | None:
    found = [i for i, key in enumerate(keys) if key in known]
    if len(found) > 1:
        first, second = (clean_header(header[i]) for i in found[:2])
        raise CustomerFileError(
            f"both {first!r} and {second!r} could be the customer's {role}: keep one",
            row=1,
            column=second,
        )
    return found[0] if found else None


def _listed(csv_file: _CustomerCsv) -> _Listed:
    columns = csv_file.columns
    listed = _Listed()
    for row, values in csv_file.records():
        if not any(v.strip() for v in values):
            listed.blank_rows += 1
            continue
        name, domain = _customer(values, row, columns)
        if len(listed.rows) == MAX_CUSTOMERS:
            raise CustomerFileError(
                f"more than {MAX_CUSTOMERS:,} customers, the most one list holds", row=row
            )
        listed.rows.append(row)
        listed.names.append(name)
        listed.domains.append(domain)
    if not listed.rows:
        raise CustomerFileError(
            "the file has a header row but no customers (an upload replaces the list whole)"
        )
    return listed


def _customer(values: list[str], row: int, columns: _Columns) -> tuple[str, str]:
    if len(values) > len(columns.headers):
        raise CustomerFileError(
            f"too many fields: {len(values)} values but the header has"
            f" {_columns_count(len(columns.headers))} (an unquoted comma? quote such values:"
            ' "Acme, Inc.")',
            row=row,
        )
    name = _cell(values, row, columns, columns.name, MAX_NAME_CHARS)
    domain = _cell(values, row, columns, columns.domain, MAX_DOMAIN_CHARS)
    if not name and not domain:
        missing = " and ".join(
            f"no {role} (column {columns.header(i)!r})"
            for role, i in (("name", columns.name), ("domain", columns.domain))
            if i is not None
        )
        raise CustomerFileError(
            f"the row has {missing}",
            row=row,
            column=columns.header(columns.name if columns.name is not None else columns.domain),
        )
    return name, domain


def _columns_count(n: int) -> str:
    return f"{n} column" if n == 1 else f"{n} columns"


def _cell(values: list[str], row: int, columns: _Columns, index: int | None, limit: int) -> str:
    if index is None or index >= len(values):
        return ""  # a short row: the missing cells are empty
    value = values[index].strip()
    if "\x00" in value:
        raise CustomerFileError(
            "contains a NUL byte (binary data?)", row=row, column=columns.header(index)
        )
    if len(value) > limit:
        raise CustomerFileError(
            f"{len(value):,} characters, over the {limit:,} a customer's value may have",
            row=row,
            column=columns.header(index),
        )
    return value


def _check_keys(conn: Conn, params: dict[str, Any], columns: _Columns) -> None:
    """The first row whose domain the matching cannot read, or whose name, with no domain
    beside it, has nothing to match by: refused, naming the row and the value."""
    bad = conn.execute(query("customers_first_bad_row"), params).fetchone()
    if bad is None:
        return
    if bad["bad_domain"]:
        raise CustomerFileError(
            f"{bad['domain']!r} is not a domain or website (e.g. acme.com or https://www.acme.com)",
            row=bad["row_number"],
            column=columns.header(columns.domain),
        )
    raise CustomerFileError(
        f"{bad['name']!r} has no letters or digits to match by, and the row has no domain",
        row=bad["row_number"],
        column=columns.header(columns.name),
    )


def _client(client_name: str, limit: int = 200) -> str:
    """Client names are identifiers people type, as for batches: printable and short."""
    if not client_name.strip() or len(client_name) > limit or not client_name.isprintable():
        raise CustomerFileError(
            f"client name must be 1 to {limit} printable characters, got {client_name[:40]!r}"
        )
    return client_name
