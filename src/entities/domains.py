"""Company domains from websites and host names: URL splitting, IDNA and the PSL.

Pure and deterministic like the rest of ``entities`` (see ``entities.normalize``):
the public suffix list is the copy shipped inside the ``publicsuffixlist`` wheel,
and every function returns ``None`` for input it cannot make sense of.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, NamedTuple

import idna
from publicsuffixlist import PublicSuffixList

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

# Longest host worth handing to the IDNA codec: DNS names are at most 253 octets,
# and UTS46 mapping can shrink input, so allow some slack before giving up.
_MAX_HOST_CHARS: Final = 1024
_MAX_DNS_NAME: Final = 253

# Letters-digits-hyphen host names, the case the IDNA codec maps to itself. Names
# with "--" anywhere are left to the codec (it rejects "ab--c", decodes "xn--").
_LDH_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LDH_LABEL_RE: Final = re.compile(_LDH_LABEL)
_LDH_NAME_RE: Final = re.compile(rf"(?:{_LDH_LABEL}\.)*{_LDH_LABEL}")
# Optional scheme (or "//"), then authority and path; it matches every string.
# One pattern instead of separate scheme and authority matches: this runs on
# every website and LinkedIn cell.
_URL_RE: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://|//)?([^/\\?#]*)([^?#]*)")
_WHITESPACE_RE: Final = re.compile(r"\s")
# Bound on every per-value cache (here and in ``entities.linkedin`` and
# ``entities.normalize``): enough for the distinct values of a large upload,
# while memory stays flat however many rows a file has.
_CACHE_SIZE: Final = 65536
# Longer text cells are normalized without the cache, so junk cells cannot fill
# it with huge keys.
_MAX_CACHED_TEXT: Final = 256


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
