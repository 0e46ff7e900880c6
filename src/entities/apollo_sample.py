"""Deterministic synthetic Apollo exports with ground truth, for tests and benchmarks.

Rows look like what users really upload: Apollo's 25 columns, websites written in
a dozen shapes, non-ASCII names, commas and newlines inside quoted cells, e-mail
only rows, rows from which no company can be derived, and exact duplicates. Each
row carries the registrable domain its company truly has, so a pipeline run can
be scored against it.

Everything is a pure function of the arguments (including ``seed``): the same
call yields the same bytes on every machine and Python run. Rows are produced
lazily and only a small, fixed window of recent rows is kept for duplication, so
memory does not grow with ``n_rows``.
"""

from __future__ import annotations

import csv
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal, NamedTuple, TextIO

import idna

from entities.apollo_sample_data import (
    _COMBO_STEP,
    _COMBOS,
    _COMPANY_FORMS,
    _FIRST_NAMES,
    _FREEMAIL,
    _IDN_PREFIXES,
    _INDUSTRIES,
    _KEYWORDS,
    _LAST_NAMES,
    _LINKEDIN_SHAPES,
    _LOCATIONS,
    _TITLES,
    _TLD_TABLE,
    _WEBSITE_SHAPES,
    APOLLO_HEADERS,
)

RowKind = Literal["website", "email_only", "underivable"]

# How many recent rows a duplicate may copy. Bounded so memory stays flat.
_DUPLICATE_WINDOW: Final = 512
_MASK64: Final = (1 << 64) - 1


class SampleRow(NamedTuple):
    """One data row. ``kind`` says how it was built; ``duplicate`` marks an exact
    copy of an earlier row (which keeps that row's kind and expected domain)."""

    values: list[str]
    # Registrable domain the row's company truly has; None only for rows built
    # so that no domain can be derived from them.
    expected_domain: str | None
    kind: RowKind = "website"
    duplicate: bool = False


@dataclass(frozen=True)
class SampleStats:
    """Counts over everything written. ``underivable_rows`` and ``email_only_rows``
    include duplicates of such rows; ``distinct_people`` is rows minus duplicates."""

    rows: int
    distinct_domains: int
    underivable_rows: int
    duplicate_rows: int
    distinct_people: int
    email_only_rows: int


@dataclass(frozen=True)
class _Company:
    name: str
    label: str  # first label of the domain, Unicode for IDN companies
    host: str  # Unicode form as a person would type it
    domain: str  # registrable ASCII (punycode) form: the ground truth
    employees: str
    industry: str
    keywords: str


def _mix(seed: int, index: int, salt: int) -> int:
    """splitmix64 of (seed, index, salt): per-company values without storing them."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + salt) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _pick(options: tuple[str, ...], seed: int, index: int, salt: int) -> str:
    return options[_mix(seed, index, salt) % len(options)]


@lru_cache(maxsize=4096)  # bounded: a cache, not a table of every company
def _company(seed: int, index: int) -> _Company:
    cycle, pos = divmod(index, len(_COMBOS))
    combo = _COMBOS[(pos * _COMBO_STEP + seed) % len(_COMBOS)]
    label = combo + (str(cycle + 1) if cycle else "")
    if _mix(seed, index, 1) % 30 == 0:
        label = _pick(_IDN_PREFIXES, seed, index, 2) + label
    host = f"{label}.{_pick(_TLD_TABLE, seed, index, 3)}"
    domain = host if host.isascii() else _punycode(host)
    size = _mix(seed, index, 4) % 5000 + 1
    n_keywords = _mix(seed, index, 7) % 4 + 1
    picks = (_pick(_KEYWORDS, seed, index, 8 + k) for k in range(n_keywords))
    keywords = ", ".join(dict.fromkeys(picks))
    return _Company(
        name=_pick(_COMPANY_FORMS, seed, index, 5).format(label.capitalize()),
        label=label,
        host=host,
        domain=domain,
        employees="" if size % 17 == 0 else str(size),
        industry=_pick(_INDUSTRIES, seed, index, 6),
        keywords=keywords,
    )


def _punycode(host: str) -> str:
    return idna.encode(host, uts46=True, transitional=False).decode("ascii")


def _check_args(n_rows: int, n_companies: int, fractions: tuple[float, float, float]) -> None:
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    if n_companies < 1:
        raise ValueError(f"n_companies must be >= 1, got {n_companies}")
    if any(not 0.0 <= f <= 1.0 for f in fractions) or fractions[0] + fractions[1] > 1.0:
        raise ValueError(f"fractions must lie in [0, 1] and the first two sum to <= 1: {fractions}")


def generate_rows(
    n_rows: int,
    n_companies: int,
    seed: int = 0,
    *,
    email_only_fraction: float = 0.05,
    underivable_fraction: float = 0.01,
    duplicate_fraction: float = 0.02,
) -> Iterator[SampleRow]:
    """Lazy stream of ``n_rows`` rows (values in ``APOLLO_HEADERS`` order) with truth.

    The first ``n_companies`` people go one to each company, so every company
    appears once ``n_rows`` is large enough; later people pick a company at random.
    """
    fractions = (email_only_fraction, underivable_fraction, duplicate_fraction)
    # Checked here, not inside the generator, so bad arguments fail at the call.
    _check_args(n_rows, n_companies, fractions)
    return _rows(n_rows, n_companies, seed, fractions)


def _rows(
    n_rows: int, n_companies: int, seed: int, fractions: tuple[float, float, float]
) -> Iterator[SampleRow]:
    email_only_fraction, underivable_fraction, duplicate_fraction = fractions
    rng = random.Random(seed)
    recent: deque[SampleRow] = deque(maxlen=_DUPLICATE_WINDOW)
    person = 0
    for _ in range(n_rows):
        if recent and rng.random() < duplicate_fraction:
            original = recent[rng.randrange(len(recent))]
            yield original._replace(values=list(original.values), duplicate=True)
            continue
        kind = _row_kind(rng.random(), underivable_fraction, email_only_fraction)
        index = person if person < n_companies else rng.randrange(n_companies)
        row = _person_row(rng, seed, _company(seed, index), person, kind)
        person += 1
        recent.append(row)
        yield row


def _row_kind(roll: float, underivable_fraction: float, email_only_fraction: float) -> RowKind:
    if roll < underivable_fraction:
        return "underivable"
    if roll < underivable_fraction + email_only_fraction:
        return "email_only"
    return "website"


def _person_row(
    rng: random.Random, seed: int, company: _Company, person: int, kind: RowKind
) -> SampleRow:
    first, first_ascii = rng.choice(_FIRST_NAMES)
    last, last_ascii = rng.choice(_LAST_NAMES)
    title, seniority, departments = rng.choice(_TITLES)
    city, state, country = rng.choice(_LOCATIONS)
    email = _email(rng, company, kind, first_ascii, last_ascii, person)
    phones = _phones(rng, person)
    keywords = company.keywords
    if rng.random() < 0.01:  # multi-line cells must survive quoting
        keywords = keywords.replace(", ", "\n", 1) if ", " in keywords else keywords + "\n"
    values = [
        first + (" " if rng.random() < 0.02 else ""),
        last,
        title,
        company.name,
        company.label.capitalize(),
        email,
        _email_status(rng, email),
        seniority,
        departments,
        "sam@ourteam.example" if rng.random() < 0.1 else "",
        *phones,
        company.employees,
        company.industry,
        keywords,
        _linkedin(rng, seed, first, last, first_ascii, last_ascii, person),
        _website(rng, company) if kind == "website" else "",
        f"http://www.linkedin.com/company/{company.label}",
        f"https://www.facebook.com/{company.label}",
        f"https://twitter.com/{company.label}",
        city,
        state,
        country,
    ]
    expected = None if kind == "underivable" else company.domain
    return SampleRow(values, expected, kind)


def _email(
    rng: random.Random, company: _Company, kind: RowKind, first: str, last: str, person: int
) -> str:
    # The person number as trailing digits keeps every address unique: no name
    # part contains a digit, so different numbers can never give the same local part.
    local = rng.choice((f"{first}.{last}{person}", f"{first[0]}{last}{person}",
                        f"{first}{person}"))  # fmt: skip
    if kind == "underivable":
        return f"{local}@{rng.choice(_FREEMAIL)}" if rng.random() < 0.6 else ""
    if kind == "website":
        roll = rng.random()
        if roll < 0.08:
            return ""
        if roll < 0.12:
            return f"{local}@{rng.choice(_FREEMAIL)}"
    host = company.host if rng.random() < 0.5 else company.domain
    address = f"{local}@{host}"
    return address.title() if rng.random() < 0.03 else address


def _email_status(rng: random.Random, email: str) -> str:
    if not email:
        return "Unavailable"
    return rng.choice(("Verified", "Verified", "Verified", "Extrapolated", "Guessed"))


def _phones(rng: random.Random, person: int) -> list[str]:
    """First Phone, Work Direct Phone, Mobile Phone, Corporate Phone."""
    number = f"'+1 415-555-{person % 10000:04d}"
    corporate = f"+44 20 7946 {person % 10000:04d}" if rng.random() < 0.6 else ""
    mobile = number if rng.random() < 0.3 else ""
    first = mobile or corporate
    return [first, "", mobile, corporate]


def _linkedin(
    rng: random.Random,
    seed: int,
    first: str,
    last: str,
    first_ascii: str,
    last_ascii: str,
    person: int,
) -> str:
    # The tag is a bijection of the person number below 2**32 (xor with a
    # constant, then an odd multiplier mod 2**32), so slugs are unique yet look
    # like LinkedIn's hex suffixes.
    tag = format(((person ^ (seed & 0xFFFF)) * 0x9E3779B1) & 0xFFFFFFFF, "08x")
    if rng.random() < 0.2 and not (first.isascii() and last.isascii()):
        name = f"{first}-{last}".lower().replace(" ", "-")
        # Half raw Unicode, half percent-encoded: both occur in exports.
        if rng.random() < 0.5:
            name = "".join(ch if ch.isascii() else _pct(ch) for ch in name)
    else:
        name = f"{first_ascii}-{last_ascii}"
    slug = f"{name}-{tag}"
    return rng.choice(_LINKEDIN_SHAPES).format(s=slug)


def _pct(ch: str) -> str:
    return "".join(f"%{byte:02X}" for byte in ch.encode("utf-8"))


def _website(rng: random.Random, company: _Company) -> str:
    host = company.host if rng.random() < 0.5 else company.domain
    upper = host.upper()
    if upper.lower() != host:  # "ß".upper() is "SS": a different domain
        upper = company.domain.upper()
    return rng.choice(_WEBSITE_SHAPES).format(d=host, D=upper)


def write_csv(
    fileobj: TextIO,
    n_rows: int,
    n_companies: int,
    seed: int = 0,
    *,
    email_only_fraction: float = 0.05,
    underivable_fraction: float = 0.01,
    duplicate_fraction: float = 0.02,
) -> SampleStats:
    """Write header and rows as Apollo does (CRLF, minimal quoting) and count them.

    Open ``fileobj`` with ``newline=""`` (and UTF-8), as the csv module requires,
    or embedded newlines and line endings get translated.
    """
    writer = csv.writer(fileobj, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(APOLLO_HEADERS)
    # Bounded by n_companies, not n_rows.
    domains: set[str] = set()
    rows = underivable = duplicates = email_only = 0
    for row in generate_rows(
        n_rows,
        n_companies,
        seed,
        email_only_fraction=email_only_fraction,
        underivable_fraction=underivable_fraction,
        duplicate_fraction=duplicate_fraction,
    ):
        writer.writerow(row.values)
        rows += 1
        duplicates += row.duplicate
        underivable += row.kind == "underivable"
        email_only += row.kind == "email_only"
        if row.expected_domain is not None:
            domains.add(row.expected_domain)
    return SampleStats(
        rows=rows,
        distinct_domains=len(domains),
        underivable_rows=underivable,
        duplicate_rows=duplicates,
        distinct_people=rows - duplicates,
        email_only_rows=email_only,
    )
