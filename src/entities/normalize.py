"""Pure normalizers turning the canonical fields of an Apollo row into a batch item.

Everything here is deterministic and free of I/O so it can be property-tested and
run anywhere (web process, worker, CLI) with identical results. Each normalizer
returns ``None`` instead of raising for input it cannot make sense of: rows come
from user spreadsheets and one bad cell must never abort a whole upload.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal, NamedTuple
from urllib.parse import quote

import idna
from publicsuffixlist import PublicSuffixList

from entities.freemail import is_freemail

# Built once at import (parsing takes tens of milliseconds). With no ``source``
# argument the package reads the copy of the list shipped inside its own wheel, so
# nothing is ever fetched at run time and results only change when the pinned
# package does. ``accept_unknown=False`` because a TLD missing from the list
# ("acme.comm", "n.a") is a typo or junk, not a company we could enrich.
_PSL: Final = PublicSuffixList(accept_unknown=False)

# Sites that people paste into a "Website" cell but that are profiles, directories
# or link shorteners rather than the company's own site: their domain says nothing
# about the company. Deliberately small; it only covers what shows up in exports.
# It is applied to websites only: an e-mail address at linkedin.com really does
# belong to a LinkedIn employee.
NON_COMPANY_DOMAINS: Final[frozenset[str]] = frozenset(
    {
        "linkedin.com",
        "lnkd.in",
        "facebook.com",
        "fb.com",
        "fb.me",
        "twitter.com",
        "x.com",
        "t.co",
        "instagram.com",
        "crunchbase.com",
        "youtube.com",
        "youtu.be",
        "tiktok.com",
        "pinterest.com",
        "angel.co",
        "wellfound.com",
        "glassdoor.com",
        "zoominfo.com",
        "wikipedia.org",
        "yelp.com",
        "bit.ly",
        "linktr.ee",
    }
)

DomainSource = Literal["website", "email"]
FailureReason = Literal["missing_name", "invalid_website", "freemail_only", "no_company_domain"]
LinkedInKind = Literal["person", "company"]

# Longest host worth handing to the IDNA codec: DNS names are at most 253 octets,
# and UTS46 mapping can shrink input, so allow some slack before giving up.
_MAX_HOST_CHARS: Final = 1024
_MAX_DNS_NAME: Final = 253
# Nine digits is already far above the largest employer on earth; longer strings
# are junk, and refusing them also keeps int() clear of its digit limit.
_MAX_EMPLOYEE_DIGITS: Final = 9

# Letters-digits-hyphen host names, the case the IDNA codec maps to itself. Names
# with "--" anywhere are left to the codec (it rejects "ab--c", decodes "xn--").
_LDH_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LDH_LABEL_RE: Final = re.compile(_LDH_LABEL)
_LDH_NAME_RE: Final = re.compile(rf"(?:{_LDH_LABEL}\.)*{_LDH_LABEL}")
# Optional scheme (or "//"), then authority and path; it matches every string.
# One pattern instead of separate scheme and authority matches: this runs on
# every website and LinkedIn cell.
_URL_RE: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://|//)?([^/\\?#]*)([^?#]*)")
# The shape nearly every LinkedIn cell has, once lower-cased: plain host, no port
# or user info, an unreserved ASCII slug. For such URLs the general parse provably
# reduces to this match, so they skip it.
_PLAIN_LINKEDIN_RE: Final = re.compile(
    r"(?:https?://|//)?(?:[a-z0-9]{1,63}\.)?linkedin\.com/([a-z]+)/([a-z0-9-]+)(?=[/?#]|\Z)"
)
# Deleted from text: zero-width and direction marks pasted in from web pages and
# CRMs (invisible, yet they make two spellings of a name compare unequal) and C0/C1
# control characters other than whitespace (NUL and friends from broken exports).
_DELETE_CHARS: Final = dict.fromkeys(
    [ord(ch) for ch in "\u200b\u200e\u200f\u2060\ufeff\u00ad"]
    + [cp for cp in (*range(0x20), *range(0x7F, 0xA0)) if not chr(cp).isspace()]
)
_WHITESPACE_RE: Final = re.compile(r"\s")
_EMAIL_LOCAL_BAD_RE: Final = re.compile(r'[\s<>()\[\]\\,;:"@]')
# Applied to a lower-cased slug: a "%" that does not start an escape, or any
# character outside RFC 3986 "pchar" (which is what may stay unescaped in a path).
_SLUG_UNSAFE_RE: Final = re.compile(r"%(?![0-9a-f]{2})|[^a-z0-9\-._~!$&'()*+,;=:@%]")
_LINKEDIN_SECTION: Final[Mapping[LinkedInKind, str]] = {"person": "in", "company": "company"}
_INT: Final = r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_EMPLOYEES_EXACT_RE: Final = re.compile(rf"{_INT}(?:\.0+)?\s*\+?")
_EMPLOYEES_RANGE_RE: Final = re.compile(rf"{_INT}\s*(?:-|\u2013|\u2014|to)\s*{_INT}", re.I)
# Bound on every per-value cache: enough for the distinct values of a large
# upload, while memory stays flat however many rows a file has.
_CACHE_SIZE: Final = 65536
# Longer text cells are normalized without the cache, so junk cells cannot fill
# it with huge keys.
_MAX_CACHED_TEXT: Final = 256


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


# ------------------------------------------------------------------------ domains


class _UrlParts(NamedTuple):
    host: str
    path: str


def _split_url(url: str) -> _UrlParts | None:
    """Host and path of a URL written in any of the shapes found in spreadsheets.

    Deliberately hand-rolled rather than ``urllib.parse``: most cells have no
    scheme at all ("www.acme.com/about"), which urlsplit reads as a path.
    """
    match = _URL_RE.match(url.strip())
    assert match is not None  # every group of the pattern is optional
    host = _url_host(match)
    if host is None:
        return None
    return _UrlParts(host, match.group(2).replace("\\", "/"))


def _url_host(match: re.Match[str]) -> str | None:
    """Host of a ``_URL_RE`` match, without user info and port."""
    authority = match.group(1)
    if "@" in authority:
        # Without a scheme "jane@acme.com" is an e-mail address, not a website.
        if match.start(1) == 0:
            return None
        authority = authority.rpartition("@")[2]
    if authority.startswith("["):  # IPv6 literal: never a company website
        return None
    host, colon, port = authority.rpartition(":")
    if not colon:
        return authority
    if port and not (port.isascii() and port.isdigit()):
        return None
    return host


def _ascii_host(host: str) -> str | None:
    """Lower-case ASCII form of a DNS host name, or None if it is not one."""
    # Too long even without a trailing dot. Checked before the cache so that junk
    # cells cannot fill it with huge keys.
    if len(host) > _MAX_HOST_CHARS + 1:
        return None
    # UTS #46 maps ASCII upper case to lower case and nothing else in ASCII, so
    # folding first changes no result and lets "WWW.Acme.com" share the entry of
    # "www.acme.com".
    return _ascii_host_cached(host.lower() if host.isascii() else host)


@lru_cache(maxsize=_CACHE_SIZE)
def _ascii_host_cached(host: str) -> str | None:
    if host.endswith("."):  # fully-qualified form: same host
        host = host[:-1]
    if not host or len(host) > _MAX_HOST_CHARS or _WHITESPACE_RE.search(host):
        return None
    return _idna_encode(host)


def _idna_encode(host: str) -> str | None:
    # Plain LDH names skip the codec: UTS46 + IDNA validation costs tens of
    # microseconds per call and most hosts are already plain ASCII.
    lowered = host.lower()
    if len(lowered) <= _MAX_DNS_NAME and "--" not in lowered and _LDH_NAME_RE.fullmatch(lowered):
        return lowered
    return _idna_encode_by_rest(host)


def _idna_encode_by_rest(host: str) -> str | None:
    """The codec's result, sharing one codec run among the subdomains of an IDN.

    UTS46 maps character by character and IDNA checks label by label, so a plain
    first label ("www", "blog") leaves the rest of the name encoded as it is on
    its own. Only a rest that fails on its own needs the whole host ("www." +
    "\u00ad" is "www."). Hosts too long for DNS can only succeed through
    characters UTS46 drops; they go to the codec whole, which keeps its own
    input-length limit out of the argument.
    """
    label, _, rest = host.partition(".")
    if rest and len(host) <= _MAX_DNS_NAME and _is_ldh_label(label):
        encoded_rest = _cached_idna_codec(rest)
        if encoded_rest is not None:
            encoded = f"{label.lower()}.{encoded_rest}"
            return encoded if idna.valid_string_length(encoded, encoded.endswith(".")) else None
    return _cached_idna_codec(host)  # a bare host can be the rest of another


def _is_ldh_label(label: str) -> bool:
    """A label the IDNA codec keeps as is (after ASCII lower-casing)."""
    lowered = label.lower() if label.isascii() else ""
    return "--" not in lowered and _LDH_LABEL_RE.fullmatch(lowered) is not None


@lru_cache(maxsize=_CACHE_SIZE)
def _cached_idna_codec(host: str) -> str | None:
    return _idna_codec(host)


def _idna_codec(host: str) -> str | None:
    try:
        ascii_host = idna.encode(host, uts46=True, std3_rules=True, transitional=False)
    except ValueError:  # idna.IDNAError and UnicodeError both derive from it
        return None
    return ascii_host.decode("ascii")


def _registrable(host: str) -> str | None:
    """Registrable domain of a host name (no URL parsing, no block lists)."""
    if len(host) > _MAX_HOST_CHARS:  # also keeps the cache keys small
        return None
    # ASCII case folded as in _ascii_host, so all spellings share one PSL walk.
    return _registrable_cached(host.lower() if host.isascii() else host)


@lru_cache(maxsize=_CACHE_SIZE)  # the PSL walk is the costly part of a website lookup
def _registrable_cached(host: str) -> str | None:
    ascii_host = _ascii_host_cached(host)
    if ascii_host is None:
        return None
    if ascii_host.rpartition(".")[2].isdigit():  # IPv4 (or junk): TLDs are never numeric
        return None
    domain: str | None = _PSL.privatesuffix(ascii_host)
    return domain


def registrable_domain(website: str) -> str | None:
    """Company domain from a website written in any shape, or None.

    ``"HTTPS://WWW.Stripe.COM/en-us"`` -> ``"stripe.com"``; ``"blog.stripe.co.uk"``
    -> ``"stripe.co.uk"``; ``"https://bücher.de"`` -> ``"xn--bcher-kva.de"``.
    None for IP addresses, localhost, bare public suffixes, non-hostnames and the
    profile/directory sites in ``NON_COMPANY_DOMAINS``.
    """
    # Not cached per cell: exports write one company's website in many shapes,
    # so the host below is the key that repeats.
    match = _URL_RE.match(website.strip())
    assert match is not None  # every group of the pattern is optional
    host = _url_host(match)
    if host is None:
        return None
    domain = _registrable(host)
    if domain is None or domain in NON_COMPANY_DOMAINS:
        return None
    return domain


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


# ----------------------------------------------------------------------- linkedin


def normalize_linkedin_url(url: str, kind: LinkedInKind) -> str | None:
    """``https://www.linkedin.com/in/<slug>`` or ``.../company/<slug>``, or None.

    The slug is kept percent-encoded (lower-case hex) rather than decoded: LinkedIn
    serves the encoded form, and decoding would make the canonical URL depend on
    how the exporting tool happened to escape it.
    """
    section = _LINKEDIN_SECTION[kind]
    text = url.strip()
    # Only ASCII is lower-cased here: Unicode lower() turns "K" (Kelvin) into "k".
    plain = _PLAIN_LINKEDIN_RE.match(text.lower()) if text.isascii() else None
    if plain is None:
        return _parse_linkedin_url(text, section)
    if plain.group(1) != section:
        return None
    return f"https://www.linkedin.com/{section}/{plain.group(2)}"


def _company_linkedin_url(url: str) -> str | None:
    """``normalize_linkedin_url(url, "company")``, cached: every row of a company
    repeats it (person URLs are unique, so caching them would only churn)."""
    if len(url) > _MAX_CACHED_TEXT:
        return normalize_linkedin_url(url, "company")
    return _cached_company_linkedin_url(url)


@lru_cache(maxsize=_CACHE_SIZE)
def _cached_company_linkedin_url(url: str) -> str | None:
    return normalize_linkedin_url(url, "company")


def _parse_linkedin_url(url: str, section: str) -> str | None:
    """The general case of ``normalize_linkedin_url``."""
    parts = _split_url(url)
    if parts is None:
        return None
    host = _ascii_host(parts.host)
    if host is None or not (host == "linkedin.com" or host.endswith(".linkedin.com")):
        return None
    segments = [seg for seg in parts.path.split("/") if seg]
    if len(segments) < 2 or segments[0].lower() != section:
        return None
    slug = _canonical_slug(segments[1])
    if slug in {".", ".."}:
        return None
    return f"https://www.linkedin.com/{section}/{slug}"


def _canonical_slug(segment: str) -> str:
    text = unicodedata.normalize("NFC", segment.lower())
    escaped = _SLUG_UNSAFE_RE.sub(_escape, text)
    return escaped.lower()  # quote() writes upper-case hex


def _escape(match: re.Match[str]) -> str:
    return quote(match.group(), safe="", errors="replace")


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
