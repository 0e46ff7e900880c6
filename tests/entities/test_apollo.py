from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entities.apollo import (
    APOLLO_FIELDS,
    HEADER_ALIASES,
    HeaderError,
    HeaderMapping,
    header_key,
    map_headers,
)
from entities.apollo_sample_data import APOLLO_HEADERS

MINIMAL = ["First Name", "Last Name", "Company", "Website"]


def test_fields_are_the_contract() -> None:
    assert APOLLO_FIELDS == (
        "first_name",
        "last_name",
        "title",
        "company_name",
        "email",
        "person_linkedin_url",
        "website",
        "company_linkedin_url",
        "employees",
        "industry",
        "city",
        "state",
        "country",
        "phone",
    )
    assert set(HEADER_ALIASES) == set(APOLLO_FIELDS)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Person Linkedin Url", "person_linkedin_url"),
        ("person_linkedin_url", "person_linkedin_url"),
        ("LinkedIn", "person_linkedin_url"),
        ("Linkedin Url", "person_linkedin_url"),
        ("Website", "website"),
        ("Company Website", "website"),
        ("Company Url", "website"),
        ("company_url", "website"),
        ("Company", "company_name"),
        ("Company Name", "company_name"),
        ("Organization Name", "company_name"),
        ("# Employees", "employees"),
        ("Employees", "employees"),
        ("Number of Employees", "employees"),
        ("Employee Count", "employees"),
        ("Email", "email"),
        ("Email Address", "email"),
        ("Work Email", "email"),
        ("Company Linkedin Url", "company_linkedin_url"),
        ("First Name", "first_name"),
        ("first_name", "first_name"),
        ("Last Name", "last_name"),
        ("Title", "title"),
        ("Job Title", "title"),
        ("Industry", "industry"),
        ("City", "city"),
        ("State", "state"),
        ("Country", "country"),
        ("Corporate Phone", "phone"),
        ("Mobile Phone", "phone"),
        ("Phone", "phone"),
        ("\ufeffFIRST NAME ", "first_name"),
        ("  e-mail  ", "email"),
    ],
)
def test_alias_maps_to_field(header: str, field: str) -> None:
    headers = [header, *_required_except(field)]
    assert map_headers(headers).index[field] == 0


def _required_except(field: str) -> list[str]:
    """Headers satisfying every requirement without using ``field``."""
    base = {"first_name": "First Name", "last_name": "Last Name", "company_name": "Company"}
    others = [name for fld, name in base.items() if fld != field]
    return [*others, "Website" if field == "email" else "Email"]


def test_unrelated_headers_are_ignored() -> None:
    mapping = map_headers([*MINIMAL, "Company Name for Emails", "Email Status", "Seniority"])
    assert "email" not in mapping.index
    assert set(mapping.index) == {"first_name", "last_name", "company_name", "website"}


def test_full_apollo_export_maps_every_field() -> None:
    mapping = map_headers(APOLLO_HEADERS)
    assert set(mapping.index) == set(APOLLO_FIELDS)
    assert mapping.index["company_name"] == APOLLO_HEADERS.index("Company")
    assert mapping.headers == APOLLO_HEADERS


def test_bom_and_whitespace_are_stripped_but_headers_kept_as_given() -> None:
    headers = ["\ufeffFirst Name", " Last Name ", "Company", "Email"]
    mapping = map_headers(headers)
    assert mapping.index["first_name"] == 0
    assert mapping.index["last_name"] == 1
    assert mapping.headers == tuple(headers)


def test_first_matching_column_wins() -> None:
    mapping = map_headers([*MINIMAL, "Company Website", "Company Name"])
    assert mapping.index["website"] == 3
    assert mapping.index["company_name"] == 2


def test_extract_returns_every_field_and_blanks_for_missing_columns() -> None:
    mapping = map_headers(MINIMAL)
    values = mapping.extract(["Ann", "Lee", "Acme", "acme.com"])
    assert list(values) == list(APOLLO_FIELDS)
    assert values["first_name"] == "Ann"
    assert values["website"] == "acme.com"
    assert values["email"] == ""
    assert values["phone"] == ""


def test_extract_tolerates_short_rows() -> None:
    mapping = map_headers(MINIMAL)
    assert mapping.extract(["Ann"])["website"] == ""


def test_extract_falls_back_to_later_matching_column_when_first_is_blank() -> None:
    mapping = map_headers([*MINIMAL, "Mobile Phone", "Corporate Phone"])
    assert mapping.index["phone"] == 4
    assert mapping.extract(["A", "B", "C", "c.com", "", "+1 555"])["phone"] == "+1 555"
    assert mapping.extract(["A", "B", "C", "c.com", "+44 1", "+1 555"])["phone"] == "+44 1"
    assert mapping.extract(["A", "B", "C", "c.com", " ", ""])["phone"] == " "


def test_mapping_built_by_hand_extracts_through_index() -> None:
    mapping = HeaderMapping(index={"first_name": 1}, headers=("x", "First Name"))
    assert mapping.extract(["?", "Ann"])["first_name"] == "Ann"


def test_missing_company_message_names_accepted_headers() -> None:
    with pytest.raises(HeaderError) as err:
        map_headers(["First Name", "Last Name", "Website"])
    assert str(err.value) == (
        "missing required column(s): Company (accepted: Company, Company Name, Organization Name)"
    )
    assert err.value.missing == ("company_name",)
    assert isinstance(err.value, ValueError)


def test_missing_website_and_email_is_one_requirement() -> None:
    with pytest.raises(HeaderError) as err:
        map_headers(["First Name", "Last Name", "Company", "Email Status"])
    message = str(err.value)
    assert "Website or Email" in message
    assert "Company Website" in message
    assert "Work Email" in message


@pytest.mark.parametrize("present", ["Website", "Email", "Work Email", "Company Url"])
def test_either_website_or_email_is_enough(present: str) -> None:
    map_headers(["First Name", "Last Name", "Company", present])


def test_several_missing_columns_are_all_named() -> None:
    with pytest.raises(HeaderError) as err:
        map_headers(["Title"])
    message = str(err.value)
    for name in ("First Name", "Last Name", "Company", "Website or Email"):
        assert name in message


def test_empty_header_names_its_column() -> None:
    with pytest.raises(HeaderError) as err:
        map_headers(["First Name", "Last Name", "  ", "Company", "Email"])
    assert str(err.value) == 'empty header name in column 3 (between "Last Name" and "Company")'
    assert err.value.column == 3


def test_bom_only_header_is_empty() -> None:
    with pytest.raises(HeaderError, match="column 1"):
        map_headers(["\ufeff", "First Name"])


def test_duplicate_header_names_both_columns() -> None:
    with pytest.raises(HeaderError) as err:
        map_headers([*MINIMAL, "Email", "Title", "Email "])
    assert str(err.value) == 'duplicate header name "Email" in column 7 (already used by column 5)'
    assert err.value.column == 7
    assert err.value.header == "Email"


def test_headers_differing_only_in_case_are_not_duplicates() -> None:
    mapping = map_headers([*MINIMAL, "Email", "email"])
    assert mapping.index["email"] == 4


def _mangle(name: str, data: st.DataObject) -> str:
    out = []
    for ch in name:
        if ch == " ":
            out.append(data.draw(st.sampled_from([" ", "_", "", "  ", "-", "."])))
        else:
            out.append(ch.upper() if data.draw(st.booleans()) else ch.lower())
    return data.draw(st.sampled_from(["", " ", "\ufeff"])) + "".join(out)


@given(st.sampled_from([(f, a) for f, names in HEADER_ALIASES.items() for a in names]), st.data())
def test_alias_matching_ignores_case_spacing_and_punctuation(
    alias: tuple[str, str], data: st.DataObject
) -> None:
    field, name = alias
    mangled = _mangle(name, data)
    assert header_key(mangled) == header_key(name)
    assert map_headers([mangled, *_required_except(field)]).index[field] == 0


@given(st.lists(st.text(max_size=12), max_size=8))
def test_map_headers_either_maps_or_raises_header_error(headers: list[str]) -> None:
    try:
        mapping = map_headers(headers)
    except HeaderError as err:
        assert str(err)
    else:
        assert all(0 <= pos < len(headers) for pos in mapping.index.values())
