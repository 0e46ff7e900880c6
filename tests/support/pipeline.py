"""Helpers shared by pipeline tests: sample files, plays, uploads, counting."""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from entities.apollo_sample import SampleRow, generate_rows, write_csv
from orchestrator.db.pool import Databases
from orchestrator.engine.dispatch import StepCall
from orchestrator.upload.ingest import UploadResult, ingest_upload

NORMALIZE_SPLIT = "normalize-split"


def apollo_csv(n_rows: int, n_companies: int, seed: int = 0, **kw: float) -> bytes:
    buffer = io.StringIO(newline="")
    write_csv(buffer, n_rows, n_companies, seed, **kw)
    return buffer.getvalue().encode("utf-8")


def apollo_rows(n_rows: int, n_companies: int, seed: int = 0, **kw: float) -> list[SampleRow]:
    return list(generate_rows(n_rows, n_companies, seed, **kw))


def add_play(dbs: Databases, name: str, slugs: Sequence[str]) -> None:
    with dbs.hq.connection() as conn:
        for number, slug in enumerate(slugs, start=1):
            conn.execute(
                "INSERT INTO play_steps (play_name, step_number, workflow_slug)"
                " VALUES (%s, %s, %s)",
                (name, number, slug),
            )


def add_normalize_split_play(dbs: Databases) -> str:
    add_play(dbs, NORMALIZE_SPLIT, ["normalize_all_core_values", "split"])
    return NORMALIZE_SPLIT


def upload(dbs: Databases, data: bytes, play: str, **kw: object) -> UploadResult:
    return ingest_upload(
        dbs,
        io.BytesIO(data),
        file_name="test.csv",
        play_name=play,
        **kw,  # type: ignore[arg-type]
    )


def table_counts(dbs: Databases) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pool in {id(dbs.hq): dbs.hq, id(dbs.workspace): dbs.workspace}.values():
        with pool.connection() as conn:
            tables = [
                r["table_name"]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            ]
            for table in tables:
                row = conn.execute(f'SELECT count(*) AS n FROM "{table}"').fetchone()
                counts[str(table)] = int(row["n"]) if row else 0
    return counts


@dataclass
class RecordingDispatcher:
    """Records what each step would have received instead of running it."""

    calls: list[StepCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def dispatch(self, calls: Sequence[StepCall]) -> None:
        with self._lock:
            self.calls.extend(calls)

    def received(self, step: str) -> Counter[UUID]:
        return Counter(i for c in self.calls if c.step_name == step for i in c.item_ids)


class OneWayStream(io.RawIOBase):
    """A stream that cannot seek (a pipe, a socket): its hash is known only at its end."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)
