from __future__ import annotations

import csv
import io
import itertools
import tracemalloc
from collections import Counter

import pytest

from entities.apollo import map_headers
from entities.apollo_sample import SampleRow, generate_rows, write_csv
from entities.apollo_sample_data import APOLLO_HEADERS
from entities.domains import registrable_domain
from entities.freemail import is_freemail
from entities.linkedin import normalize_linkedin_url
from entities.normalize import (
    NormalizationFailure,
    NormalizedItem,
    domain_from_email,
    normalize_item,
)

MAPPING = map_headers(APOLLO_HEADERS)
COL = {name: i for i, name in enumerate(APOLLO_HEADERS)}


def rows(n: int, companies: int, seed: int = 0, **fractions: float) -> list[SampleRow]:
    return list(generate_rows(n, companies, seed, **fractions))


def csv_text(n: int, companies: int, seed: int = 0) -> str:
    buf = io.StringIO(newline="")
    write_csv(buf, n, companies, seed)
    return buf.getvalue()


def test_headers_are_apollos_25_columns() -> None:
    assert len(APOLLO_HEADERS) == 25
    assert APOLLO_HEADERS[:4] == ("First Name", "Last Name", "Title", "Company")
    assert APOLLO_HEADERS[-3:] == ("City", "State", "Country")
    assert len(set(APOLLO_HEADERS)) == 25


def test_every_row_has_25_strings() -> None:
    for row in generate_rows(2000, 100, seed=3):
        assert len(row.values) == 25
        assert all(isinstance(v, str) for v in row.values)


def test_deterministic_for_a_seed() -> None:
    assert csv_text(500, 40, seed=7) == csv_text(500, 40, seed=7)
    assert csv_text(500, 40, seed=7) != csv_text(500, 40, seed=8)


def test_generator_is_lazy() -> None:
    stream = generate_rows(10**12, 10**9, seed=1)
    first = list(itertools.islice(stream, 5))
    assert len(first) == 5


def test_memory_does_not_grow_with_rows() -> None:
    def peak(n: int) -> int:
        tracemalloc.start()
        for _ in generate_rows(n, 200, seed=5):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(3_000), peak(30_000)
    assert large < small * 1.5 + 200_000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ground_truth_matches_the_normalizer(seed: int) -> None:
    kinds: Counter[str] = Counter()
    for row in generate_rows(4000, 600, seed):
        result = normalize_item(MAPPING.extract(row.values))
        got = result.company_domain if isinstance(result, NormalizedItem) else None
        assert got == row.expected_domain, (row, result)
        kinds[row.kind] += 1
        if row.kind == "underivable":
            assert isinstance(result, NormalizationFailure)
            assert result.reason in ("freemail_only", "no_company_domain")
    assert set(kinds) == {"website", "email_only", "underivable"}


def test_companies_have_distinct_domains() -> None:
    sample = rows(5000, 5000, seed=9, email_only_fraction=0, underivable_fraction=0,
                  duplicate_fraction=0)  # fmt: skip
    domains = [row.expected_domain for row in sample]
    assert len(set(domains)) == 5000
    suffixes = {d.split(".", 1)[1] for d in domains if d}
    assert {"co.uk", "com.au"} <= suffixes
    assert any(d and d.startswith("xn--") for d in domains)
    for domain in domains[:500]:
        assert domain is not None
        assert registrable_domain(domain) == domain
        assert not is_freemail(domain)


def test_websites_come_in_many_shapes() -> None:
    shapes = set()
    for row in generate_rows(3000, 50, seed=4):
        website = row.values[COL["Website"]]
        if website:
            domain = row.expected_domain or ""
            shape = website.replace(domain, "D").replace(domain.upper(), "D")
            shapes.add(shape)
    assert len(shapes) >= 12


def test_email_only_rows_have_work_email_and_no_website() -> None:
    seen = 0
    for row in generate_rows(3000, 100, seed=2):
        if row.kind != "email_only":
            continue
        seen += 1
        assert row.values[COL["Website"]] == ""
        assert domain_from_email(row.values[COL["Email"]]) == row.expected_domain
    assert seen > 50


def test_underivable_rows_have_no_website_and_no_work_email() -> None:
    seen = 0
    for row in generate_rows(5000, 100, seed=2, underivable_fraction=0.05):
        if row.kind != "underivable":
            continue
        seen += 1
        assert row.expected_domain is None
        assert row.values[COL["Website"]] == ""
        assert domain_from_email(row.values[COL["Email"]]) is None
    assert seen > 100


def test_duplicates_are_exact_copies_of_earlier_rows() -> None:
    earlier: set[tuple[str, ...]] = set()
    duplicates = 0
    for row in generate_rows(3000, 100, seed=6, duplicate_fraction=0.1):
        key = tuple(row.values)
        if row.duplicate:
            duplicates += 1
            assert key in earlier
        else:
            assert key not in earlier
        earlier.add(key)
    assert duplicates > 150


def test_people_are_distinct() -> None:
    emails, linkedins = set(), set()
    people = 0
    for row in generate_rows(5000, 300, seed=8):
        if row.duplicate:
            continue
        people += 1
        email = row.values[COL["Email"]].lower()
        if email:
            assert email not in emails
            emails.add(email)
        url = normalize_linkedin_url(row.values[COL["Person Linkedin Url"]], "person")
        assert url is not None
        assert url not in linkedins
        linkedins.add(url)
    assert len(linkedins) == people


def test_work_emails_are_at_the_company_domain() -> None:
    for row in generate_rows(3000, 100, seed=10):
        email = row.values[COL["Email"]]
        domain = domain_from_email(email)
        if domain is not None:
            assert domain == row.expected_domain


def test_values_contain_realistic_mess() -> None:
    values = [v for row in generate_rows(3000, 100, seed=11) for v in row.values]
    joined = "\x1f".join(values)
    assert "VP, Sales" in values
    for name in ("José", "Zoë", "李"):
        assert name in joined
    assert any("\n" in v for v in values)


def test_csv_round_trip_crlf_and_quoting() -> None:
    n = 1500
    text = csv_text(n, 60, seed=12)
    assert text.startswith(",".join(APOLLO_HEADERS) + "\r\n")
    assert '"VP, Sales"' in text
    parsed = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert tuple(parsed[0]) == APOLLO_HEADERS
    assert parsed[1:] == [row.values for row in generate_rows(n, 60, 12)]
    # Every record ends in CRLF; bare LFs only occur inside quoted cells.
    assert text.count("\r\n") == n + 1


def test_write_csv_stats() -> None:
    sample = rows(4000, 300, seed=13)
    stats = write_csv(io.StringIO(newline=""), 4000, 300, seed=13)
    assert stats.rows == 4000
    assert stats.duplicate_rows == sum(r.duplicate for r in sample) > 0
    assert stats.underivable_rows == sum(r.expected_domain is None for r in sample) > 0
    assert stats.email_only_rows == sum(r.kind == "email_only" for r in sample) > 0
    assert stats.distinct_people == 4000 - stats.duplicate_rows
    assert stats.distinct_domains == len({r.expected_domain for r in sample} - {None}) == 300


def test_zero_rows_writes_only_the_header() -> None:
    buf = io.StringIO(newline="")
    stats = write_csv(buf, 0, 1)
    assert buf.getvalue() == ",".join(APOLLO_HEADERS) + "\r\n"
    assert stats.rows == stats.distinct_domains == 0


@pytest.mark.parametrize(
    ("n_rows", "n_companies", "email_only", "underivable", "duplicate"),
    [
        (-1, 5, 0.05, 0.01, 0.02),
        (5, 0, 0.05, 0.01, 0.02),
        (5, 5, 0.05, 0.01, 1.5),
        (5, 5, 0.6, 0.6, 0.02),
        (5, 5, 0.05, -0.1, 0.02),
    ],
)
def test_bad_arguments(
    n_rows: int, n_companies: int, email_only: float, underivable: float, duplicate: float
) -> None:
    with pytest.raises(ValueError):
        generate_rows(
            n_rows,
            n_companies,
            email_only_fraction=email_only,
            underivable_fraction=underivable,
            duplicate_fraction=duplicate,
        )
