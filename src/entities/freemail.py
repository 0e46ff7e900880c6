"""Free-mail (consumer mailbox) providers.

An address at one of these domains says nothing about where the person works, so
such a domain must never become a company. The lists are matched against the
*registrable* domain (PSL "private suffix"), which is why ``mail.yahoo.co.jp`` is
caught by the ``yahoo`` brand and ``foo.gmail.com`` by ``gmail.com``.

The set is deliberately hand-kept rather than downloaded: the module has to stay
pure (no I/O beyond reading its own package data) and a few hundred entries cover
virtually all consumer mail seen in B2B lead exports. The domains live in
``freemail_domains.txt`` next to this module, one a line; add to it when a new
provider turns up in real data.
"""

from __future__ import annotations

from importlib.resources import files

# Brands that register the same mailbox service under many country suffixes
# (yahoo.com, yahoo.co.uk, yahoo.com.br, ...). Matched against the single label
# in front of the public suffix, so only list brands whose every registrable
# domain is a consumer mail service.
FREEMAIL_BRANDS: frozenset[str] = frozenset(
    {
        "gmx",
        "hotmail",
        "yahoo",
        "yandex",
        "ymail",
        "rocketmail",
        "windowslive",
    }
)


def _read_domains() -> frozenset[str]:
    """The domains in ``freemail_domains.txt``: its lines less blanks and ``#`` comments."""
    text = files("entities").joinpath("freemail_domains.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


# Read once at import from the package data, which ships in the wheel: nothing is
# fetched at run time.
FREEMAIL_DOMAINS: frozenset[str] = _read_domains()


def is_freemail(registrable_domain: str) -> bool:
    """True when ``registrable_domain`` (lower-case, ASCII, already reduced to its
    registrable part) belongs to a consumer mail provider."""
    if registrable_domain in FREEMAIL_DOMAINS:
        return True
    brand, _, _suffix = registrable_domain.partition(".")
    return brand in FREEMAIL_BRANDS
