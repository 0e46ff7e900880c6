"""Reference data the synthetic enrichment draws from: companies, industries, places, titles."""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple


class KnownCompany(NamedTuple):
    name: str
    domain: str


# Past employers are drawn from this list so tests can build a "customer
# companies" list that is guaranteed to match some work histories.
KNOWN_COMPANIES: tuple[KnownCompany, ...] = tuple(
    KnownCompany(name, domain)
    for name, domain in (
        ("Stripe", "stripe.com"),
        ("Google", "google.com"),
        ("Salesforce", "salesforce.com"),
        ("HubSpot", "hubspot.com"),
        ("Snowflake", "snowflake.com"),
        ("Datadog", "datadoghq.com"),
        ("Microsoft", "microsoft.com"),
        ("Amazon", "amazon.com"),
        ("Meta", "meta.com"),
        ("Apple", "apple.com"),
        ("Netflix", "netflix.com"),
        ("Airbnb", "airbnb.com"),
        ("Uber", "uber.com"),
        ("Shopify", "shopify.com"),
        ("Atlassian", "atlassian.com"),
        ("Slack", "slack.com"),
        ("Zoom", "zoom.us"),
        ("Twilio", "twilio.com"),
        ("MongoDB", "mongodb.com"),
        ("Databricks", "databricks.com"),
        ("Okta", "okta.com"),
        ("Cloudflare", "cloudflare.com"),
        ("Adobe", "adobe.com"),
        ("Oracle", "oracle.com"),
        ("IBM", "ibm.com"),
        ("Intercom", "intercom.com"),
        ("Notion", "notion.so"),
        ("Figma", "figma.com"),
        ("Canva", "canva.com"),
        ("Dropbox", "dropbox.com"),
        ("Zendesk", "zendesk.com"),
        ("ServiceNow", "servicenow.com"),
        ("Workday", "workday.com"),
        ("Asana", "asana.com"),
        ("Gong", "gong.io"),
        ("Segment", "segment.com"),
        ("Plaid", "plaid.com"),
        ("Brex", "brex.com"),
        ("Ramp", "ramp.com"),
        ("Rippling", "rippling.com"),
        ("Gusto", "gusto.com"),
        ("LinkedIn", "linkedin.com"),
    )
)

INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Marketing & Advertising",
    "Education",
    "Logistics",
    "Real Estate",
    "Telecommunications",
    "Media",
    "Cybersecurity",
)
LOCATIONS = (
    ("San Francisco", "United States"),
    ("New York", "United States"),
    ("Austin", "United States"),
    ("Boston", "United States"),
    ("Seattle", "United States"),
    ("London", "United Kingdom"),
    ("Berlin", "Germany"),
    ("Paris", "France"),
    ("Amsterdam", "Netherlands"),
    ("Toronto", "Canada"),
    ("Sydney", "Australia"),
    ("Singapore", "Singapore"),
    ("Dublin", "Ireland"),
    ("Stockholm", "Sweden"),
    ("Tel Aviv", "Israel"),
    ("Bangalore", "India"),
)
TECHNOLOGIES = (
    "Salesforce",
    "HubSpot",
    "Segment",
    "Snowflake",
    "AWS",
    "Google Cloud",
    "Azure",
    "Kubernetes",
    "React",
    "Stripe",
    "Zendesk",
    "Intercom",
    "Datadog",
    "Slack",
    "Okta",
    "Marketo",
    "Outreach",
    "Gong",
    "dbt",
    "Looker",
)
# (upper bound on employees, revenue range), in increasing order.
REVENUE_BANDS = (
    (10, "$0-1M"),
    (50, "$1M-10M"),
    (200, "$10M-50M"),
    (1_000, "$50M-100M"),
    (5_000, "$100M-500M"),
    (10_000, "$500M-1B"),
)
# Seniority ladder, most junior first, with representative titles.
LADDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry", ("Account Executive", "Software Engineer", "Sales Development Rep", "Analyst")),
    ("senior", ("Senior Account Executive", "Senior Software Engineer", "Senior Analyst")),
    ("manager", ("Sales Manager", "Engineering Manager", "Marketing Manager")),
    ("director", ("Director of Sales", "Director of Engineering", "Director of Marketing")),
    ("vp", ("VP of Sales", "VP of Engineering", "VP of Marketing")),
    ("c_suite", ("Chief Executive Officer", "Chief Technology Officer", "Chief Revenue Officer")),
)
SENIORITY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("c_suite", re.compile(r"\b(chief|ceo|cto|cfo|coo|cro|cmo|founder|co-founder|president)\b")),
    ("vp", re.compile(r"\b(vp|svp|evp|vice president)\b")),
    ("director", re.compile(r"\b(director|head of)\b")),
    ("manager", re.compile(r"\b(manager|lead)\b")),
    ("senior", re.compile(r"\b(senior|sr|principal|staff)\b")),
)
FREEMAIL = frozenset({"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com"})
# Fixed "today" so dates never depend on when the simulator runs.
ANCHOR_DATE = dt.date(2025, 1, 1)
