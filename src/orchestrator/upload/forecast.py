"""The forecast: what a file, or a batch held for launch, will cost before anything is sent.

Rows are read as the upload reads them (`csv_reader`), normalized by the functions the normalize
step runs and deduplicated as split does it: one company per registrable domain, one person per
email (else LinkedIn URL), a row with neither its own person, nothing for a row that fails
normalization. The database then says which entities the client's fresh results cover, by the
statement reuse is checked against (`reusable_keys`). Nothing is written.

Each priced step (a workflow whose `call_ceiling` is above 0) calls once per entity not covered
by reuse (an item step once per valid item), priced as Clay bills: the run's and the callback's
Actions, plus the data credits of every priced data type. `credits_expected` is thus what the
calls cost if every priced data type is found; an answer without one costs less. Dedupe saves
the ceiling of each item sharing an entity; reuse saves each reused result's Actions and the
data credits of the data types it holds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO
from uuid import UUID

from entities.apollo import APOLLO_FIELDS
from entities.normalize import NormalizationFailure, normalize_item, person_dedupe_key
from orchestrator.db.pool import Conn, Databases
from orchestrator.db.queries import query
from orchestrator.state.entity_kinds import KINDS
from orchestrator.state.entity_store import entity_query
from orchestrator.state.registry import (
    DEFAULT_PLAY,
    Play,
    PlayStep,
    RegistryError,
    WorkflowConfig,
    load_play,
)
from orchestrator.upload.csv_reader import ApolloCsv
from orchestrator.upload.ingest import UploadOptionError, check_takes_rows, checked_label
from orchestrator.upload.item_fields import item_columns

__all__ = ["Forecast", "StepForecast", "forecast_batch", "forecast_file"]

# Rows of a stored batch read per statement.
_PAGE = 5_000


@dataclass(frozen=True)
class StepForecast:
    """One priced step of the play: what it will call for and what the calls cost."""

    step_number: int
    workflow_slug: str
    title: str
    provider: str
    entity_type: str
    # Valid items that reach the step, and what it calls for: unique entities, or those items.
    items: int
    entities: int
    reusable: int
    # Per call: the run's Actions and the callback's, and the data credits of every priced type.
    call_actions: Decimal
    call_data_credits: Decimal
    saved_by_reuse: Decimal

    @property
    def calls(self) -> int:
        return self.entities - self.reusable

    @property
    def call_ceiling(self) -> Decimal:
        return self.call_actions + self.call_data_credits

    @property
    def actions_expected(self) -> Decimal:
        return self.calls * self.call_actions

    @property
    def data_credits_expected(self) -> Decimal:
        return self.calls * self.call_data_credits

    @property
    def credits_expected(self) -> Decimal:
        return self.actions_expected + self.data_credits_expected

    @property
    def saved_by_dedupe(self) -> Decimal:
        return (self.items - self.entities) * self.call_ceiling

    def as_json(self) -> dict[str, Any]:
        return {
            "step_number": self.step_number,
            "title": self.title,
            "provider": self.provider,
            "entity_type": self.entity_type,
            "items": self.items,
            "entities": self.entities,
            "reusable": self.reusable,
            "calls": self.calls,
            "call_ceiling": float(self.call_ceiling),
            "actions_expected": float(self.actions_expected),
            "data_credits_expected": float(self.data_credits_expected),
            "credits_expected": float(self.credits_expected),
            "credits_saved_by_dedupe": float(self.saved_by_dedupe),
            "credits_saved_by_reuse": float(self.saved_by_reuse),
        }


@dataclass(frozen=True)
class Forecast:
    """What a file or a held batch will cost: counts after normalization and dedupe, and per
    priced step the calls and credits. `credits_expected` assumes every priced data type is
    found (an answer without one costs less); `clay_seconds` is the time Clay's workspace rate
    needs for the Clay calls."""

    client_name: str
    play_name: str
    file_name: str
    reuse: bool
    # The moment reuse was judged from: now for a file, the upload time for a stored batch.
    as_of: datetime
    rows: int
    items: int
    invalid: dict[str, int]
    companies: int
    people: int
    steps: tuple[StepForecast, ...]
    clay_rate_per_second: float

    @property
    def invalid_rows(self) -> int:
        return self.rows - self.items

    @property
    def reusable(self) -> int:
        return sum(s.reusable for s in self.steps)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.steps)

    @property
    def paced(self) -> bool:
        """Whether Clay's workspace rate is set (CLAY_RATE_PER_SECOND=inf: no pacing)."""
        return math.isfinite(self.clay_rate_per_second)

    @property
    def clay_calls(self) -> int:
        return sum(s.calls for s in self.steps if s.provider == "clay")

    @property
    def clay_seconds(self) -> float:
        return self.clay_calls / self.clay_rate_per_second

    @property
    def actions_expected(self) -> Decimal:
        return sum((s.actions_expected for s in self.steps), Decimal(0))

    @property
    def data_credits_expected(self) -> Decimal:
        return sum((s.data_credits_expected for s in self.steps), Decimal(0))

    @property
    def credits_expected(self) -> Decimal:
        return self.actions_expected + self.data_credits_expected

    @property
    def saved_by_dedupe(self) -> Decimal:
        return sum((s.saved_by_dedupe for s in self.steps), Decimal(0))

    @property
    def saved_by_reuse(self) -> Decimal:
        return sum((s.saved_by_reuse for s in self.steps), Decimal(0))

    @property
    def credits_saved(self) -> Decimal:
        return self.saved_by_dedupe + self.saved_by_reuse

    def as_json(self) -> dict[str, Any]:
        return {
            "client_name": self.client_name,
            "play_name": self.play_name,
            "file_name": self.file_name,
            "reuse": self.reuse,
            "as_of": self.as_of.isoformat(),
            "rows": self.rows,
            "items": self.items,
            "invalid_rows": self.invalid_rows,
            "invalid": dict(self.invalid),
            "companies": self.companies,
            "people": self.people,
            "reusable": self.reusable,
            "calls": self.calls,
            "clay_calls": self.clay_calls,
            "actions_expected": float(self.actions_expected),
            "data_credits_expected": float(self.data_credits_expected),
            "credits_expected": float(self.credits_expected),
            "credits_saved": float(self.credits_saved),
            "credits_saved_by_dedupe": float(self.saved_by_dedupe),
            "credits_saved_by_reuse": float(self.saved_by_reuse),
            "clay_seconds": round(self.clay_seconds, 3),
            # JSON has no infinity: an unpaced workspace (CLAY_RATE_PER_SECOND=inf) is null.
            "clay_rate_per_second": self.clay_rate_per_second if self.paced else None,
            "workflows": {s.workflow_slug: s.as_json() for s in self.steps},
        }


@dataclass
class _Census:
    """Rows counted as normalize and split will treat them."""

    rows: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    domains: set[str] = field(default_factory=set)
    person_keys: set[str] = field(default_factory=set)
    # Rows with neither email nor LinkedIn URL: split makes each its own person.
    keyless_people: int = 0

    def add(self, fields: Mapping[str, str]) -> None:
        self.rows += 1
        item = normalize_item(fields)
        if isinstance(item, NormalizationFailure):
            self.invalid[item.reason] += 1
            return
        self.domains.add(item.company_domain)
        key = person_dedupe_key(item)
        if key is None:
            self.keyless_people += 1
        else:
            self.person_keys.add(key)

    @property
    def items(self) -> int:
        return self.rows - self.invalid.total()

    @property
    def people(self) -> int:
        return len(self.person_keys) + self.keyless_people

    def callees(self, entity_type: str) -> tuple[int, set[str]]:
        """How many a step of `entity_type` calls for, and the keys reuse can find them by."""
        if entity_type == "company":
            return len(self.domains), self.domains
        if entity_type == "person":
            # A row's own person has no key another batch could share.
            return self.people, self.person_keys
        return self.items, set()


@dataclass(frozen=True)
class _Scope:
    """Whose fresh results count, from when, and which batch's own do not."""

    client_name: str
    reuse: bool
    as_of: datetime
    batch_id: UUID | None


def forecast_file(
    dbs: Databases,
    stream: BinaryIO,
    *,
    client_name: str,
    file_name: str,
    play_name: str = DEFAULT_PLAY,
    reuse: bool = True,
    clay_rate_per_second: float,
) -> Forecast:
    """The forecast of a file not uploaded yet, as of now. A file, client or play the upload
    would refuse raises the UploadError the upload raises, with the same message."""
    client_name = checked_label(client_name, "client name")
    with dbs.hq.connection() as conn:
        try:
            play = load_play(conn, checked_label(play_name, "play name"))
        except RegistryError as exc:
            raise UploadOptionError(str(exc)) from None
    check_takes_rows(play)
    census = _Census()
    csv_file = ApolloCsv(stream)
    for record in csv_file:
        census.add(csv_file.mapping.extract(record.values))
    with dbs.hq.connection() as conn:
        scope = _Scope(client_name, reuse, _database_now(conn), batch_id=None)
        return _forecast(conn, census, play, scope, file_name, clay_rate_per_second)


def forecast_batch(dbs: Databases, batch_id: UUID, *, clay_rate_per_second: float) -> Forecast:
    """The forecast of a stored batch (typically HELD) from its stored rows, as of its upload,
    honouring its reuse flag; its own results are not counted as reusable. LookupError when
    there is no such batch."""
    with dbs.hq.connection() as conn:
        batch = conn.execute(query("forecast_batch"), {"batch_id": batch_id}).fetchone()
        if batch is None:
            raise LookupError(f"no upload batch {batch_id}")
        play = load_play(conn, str(batch["play_name"]))
        census = _Census()
        for fields in _stored_rows(conn, batch_id):
            census.add(fields)
        scope = _Scope(
            str(batch["client_name"]), bool(batch["reuse_results"]), batch["created_at"], batch_id
        )
        file_name = str(batch["file_name"] or "")
        return _forecast(conn, census, play, scope, file_name, clay_rate_per_second)


def _database_now(conn: Conn) -> datetime:
    # The database's clock, the one upload times and result times are on.
    row = conn.execute(query("database_now")).fetchone()
    assert row is not None
    now: datetime = row["now"]
    return now


def _stored_rows(conn: Conn, batch_id: UUID) -> Iterator[dict[str, str]]:
    """Every row of the batch, with the fields the normalize step reads."""
    statement = query("forecast_batch_items").format(item_columns=item_columns())
    after = 0
    while True:
        params = {"batch_id": batch_id, "after_row": after, "page": _PAGE}
        page = conn.execute(statement, params).fetchall()
        for row in page:
            yield {f: row[f] for f in APOLLO_FIELDS}
        if len(page) < _PAGE:
            return
        after = int(page[-1]["row_number"])


def _step(conn: Conn, step: PlayStep, census: _Census, scope: _Scope) -> StepForecast:
    workflow = step.workflow
    entities, keys = census.callees(workflow.entity_type)
    call_actions = workflow.actions_per_run + workflow.callback_actions
    reused = _reused_data_credits(conn, workflow, keys, scope)
    return StepForecast(
        step_number=step.step_number,
        workflow_slug=workflow.workflow_slug,
        title=workflow.title,
        provider=workflow.provider,
        entity_type=workflow.entity_type,
        items=census.items,
        entities=entities,
        reusable=len(reused),
        call_actions=call_actions,
        call_data_credits=workflow.call_ceiling - call_actions,
        saved_by_reuse=len(reused) * call_actions + sum(reused, Decimal(0)),
    )


def _reused_data_credits(
    conn: Conn, workflow: WorkflowConfig, keys: set[str], scope: _Scope
) -> list[Decimal]:
    """For each of `keys` a fresh result of the client covers, the data credits it holds."""
    window = workflow.reuse_days
    if not scope.reuse or window is None or not keys:
        return []
    rows = conn.execute(
        entity_query("reusable_keys", KINDS[workflow.entity_type], "fresh_result"),
        {
            "keys": sorted(keys),
            "client_name": scope.client_name,
            "since": scope.as_of - timedelta(days=window),
            "workflow_slug": workflow.workflow_slug,
            "batch_id": scope.batch_id,
        },
    ).fetchall()
    return [Decimal(r["data_credits"]) for r in rows]


def _forecast(
    conn: Conn,
    census: _Census,
    play: Play,
    scope: _Scope,
    file_name: str,
    clay_rate_per_second: float,
) -> Forecast:
    priced = [step for step in play.steps if step.workflow.priced]
    return Forecast(
        client_name=scope.client_name,
        play_name=play.name,
        file_name=file_name,
        reuse=scope.reuse,
        as_of=scope.as_of,
        rows=census.rows,
        items=census.items,
        invalid=dict(census.invalid.most_common()),
        companies=len(census.domains),
        people=census.people,
        steps=tuple(_step(conn, step, census, scope) for step in priced),
        clay_rate_per_second=clay_rate_per_second,
    )
