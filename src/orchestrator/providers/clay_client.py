"""Sends one row at a time to a Clay table webhook, politely and persistently.

Wire contract: `POST <webhook_url>` with the row as a flat JSON object and, when
configured, the header `x-clay-webhook-auth: <token>`. Clay answers 2xx on
acceptance, 429 (+ Retry-After) when over its rate limit, 401/403 on bad auth and
occasionally 5xx.

Delivery is at-least-once: a timeout after Clay already accepted the row leads
to a second submission, so receivers must be idempotent (the row carries a
`callback_token` for exactly that purpose).
"""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import json
import logging
import math
import random
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.exceptions import (
    DependencyWarning,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as TransportTimeout

from orchestrator.providers.ratelimit import SendPacer, bucket_for

__all__ = ["AUTH_HEADER", "ClayClient", "ClayDeliveryError", "SendResult"]

AUTH_HEADER = "x-clay-webhook-auth"

logger = logging.getLogger(__name__)

Sleep = Callable[[float], None]

# Transport failures worth another try. A read timeout is included although the
# row may have been accepted: a duplicate is cheaper than a lost row.
_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    NewConnectionError,
    TransportTimeout,
    ProtocolError,
    SSLError,
    ProxyError,
)
Response = urllib3.BaseHTTPResponse
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_MAX_BODY_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class SendResult:
    """Outcome of a successful `ClayClient.send`."""

    status_code: int
    attempts: int
    waited_seconds: float  # rate-limit waits + backoff sleeps, not request time
    response_body: object  # parsed JSON when possible, else text (truncated)


class ClayDeliveryError(Exception):
    """A row could not be delivered; the message never contains the auth token."""

    def __init__(
        self,
        message: str,
        status_code: int | None,
        attempts: int,
        response_body: object = None,
        *,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.attempts = attempts
        # Kept out of the message: it is Clay's text, useful for 4xx diagnosis only.
        self.response_body = response_body
        if retryable is None:
            retryable = status_code is None or _is_retryable_status(status_code)
        # Whether trying again later might help (rate limit, 5xx, network) or
        # not (bad auth, bad row, bad URL): lets callers park vs. fail a row.
        self.retryable = retryable


def _is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def webhook_host(url: str) -> str:
    """Host[:port] of `url`, without credentials, path or query (safe to log)."""
    parts = urlsplit(url)
    host = parts.hostname or "<unknown-host>"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _retry_after_from_date(value, now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _retry_after_from_date(value: str, now: float | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=dt.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _json_default(value: object) -> object:
    # Rows come from the database layer: tolerate its usual non-JSON types.
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_row(row: Mapping[str, object]) -> bytes:
    """The JSON body for `row`; NaN/Infinity are rejected (Clay would choke)."""
    return json.dumps(dict(row), default=_json_default, allow_nan=False).encode("utf-8")


def _parse_body(response: Response) -> object:
    try:
        return json.loads(response.data)
    except ValueError:
        return response.data.decode("utf-8", "replace")[:_MAX_BODY_CHARS]


class ClayClient:
    """Delivers rows to one Clay webhook with rate limiting and retries.

    Thread-safe: share one instance between sender threads, which share its pool of
    keep-alive connections. The transport is urllib3's, without requests on top: for one row
    per POST, requests' session machinery (hooks, cookies, settings merged per request) cost
    as much CPU as the request itself.
    """

    def __init__(
        self,
        webhook_url: str,
        auth_token: str | None,
        *,
        rate_per_second: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 15.0,
        sleep: Sleep = time.sleep,
        bucket: SendPacer | None = None,
        retry_after_max: float = 300.0,
        rng: random.Random | None = None,
        connections: int = 32,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._url = webhook_url
        self._host = webhook_host(webhook_url)
        self._token = auth_token or None
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._timeout = timeout
        self._sleep = sleep
        # A hostile or buggy Retry-After must not park a sender for hours.
        self._retry_after_max = retry_after_max
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        # Without a pacer given, one per webhook URL in this process, which its senders share.
        self._bucket = bucket or bucket_for(webhook_url, rate_per_second)
        # A proxy the environment names but that cannot be used fails every row with why,
        # rather than the thread that first sends.
        self._http: urllib3.PoolManager | None = None
        self._unusable: str | None = None
        try:
            self._http = _pool_manager(webhook_url, connections)
        except (ValueError, HTTPError) as exc:
            self._unusable = f"its proxy cannot be used: {exc}"

    @property
    def host(self) -> str:
        return self._host

    @property
    def bucket(self) -> SendPacer:
        return self._bucket

    def send(self, row: Mapping[str, object]) -> SendResult:
        """POST `row`; retry 429/5xx/network errors; raise ClayDeliveryError."""
        return self.send_body(self._encode(row))

    def send_body(self, body: bytes, *, paced: bool = False) -> SendResult:
        """POST a row already encoded (`encode_row`), as `send` does. `paced`: the caller
        waited for this row's slot already, so the first attempt takes none from the pacer."""
        if self._http is None:
            raise ClayDeliveryError(
                f"Clay webhook {self._host}: {self._unusable}", None, 0, retryable=False
            )
        waited = 0.0
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1 or not paced:
                waited += self._bucket.acquire()
            outcome = self._post_once(body, attempt)
            if isinstance(outcome, Response) and 200 <= outcome.status < 300:
                return SendResult(outcome.status, attempt, waited, _parse_body(outcome))
            self._raise_if_final(outcome, attempt)
            waited += self._wait_before_retry(outcome, attempt)
        raise AssertionError("unreachable: the last attempt always raises")  # pragma: no cover

    def close(self) -> None:
        """Close the client's connections."""
        if self._http is not None:
            self._http.clear()

    def __enter__(self) -> ClayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        auth = "set" if self._token else "none"
        return f"ClayClient(host={self._host!r}, auth={auth}, bucket={self._bucket!r})"

    # -- internals ---------------------------------------------------------

    def _encode(self, row: Mapping[str, object]) -> bytes:
        try:
            return encode_row(row)
        except (TypeError, ValueError) as exc:
            raise ClayDeliveryError(
                f"Clay webhook {self._host}: row is not valid JSON ({type(exc).__name__})",
                None,
                0,
                retryable=False,
            ) from None

    def _post_once(self, body: bytes, attempt: int) -> Response | BaseException:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers[AUTH_HEADER] = self._token
        try:
            # No redirects: a redirected POST silently becomes a GET and loses the row.
            assert self._http is not None, "send_body refuses rows without a transport"
            return self._http.urlopen(
                "POST",
                self._url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=self._timeout, read=self._timeout),
                retries=False,
                redirect=False,
            )
        except _RETRYABLE_EXCEPTIONS as exc:
            return exc
        except (HTTPError, ValueError) as exc:
            # Invalid URL, unknown scheme...: retrying cannot help.
            error = self._error(type(exc).__name__, None, attempt)
            error.retryable = False
            raise error from None

    def _raise_if_final(self, outcome: Response | BaseException, attempt: int) -> None:
        if isinstance(outcome, Response):
            status = outcome.status
            if not _is_retryable_status(status) or attempt >= self._max_attempts:
                raise self._error(f"HTTP {status}", status, attempt, _parse_body(outcome))
        elif attempt >= self._max_attempts:
            raise self._error(type(outcome).__name__, None, attempt)

    def _wait_before_retry(self, outcome: Response | BaseException, attempt: int) -> float:
        delay = self._backoff(attempt)
        retry_after = self._retry_after(outcome)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if isinstance(outcome, Response) and (outcome.status == 429 or retry_after is not None):
            # The limit is shared (Clay's, by its workspace): every sender under it backs off.
            self._bucket.penalize(delay)
        logger.warning(
            "Clay webhook %s: attempt %d/%d failed (%s); retrying in %.2fs",
            self._host,
            attempt,
            self._max_attempts,
            _describe(outcome),
            delay,
        )
        self._sleep(delay)
        return delay

    def _backoff(self, attempt: int) -> float:
        # Full jitter: uniform over [0, capped exponential] de-synchronises senders.
        ceiling = min(self._backoff_max, self._backoff_base * (2 ** (attempt - 1)))
        with self._rng_lock:
            return self._rng.uniform(0.0, max(0.0, ceiling))

    def _retry_after(self, outcome: Response | BaseException) -> float | None:
        if not isinstance(outcome, Response):
            return None
        if outcome.status not in _RETRY_AFTER_STATUSES:
            return None
        seconds = parse_retry_after(outcome.headers.get("Retry-After"))
        return None if seconds is None else min(seconds, self._retry_after_max)

    def _error(
        self, last: str, status: int | None, attempts: int, body: object = None
    ) -> ClayDeliveryError:
        message = (
            f"Clay webhook {self._host}: delivery failed after {attempts} "
            f"attempt{'s' if attempts != 1 else ''} (last: {last})"
        )
        return ClayDeliveryError(message, status, attempts, body)


def _pool_manager(url: str, connections: int) -> urllib3.PoolManager:
    """Keep-alive connections for the webhook's host (`connections`: one per sending thread, so
    none is dropped), through the proxy the environment names for it, read once, as requests
    reads it: a proxy without a scheme is http, its user and password go in
    Proxy-Authorization, SOCKS needs PySocks. Raises ValueError for a proxy it cannot use."""
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    if not proxy:
        return urllib3.PoolManager(maxsize=connections, block=False)
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    if proxy.lower().startswith("socks"):
        try:
            # Without PySocks the import warns as well as fails: the error below says it.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DependencyWarning)
                from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise ValueError(
                f"{_safe_proxy(proxy)} is a SOCKS proxy, which needs the PySocks package"
            ) from None
        return SOCKSProxyManager(proxy, maxsize=connections, block=False)
    user, password = requests.utils.get_auth_from_url(proxy)
    headers = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
    try:
        return urllib3.ProxyManager(proxy, proxy_headers=headers, maxsize=connections, block=False)
    except ValueError as exc:  # an unknown scheme
        raise ValueError(f"{_safe_proxy(proxy)}: {type(exc).__name__}") from None


def _safe_proxy(proxy: str) -> str:
    """The proxy's URL without its credentials, fit for a message."""
    parts = urlsplit(proxy)
    return f"proxy {parts.scheme}://{parts.hostname or '?'}"


def _describe(outcome: Response | BaseException) -> str:
    if isinstance(outcome, Response):
        return f"HTTP {outcome.status}"
    return type(outcome).__name__
