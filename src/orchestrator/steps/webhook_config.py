"""Which webhooks a workflow sends to, read from the variables its registry row names.

A workflow's URL variable (`webhook_url_secret_name`, e.g. CLAY_COMPANY_WEBHOOK_URL) lists one
or more webhook URLs, separated by commas, spaces or line ends, used in that order: a Clay
webhook source accepts a limited number of submissions in its life, so a long-lived deployment
adds sources as it goes. The tokens live in the variable named like it with `_AUTH_TOKEN` for
`_URL` (CLAY_COMPANY_WEBHOOK_AUTH_TOKEN), one per URL, in the same order: Clay gives each
source its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from orchestrator.providers.clay_client import webhook_host

Lookup = Callable[[str], str | None]

_SEPARATORS = re.compile(r"[\s,]+")


class ClayConfigurationError(RuntimeError):
    """The variables of a workflow's webhooks are missing or do not fit together."""


@dataclass(frozen=True)
class ClayEndpoint:
    url: str
    auth_token: str | None = None
    # Which one it is, for messages: "CLAY_COMPANY_WEBHOOK_URL #2" (every Clay URL has the
    # same host, so the host alone cannot tell a wrong token's webhook).
    label: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """Stable identifier for counting submissions without storing the URL itself."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:24]

    @property
    def host(self) -> str:
        return webhook_host(self.url)


def token_variable(url_variable: str) -> str:
    """CLAY_COMPANY_WEBHOOK_URL -> CLAY_COMPANY_WEBHOOK_AUTH_TOKEN."""
    stem = url_variable[: -len("_URL")] if url_variable.endswith("_URL") else url_variable
    return f"{stem}_AUTH_TOKEN"


def split_list(value: str | None) -> list[str]:
    return [part for part in _SEPARATORS.split(value or "") if part]


def configured_endpoints(
    url_variable: str, lookup: Lookup, fallback_token: str | None = None
) -> list[ClayEndpoint]:
    """The webhooks `url_variable` lists, each with its token; [] when it is unset."""
    raw = lookup(url_variable)
    urls = split_list(raw)
    if not urls:
        if raw and raw.strip():
            raise ClayConfigurationError(f"{url_variable} is set but lists no URL")
        return []
    for url in urls:
        _check_url(url_variable, url)
    if len(set(urls)) != len(urls):
        raise ClayConfigurationError(f"{url_variable} lists the same webhook URL twice")
    tokens_variable = token_variable(url_variable)
    tokens = split_list(lookup(tokens_variable))
    labels = [f"{url_variable} #{n}" for n in range(1, len(urls) + 1)]
    if not tokens:
        return [
            ClayEndpoint(u, fallback_token, label) for u, label in zip(urls, labels, strict=True)
        ]
    if len(tokens) != len(urls):
        raise ClayConfigurationError(
            f"{url_variable} lists {len(urls)} webhook URL(s) but {tokens_variable} lists"
            f" {len(tokens)} token(s): give one token per URL, in the same order"
        )
    return [
        ClayEndpoint(u, token, label) for u, token, label in zip(urls, tokens, labels, strict=True)
    ]


def _check_url(variable: str, url: str) -> None:
    parts = urlsplit(url)
    # Two URLs joined by another separator (";", "|") read as one URL with a strange path.
    if parts.scheme not in ("http", "https") or not parts.hostname or url.count("://") > 1:
        # A webhook URL is a credential: name its start only.
        shown = f"{parts.scheme}://{parts.hostname}/..." if parts.hostname else f"{url[:8]}..."
        raise ClayConfigurationError(
            f"{variable}: the entry {shown!r} is not one http(s) URL (separate several URLs with"
            " commas)"
        )
