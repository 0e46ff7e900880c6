from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable

import idna
import publicsuffixlist
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from entities import domains, linkedin, normalize
from entities.apollo import APOLLO_FIELDS
from entities.domains import NON_COMPANY_DOMAINS, registrable_domain
from entities.freemail import FREEMAIL_DOMAINS, is_freemail
from entities.linkedin import LinkedInKind, normalize_linkedin_url
from entities.normalize import (
    NormalizationFailure,
    NormalizedItem,
    domain_from_email,
    normalize_email,
    normalize_item,
    normalize_name,
    parse_employees,
    person_dedupe_key,
)

# An independent copy of the bundled list, used only to keep generated domains
# away from labels that happen to be public suffixes themselves ("blogspot.com").
PSL = PublicSuffixList(accept_unknown=False)
KINDS: list[LinkedInKind] = ["person", "company"]
SUFFIXES = ["com", "co.uk", "com.au", "de", "io", "org", "net", "fr", "co.jp", "com.br", "ai"]


def is_lower_ascii(value: str) -> bool:
    return value.isascii() and value == value.lower()


# ------------------------------------------------------------------ examples


@pytest.mark.parametrize(
    "website",
    [
        "HTTPS://WWW.Stripe.COM/en-us",
        "stripe.com.",
        " http://stripe.com:443/x?y ",
        "www.stripe.com",
        "//stripe.com",
        "stripe.com/",
        "https://stripe.com#frag",
        "http://user:pw@stripe.com",
        "stripe.com",
        "http://stripe.com:/",
        "https://dashboard.stripe.com/login",
        "stripe.com\\about",
        "\tStripe.com\n",
        "\uff33\uff34\uff32\uff29\uff30\uff25\u3002com",  # full-width, ideographic dot
    ],
)
def test_registrable_domain_shapes(website: str) -> None:
    assert registrable_domain(website) == "stripe.com"


@pytest.mark.parametrize(
    ("website", "expected"),
    [
        ("blog.stripe.co.uk", "stripe.co.uk"),
        ("https://bücher.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("https://WWW.BÜCHER.DE/shop", "xn--bcher-kva.de"),
        ("careers.acme.com.au/jobs", "acme.com.au"),
        ("acme.github.io", "acme.github.io"),
    ],
)
def test_registrable_domain_psl_and_idn(website: str, expected: str) -> None:
    assert registrable_domain(website) == expected


@pytest.mark.parametrize(
    "website",
    [
        "",
        "   ",
        "127.0.0.1",
        "http://192.168.0.1:8080/",
        "http://[::1]/",
        "localhost",
        "http://localhost:3000",
        "co.uk",
        "com",
        "stri pe.com",
        "N/A",
        "n.a",
        "none",
        "acme.comm",
        "acme..com",
        "-acme.com",
        "acme_corp.com",
        "http://stripe.com:https/",
        "jane@acme.com",
        "https://www.linkedin.com/company/acme",
        "facebook.com/acme",
        "https://twitter.com/acme",
        "x.com/acme",
        "instagram.com/acme",
        "https://www.crunchbase.com/organization/acme",
    ],
)
def test_registrable_domain_rejects(website: str) -> None:
    assert registrable_domain(website) is None


def test_psl_is_the_bundled_copy() -> None:
    # The module must never fetch the list: its PSL is built from the file that
    # ships inside the publicsuffixlist package.
    package_dir = os.path.dirname(publicsuffixlist.__file__)
    assert os.path.dirname(publicsuffixlist.PSLFILE) == package_dir
    assert os.path.isfile(publicsuffixlist.PSLFILE)
    assert domains._PSL.privatesuffix("blog.stripe.co.uk") == "stripe.co.uk"


def test_non_company_domains_are_registrable_domains() -> None:
    for domain in NON_COMPANY_DOMAINS:
        assert PSL.privatesuffix(domain) == domain


def test_freemail_domains_are_registrable_domains() -> None:
    assert len(FREEMAIL_DOMAINS) >= 300
    for domain in FREEMAIL_DOMAINS:
        assert PSL.privatesuffix(domain) == domain, domain


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Mailto:John.Doe@Acme.COM ", "john.doe@acme.com"),
        ("jane@acme.co.uk", "jane@acme.co.uk"),
        ("x@bücher.de", "x@xn--bcher-kva.de"),
        ("jane@acme.com.", "jane@acme.com"),
        ("", None),
        ("   ", None),
        ("jane", None),
        ("jane@", None),
        ("@acme.com", None),
        ("jane@localhost", None),
        ("jane@@acme.com", None),
        ("jane@bob@acme.com", None),
        ("jane doe@acme.com", None),
        ("jane@acme .com", None),
        ("a@b.com; c@d.com", None),
        ("Jane <jane@acme.com>", None),
    ],
)
def test_normalize_email(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john@acme.com", "acme.com"),
        ("john@mail.acme.co.uk", "acme.co.uk"),
        ("JOHN@Gmail.com", None),
        ("a@googlemail.com", None),
        ("a@yahoo.co.jp", None),
        ("a@mail.yahoo.com", None),
        ("a@hotmail.fr", None),
        ("a@outlook.com", None),
        ("a@gmx.net", None),
        ("a@web.de", None),
        ("a@proton.me", None),
        ("a@yandex.ru", None),
        ("a@qq.com", None),
        ("a@163.com", None),
        ("a@icloud.com", None),
        ("not an email", None),
        ("a@linkedin.com", "linkedin.com"),
    ],
)
def test_domain_from_email(raw: str, expected: str | None) -> None:
    assert domain_from_email(raw) == expected


def test_is_freemail_matches_brands_across_suffixes() -> None:
    assert is_freemail("yahoo.com.br")
    assert is_freemail("gmx.ch")
    assert not is_freemail("acme.com")
    assert not is_freemail("livestream.com")


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        ("http://www.linkedin.com/in/john-doe-123", "person", "john-doe-123"),
        ("https://linkedin.com/in/John-Doe/", "person", "john-doe"),
        ("linkedin.com/in/john-doe", "person", "john-doe"),
        ("www.linkedin.com/in/john-doe?trk=abc", "person", "john-doe"),
        ("https://uk.linkedin.com/in/john-doe", "person", "john-doe"),
        ("https://www.linkedin.com/in/john-doe/details/experience/", "person", "john-doe"),
        ("HTTPS://WWW.LINKEDIN.COM/IN/JOHN-DOE", "person", "john-doe"),
        ("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa", "person", "jos%c3%a9-garc%c3%ada"),
        ("https://www.linkedin.com/in/josé-garcía", "person", "jos%c3%a9-garc%c3%ada"),
        ("https://www.linkedin.com/in/100%", "person", "100%25"),
        ("https://www.linkedin.com/company/Acme-Inc/about/", "company", "acme-inc"),
        ("http://www.linkedin.com/company/12345", "company", "12345"),
    ],
)
def test_normalize_linkedin_url(url: str, kind: LinkedInKind, expected: str) -> None:
    section = "in" if kind == "person" else "company"
    assert normalize_linkedin_url(url, kind) == f"https://www.linkedin.com/{section}/{expected}"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://www.linkedin.com/company/acme", "person"),
        ("https://www.linkedin.com/in/john", "company"),
        ("https://www.linkedin.com/in/", "person"),
        ("https://www.linkedin.com/", "person"),
        ("https://www.linkedin.com/school/mit", "company"),
        ("https://www.linkedin.com/sales/people/ACwAA,NAME", "person"),
        ("https://linkedin.com.evil.com/in/john", "person"),
        ("https://notlinkedin.com/in/john", "person"),
        ("https://www.facebook.com/in/john", "person"),
        ("", "person"),
        ("john-doe", "person"),
        ("https://www.linkedin.com/in/..", "person"),
    ],
)
def test_normalize_linkedin_url_rejects(url: str, kind: LinkedInKind) -> None:
    assert normalize_linkedin_url(url, kind) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,200", 1200),
        ("1200", 1200),
        (" 42 ", 42),
        ("1200.0", 1200),
        ("10,001+", 10001),
        ("51-200", 51),
        ("51 - 200", 51),
        ("1,001\u20135,000", 1001),
        ("11 to 50", 11),
        ("0", 0),
        ("", None),
        ("n/a", None),
        ("200-51", None),
        ("-5", None),
        ("1.5", None),
        ("12,34", None),
        ("9999999999", None),
        ("\u0661\u0662", None),
    ],
)
def test_parse_employees(raw: str, expected: int | None) -> None:
    assert parse_employees(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  José   García ", "José García"),
        ("Jose\u0301", "José"),
        ("Zoë\u200b", "Zoë"),
        ("Ann\tMarie\nLee", "Ann Marie Lee"),
        ("李\u3000伟", "李 伟"),
        ("", ""),
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


# --------------------------------------------------------------------- items

BASE = {
    "first_name": " José ",
    "last_name": "García",
    "title": "VP,  Sales",
    "company_name": " Acme, Inc. ",
    "email": "Jose@Acme.com",
    "person_linkedin_url": "linkedin.com/in/jose-garcia",
    "website": "https://www.acme.com/en",
    "company_linkedin_url": "http://www.linkedin.com/company/acme",
    "employees": "1,200",
    "industry": "computer software",
    "city": "München",
    "state": "Bavaria",
    "country": "Germany",
    "phone": "'+1 415-555-0100",
}


def item(**overrides: str) -> NormalizedItem | NormalizationFailure:
    return normalize_item({**BASE, **overrides})


def test_normalize_item_full_row() -> None:
    assert item() == NormalizedItem(
        first_name="José",
        last_name="García",
        full_name="José García",
        title="VP, Sales",
        email="jose@acme.com",
        person_linkedin_url="https://www.linkedin.com/in/jose-garcia",
        company_name="Acme, Inc.",
        company_domain="acme.com",
        domain_source="website",
        company_linkedin_url="https://www.linkedin.com/company/acme",
        employees=1200,
        industry="computer software",
        city="München",
        state="Bavaria",
        country="Germany",
        phone="+1 415-555-0100",
    )


def test_website_wins_over_email() -> None:
    result = item(email="jose@other.io")
    assert isinstance(result, NormalizedItem)
    assert (result.company_domain, result.domain_source) == ("acme.com", "website")


@pytest.mark.parametrize("website", ["", "   ", "not a site", "linkedin.com/company/acme"])
def test_work_email_fills_in_for_missing_or_bad_website(website: str) -> None:
    result = item(website=website)
    assert isinstance(result, NormalizedItem)
    assert (result.company_domain, result.domain_source) == ("acme.com", "email")


def test_freemail_never_becomes_a_company() -> None:
    result = item(website="", email="jose@gmail.com")
    assert isinstance(result, NormalizationFailure)
    assert result.reason == "freemail_only"
    assert "jose@gmail.com" in result.detail


def test_invalid_website_names_the_value() -> None:
    result = item(website="n/a", email="jose@gmail.com")
    assert isinstance(result, NormalizationFailure)
    assert result.reason == "invalid_website"
    assert "'n/a'" in result.detail
    assert "gmail.com" in result.detail


def test_profile_site_as_website_is_explained() -> None:
    result = item(website="https://www.linkedin.com/company/acme", email="")
    assert isinstance(result, NormalizationFailure)
    assert result.reason == "invalid_website"
    assert "linkedin.com page" in result.detail


@pytest.mark.parametrize("email", ["", "not-an-email"])
def test_no_company_domain(email: str) -> None:
    result = item(website="", email=email)
    assert isinstance(result, NormalizationFailure)
    assert result.reason == "no_company_domain"
    if email:
        assert email in result.detail


def test_missing_name() -> None:
    result = item(first_name=" ", last_name="")
    assert isinstance(result, NormalizationFailure)
    assert result.reason == "missing_name"


def test_single_name_is_enough() -> None:
    result = item(first_name="", last_name="Cher")
    assert isinstance(result, NormalizedItem)
    assert result.full_name == "Cher"


def test_missing_keys_count_as_blank() -> None:
    result = normalize_item({"first_name": "Ann", "email": "ann@acme.com"})
    assert isinstance(result, NormalizedItem)
    assert result.company_domain == "acme.com"
    assert result.title == ""
    assert result.employees is None


def test_invalid_optional_values_become_none() -> None:
    result = item(email="nope", person_linkedin_url="https://example.com/in/x", employees="lots")
    assert isinstance(result, NormalizedItem)
    assert (result.email, result.person_linkedin_url, result.employees) == (None, None, None)


def test_person_dedupe_key() -> None:
    full = item()
    no_email = item(email="")
    nothing = item(email="", person_linkedin_url="")
    assert isinstance(full, NormalizedItem)
    assert isinstance(no_email, NormalizedItem)
    assert isinstance(nothing, NormalizedItem)
    assert person_dedupe_key(full) == "email:jose@acme.com"
    assert person_dedupe_key(no_email) == "linkedin:https://www.linkedin.com/in/jose-garcia"
    assert person_dedupe_key(nothing) is None


# ---------------------------------------------------------------- properties

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True).filter(
    lambda s: s[2:4] != "--"
)


@st.composite
def company_domains(draw: st.DrawFn) -> str:
    domain = f"{draw(label)}.{draw(st.sampled_from(SUFFIXES))}"
    # Skip the rare label that is itself a listed suffix or sits under a wildcard.
    assume(PSL.privatesuffix(domain) == domain)
    assume(PSL.privatesuffix(f"x.{domain}") == domain)
    assume(domain not in NON_COMPANY_DOMAINS)
    return domain


@st.composite
def decorate(draw: st.DrawFn, host: str) -> str:
    """Wrap a host in the ways people write websites in spreadsheets."""
    if draw(st.booleans()):
        host = draw(st.sampled_from(["www.", "WWW.", "blog.", "careers.", "m.", "a.b."])) + host
    case: Callable[[str], str] = draw(
        st.sampled_from([str.lower, str.upper, str.title, str.swapcase, lambda s: s])
    )
    host = case(host)
    if draw(st.booleans()):
        host += "."
    scheme = draw(st.sampled_from(["", "http://", "https://", "HTTPS://", "Http://", "//"]))
    userinfo = draw(st.sampled_from(["", "user@", "user:pw@"])) if scheme else ""
    port = draw(st.sampled_from(["", ":443", ":80", ":8080", ":"]))
    path = draw(
        st.sampled_from(
            ["", "/", "/en-us", "/a/b/", "?x=1", "/p?q=a@b#f", "#frag", "/index.html?utm=1", "\\x"]
        )
    )
    space = draw(st.sampled_from(["", " ", "\t", "  \r\n", "\u00a0"]))
    return f"{space}{scheme}{userinfo}{host}{port}{path}{space}"


@settings(deadline=None)
@given(company_domains(), st.data())
def test_decoration_does_not_change_registrable_domain(domain: str, data: st.DataObject) -> None:
    assert registrable_domain(domain) == domain
    assert registrable_domain(data.draw(decorate(domain))) == domain


# Letters whose upper case maps back to them (unlike "ß"), so case decoration
# keeps the same domain.
idn_label = st.text(alphabet="abcdeäöüéñøåçž", min_size=1, max_size=12).filter(
    lambda s: not s.isascii()
)


@settings(deadline=None)
@given(idn_label, st.sampled_from(SUFFIXES), st.data())
def test_idn_domains_come_out_as_punycode(lbl: str, suffix: str, data: st.DataObject) -> None:
    host = f"{lbl}.{suffix}"
    expected = idna.encode(host, uts46=True).decode("ascii")
    assume(PSL.privatesuffix(expected) == expected)
    assert registrable_domain(data.draw(decorate(host))) == expected
    assert registrable_domain(expected) == expected


URLISH = st.text(alphabet="aAbB01.-_:/@?#[]% \t\u3002äßxn-wWcoukm", max_size=40)
ANY_TEXT = st.one_of(st.text(), URLISH)


@given(ANY_TEXT)
@example("http://[")
@example("http://a.com:99999999999999999999/")
@example("xn--.com")
@example("a." * 200 + "com")
def test_registrable_domain_total_idempotent_lower_ascii(text: str) -> None:
    domain = registrable_domain(text)
    if domain is not None:
        assert is_lower_ascii(domain)
        assert registrable_domain(domain) == domain
        assert PSL.privatesuffix(domain) == domain


@given(ANY_TEXT)
def test_domain_from_email_total(text: str) -> None:
    domain = domain_from_email(text)
    if domain is not None:
        assert is_lower_ascii(domain)
        assert not is_freemail(domain)


@given(st.text())
@example("A\u0301 \u0301")
@example("\u00a0x\u200bY\u0000")
def test_normalize_name_idempotent(text: str) -> None:
    name = normalize_name(text)
    assert normalize_name(name) == name
    assert name == name.strip()
    assert "  " not in name
    assert unicodedata.is_normalized("NFC", name)


@given(st.text())
def test_normalize_email_total_and_idempotent(text: str) -> None:
    email = normalize_email(text)
    if email is not None:
        assert email == email.lower()
        assert email.count("@") == 1
        assert normalize_email(email) == email
        assert email.rpartition("@")[2].isascii()


emails = st.tuples(
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True),
    company_domains(),
)


@settings(deadline=None)
@given(emails, st.sampled_from(["", "mailto:", "MAILTO:"]), st.booleans(), st.data())
def test_email_decoration(
    parts: tuple[str, str], prefix: str, upper: bool, data: st.DataObject
) -> None:
    local, domain = parts
    raw = f"{prefix}{local}@{domain}"
    raw = data.draw(st.sampled_from(["", " ", "\t"])) + (raw.upper() if upper else raw)
    assert normalize_email(raw) == f"{local}@{domain}"
    expected = None if is_freemail(domain) else domain
    assert domain_from_email(raw) == expected


slugs = st.from_regex(r"[A-Za-z0-9%é-]{1,20}", fullmatch=True)


@given(
    slugs,
    st.sampled_from(KINDS),
    st.sampled_from(["", "http://", "https://", "HTTPS://", "//"]),
    st.sampled_from(["", "www.", "uk.", "de.", "WWW."]),
    st.sampled_from(["", "/", "/about/", "?trk=x", "/details/experience/?a=b#c"]),
)
def test_linkedin_decoration(
    slug: str, kind: LinkedInKind, scheme: str, sub: str, tail: str
) -> None:
    section = "in" if kind == "person" else "company"
    url = f"{scheme}{sub}linkedin.com/{section}/{slug}{tail}"
    canonical = normalize_linkedin_url(url, kind)
    assert canonical is not None
    assert canonical.startswith(f"https://www.linkedin.com/{section}/")
    assert is_lower_ascii(canonical)
    assert normalize_linkedin_url(canonical, kind) == canonical
    assert normalize_linkedin_url(canonical.upper(), kind) == canonical
    other: LinkedInKind = "company" if kind == "person" else "person"
    assert normalize_linkedin_url(url, other) is None


LINKEDINISH = st.builds(
    lambda a, b: f"{a}linkedin.com/{b}",
    st.sampled_from(["", "https://www.", "http://uk.", "//"]),
    st.text(max_size=30),
)


@given(st.one_of(st.text(), URLISH, LINKEDINISH), st.sampled_from(KINDS))
def test_normalize_linkedin_total_idempotent(text: str, kind: LinkedInKind) -> None:
    url = normalize_linkedin_url(text, kind)
    if url is not None:
        assert is_lower_ascii(url)
        assert normalize_linkedin_url(url, kind) == url


@given(st.integers(min_value=0, max_value=999_999_999))
def test_parse_employees_reads_formatted_integers(n: int) -> None:
    assert parse_employees(str(n)) == n
    assert parse_employees(f"{n:,}") == n
    assert parse_employees(f" {n:,}+ ") == n
    assert parse_employees(f"{n}-{n}") == n
    assert parse_employees(f"{n:,} - 999,999,999") == n


@given(st.text())
def test_parse_employees_total(text: str) -> None:
    result = parse_employees(text)
    assert result is None or result >= 0


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(APOLLO_FIELDS), st.one_of(st.text(), URLISH)))
def test_normalize_item_total(fields: dict[str, str]) -> None:
    result = normalize_item(fields)
    if isinstance(result, NormalizedItem):
        assert is_lower_ascii(result.company_domain)
        assert result.first_name or result.last_name
        assert not (result.domain_source == "email" and is_freemail(result.company_domain))
    else:
        assert result.reason in (
            "missing_name",
            "invalid_website",
            "freemail_only",
            "no_company_domain",
        )
        assert result.detail


@given(st.one_of(URLISH, st.from_regex(r"[a-zA-Z0-9.-]{1,80}", fullmatch=True)))
@example("a" * 63 + ".com")
@example("a" * 64 + ".com")
@example(("a" * 49 + ".") * 5 + "com")
def test_ldh_fast_path_agrees_with_idna(host: str) -> None:
    # The shortcut for plain ASCII names must give what the IDNA codec gives.
    try:
        expected: str | None = idna.encode(host, uts46=True, std3_rules=True).decode("ascii")
    except ValueError:
        expected = None
    assert domains._idna_encode(host) == expected


def test_failure_detail_cuts_huge_values() -> None:
    result = item(website="x" * 10_000, email="")
    assert isinstance(result, NormalizationFailure)
    assert len(result.detail) < 300


# ------------------------------------------------------- caches and fast paths


@pytest.mark.parametrize("raw", ["  José   García ", "Zoë\u200b", "VP,  Sales", ""])
def test_cached_text_repeats_its_result(raw: str) -> None:
    first = normalize._text(raw)
    hits = normalize._cached_text.cache_info().hits
    assert normalize._text(raw) == first == normalize_name(raw)
    assert normalize._cached_text.cache_info().hits == hits + 1


def test_company_linkedin_cache_repeats_its_result() -> None:
    url = "https://www.linkedin.com/company/Acme-Inc/about/"
    expected = normalize_linkedin_url(url, "company")
    assert linkedin._company_linkedin_url(url) == expected
    assert linkedin._company_linkedin_url(url) == expected


def test_caches_are_bounded() -> None:
    modules = (domains, linkedin, normalize)
    caches = [v for m in modules for v in vars(m).values() if hasattr(v, "cache_info")]
    assert caches
    for cache in caches:
        assert cache.cache_info().maxsize == normalize._CACHE_SIZE
    for n in range(normalize._CACHE_SIZE + 10):
        normalize._text(f"name {n}")
    assert normalize._cached_text.cache_info().currsize == normalize._CACHE_SIZE


def test_long_cells_bypass_the_cache() -> None:
    raw = " x " * normalize._MAX_CACHED_TEXT
    before = normalize._cached_text.cache_info()
    assert normalize._text(raw) == normalize_name(raw)
    after = normalize._cached_text.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)


@given(
    st.one_of(
        URLISH, LINKEDINISH, st.from_regex(r"(https?://)?([a-zA-Z]{2,3}\.)?linkedin\.com/.*")
    ),
    st.sampled_from(KINDS),
)
@example("https://www.linkedin.com/IN/John-Doe/x", "person")
@example("https://www.linkedin.com/in/john\\x", "person")
@example("https://www.linkedin.com/in/\u212aate", "person")
def test_plain_linkedin_fast_path_agrees_with_full_parse(text: str, kind: LinkedInKind) -> None:
    full = linkedin._parse_linkedin_url(text.strip(), linkedin._LINKEDIN_SECTION[kind])
    assert normalize_linkedin_url(text, kind) == full


# Plain labels, near misses, IDN text, and characters UTS46 drops, maps or rejects.
HOST_PIECES = ["www", "WWW", "blog", "a-b", "-a", "ab--c", "xn--bcher-kva", "1", "_", "de"]
HOST_CHARS = ["bücher", "BÜCHER", "straße", "\u00ad", "\u3002", ".", " ", "e\u0301", "\u0301"]
host_piece = st.sampled_from([*HOST_PIECES, *HOST_CHARS, "\u0627", "a" * 63, "a" * 64])
hosts = st.lists(host_piece, min_size=1, max_size=8).map("".join)


# Encodes to 250 characters: a "www." in front is too long, an "a." is not.
LONG_IDN = ("ü" * 10 + "a" * 44 + ".") * 4 + "de"


@given(st.one_of(hosts, st.lists(hosts, min_size=2, max_size=4).map(".".join)))
@example("www.\u00ad")
@example("www." + LONG_IDN)
@example("a." + LONG_IDN)
@example("a." + LONG_IDN + ".")
def test_idna_label_sharing_agrees_with_the_codec(host: str) -> None:
    # Subdomains of an IDN reuse the encoding of the rest of the name.
    assert domains._idna_encode(host) == domains._idna_codec(host)
