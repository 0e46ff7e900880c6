"""Deterministic synthetic enrichment for a company or person row (`synthesize`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import re
from collections.abc import Mapping
from typing import Any

from orchestrator.providers.simulators.clay.reference import (
    ANCHOR_DATE,
    FREEMAIL,
    INDUSTRIES,
    KNOWN_COMPANIES,
    LADDER,
    LOCATIONS,
    REVENUE_BANDS,
    SENIORITY_RULES,
    TECHNOLOGIES,
    KnownCompany,
)


def synthesize(row: Mapping[str, object]) -> dict[str, Any]:
    """Deterministic enrichment for a row: same content in, same data out."""
    if entity_type_of(row) == "person":
        return _synthesize_person(row)
    return _synthesize_company(row)


def entity_type_of(row: Mapping[str, object]) -> str:
    declared = _text(row.get("entity_type")).lower()
    if declared in ("company", "person"):
        return declared
    people_keys = ("email", "first_name", "last_name", "full_name")
    return "person" if any(_text(row.get(k)) for k in people_keys) else "company"


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _rng_for(kind: str, key: str) -> random.Random:
    # Seeded from a cryptographic digest, not hash(), which is salted per process.
    digest = hashlib.sha256(f"{kind}|{key.lower()}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _name_from_domain(domain: str) -> str:
    label = domain.split(".")[0] if domain else ""
    return label.replace("-", " ").title()


def _domain_from_name(name: str) -> str:
    return f"{_slug(name).replace('-', '')}.com" if name else ""


def _normalize_domain(value: str) -> str:
    domain = value.lower()
    for prefix in ("https://", "http://"):
        domain = domain.removeprefix(prefix)
    return domain.removeprefix("www.").split("/")[0]


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    text = _text(value).replace(",", "")
    return int(text) if text.isdigit() else None


def _revenue_range(employees: int) -> str:
    for bound, label in REVENUE_BANDS:
        if employees < bound:
            return label
    return "$1B+"


def _company_identity(row: Mapping[str, object]) -> tuple[str, str]:
    domain = _normalize_domain(_text(row.get("domain")))
    name = _text(row.get("name")) or _name_from_domain(domain)
    return domain or _domain_from_name(name), name


def _synthesize_company(row: Mapping[str, object]) -> dict[str, Any]:
    domain, name = _company_identity(row)
    rng = _rng_for("company", domain or name or _text(row.get("linkedin_url")))
    industry = _text(row.get("industry")) or rng.choice(INDUSTRIES)
    employees = _as_int(row.get("employees")) or int(10 ** rng.uniform(0.7, 4.7))
    founded = rng.randint(1950, 2022)
    city, country = rng.choice(LOCATIONS)
    technologies = rng.sample(TECHNOLOGIES, rng.randint(3, 8))
    linkedin = _text(row.get("linkedin_url")) or (
        f"https://www.linkedin.com/company/{_slug(name) or _slug(domain)}"
    )
    return {
        "domain": domain,
        "name": name,
        "industry": industry,
        "employee_count": employees,
        "founded_year": founded,
        "hq_city": city,
        "hq_country": country,
        "description": f"{name} is a {industry.lower()} company founded in {founded}, "
        f"headquartered in {city}, {country}.",
        "linkedin_url": linkedin,
        "annual_revenue_range": _revenue_range(employees),
        "technologies": technologies,
    }


def _person_names(row: Mapping[str, object]) -> tuple[str, str, str]:
    first, last = _text(row.get("first_name")), _text(row.get("last_name"))
    full = _text(row.get("full_name")) or " ".join(p for p in (first, last) if p)
    if not full:
        local = _text(row.get("email")).split("@")[0]
        full = " ".join(p.title() for p in re.split(r"[._\-+]+", local) if p)
    if full and not first:
        first, _, last = full.partition(" ")
    return full, first, last


def _current_company(row: Mapping[str, object], rng: random.Random) -> KnownCompany:
    domain = _normalize_domain(_text(row.get("company_domain")))
    email_domain = _text(row.get("email")).rpartition("@")[2].lower()
    if not domain and email_domain not in FREEMAIL:
        domain = email_domain
    name = _text(row.get("company_name")) or _name_from_domain(domain)
    if not name:
        return rng.choice(KNOWN_COMPANIES)
    return KnownCompany(name, domain or _domain_from_name(name))


def seniority_of(title: str) -> str:
    """Seniority bucket for a job title (keyword based, like most enrichers)."""
    lowered = title.lower()
    for level, pattern in SENIORITY_RULES:
        if pattern.search(lowered):
            return level
    return "entry"


def _ladder_index(level: str) -> int:
    return next(i for i, (name, _) in enumerate(LADDER) if name == level)


def _person_email(
    row: Mapping[str, object], first: str, last: str, company: KnownCompany, rng: random.Random
) -> tuple[str | None, bool]:
    given = _text(row.get("email")).lower()
    if given:
        return given, rng.random() < 0.85
    local = ".".join(_slug(p).replace("-", "") for p in (first, last) if p)
    if not local or not company.domain:
        return None, False
    # A guessed address is verified less often than a supplied one.
    return f"{local}@{company.domain}", rng.random() < 0.5


def _work_history(
    current: KnownCompany, title: str, level: str, rng: random.Random
) -> list[dict[str, Any]]:
    start = ANCHOR_DATE - dt.timedelta(days=rng.randint(90, 6 * 365))
    jobs = [_job(current, title, start, None)]
    others = [c for c in KNOWN_COMPANIES if c.domain != current.domain]
    level_index = _ladder_index(level)
    for step, company in enumerate(rng.sample(others, rng.randint(1, 5) - 1), start=1):
        end = start - dt.timedelta(days=rng.randint(0, 90))
        start = end - dt.timedelta(days=rng.randint(240, 4 * 365))
        # Earlier jobs were usually more junior.
        past_titles = LADDER[max(0, level_index - step)][1]
        jobs.append(_job(company, rng.choice(past_titles), start, end))
    return jobs


def _job(company: KnownCompany, title: str, start: dt.date, end: dt.date | None) -> dict[str, Any]:
    return {
        "company": company.name,
        "company_domain": company.domain,
        "title": title,
        "start_date": start.isoformat(),
        "end_date": end.isoformat() if end else None,
        "is_current": end is None,
    }


def _synthesize_person(row: Mapping[str, object]) -> dict[str, Any]:
    full, first, last = _person_names(row)
    key = (
        _text(row.get("email"))
        or _text(row.get("linkedin_url"))
        or f"{full}|{_text(row.get('company_domain')) or _text(row.get('company_name'))}"
    )
    rng = _rng_for("person", key)
    company = _current_company(row, rng)
    title = _text(row.get("title")) or rng.choice(rng.choice(LADDER)[1])
    level = seniority_of(title)
    email, verified = _person_email(row, first, last, company, rng)
    linkedin = _text(row.get("linkedin_url")) or (
        f"https://www.linkedin.com/in/{_slug(full) or 'member'}-{rng.getrandbits(24):06x}"
    )
    return {
        "full_name": full,
        "title": title,
        "email": email,
        "email_verified": verified,
        "linkedin_url": linkedin,
        "seniority": level,
        "work_history": _work_history(company, title, level, rng),
    }
