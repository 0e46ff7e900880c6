"""Canonical LinkedIn person and company URLs.

Pure and deterministic like the rest of ``entities`` (see ``entities.normalize``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Final, Literal
from urllib.parse import quote

from entities.domains import _CACHE_SIZE, _MAX_CACHED_TEXT, _ascii_host, _split_url

LinkedInKind = Literal["person", "company"]

# The shape nearly every LinkedIn cell has, once lower-cased: plain host, no port
# or user info, an unreserved ASCII slug. For such URLs the general parse provably
# reduces to this match, so they skip it.
_PLAIN_LINKEDIN_RE: Final = re.compile(
    r"(?:https?://|//)?(?:[a-z0-9]{1,63}\.)?linkedin\.com/([a-z]+)/([a-z0-9-]+)(?=[/?#]|\Z)"
)
# Applied to a lower-cased slug: a "%" that does not start an escape, or any
# character outside RFC 3986 "pchar" (which is what may stay unescaped in a path).
_SLUG_UNSAFE_RE: Final = re.compile(r"%(?![0-9a-f]{2})|[^a-z0-9\-._~!$&'()*+,;=:@%]")
_LINKEDIN_SECTION: Final[Mapping[LinkedInKind, str]] = {"person": "in", "company": "company"}


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
