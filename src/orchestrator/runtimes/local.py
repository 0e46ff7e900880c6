"""The local runtime: everything `enrich run` and `enrich serve` need in one process.

Databases, a thread-pool dispatcher, and the coalescing trigger that runs orchestrator passes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from uuid import UUID

import psycopg

from orchestrator.callbacks.group_commit import GroupCommitWriter
from orchestrator.callbacks.receive import ReceiverConfig
from orchestrator.callbacks.tokens import load_or_create_key
from orchestrator.db.pool import Databases, open_databases
from orchestrator.engine import runners
from orchestrator.engine.calls import StepTable, execute_call, release_unstarted
from orchestrator.engine.context import StepContext
from orchestrator.engine.dispatch import StepCall, ThreadPoolDispatcher
from orchestrator.engine.passes import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CLAIM_LIMIT,
    PassResult,
    run_pass,
)
from orchestrator.engine.sweeper import sweep
from orchestrator.engine.trigger import CoalescingTrigger
from orchestrator.settings import Settings, get_settings
from orchestrator.state.progress import BatchProgress, read_progress
from orchestrator.steps.table import step_table


def signing_key_for(settings: Settings) -> bytes:
    if settings.callback_signing_key is not None:
        return bytes.fromhex(settings.callback_signing_key.get_secret_value())
    return load_or_create_key(settings.enrich_home / "callback-signing.key")


def api_key_for(settings: Settings) -> str:
    """The configured API key, or one generated and kept beside the local database."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    return load_or_create_key(settings.enrich_home / "api.key").hex()


def callback_secret_for(settings: Settings) -> str:
    """The configured secret, or one kept beside the local database for the simulator."""
    if settings.callback_secret is not None:
        return settings.callback_secret.get_secret_value()
    return load_or_create_key(settings.enrich_home / "callback-secret.key").hex()


log = logging.getLogger(__name__)

# How often a run without a progress callback looks whether its batch waits on a hold.
HOLD_CHECK_SECONDS = 2.0

ProgressCallback = Callable[[BatchProgress], None]


class LocalRuntime:
    def __init__(
        self,
        settings: Settings | None = None,
        dbs: Databases | None = None,
        *,
        workers: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        min_pass_interval: float = 0.25,
        steps: StepTable | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self._owns_dbs = dbs is None
        self.dbs = dbs or open_databases(settings=self.settings)
        self.signing_key = signing_key_for(self.settings)
        self.receiver_config = ReceiverConfig(
            self.signing_key,
            callback_secret_for(self.settings),
            self.settings.callback_secret_header,
        )
        self.api_key = api_key_for(self.settings)
        self.callback_writer = GroupCommitWriter(self.dbs)
        self.runner_id = runners.register(self.dbs, "local")
        self.ctx = StepContext(
            self.dbs, self.settings, signing_key=self.signing_key, runner_id=self.runner_id
        )
        self.steps = steps or step_table()
        self.dispatcher = ThreadPoolDispatcher(
            self._execute, workers=workers or self.settings.dispatch_workers
        )
        self.chunk_size = chunk_size
        self.trigger = CoalescingTrigger(self._pass, min_interval=min_pass_interval)
        self.ctx.trigger = self.trigger
        self._claiming = True
        self._stop_sweeping = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_forever, name="sweeper", daemon=True)

    def _sweep_forever(self) -> None:
        """Beat this runner's heart, and sweep every `sweep_interval_seconds`."""
        last_sweep = time.monotonic()
        beat = min(runners.HEARTBEAT_SECONDS, self.settings.sweep_interval_seconds)
        while not self._stop_sweeping.wait(beat):
            try:
                runners.heartbeat(self.dbs, self.runner_id)
                if time.monotonic() - last_sweep >= self.settings.sweep_interval_seconds:
                    last_sweep = time.monotonic()
                    sweep(self.dbs, _OwnBatches(self.trigger))
            except Exception:
                log.exception("sweep failed; will try again")

    def _execute(self, call: StepCall) -> None:
        execute_call(self.ctx, self.steps, call)

    def _pass(self, batch_id: UUID) -> PassResult:
        return run_pass(
            self.dbs,
            batch_id,
            self.dispatcher,
            chunk_size=self.chunk_size,
            claim_limit=DEFAULT_CLAIM_LIMIT if self._claiming else 0,
            runner_id=self.runner_id,
        )

    def stop_claiming(self) -> int:
        """Claim and send nothing more: passes only complete what callbacks stored, calls no
        worker started are cancelled and their item-steps released (returned), and gateways
        send no row they have not started. Receiving goes on."""
        self._claiming = False
        for gateway in self.ctx.providers.values():
            stop = getattr(gateway, "stop_sending", None)
            if stop is not None:
                stop()
        return release_unstarted(self.ctx, self.dispatcher.cancel_pending())

    def __enter__(self) -> LocalRuntime:
        self.trigger.start()
        self._sweeper.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop_sweeping.set()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=30)
        self.callback_writer.close()
        self.trigger.stop()
        self.dispatcher.close()
        with contextlib.suppress(psycopg.Error):
            runners.stopped(self.dbs, self.runner_id)
        if self._owns_dbs:
            self.dbs.close()

    def progress(self, batch_id: UUID) -> BatchProgress:
        with self.dbs.hq.connection() as conn:
            return read_progress(conn, batch_id)

    def run_batch(
        self,
        batch_id: UUID,
        *,
        on_progress: ProgressCallback | None = None,
        poll_seconds: float = 0.25,
        timeout: float | None = None,
    ) -> BatchProgress:
        """Drive the batch until no item has work left, or all that is left waits for a
        workflow on hold (`BatchProgress.stopped_by_hold`); reports progress while waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.trigger.request(batch_id)
        # Without a progress callback the batch is read only now and then, to notice a hold.
        next_read = time.monotonic()
        while not self.trigger.wait_finished(batch_id, timeout=poll_seconds):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still running after {timeout} s")
            if on_progress is None and time.monotonic() < next_read:
                continue
            next_read = time.monotonic() + HOLD_CHECK_SECONDS
            progress = self._read(batch_id)
            if progress is None:
                continue
            if on_progress:
                on_progress(progress)
            if progress.stopped_by_hold and self.dispatcher.idle:
                return progress
        final = self._wait_for_database(lambda: self.progress(batch_id))
        if on_progress:
            on_progress(final)
        return final

    def _read(self, batch_id: UUID) -> BatchProgress | None:
        try:
            return self.progress(batch_id)
        except psycopg.OperationalError:
            # The database is unreachable; the work resumes when it is back.
            log.warning("database unreachable while reporting progress; still waiting")
            return None

    def _wait_for_database(self, read: Callable[[], BatchProgress]) -> BatchProgress:
        while True:
            try:
                return read()
            except psycopg.OperationalError:
                log.warning("database unreachable; retrying")
                time.sleep(1.0)


class _OwnBatches:
    """The sweeper's pass requests, for the batches this runtime was asked to run only: a batch
    someone paused stays paused until it is resumed, whatever else runs meanwhile."""

    def __init__(self, trigger: CoalescingTrigger) -> None:
        self._trigger = trigger

    def request(self, batch_id: UUID) -> None:
        if self._trigger.drives(batch_id):
            self._trigger.request(batch_id)
