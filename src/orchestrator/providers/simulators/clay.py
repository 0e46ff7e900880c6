"""A stand-in for Clay that speaks real HTTP, for local runs, tests and benchmarks.

It accepts rows on `POST /webhooks/<name>` exactly like a Clay table webhook
source and, after an optional delay, POSTs deterministic synthetic enrichment to
each row's `callback_url`, the way a Clay HTTP-API column would. Faults (auth,
rate limits, outages, dropped/duplicated/failed callbacks) can be switched on
through `SimulatorConfig`.

The enrichment (`synthesize`) depends only on the row's content (domain, email,
names), never on `entity_id` or the seed, so two runs produce identical data.
The seed only drives the fault dice, which are keyed by entity and attempt so
they do not depend on thread scheduling either.

Note the real-world race this reproduces: with a zero delay a callback can
reach the receiver before the sender has finished processing Clay's 200.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import logging
import math
import random
import re
import signal
import socket
import socketserver
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from orchestrator.providers.ratelimit import TokenBucket

__all__ = [
    "KNOWN_COMPANIES",
    "CallbackOutcome",
    "ClaySimulator",
    "KnownCompany",
    "SimulatorConfig",
    "Submission",
    "main",
    "synthesize",
]

logger = logging.getLogger(__name__)

AUTH_HEADER = "x-clay-webhook-auth"
DEFAULT_CALLBACK_SECRET_HEADER = "x-callback-secret"  # noqa: S105 - a header name
_MAX_BODY_BYTES = 1_000_000
_WEBHOOK_PATH = re.compile(r"^/webhooks/([^/]+)/?$")


# --------------------------------------------------------------------------
# Deterministic synthetic enrichment
# --------------------------------------------------------------------------


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

_INDUSTRIES = (
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
_LOCATIONS = (
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
_TECHNOLOGIES = (
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
_REVENUE_BANDS = (
    (10, "$0-1M"),
    (50, "$1M-10M"),
    (200, "$10M-50M"),
    (1_000, "$50M-100M"),
    (5_000, "$100M-500M"),
    (10_000, "$500M-1B"),
)
# Seniority ladder, most junior first, with representative titles.
_LADDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry", ("Account Executive", "Software Engineer", "Sales Development Rep", "Analyst")),
    ("senior", ("Senior Account Executive", "Senior Software Engineer", "Senior Analyst")),
    ("manager", ("Sales Manager", "Engineering Manager", "Marketing Manager")),
    ("director", ("Director of Sales", "Director of Engineering", "Director of Marketing")),
    ("vp", ("VP of Sales", "VP of Engineering", "VP of Marketing")),
    ("c_suite", ("Chief Executive Officer", "Chief Technology Officer", "Chief Revenue Officer")),
)
_SENIORITY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("c_suite", re.compile(r"\b(chief|ceo|cto|cfo|coo|cro|cmo|founder|co-founder|president)\b")),
    ("vp", re.compile(r"\b(vp|svp|evp|vice president)\b")),
    ("director", re.compile(r"\b(director|head of)\b")),
    ("manager", re.compile(r"\b(manager|lead)\b")),
    ("senior", re.compile(r"\b(senior|sr|principal|staff)\b")),
)
_FREEMAIL = frozenset({"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com"})
# Fixed "today" so dates never depend on when the simulator runs.
_ANCHOR_DATE = dt.date(2025, 1, 1)


def synthesize(row: Mapping[str, object]) -> dict[str, Any]:
    """Deterministic enrichment for a row: same content in, same data out."""
    if _entity_type(row) == "person":
        return _synthesize_person(row)
    return _synthesize_company(row)


def _entity_type(row: Mapping[str, object]) -> str:
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
    for bound, label in _REVENUE_BANDS:
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
    industry = _text(row.get("industry")) or rng.choice(_INDUSTRIES)
    employees = _as_int(row.get("employees")) or int(10 ** rng.uniform(0.7, 4.7))
    founded = rng.randint(1950, 2022)
    city, country = rng.choice(_LOCATIONS)
    technologies = rng.sample(_TECHNOLOGIES, rng.randint(3, 8))
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
    if not domain and email_domain not in _FREEMAIL:
        domain = email_domain
    name = _text(row.get("company_name")) or _name_from_domain(domain)
    if not name:
        return rng.choice(KNOWN_COMPANIES)
    return KnownCompany(name, domain or _domain_from_name(name))


def seniority_of(title: str) -> str:
    """Seniority bucket for a job title (keyword based, like most enrichers)."""
    lowered = title.lower()
    for level, pattern in _SENIORITY_RULES:
        if pattern.search(lowered):
            return level
    return "entry"


def _ladder_index(level: str) -> int:
    return next(i for i, (name, _) in enumerate(_LADDER) if name == level)


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
    start = _ANCHOR_DATE - dt.timedelta(days=rng.randint(90, 6 * 365))
    jobs = [_job(current, title, start, None)]
    others = [c for c in KNOWN_COMPANIES if c.domain != current.domain]
    level_index = _ladder_index(level)
    for step, company in enumerate(rng.sample(others, rng.randint(1, 5) - 1), start=1):
        end = start - dt.timedelta(days=rng.randint(0, 90))
        start = end - dt.timedelta(days=rng.randint(240, 4 * 365))
        # Earlier jobs were usually more junior.
        past_titles = _LADDER[max(0, level_index - step)][1]
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
    title = _text(row.get("title")) or rng.choice(rng.choice(_LADDER)[1])
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


# --------------------------------------------------------------------------
# Configuration and records
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    auth_token: str | None = field(default=None, repr=False)
    rate_limit_per_second: float | None = None  # per webhook name; None = unlimited
    rate_limit_burst: int | None = None  # default: one second's worth
    callback_delay_seconds: float = 0.0
    callback_jitter_seconds: float = 0.0  # extra uniform [0, jitter) per callback
    drop_rate: float = 0.0  # accepted rows that never call back
    duplicate_rate: float = 0.0  # rows whose callback is sent 2-3 times
    submit_failure_rate: float = 0.0  # submissions answered 503, not accepted
    callback_failure_rate: float = 0.0  # rows that call back with an "error"
    fail_first_n_submissions: int = 0  # first N webhook POSTs get 503 (outage)
    seed: int = 0
    callback_secret_header: str = DEFAULT_CALLBACK_SECRET_HEADER
    callback_secret: str | None = field(default=None, repr=False)
    callback_workers: int = 8
    callback_timeout: float = 10.0
    callback_retries: int = 2  # Clay retries little; keep it small
    # Keep every Submission / CallbackOutcome for introspection. Counters are
    # always kept; switch this off for very long benchmark runs to bound memory.
    record_history: bool = True

    def __post_init__(self) -> None:
        for name in ("drop_rate", "duplicate_rate", "submit_failure_rate", "callback_failure_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.callback_workers < 1:
            raise ValueError("callback_workers must be >= 1")
        if self.callback_delay_seconds < 0 or self.callback_jitter_seconds < 0:
            raise ValueError("callback delays must be >= 0")
        if self.fail_first_n_submissions < 0 or self.callback_retries < 0:
            raise ValueError("counts must be >= 0")


@dataclass(frozen=True, slots=True)
class Submission:
    """One accepted row."""

    row_id: str
    webhook: str
    entity_type: str
    entity_id: str
    row: dict[str, Any]
    received_at: float  # time.time()


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """Final result of one callback delivery (after its retries)."""

    row_id: str
    entity_id: str
    kind: str  # "data" | "error"
    duplicate: bool
    status: int | None  # last receiver status; None when it never answered
    attempts: int
    error: str | None  # exception class name when the receiver was unreachable


@dataclass(frozen=True, slots=True)
class _CallbackJob:
    url: str
    body: bytes
    headers: dict[str, str]
    row_id: str
    entity_id: str
    kind: str
    duplicate: bool


@dataclass(slots=True)
class _Reply:
    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    jobs: list[tuple[_CallbackJob, float]] = field(default_factory=list)


class _RejectedError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# --------------------------------------------------------------------------
# Callback delivery
# --------------------------------------------------------------------------


class _Dispatcher:
    """Delays callbacks on a timer heap, then delivers them from a worker pool.

    A single timer thread (rather than a sleeping worker per callback) keeps
    thousands of delayed callbacks cheap; the pool bounds receiver concurrency.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        record: Callable[[CallbackOutcome], None],
        on_status: Callable[[int], None],
    ) -> None:
        self._config = config
        self._record = record
        self._on_status = on_status
        self._executor = ThreadPoolExecutor(config.callback_workers, "clay-sim-callback")
        self._poster = _Poster(config.callback_timeout)
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _CallbackJob]] = []
        self._seq = itertools.count()
        self._pending = 0
        self._futures: set[Future[None]] = set()
        self._stopping = threading.Event()
        self._timer = threading.Thread(target=self._run_timer, name="clay-sim-timer", daemon=True)
        self._timer.start()

    def reserve(self, count: int) -> None:
        """Count callbacks as pending before the 200 goes out (for wait_idle)."""
        with self._cond:
            self._pending += count

    def schedule(self, job: _CallbackJob, delay: float) -> None:
        if self._stopping.is_set():
            self._finish()
            return
        if delay <= 0:
            self._submit(job)
            return
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), job))
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def close(self) -> int:
        """Stop; return how many scheduled callbacks were discarded."""
        self._stopping.set()
        with self._cond:
            discarded = len(self._heap)
            self._heap.clear()
            self._cond.notify_all()
        self._timer.join(timeout=5)
        with self._cond:
            queued = list(self._futures)
        # Cancelled futures never run `_deliver`, so un-count them here.
        cancelled = sum(1 for future in queued if future.cancel())
        self._executor.shutdown(wait=True)
        self._poster.close()
        with self._cond:
            self._pending = max(0, self._pending - discarded - cancelled)
            self._cond.notify_all()
        return discarded + cancelled

    def _run_timer(self) -> None:
        with self._cond:
            while not self._stopping.is_set():
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, job = heapq.heappop(self._heap)
                self._submit(job)

    def _submit(self, job: _CallbackJob) -> None:
        try:
            future = self._executor.submit(self._deliver, job)
        except RuntimeError:  # executor shut down by a concurrent stop()
            self._finish()
            return
        with self._cond:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._cond:
            self._futures.discard(future)

    def _deliver(self, job: _CallbackJob) -> None:
        try:
            self._record(self._attempt_all(job))
        except Exception:  # a bug here must not leave wait_idle hanging
            logger.exception("simulator callback crashed")
        finally:
            self._finish()

    def _attempt_all(self, job: _CallbackJob) -> CallbackOutcome:
        status: int | None = None
        error: str | None = None
        attempts = 0
        for attempts in range(1, self._config.callback_retries + 2):
            status, error = self._post(job)
            if status is not None and status < 500:
                break
            if attempts <= self._config.callback_retries and self._stopping.wait(0.1 * attempts):
                break
        return CallbackOutcome(
            job.row_id, job.entity_id, job.kind, job.duplicate, status, attempts, error
        )

    def _post(self, job: _CallbackJob) -> tuple[int | None, str | None]:
        try:
            status = self._poster.post(job.url, job.body, job.headers)
        except TimeoutError:
            return None, "Timeout"
        except (OSError, http.client.HTTPException):
            return None, "ConnectionError"
        self._on_status(status)
        return status, None

    def _finish(self) -> None:
        with self._cond:
            self._pending -= 1
            if self._pending <= 0:
                self._pending = 0
                self._cond.notify_all()


_Origin = tuple[str, str, int | None]
# A reused keep-alive connection failing like this was most likely closed by
# the receiver while idle: worth one immediate retry on a fresh connection.
_STALE_CONNECTION = (
    ConnectionResetError,
    BrokenPipeError,
    http.client.BadStatusLine,
    http.client.CannotSendRequest,
)


class _Poster:
    """Keep-alive HTTP POSTs over http.client, one connection per thread and origin.

    Callback delivery is the simulator's hot path; plain http.client costs about
    half of what `requests` does per call, which doubles callback throughput.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []
        self._ssl_context: ssl.SSLContext | None = None

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST and return the status; raises OSError/HTTPException on failure."""
        parts = urlsplit(url)
        origin: _Origin = (parts.scheme, parts.hostname or "", parts.port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection, reused = self._connection(origin)
        try:
            return self._roundtrip(connection, target, body, headers)
        except _STALE_CONNECTION:
            self._discard(origin)
            if not reused:
                raise
        except BaseException:
            self._discard(origin)
            raise
        connection, _ = self._connection(origin)
        try:
            return self._roundtrip(connection, target, body, headers)
        except BaseException:
            self._discard(origin)
            raise

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()

    def _roundtrip(
        self,
        connection: http.client.HTTPConnection,
        target: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> int:
        try:
            connection.request("POST", target, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read()  # drain, so the connection can be reused
        except BaseException:
            connection.close()
            raise
        return response.status

    def _connection(self, origin: _Origin) -> tuple[http.client.HTTPConnection, bool]:
        cache: dict[_Origin, http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None
        )
        if cache is None:
            cache = self._local.connections = {}
        connection = cache.get(origin)
        if connection is not None:
            return connection, True
        connection = self._open(origin)
        cache[origin] = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def _open(self, origin: _Origin) -> http.client.HTTPConnection:
        scheme, host, port = origin
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            return http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=self._ssl_context
            )
        return http.client.HTTPConnection(host, port, timeout=self._timeout)

    def _discard(self, origin: _Origin) -> None:
        cache: dict[_Origin, http.client.HTTPConnection] = getattr(self._local, "connections", {})
        connection = cache.pop(origin, None)
        if connection is not None:
            connection.close()
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default of 5 drops connects under bursts

    def __init__(self, address: tuple[str, int], simulator: ClaySimulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: senders reuse connections
    disable_nagle_algorithm = True  # headers and body are separate writes
    timeout = 60  # idle keep-alive connections are closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.simulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.simulator._track(self.connection, add=False)

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        auth = self.headers.get(AUTH_HEADER)
        reply = self.server.simulator._handle_submission(self.path, auth, body)
        try:
            self._send_json(reply.status, reply.payload, reply.headers)
        finally:
            # Enqueue only after the 200 is written, so callbacks do not
            # systematically overtake the response.
            self.server.simulator._dispatch(reply.jobs)

    def do_GET(self) -> None:
        if urlsplit(self.path).path in ("/health", "/healthz"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": "not found"})

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(413 if length > 0 else 400, {"error": "bad Content-Length"})
            return None
        return self.rfile.read(length) if length else b""

    def _send_json(
        self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("clay-sim %s " + format, self.address_string(), *args)


# --------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------


class ClaySimulator:
    """Clay stand-in; see the module docstring. Thread-safe introspection."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        synthesizer: Callable[[Mapping[str, object]], dict[str, Any]] | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        # Other asynchronous providers (n8n) reuse the simulator with their own data.
        self._synthesize = synthesizer or synthesize
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._dispatcher: _Dispatcher | None = None
        self._stopped = threading.Event()
        self._connections: set[socket.socket] = set()
        self._buckets: dict[str, TokenBucket] = {}
        self._webhook_posts = 0
        self._attempts_by_entity: Counter[str] = Counter()
        self._submissions: list[Submission] = []
        self._accepted = 0
        self._by_entity: Counter[str] = Counter()
        self._by_webhook: Counter[str] = Counter()
        self._by_type: Counter[str] = Counter()
        self._rejected: Counter[int] = Counter()
        self._callback_statuses: Counter[int] = Counter()
        self._outcomes: list[CallbackOutcome] = []
        self._callbacks_sent = 0
        self._callbacks_failed = 0
        self._callbacks_dropped = 0
        self._callbacks_duplicated = 0
        self._callbacks_errored = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> ClaySimulator:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._stopped.clear()
        self._dispatcher = _Dispatcher(self.config, self._record_outcome, self._record_status)
        self._server = _Server((self.config.host, self.config.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="clay-sim-http",
            daemon=True,
        )
        self._thread.start()
        logger.info("Clay simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving; callbacks still scheduled are discarded (counted dropped)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopped.set()
        server.shutdown()
        server.server_close()
        self._close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._dispatcher is not None:
            discarded = self._dispatcher.close()
            with self._lock:
                self._callbacks_dropped += discarded

    def __enter__(self) -> ClaySimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (webhooks live under /webhooks/)."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def webhook_url(self, name: str) -> str:
        return f"{self.url}/webhooks/{name}"

    # -- introspection -----------------------------------------------------

    @property
    def submissions(self) -> list[Submission]:
        """Accepted rows in arrival order (empty when record_history is off)."""
        with self._lock:
            return list(self._submissions)

    @property
    def submissions_by_entity(self) -> Counter[str]:
        with self._lock:
            return Counter(self._by_entity)

    @property
    def submissions_by_webhook(self) -> Counter[str]:
        with self._lock:
            return Counter(self._by_webhook)

    def submission_count(self, entity_type: str | None = None) -> int:
        with self._lock:
            return self._accepted if entity_type is None else self._by_type[entity_type]

    @property
    def rejected(self) -> Counter[int]:
        with self._lock:
            return Counter(self._rejected)

    @property
    def callbacks_sent(self) -> int:
        """Callbacks the receiver answered with a non-5xx status."""
        with self._lock:
            return self._callbacks_sent

    @property
    def callbacks_failed(self) -> int:
        """Callbacks abandoned after retries (unreachable receiver or 5xx)."""
        with self._lock:
            return self._callbacks_failed

    @property
    def callbacks_dropped(self) -> int:
        """Callbacks never attempted: drop_rate, or discarded by stop()."""
        with self._lock:
            return self._callbacks_dropped

    @property
    def callbacks_duplicated(self) -> int:
        """Extra copies scheduled because of duplicate_rate."""
        with self._lock:
            return self._callbacks_duplicated

    @property
    def callbacks_errored(self) -> int:
        """Rows that were answered with an error callback (callback_failure_rate)."""
        with self._lock:
            return self._callbacks_errored

    @property
    def callback_statuses(self) -> Counter[int]:
        """Every receiver status seen, retried attempts included."""
        with self._lock:
            return Counter(self._callback_statuses)

    @property
    def callback_outcomes(self) -> list[CallbackOutcome]:
        with self._lock:
            return list(self._outcomes)

    @property
    def pending_callbacks(self) -> int:
        return self._dispatcher.pending if self._dispatcher else 0

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        """True once every scheduled callback was delivered, failed or dropped."""
        return self._dispatcher.wait_idle(timeout) if self._dispatcher else True

    # -- request handling (called from server threads) ---------------------

    def _handle_submission(self, path: str, auth: str | None, body: bytes) -> _Reply:
        try:
            webhook = self._check_request(path, auth)
            row = _parse_row(body)
            self._roll_submit_failure(row)
            return self._accept(webhook, row)
        except _RejectedError as rejection:
            with self._lock:
                self._rejected[rejection.status] += 1
            return _Reply(rejection.status, {"error": rejection.message}, rejection.headers)

    def _check_request(self, path: str, auth: str | None) -> str:
        match = _WEBHOOK_PATH.match(urlsplit(path).path)
        if match is None:
            raise _RejectedError(404, "unknown webhook path; use /webhooks/<name>")
        if self._stopped.is_set():
            raise _RejectedError(503, "simulator is shutting down")
        with self._lock:
            self._webhook_posts += 1
            in_outage = self._webhook_posts <= self.config.fail_first_n_submissions
        if in_outage:
            raise _RejectedError(503, "service unavailable (simulated outage)")
        self._check_auth(auth)
        webhook = match.group(1)
        self._check_rate(webhook)
        return webhook

    def _check_auth(self, supplied: str | None) -> None:
        expected = self.config.auth_token
        if expected is None:
            return
        if supplied is None or not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise _RejectedError(401, "missing or invalid x-clay-webhook-auth")

    def _check_rate(self, webhook: str) -> None:
        rate = self.config.rate_limit_per_second
        if rate is None:
            return
        with self._lock:
            bucket = self._buckets.get(webhook)
            if bucket is None:
                bucket = TokenBucket(rate, self.config.rate_limit_burst)
                self._buckets[webhook] = bucket
        wait = bucket.try_acquire()
        if wait > 0:
            # Retry-After is whole seconds on the wire; never advertise 0.
            retry_after = str(max(1, math.ceil(wait)))
            raise _RejectedError(429, "rate limit exceeded", {"Retry-After": retry_after})

    def _roll_submit_failure(self, row: dict[str, Any]) -> None:
        entity_id = row["entity_id"]
        with self._lock:
            self._attempts_by_entity[entity_id] += 1
            attempt = self._attempts_by_entity[entity_id]
        if self._chance("submit_failure", entity_id, attempt) < self.config.submit_failure_rate:
            raise _RejectedError(503, "service unavailable (simulated failure)")

    def _accept(self, webhook: str, row: dict[str, Any]) -> _Reply:
        entity_id = row["entity_id"]
        entity_type = _entity_type(row)
        row_id = uuid.uuid4().hex
        with self._lock:
            if self.config.record_history:
                self._submissions.append(
                    Submission(row_id, webhook, entity_type, entity_id, row, time.time())
                )
            self._accepted += 1
            self._by_entity[entity_id] += 1
            self._by_webhook[webhook] += 1
            self._by_type[entity_type] += 1
            nth = self._by_entity[entity_id]
        jobs = self._plan_callbacks(row, row_id, nth)
        if self._dispatcher is not None:
            self._dispatcher.reserve(len(jobs))
        return _Reply(200, {"status": "accepted", "row_id": row_id}, jobs=jobs)

    def _plan_callbacks(
        self, row: dict[str, Any], row_id: str, nth: int
    ) -> list[tuple[_CallbackJob, float]]:
        entity_id = row["entity_id"]
        cfg = self.config
        if self._chance("drop", entity_id, nth) < cfg.drop_rate:
            with self._lock:
                self._callbacks_dropped += 1
            return []
        job = self._callback_job(
            row, row_id, self._chance("fail", entity_id, nth) < cfg.callback_failure_rate
        )
        copies = 1
        if self._chance("duplicate", entity_id, nth) < cfg.duplicate_rate:
            # "possibly twice": a quarter of duplicated rows get two extra copies.
            copies += 2 if self._chance("duplicate2", entity_id, nth) < 0.25 else 1
        with self._lock:
            self._callbacks_duplicated += copies - 1
            self._callbacks_errored += int(job.kind == "error")
        return [
            (job if i == 0 else _duplicate_of(job), self._delay(entity_id, nth, i))
            for i in range(copies)
        ]

    def _callback_job(self, row: dict[str, Any], row_id: str, failed: bool) -> _CallbackJob:
        payload: dict[str, Any] = {
            "entity_id": row["entity_id"],
            "workflow_slug": row.get("workflow_slug"),
            "callback_token": row["callback_token"],
        }
        if failed:
            payload["error"] = "Simulated enrichment failure: provider returned no result"
        else:
            payload["data"] = self._synthesize(row)
        headers = {"Content-Type": "application/json"}
        if self.config.callback_secret is not None:
            headers[self.config.callback_secret_header] = self.config.callback_secret
        return _CallbackJob(
            url=row["callback_url"],
            body=json.dumps(payload).encode(),
            headers=headers,
            row_id=row_id,
            entity_id=row["entity_id"],
            kind="error" if failed else "data",
            duplicate=False,
        )

    def _delay(self, entity_id: str, nth: int, copy: int) -> float:
        jitter = self.config.callback_jitter_seconds
        extra = self._chance(f"jitter{copy}", entity_id, nth) * jitter if jitter else 0.0
        return self.config.callback_delay_seconds + extra

    def _chance(self, kind: str, entity_id: str, nth: int) -> float:
        """Uniform [0, 1) keyed by seed, entity and attempt: scheduling-independent."""
        digest = hashlib.sha256(f"{self.config.seed}|{kind}|{entity_id}|{nth}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _dispatch(self, jobs: Sequence[tuple[_CallbackJob, float]]) -> None:
        if self._dispatcher is None:
            return
        for job, delay in jobs:
            self._dispatcher.schedule(job, delay)

    def _record_outcome(self, outcome: CallbackOutcome) -> None:
        delivered = outcome.status is not None and outcome.status < 500
        with self._lock:
            if self.config.record_history:
                self._outcomes.append(outcome)
            if delivered:
                self._callbacks_sent += 1
            else:
                self._callbacks_failed += 1

    def _record_status(self, status: int) -> None:
        with self._lock:
            self._callback_statuses[status] += 1

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _close_connections(self) -> None:
        # Idle keep-alive connections would otherwise outlive stop().
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _duplicate_of(job: _CallbackJob) -> _CallbackJob:
    return _CallbackJob(
        job.url, job.body, job.headers, job.row_id, job.entity_id, job.kind, duplicate=True
    )


def _parse_row(body: bytes) -> dict[str, Any]:
    try:
        row = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _RejectedError(400, "body is not valid JSON") from None
    if not isinstance(row, dict):
        raise _RejectedError(400, "body must be a JSON object (one row)")
    for key in ("entity_id", "callback_token"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise _RejectedError(400, f"row is missing a non-empty string {key!r}")
    url = row.get("callback_url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise _RejectedError(400, "row is missing an http(s) 'callback_url'")
    return row


# --------------------------------------------------------------------------
# Standalone entry point
# --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Run a local Clay webhook simulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--delay", type=float, default=0.0, help="callback delay, seconds")
    p.add_argument("--jitter", type=float, default=0.0, help="extra random delay, seconds")
    p.add_argument("--auth-token", default=None, help="require x-clay-webhook-auth")
    p.add_argument("--rate-limit", type=float, default=None, help="rows/second per webhook")
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--duplicate-rate", type=float, default=0.0)
    p.add_argument("--submit-failure-rate", type=float, default=0.0)
    p.add_argument("--callback-failure-rate", type=float, default=0.0)
    p.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--callback-secret", default=None)
    p.add_argument("--callback-secret-header", default=DEFAULT_CALLBACK_SECRET_HEADER)
    p.add_argument("--workers", type=int, default=8, help="parallel callback senders")
    return p


def _config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        auth_token=args.auth_token,
        rate_limit_per_second=args.rate_limit,
        callback_delay_seconds=args.delay,
        callback_jitter_seconds=args.jitter,
        drop_rate=args.drop_rate,
        duplicate_rate=args.duplicate_rate,
        submit_failure_rate=args.submit_failure_rate,
        callback_failure_rate=args.callback_failure_rate,
        fail_first_n_submissions=args.fail_first,
        seed=args.seed,
        callback_secret_header=args.callback_secret_header,
        callback_secret=args.callback_secret,
        callback_workers=args.workers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    simulator = ClaySimulator(_config_from_args(args))
    stop = threading.Event()
    # Explicit handlers: a shell-backgrounded process ignores SIGINT by default,
    # and SIGTERM (docker, supervisors) should stop it just as cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with simulator:
        print(f"Clay simulator: POST rows to {simulator.webhook_url('<name>')}", flush=True)
        while not stop.wait(0.5):
            pass
        print(_summary(simulator), flush=True)
    return 0


def _summary(simulator: ClaySimulator) -> str:
    return (
        f"accepted={simulator.submission_count()} rejected={dict(simulator.rejected)} "
        f"callbacks sent={simulator.callbacks_sent} failed={simulator.callbacks_failed} "
        f"dropped={simulator.callbacks_dropped}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
