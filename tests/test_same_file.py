"""One batch per file per client, enforced by the database: the same file uploaded at once by
two `enrich run`s, three `POST /batches` or several uploader threads is one batch, and Clay is
called once per entity; a repeat answers with the existing batch and its real row count."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from conftest import DatabasePair
from orchestrator.db.migrate import hq_migrations_dir, migrate
from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from orchestrator.upload.ingest import UploadResult, ingest_upload
from support.cli import cli_env, enrich_argv
from support.pipeline import OneWayStream, apollo_csv, table_counts

REPEATS = 10
PLAY = "apollo-lead-enrichment"
HEADER = "First Name,Last Name,Title,Company,Email,Website"


def _seekable(data: bytes) -> io.BufferedIOBase:
    return io.BytesIO(data)


def _one_way(data: bytes) -> io.BufferedIOBase:
    return io.BufferedReader(OneWayStream(data))


STREAMS = pytest.mark.parametrize(
    ("make_stream", "python_reader"),
    [(_seekable, False), (_seekable, True), (_one_way, False)],
    ids=["copy", "python", "one-way"],
)


def _ingest(
    dbs: Databases,
    data: bytes,
    make_stream: Callable[[bytes], io.BufferedIOBase] = _seekable,
    **kw: Any,
) -> UploadResult:
    return ingest_upload(dbs, make_stream(data), file_name="leads.csv", play_name=PLAY, **kw)


def _scalar(dbs: Databases, sql: str, *params: object) -> Any:
    with dbs.hq.connection() as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def _batches(dbs: Databases, client: str = "default") -> int:
    return int(_scalar(dbs, "SELECT count(*) FROM upload_batches WHERE client_name = %s", client))


# ------------------------------------------------------------ the upload itself


@STREAMS
def test_the_same_file_again_is_the_existing_batch_with_its_real_rows(
    dbs: Databases, make_stream: Callable[[bytes], io.BufferedIOBase], python_reader: bool
) -> None:
    data = apollo_csv(30, 6)
    first = _ingest(dbs, data, make_stream, python_reader=python_reader)
    before = table_counts(dbs)
    again = _ingest(dbs, data, make_stream, python_reader=python_reader)
    assert not first.existing and first.rows == 30
    assert again.existing and again.batch_id == first.batch_id
    assert (again.rows, again.file_sha256) == (30, first.file_sha256)
    assert table_counts(dbs) == before, "a repeat stored something"


@STREAMS
def test_concurrent_uploads_of_one_file_are_one_batch_and_nothing_half_stored(
    dbs: Databases, make_stream: Callable[[bytes], io.BufferedIOBase], python_reader: bool
) -> None:
    data = apollo_csv(200, 20)
    start = threading.Barrier(4)

    def one() -> UploadResult:
        stream = make_stream(data)
        start.wait()
        return ingest_upload(
            dbs, stream, file_name="leads.csv", play_name=PLAY, python_reader=python_reader
        )

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: one(), range(4)))
    assert _batches(dbs) == 1
    assert {r.batch_id for r in results} == {results[0].batch_id}
    assert sorted(r.existing for r in results) == [False, True, True, True]
    assert {r.rows for r in results} == {200}
    counts = table_counts(dbs)
    assert (counts["raw_apollo_uploads"], counts["batch_items"], counts["workflow_states"]) == (
        200,
        200,
        200,
    )


def test_allow_duplicate_is_the_deliberate_second_batch_and_a_plain_upload_gets_the_oldest(
    dbs: Databases,
) -> None:
    data = apollo_csv(20, 5)
    first = _ingest(dbs, data)
    forced = _ingest(dbs, data, allow_duplicate=True)
    forced_one_way = _ingest(dbs, data, _one_way, allow_duplicate=True)
    plain = _ingest(dbs, data)
    plain_one_way = _ingest(dbs, data, _one_way)
    assert not forced.existing and not forced_one_way.existing
    assert len({first.batch_id, forced.batch_id, forced_one_way.batch_id}) == 3
    assert plain.existing and plain_one_way.existing
    assert plain.batch_id == plain_one_way.batch_id == first.batch_id
    assert _batches(dbs) == 3


def test_a_first_upload_with_allow_duplicate_is_the_files_batch(dbs: Databases) -> None:
    data = apollo_csv(20, 5)
    first = _ingest(dbs, data, allow_duplicate=True)
    plain = _ingest(dbs, data)
    assert plain.existing and plain.batch_id == first.batch_id
    assert _batches(dbs) == 1


def test_another_client_gets_its_own_batch_of_the_same_file(dbs: Databases) -> None:
    data = apollo_csv(20, 5)
    a = _ingest(dbs, data, client_name="a")
    b = _ingest(dbs, data, _one_way, client_name="b")
    assert not a.existing and not b.existing and a.batch_id != b.batch_id


def test_the_database_refuses_a_second_batch_of_one_file(dbs: Databases) -> None:
    insert = (
        "INSERT INTO upload_batches (client_name, file_sha256, source_headers, duplicate_allowed)"
        " VALUES ('c', 'abc', ARRAY['Email'], %s)"
    )
    with dbs.hq.connection() as conn:
        conn.execute(insert, (False,))
        conn.execute(insert, (True,))
        with pytest.raises(psycopg.errors.UniqueViolation, match="one_per_file"):
            conn.execute(insert, (False,))


# ------------------------------------------------------------ the migration


def test_the_migration_keeps_the_oldest_of_existing_repeats_as_the_files_batch(
    empty_database: str, tmp_path: Path
) -> None:
    new = sorted(hq_migrations_dir().glob("*_one_batch_per_file.sql"))
    assert len(new) == 1
    before = tmp_path / "before"
    before.mkdir()
    for path in hq_migrations_dir().glob("*.sql"):
        if path.name < new[0].name:
            shutil.copy(path, before / path.name)
    migrate(empty_database, [before])
    insert = (
        "INSERT INTO upload_batches (client_name, file_sha256, source_headers, created_at)"
        " VALUES (%s, %s, ARRAY['Email'], now() - %s * interval '1 hour') RETURNING id"
    )
    with psycopg.connect(empty_database) as conn:
        ids = {
            key: conn.execute(insert, key).fetchone()[0]  # type: ignore[index]
            for key in [("c", "f", 1), ("c", "f", 3), ("c", "f", 2), ("d", "f", 1), ("c", "g", 1)]
        }
    report = migrate(empty_database, [hq_migrations_dir()])
    assert new[0].stem in report.applied
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("SELECT id, duplicate_allowed FROM upload_batches").fetchall()
        kept = {key for key, id_ in ids.items() for r in rows if r[0] == id_ and not r[1]}
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO upload_batches (client_name, file_sha256, source_headers)"
                " VALUES ('c', 'f', ARRAY['Email'])"
            )
    assert kept == {("c", "f", 3), ("d", "f", 1), ("c", "g", 1)}


# ------------------------------------------------------------ the API


def _ready(service: LocalService) -> tuple[str, str]:
    """The server's URL and API key, once it answers (its thread may still be starting)."""
    base = service.server.url
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{base}/health", timeout=5).raise_for_status()
            return base, service.runtime.api_key
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _post(base: str, key: str, data: bytes, client: str) -> requests.Response:
    return requests.post(
        f"{base}/batches",
        files={"file": ("leads.csv", data, "text/csv")},
        data={"client": client},
        headers={"x-api-key": key},
        timeout=60,
    )


def test_the_api_answers_201_then_200_with_the_existing_batch_and_repeated_headers(
    dbs: Databases, local_settings: Settings
) -> None:
    data = (
        f"{HEADER}\r\nAna,Silva,CEO,Acme,ana@acme.com,acme.com\r\n{HEADER}\r\n"
        "Bo,Li,CTO,Beta,bo@beta.io,beta.io\r\n"
    ).encode()
    with LocalService(local_settings, dbs, simulator=SimulatorConfig()) as service:
        base, key = _ready(service)
        created = _post(base, key, data, "c")
        again = _post(base, key, data, "c")
    assert created.status_code == 201, created.text
    assert again.status_code == 200, again.text
    assert created.json() == {
        "batch_id": created.json()["batch_id"],
        "rows": 2,
        "existing": False,
        "repeated_headers": 1,
        "held": False,
    }
    assert again.json()["batch_id"] == created.json()["batch_id"]
    assert (again.json()["rows"], again.json()["existing"]) == (2, True)


@pytest.mark.slow
def test_three_concurrent_api_uploads_of_one_file_make_one_batch(
    dbs: Databases, local_settings: Settings
) -> None:
    data = apollo_csv(60, 15)
    outcomes = []
    with LocalService(local_settings, dbs, simulator=SimulatorConfig()) as service:
        base, key = _ready(service)
        for attempt in range(REPEATS):
            client = f"api-{attempt}"
            start = threading.Barrier(3)

            def one(client: str = client, start: threading.Barrier = start) -> requests.Response:
                start.wait()
                return _post(base, key, data, client)

            with ThreadPoolExecutor(3) as pool:
                answers = [f.result() for f in [pool.submit(one) for _ in range(3)]]
            codes = sorted(a.status_code for a in answers)
            ids = {a.json()["batch_id"] for a in answers}
            outcomes.append((_batches(dbs, client), codes, len(ids)))
            assert {a.json()["rows"] for a in answers} == {60}, [a.text for a in answers]
    assert outcomes == [(1, [200, 200, 201], 1)] * REPEATS


# ------------------------------------------------------------ the CLI


def _enrich(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        enrich_argv(*args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_enrich_upload_says_repeated_headers_and_the_existing_batch(
    db_urls: DatabasePair, tmp_path: Path
) -> None:
    sample = tmp_path / "leads.csv"
    lines = [
        HEADER,
        "Ana,Silva,CEO,Acme,ana@acme.com,acme.com",
        HEADER,
        "Bo,Li,CTO,Beta,bo@beta.io,beta.io",
        HEADER,
    ]
    sample.write_text("\n".join(lines) + "\n")
    env = cli_env(tmp_path / "home", db_urls)
    first_out, first_err = _enrich(env, "upload", str(sample)).communicate(timeout=120)
    again_out, again_err = _enrich(env, "upload", str(sample)).communicate(timeout=120)
    first, again = first_out + first_err, again_out + again_err
    assert "skipped 2 repeated header row(s)" in first, first
    assert "2 rows" in first
    with psycopg.connect(db_urls.urls.hq) as conn:
        (batch_id,) = conn.execute("SELECT id FROM upload_batches").fetchone()  # type: ignore[misc]
    assert f"already uploaded as batch {batch_id}" in " ".join(again.split()), again


@pytest.mark.slow
def test_two_concurrent_enrich_runs_of_one_file_make_one_batch_and_one_call_per_entity(
    db_urls: DatabasePair, tmp_path: Path
) -> None:
    sample = tmp_path / "leads.csv"
    sample.write_bytes(apollo_csv(60, 15))
    outcomes = []
    for attempt in range(REPEATS):
        client = f"cli-{attempt}"
        # Every other attempt the two runs share one home (its keys), else each has its own.
        homes = [tmp_path / f"home-{attempt}"] * 2
        if attempt % 2:
            homes = [tmp_path / f"home-{attempt}-{n}" for n in range(2)]
        runs = [
            _enrich(cli_env(home, db_urls), "run", str(sample), "--json", "--client", client)
            for home in homes
        ]
        done = [(run.communicate(timeout=240), run.returncode) for run in runs]
        for (out, err), code in done:
            assert code == 0, (code, out, err)
        summaries = [json.loads(out.strip().splitlines()[-1]) for (out, _), _ in done]
        outcomes.append(_cli_outcome(db_urls.urls.hq, client, summaries))
    # (batches, batch ids reported, Clay calls, entities, most calls for one entity, unfinished)
    print("\nconcurrent enrich runs:", outcomes)
    assert all(o[3] > 0 for o in outcomes), outcomes
    assert [(b, r, calls - entities, most, u) for b, r, calls, entities, most, u in outcomes] == [
        (1, 1, 0, 1, 0)
    ] * REPEATS, outcomes


def _cli_outcome(hq: str, client: str, summaries: list[dict[str, Any]]) -> tuple[int, ...]:
    """Batches of the client, batch ids the two runs reported, Clay calls made (all batches),
    entities of the file (companies and people of its first batch), most calls for one entity,
    and runs that did not end COMPLETED."""
    with psycopg.connect(hq) as conn:
        batches, calls, entities, most = conn.execute(
            """WITH mine AS (SELECT id, created_at FROM upload_batches WHERE client_name = %s),
                    first AS (SELECT id FROM mine ORDER BY created_at, id LIMIT 1),
                    sent AS (SELECT d.* FROM entity_dispatches d JOIN mine ON mine.id = d.batch_id
                             WHERE d.provider = 'clay'
                               AND d.status IN ('SENT', 'STORED', 'CALLED_BACK'))
               SELECT
                 (SELECT count(*) FROM mine),
                 (SELECT count(*) FROM sent),
                 (SELECT count(*) FROM normalized_companies c JOIN first f ON f.id = c.batch_id)
                 + (SELECT count(*) FROM normalized_people p JOIN first f ON f.id = p.batch_id),
                 (SELECT coalesce(max(n), 0) FROM (
                    SELECT count(*) AS n FROM sent GROUP BY entity_id, workflow_slug) per_entity)
            """,
            (client,),
        ).fetchone()  # type: ignore[misc]
    reported = {s["batch_id"] for s in summaries}
    unfinished = sum(s["status"] != "COMPLETED" for s in summaries)
    return int(batches), len(reported), int(calls), int(entities), int(most), unfinished
