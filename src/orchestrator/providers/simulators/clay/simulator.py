"""ClaySimulator: accepts rows over HTTP and schedules their callbacks.

The package docstring describes the behaviour and the faults it can inject.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit

from orchestrator.providers.ratelimit import TokenBucket
from orchestrator.providers.simulators.clay.config import ABSOLUTE_MAX_BODY_BYTES, SimulatorConfig
from orchestrator.providers.simulators.clay.dispatcher import Dispatcher
from orchestrator.providers.simulators.clay.records import CallbackJob, Reply, Submission
from orchestrator.providers.simulators.clay.server import WebhookServer
from orchestrator.providers.simulators.clay.state import SimulatorState
from orchestrator.providers.simulators.clay.synthesis import entity_type_of, synthesize

logger = logging.getLogger(__name__)

_WEBHOOK_PATH = re.compile(r"^/webhooks/([^/]+)/?$")
# What a row's callback says: enrichment data, data with nothing found, or an error.
_Answer = Literal["data", "no_result", "error"]


class _RejectedError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ClaySimulator(SimulatorState):
    """Clay stand-in; see the package docstring. Thread-safe introspection."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        synthesizer: Callable[[Mapping[str, object]], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(config or SimulatorConfig())
        # Other asynchronous providers (n8n) reuse the simulator with their own data.
        self._synthesize = synthesizer or synthesize
        self._server: WebhookServer | None = None
        self._thread: threading.Thread | None = None
        self._dispatcher: Dispatcher | None = None
        self._stopped = threading.Event()
        self._buckets: dict[str, TokenBucket] = {}
        rate = self.config.workspace_rate_per_second
        self._workspace_bucket = (
            None if rate is None else TokenBucket(rate, self.config.workspace_burst)
        )
        # Submissions counted against each webhook's lifetime limit, including
        # ones still being checked (reserved), so concurrent POSTs cannot overshoot.
        self._lifetime_used: Counter[str] = Counter()
        self._webhook_posts = 0
        self._attempts_by_entity: Counter[str] = Counter()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> ClaySimulator:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._stopped.clear()
        self._dispatcher = Dispatcher(
            self.config, self._record_outcome, self._record_status, self._record_send
        )
        self._server = WebhookServer((self.config.host, self.config.port), self)
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

    def __exit__(self, *exc_info: object) -> None:
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

    # -- introspection (the counters live in SimulatorState) ----------------

    @property
    def pending_callbacks(self) -> int:
        return self._dispatcher.pending if self._dispatcher else 0

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        """True once every scheduled callback was delivered, failed or dropped."""
        return self._dispatcher.wait_idle(timeout) if self._dispatcher else True

    def stats(self) -> dict[str, Any]:
        """What GET /stats answers: traffic, rejections, window maxima, limits, callbacks.

        `rejected` is keyed by status as a string (as in JSON). Window maxima
        (`max_accepted_in_1s`, `max_received_in_1s`, `max_rate_10s` = most rows
        accepted in any 10 s window / 10) skip windows starting within the first
        second after the first POST. `billing` is what was billed (see billing.py):
        totals, no-result answers and a breakdown by workflow_slug, amounts as
        exact decimal strings.
        """
        stats = self._stats(time.monotonic())
        bucket = self._workspace_bucket
        stats.update(
            workspace_rate_per_second=self.config.workspace_rate_per_second,
            workspace_burst=None if bucket is None else bucket.capacity,
            webhook_lifetime_limit=self.config.webhook_lifetime_limit,
            max_payload_bytes=self.config.max_payload_bytes,
            rate_limit_per_second=self.config.rate_limit_per_second,
            pending_callbacks=self.pending_callbacks,
        )
        return stats

    # -- request handling (called from server threads) ---------------------

    def _handle_submission(self, path: str, auth: str | None, body: bytes) -> Reply:
        self._record_received()
        reserved: str | None = None
        try:
            webhook = self._check_request(path, auth)
            self._check_size(len(body))
            row = _parse_row(body)
            # Before the rate limits: a spent webhook must say so (not retryable),
            # not answer 429 and invite endless retries.
            reserved = self._reserve_lifetime(webhook)
            self._check_rate(webhook)
            self._roll_submit_failure(row)
            return self._accept(webhook, row)
        except _RejectedError as rejection:
            with self._lock:
                self._rejected[rejection.status] += 1
                if reserved is not None:
                    self._lifetime_used[reserved] -= 1
            return Reply(rejection.status, {"error": rejection.message}, rejection.headers)

    def _handle_oversized(self, length: int) -> Reply:
        """A POST whose Content-Length is over the absolute guard (its body is never read)."""
        self._record_received()
        with self._lock:
            self._rejected[413] += 1
        return Reply(413, {"error": self._size_error(length)})

    def _record_received(self) -> None:
        with self._lock:
            self._traffic.receive(time.monotonic())

    def _check_size(self, size: int) -> None:
        cap = self.config.max_payload_bytes
        if cap is not None and size > cap:
            raise _RejectedError(413, self._size_error(size))

    def _size_error(self, size: int) -> str:
        cap = self.config.max_payload_bytes
        return f"payload of {size} bytes is over the {cap or ABSOLUTE_MAX_BODY_BYTES}-byte limit"

    def _reserve_lifetime(self, webhook: str) -> str | None:
        limit = self.config.webhook_lifetime_limit
        if limit is None:
            return None
        with self._lock:
            spent = self._lifetime_used[webhook] >= limit
            if not spent:
                self._lifetime_used[webhook] += 1
        if spent:
            # 410 Gone rather than 403: the source exists and the caller is
            # authorized, but it will never accept a row again; 410 says "permanently
            # gone, move on" (to the next webhook URL), keeps 401/403 meaning bad
            # auth, and like every 4xx but 429 it is not retried by senders.
            raise _RejectedError(
                410,
                f"webhook source {webhook} has reached its lifetime limit of {limit} submissions",
            )
        return webhook

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
        return match.group(1)

    def _check_auth(self, supplied: str | None) -> None:
        expected = self.config.auth_token
        if expected is None:
            return
        if supplied is None or not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise _RejectedError(401, "missing or invalid x-clay-webhook-auth")

    def _check_rate(self, webhook: str) -> None:
        """The per-webhook bucket (if any), then the workspace-wide one (if any)."""
        rate = self.config.rate_limit_per_second
        if rate is not None:
            with self._lock:
                bucket = self._buckets.get(webhook)
                if bucket is None:
                    bucket = TokenBucket(rate, self.config.rate_limit_burst)
                    self._buckets[webhook] = bucket
            _take_token(bucket, "rate limit exceeded")
        if self._workspace_bucket is not None:
            limit = f"{self._workspace_bucket.rate_per_second:g} rows/s"
            _take_token(self._workspace_bucket, f"workspace rate limit exceeded ({limit})")

    def _roll_submit_failure(self, row: dict[str, Any]) -> None:
        entity_id = row["entity_id"]
        with self._lock:
            self._attempts_by_entity[entity_id] += 1
            attempt = self._attempts_by_entity[entity_id]
        if self._chance("submit_failure", entity_id, attempt) < self.config.submit_failure_rate:
            raise _RejectedError(503, "service unavailable (simulated failure)")

    def _accept(self, webhook: str, row: dict[str, Any]) -> Reply:
        entity_id = row["entity_id"]
        entity_type = entity_type_of(row)
        row_id = uuid.uuid4().hex
        slug = _workflow_slug(row)
        with self._lock:
            if self.config.record_history:
                self._submissions.append(
                    Submission(row_id, webhook, entity_type, entity_id, row, time.time())
                )
            self._accepted += 1
            self._traffic.accept(time.monotonic(), webhook, slug, entity_id)
            self._by_entity[entity_id] += 1
            self._by_webhook[webhook] += 1
            self._by_type[entity_type] += 1
            nth = self._by_entity[entity_id]
            # Billed now, as the enrichment runs, whether or not a callback ever goes out;
            # under the state lock so /stats never shows the row without its bill.
            self._ledger.charge_run(slug)
        jobs = self._plan_callbacks(row, row_id, nth)
        if self._dispatcher is not None:
            self._dispatcher.reserve(len(jobs))
        return Reply(200, {"status": "accepted", "row_id": row_id}, jobs=jobs)

    def _plan_callbacks(
        self, row: dict[str, Any], row_id: str, nth: int
    ) -> list[tuple[CallbackJob, float]]:
        entity_id = row["entity_id"]
        cfg = self.config
        if self._chance("drop", entity_id, nth) < cfg.drop_rate:
            with self._lock:
                self._callbacks_dropped += 1
            return []
        job = self._callback_job(row, row_id, self._roll_answer(entity_id, nth))
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

    def _roll_answer(self, entity_id: str, nth: int) -> _Answer:
        if self._chance("fail", entity_id, nth) < self.config.callback_failure_rate:
            return "error"
        if self._chance("no_result", entity_id, nth) < self.config.no_result_rate:
            return "no_result"
        return "data"

    def _answer_data(self, row: dict[str, Any], answer: _Answer) -> dict[str, Any] | None:
        """The callback's `data`; None for an error callback."""
        if answer == "error":
            return None
        data = self._synthesize(row)
        # Clay's HTTP-API column sends its body template whatever was found: every
        # field is still there, the empty columns as null.
        return dict.fromkeys(data) if answer == "no_result" else data

    def _callback_job(self, row: dict[str, Any], row_id: str, answer: _Answer) -> CallbackJob:
        payload: dict[str, Any] = {
            "entity_id": row["entity_id"],
            "workflow_slug": row.get("workflow_slug"),
            "callback_token": row["callback_token"],
        }
        data = self._answer_data(row, answer)
        if data is None:
            payload["error"] = "Simulated enrichment failure: provider returned no result"
        else:
            payload["data"] = data
        charge = self._ledger.price_callback(
            _workflow_slug(row), data, no_result=answer == "no_result"
        )
        headers = {"Content-Type": "application/json"}
        if self.config.callback_secret is not None:
            headers[self.config.callback_secret_header] = self.config.callback_secret
        return CallbackJob(
            url=row["callback_url"],
            body=json.dumps(payload).encode(),
            headers=headers,
            row_id=row_id,
            entity_id=row["entity_id"],
            kind="error" if answer == "error" else "data",
            duplicate=False,
            charge=charge,
        )

    def _delay(self, entity_id: str, nth: int, copy: int) -> float:
        jitter = self.config.callback_jitter_seconds
        extra = self._chance(f"jitter{copy}", entity_id, nth) * jitter if jitter else 0.0
        return self.config.callback_delay_seconds + extra

    def _chance(self, kind: str, entity_id: str, nth: int) -> float:
        """Uniform [0, 1) keyed by seed, entity and attempt: scheduling-independent."""
        digest = hashlib.sha256(f"{self.config.seed}|{kind}|{entity_id}|{nth}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _dispatch(self, jobs: Sequence[tuple[CallbackJob, float]]) -> None:
        if self._dispatcher is None:
            return
        for job, delay in jobs:
            self._dispatcher.schedule(job, delay)


def _take_token(bucket: TokenBucket, message: str) -> None:
    wait = bucket.try_acquire()
    if wait > 0:
        # Retry-After is whole seconds on the wire; never advertise 0.
        retry_after = str(max(1, math.ceil(wait)))
        raise _RejectedError(429, message, {"Retry-After": retry_after})


def _duplicate_of(job: CallbackJob) -> CallbackJob:
    # The copy keeps the original's charge, so the row is billed once.
    return replace(job, duplicate=True)


def _workflow_slug(row: Mapping[str, Any]) -> str:
    return str(row.get("workflow_slug") or "")


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
