"""`SimulatorConfig`: where the simulator listens and which faults it injects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from orchestrator.providers.simulators.clay.billing import ClayPrice

_T = TypeVar("_T")

DEFAULT_CALLBACK_SECRET_HEADER = "x-callback-secret"  # noqa: S105 - a header name
# Clay's real limits, for `SimulatorConfig.with_clay_limits` and the CLI's --clay-limits.
CLAY_WORKSPACE_RATE_PER_SECOND = 10.0  # rows/s across every webhook of a workspace
CLAY_WORKSPACE_BURST = 20
CLAY_MAX_PAYLOAD_BYTES = 100_000
CLAY_WEBHOOK_LIFETIME_LIMIT = 50_000  # submissions one webhook source accepts, ever
# The server never reads a body larger than this, whatever max_payload_bytes says.
ABSOLUTE_MAX_BODY_BYTES = 1_000_000
_RATES = (
    "drop_rate",
    "duplicate_rate",
    "submit_failure_rate",
    "callback_failure_rate",
    "no_result_rate",
)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    auth_token: str | None = field(default=None, repr=False)
    rate_limit_per_second: float | None = None  # per webhook name; None = unlimited
    rate_limit_burst: int | None = None  # default: one second's worth
    # ONE bucket shared by every webhook name served (Clay limits per workspace).
    workspace_rate_per_second: float | None = None  # None = unlimited
    workspace_burst: int | None = None  # default: one second's worth
    max_payload_bytes: int | None = None  # larger bodies get 413; None = only the 1 MB guard
    webhook_lifetime_limit: int | None = None  # accepted submissions per webhook name, ever
    callback_delay_seconds: float = 0.0
    callback_jitter_seconds: float = 0.0  # extra uniform [0, jitter) per callback
    drop_rate: float = 0.0  # accepted rows that never call back
    duplicate_rate: float = 0.0  # rows whose callback is sent 2-3 times
    submit_failure_rate: float = 0.0  # submissions answered 503, not accepted
    callback_failure_rate: float = 0.0  # rows that call back with an "error"
    # Rows whose enrichment finds nothing: their data callback has every field None.
    # Rolled independently of callback_failure_rate; an error wins over a no-result.
    no_result_rate: float = 0.0
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
    # workflow_slug -> what a row of it costs (see billing.py); other slugs are free.
    # Out of the hash (a dict has none) but still compared.
    prices: Mapping[str, ClayPrice] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        self._check_prices()
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.callback_workers < 1:
            raise ValueError("callback_workers must be >= 1")
        if self.callback_delay_seconds < 0 or self.callback_jitter_seconds < 0:
            raise ValueError("callback delays must be >= 0")
        if self.fail_first_n_submissions < 0 or self.callback_retries < 0:
            raise ValueError("counts must be >= 0")
        rate = self.workspace_rate_per_second
        if rate is not None and not 0 < rate < float("inf"):
            raise ValueError(f"workspace_rate_per_second must be > 0 and finite, got {rate}")
        if self.workspace_burst is not None and self.workspace_burst < 1:
            raise ValueError("workspace_burst must be >= 1")
        cap = self.max_payload_bytes
        if cap is not None and not 1 <= cap <= ABSOLUTE_MAX_BODY_BYTES:
            raise ValueError(f"max_payload_bytes must be within [1, {ABSOLUTE_MAX_BODY_BYTES}]")
        if self.webhook_lifetime_limit is not None and self.webhook_lifetime_limit < 0:
            raise ValueError("webhook_lifetime_limit must be >= 0")

    def _check_prices(self) -> None:
        for slug, price in self.prices.items():
            if not isinstance(price, ClayPrice):
                raise ValueError(f"prices[{slug!r}] must be a ClayPrice, got {price!r}")
        # A copy: the caller's dict may change after the config was made.
        object.__setattr__(self, "prices", dict(self.prices))

    def with_clay_limits(self) -> SimulatorConfig:
        """A copy enforcing Clay's real limits wherever this config sets none."""

        def pick(value: _T | None, default: _T) -> _T:
            return default if value is None else value

        return replace(
            self,
            workspace_rate_per_second=pick(
                self.workspace_rate_per_second, CLAY_WORKSPACE_RATE_PER_SECOND
            ),
            workspace_burst=pick(self.workspace_burst, CLAY_WORKSPACE_BURST),
            max_payload_bytes=pick(self.max_payload_bytes, CLAY_MAX_PAYLOAD_BYTES),
            webhook_lifetime_limit=pick(self.webhook_lifetime_limit, CLAY_WEBHOOK_LIFETIME_LIMIT),
        )
