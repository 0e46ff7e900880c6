"""`SimulatorConfig`: where the simulator listens and which faults it injects."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_CALLBACK_SECRET_HEADER = "x-callback-secret"  # noqa: S105 - a header name


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
