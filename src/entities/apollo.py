"""Map the header row of an Apollo (or Apollo-like) CSV export to canonical fields.

Users re-save exports in Excel or Google Sheets, or export from a different tool,
so header names drift in case, spacing and punctuation ("# Employees" vs
"employees", "Person Linkedin Url" vs "person_linkedin_url"). Matching is done on
a *key*: the header lower-cased with everything but letters and digits removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

APOLLO_FIELDS: Final[tuple[str, ...]] = (
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

# Accepted header names per canonical field. The first name of each tuple is the
# one shown to users in error messages; every name is matched via ``header_key``.
HEADER_ALIASES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "first_name": ("First Name",),
        "last_name": ("Last Name",),
        "title": ("Title", "Job Title"),
        "company_name": ("Company", "Company Name", "Organization Name"),
        "email": ("Email", "Email Address", "Work Email"),
        "person_linkedin_url": ("Person Linkedin Url", "LinkedIn", "Linkedin Url"),
        "website": ("Website", "Company Website", "Company Url"),
        "company_linkedin_url": ("Company Linkedin Url",),
        "employees": ("# Employees", "Employees", "Number of Employees", "Employee Count"),
        "industry": ("Industry",),
        "city": ("City",),
        "state": ("State",),
        "country": ("Country",),
        "phone": ("Corporate Phone", "Mobile Phone", "Phone"),
    }
)

# Each group must be satisfied by at least one of its fields.
REQUIRED_GROUPS: Final[tuple[tuple[str, ...], ...]] = (
    ("first_name",),
    ("last_name",),
    ("company_name",),
    # The company domain comes from the website, or failing that from a work email.
    ("website", "email"),
)

_BOM: Final = "\ufeff"


class HeaderError(ValueError):
    """The header row cannot be used. ``column`` is 1-based when one column is at fault."""

    def __init__(
        self,
        message: str,
        *,
        column: int | None = None,
        header: str | None = None,
        missing: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.header = header
        self.missing = missing


def clean_header(name: str) -> str:
    """Header name as a user would read it: BOM and surrounding whitespace removed."""
    return name.replace(_BOM, "").strip()


def header_key(name: str) -> str:
    """Matching key: case, spacing, underscores and punctuation do not matter."""
    return "".join(ch for ch in clean_header(name).casefold() if ch.isalnum())


_KEY_TO_FIELD: Final[Mapping[str, str]] = MappingProxyType(
    {header_key(alias): fld for fld, aliases in HEADER_ALIASES.items() for alias in aliases}
)


@dataclass(frozen=True)
class HeaderMapping:
    """Where each canonical field lives in a row.

    ``index`` holds the first matching column per field. ``alternates`` holds every
    matching column in file order; ``extract`` falls back along it when the first
    is blank, because exports often carry e.g. both "Mobile Phone" and
    "Corporate Phone" with only one of them filled per row.
    """

    index: Mapping[str, int]
    headers: tuple[str, ...]
    alternates: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def extract(self, row: Sequence[str]) -> dict[str, str]:
        """Every canonical field of ``row``; absent columns and short rows give ""."""
        return {fld: self._value(row, fld) for fld in APOLLO_FIELDS}

    def _value(self, row: Sequence[str], fld: str) -> str:
        positions = self.alternates.get(fld) or ((self.index[fld],) if fld in self.index else ())
        values = [row[pos] if pos < len(row) else "" for pos in positions]
        return next((v for v in values if v.strip()), values[0] if values else "")


def map_headers(headers: Sequence[str]) -> HeaderMapping:
    """Locate the canonical fields in a header row, or raise ``HeaderError``."""
    _check_names(headers)
    alternates: dict[str, list[int]] = {}
    for pos, name in enumerate(headers):
        fld = _KEY_TO_FIELD.get(header_key(name))
        if fld is not None:
            alternates.setdefault(fld, []).append(pos)
    _check_required(alternates)
    return HeaderMapping(
        index=MappingProxyType({fld: cols[0] for fld, cols in alternates.items()}),
        headers=tuple(headers),
        alternates=MappingProxyType({fld: tuple(cols) for fld, cols in alternates.items()}),
    )


def _check_names(headers: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for pos, raw in enumerate(headers, start=1):
        name = clean_header(raw)
        if not name:
            raise HeaderError(
                f"empty header name in column {pos}{_neighbours(headers, pos)}",
                column=pos,
                header="",
            )
        if name in seen:
            raise HeaderError(
                f'duplicate header name "{name}" in column {pos} '
                f"(already used by column {seen[name]})",
                column=pos,
                header=name,
            )
        seen[name] = pos


def _neighbours(headers: Sequence[str], pos: int) -> str:
    """Context that lets a user find an unnamed column in a spreadsheet."""
    before = clean_header(headers[pos - 2]) if pos >= 2 else ""
    after = clean_header(headers[pos]) if pos < len(headers) else ""
    if before and after:
        return f' (between "{before}" and "{after}")'
    if before:
        return f' (after "{before}")'
    if after:
        return f' (before "{after}")'
    return ""


def _check_required(found: Mapping[str, object]) -> None:
    missing = [group for group in REQUIRED_GROUPS if not any(f in found for f in group)]
    if not missing:
        return
    parts = [_describe_group(group) for group in missing]
    raise HeaderError(
        "missing required column(s): " + "; ".join(parts),
        missing=tuple(fld for group in missing for fld in group),
    )


def _describe_group(group: tuple[str, ...]) -> str:
    label = " or ".join(HEADER_ALIASES[fld][0] for fld in group)
    accepted = ", ".join(alias for fld in group for alias in HEADER_ALIASES[fld])
    return f"{label} (accepted: {accepted})"
