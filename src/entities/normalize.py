"""Pure normalizers turning the canonical fields of an Apollo row into a batch item.

Everything here is deterministic and free of I/O so it can be property-tested and
run anywhere (web process, worker, CLI) with identical results. Each normalizer
returns ``None`` instead of raising for input it cannot make sense of: rows come
from user spreadsheets and one bad cell must never abort a whole upload.

Company domains come from ``entities.domains`` and LinkedIn URLs from
``entities.linkedin``; this module holds names, e-mails, phones and head counts
and puts a whole row together.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from entities.domains import (
    _CACHE_SIZE,
    _MAX_CACHED_TEXT,
    NON_COMPANY_DOMAINS,
    _ascii_host,
    _registrable,
    _split_url,
    registrable_domain,
)
from entities.freemail import is_freemail
from entities.linkedin import _company_linkedin_url, normalize_linkedin_url

DomainSource = Literal["website", "email"]
FailureReason = Literal["missing_name", "invalid_website", "freemail_only", "no_company_domain"]

# Nine digits is already far above the largest employer on earth; longer strings
# are junk, and refusing them also keeps int() clear of its digit limit.
_MAX_EMPLOYEE_DIGITS: Final = 9

# Deleted from text: zero-width and direction marks pasted in from web pages and
# CRMs (invisible, yet they make two spellings of a name compare unequal) and C0/C1
# control characters other than whitespace (NUL and friends from broken exports).
_DELETE_CHARS: Final = dict.fromkeys(
    [ord(ch) for ch in "\u200b\u200e\u200f\u2060\ufeff\u00ad"]
    + [cp for cp in (*range(0x20), *range(0x7F, 0xA0)) if not chr(cp).isspace()]
)
_EMAIL_LOCAL_BAD_RE: Final = re.compile(r'[\s<>()\[\]\\,;:"@]')
_INT: Final = r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_EMPLOYEES_EXACT_RE: Final = re.compile(rf"{_INT}(?:\.0+)?\s*\+?")
_EMPLOYEES_RANGE_RE: Final = re.compile(rf"{_INT}\s*(?:-|\u2013|\u2014|to)\s*{_INT}", re.I)


# --------------------------------------------------------------------------- text


def normalize_name(s: str) -> str:
    """Trim, collapse internal whitespace to one space, Unicode NFC.

    Also used for every free-text field (title, company name, city, ...).
    """
    if s.isascii() and s.isprintable():  # most cells: nothing to compose or delete
        return " ".join(s.split())
    text = unicodedata.normalize("NFC", s).translate(_DELETE_CHARS)
    # Dropping characters can bring a base letter next to a combining mark, so
    # compose once more after the whitespace has been settled.
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _text(s: str) -> str:
    """``normalize_name`` for cells whose values repeat across rows (names, titles,
    companies, places): the non-ASCII ones cost microseconds each."""
    return _cached_text(s) if len(s) <= _MAX_CACHED_TEXT else normalize_name(s)


@lru_cache(maxsize=_CACHE_SIZE)
def _cached_text(s: str) -> str:
    return normalize_name(s)


def normalize_email(s: str) -> str | None:
    """Lower-cased address, or None when it is not a plausible e-mail address.

    The domain part is converted to its ASCII (punycode) form so that the same
    mailbox written with a Unicode or an encoded domain compares equal.
    """
    text = s.strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :].strip()
    local, at, domain = text.partition("@")
    if not at or "@" in domain:  # exactly one "@"
        return None
    if not local or _EMAIL_LOCAL_BAD_RE.search(local) or not local.isprintable():
        return None
    host = _ascii_host(domain)
    if host is None or "." not in host:
        return None
    return f"{local}@{host}"


def _email_domain(email: str | None) -> str | None:
    """Registrable domain of an already-normalized address, free-mail included."""
    if email is None:
        return None
    return _registrable(email.rpartition("@")[2])


def domain_from_email(email: str) -> str | None:
    """Company domain of a work address; None for free-mail or invalid addresses."""
    domain = _email_domain(normalize_email(email))
    if domain is None or is_freemail(domain):
        return None
    return domain


# ---------------------------------------------------------------------- employees


def parse_employees(s: str) -> int | None:
    """Head count from an employees cell, or None.

    ``"1,200"`` -> 1200, ``"1200.0"`` (Excel) -> 1200, ``"10,001+"`` -> 10001.
    For a range such as ``"51-200"`` the *lower bound* (51) is returned: it is the
    only figure the source vouches for, and size filters stay conservative.
    """
    text = s.strip()
    if text.isascii() and text.isdigit():  # the usual cell, for which the regex is overhead
        return _to_int(text)
    exact = _EMPLOYEES_EXACT_RE.fullmatch(text)
    if exact:
        return _to_int(exact.group(1))
    span = _EMPLOYEES_RANGE_RE.fullmatch(text)
    if span:
        low, high = _to_int(span.group(1)), _to_int(span.group(2))
        if low is not None and high is not None and low <= high:
            return low
    return None


def _to_int(digits: str) -> int | None:
    plain = digits.replace(",", "")
    if len(plain) > _MAX_EMPLOYEE_DIGITS:
        return None
    return int(plain)


# --------------------------------------------------------------------------- item


@dataclass(frozen=True)
class NormalizedItem:
    """A row ready for splitting and enrichment.

    Text fields are ``normalize_name``-cleaned ("" when blank). ``company_domain``
    is a registrable, lower-case ASCII (punycode) domain; ``domain_source`` says
    whether it came from the website or, failing that, a work e-mail. ``employees``
    is the lower bound for ranges (see ``parse_employees``).
    """

    first_name: str
    last_name: str
    full_name: str
    title: str
    email: str | None
    person_linkedin_url: str | None
    company_name: str
    company_domain: str
    domain_source: DomainSource
    company_linkedin_url: str | None
    employees: int | None
    industry: str
    city: str
    state: str
    country: str
    phone: str = ""


@dataclass(frozen=True)
class NormalizationFailure:
    """Why a row cannot become an item. ``reason`` is a stable code for grouping
    and filtering; ``detail`` is a sentence for the user naming the bad value."""

    reason: FailureReason
    detail: str


def normalize_item(fields: Mapping[str, str]) -> NormalizedItem | NormalizationFailure:
    """Batch item from the canonical fields of ``entities.apollo`` (missing keys = "")."""

    get = fields.get  # a local alias: sixteen look-ups per row
    first, last = _text(get("first_name") or ""), _text(get("last_name") or "")
    if not first and not last:
        return NormalizationFailure("missing_name", "the row has neither a first nor a last name")
    raw_email = get("email") or ""
    email = normalize_email(raw_email)
    company = _company_domain(get("website") or "", raw_email, email)
    if isinstance(company, NormalizationFailure):
        return company
    domain, source = company
    return NormalizedItem(
        first_name=first,
        last_name=last,
        full_name=f"{first} {last}" if first and last else first or last,
        title=_text(get("title") or ""),
        email=email,
        person_linkedin_url=normalize_linkedin_url(get("person_linkedin_url") or "", "person"),
        company_name=_text(get("company_name") or ""),
        company_domain=domain,
        domain_source=source,
        company_linkedin_url=_company_linkedin_url(get("company_linkedin_url") or ""),
        employees=parse_employees(get("employees") or ""),
        industry=_text(get("industry") or ""),
        city=_text(get("city") or ""),
        state=_text(get("state") or ""),
        country=_text(get("country") or ""),
        phone=_normalize_phone(get("phone") or ""),
    )


def _normalize_phone(raw: str) -> str:
    # Apollo and Excel prefix phone numbers with "'" to stop them being read as
    # formulas or numbers; the apostrophe is not part of the number.
    return normalize_name(raw).lstrip("'").strip()


def _company_domain(
    raw_website: str, raw_email: str, email: str | None
) -> tuple[str, DomainSource] | NormalizationFailure:
    """Website first; a work e-mail only when the website gives nothing."""
    website = raw_website.strip()
    if website:
        domain = registrable_domain(website)
        if domain is not None:
            return domain, "website"
    email_domain = _email_domain(email)
    if email_domain is not None and not is_freemail(email_domain):
        return email_domain, "email"
    email_note = _email_note(raw_email.strip(), email, email_domain)
    if website:
        detail = f"the website {_show(website)} {_website_problem(website)}"
        return NormalizationFailure("invalid_website", detail + email_note)
    if email_domain is not None:
        return NormalizationFailure(
            "freemail_only",
            f"there is no website and the email {_show(email)} is at the free-mail provider "
            f"{email_domain}, which says nothing about the company",
        )
    return NormalizationFailure("no_company_domain", "there is no website" + email_note)


def _website_problem(website: str) -> str:
    parts = _split_url(website)
    domain = _registrable(parts.host) if parts is not None else None
    if domain in NON_COMPANY_DOMAINS:
        return f"is a {domain} page, not the company's own website"
    return "is not a usable website address (expected a domain such as acme.com)"


def _email_note(raw_email: str, email: str | None, email_domain: str | None) -> str:
    if not raw_email:
        return ", and no email to take the company domain from"
    if email is None:
        return f", and the email {_show(raw_email)} is not a valid address"
    if email_domain is not None:
        return f", and the email {_show(email)} is at the free-mail provider {email_domain}"
    return f", and the email {_show(email)} has no usable domain"


def _show(value: str | None, limit: int = 80) -> str:
    """Quoted value for a message; long cells are cut so details stay readable."""
    text = value or ""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def person_dedupe_key(item: NormalizedItem) -> str | None:
    """Identity of the person across rows: e-mail first, then LinkedIn URL."""
    if item.email:
        return f"email:{item.email}"
    if item.person_linkedin_url:
        return f"linkedin:{item.person_linkedin_url}"
    return None
