"""Fuzzing the receiver and upload endpoints over real HTTP: no 500, and invalid input changes
no row (a refused callback is only recorded as a dead letter). Callback bodies come whole or
chunked (no Content-Length), and include bodies nested far deeper than the parser allows and
bodies longer than the receiver reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.pipeline import table_counts

SLUGS = st.sampled_from(
    [
        "enrich_company_via_waterfall_in_clay",
        "enrich_person_via_waterfall_in_clay",
        "split",
        "nope",
        "%2e%2e",
        "a" * 300,
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
CALLBACKS = st.fixed_dictionaries(
    {},
    optional={
        "entity_id": st.uuids().map(str) | st.text(max_size=40),
        "workflow_slug": SLUGS,
        "callback_token": st.text(max_size=120)
        | st.builds(lambda u, s: f"{u}.{s}", st.uuids(), st.text("0123456789abcdef", max_size=64)),
        "data": JSON_VALUES,
        "error": st.text(max_size=50),
    },
)
# Openers of arrays and objects, repeated past the depth limit (64), closed or never closed,
# alone or as the value of a callback's field.
CONTAINERS = st.sampled_from([("[", "]"), ('{"a": ', "}"), ("[0, ", "]"), ('{"b": [], "c": ', "}")])
PATTERNS = st.lists(CONTAINERS, min_size=1, max_size=4)
PREFIXES = st.sampled_from(
    ["", '{"data": ', f'{{"entity_id": "{uuid.uuid4()}", "callback_token": "t", "data": {{"x": ']
)


def _deep(prefix: str, pattern: list[tuple[str, str]], levels: int, closed: bool) -> bytes:
    containers = (pattern * levels)[:levels]
    opened = "".join(opener for opener, _ in containers)
    closers = "".join(closer for _, closer in reversed(containers))
    return (prefix + opened + ("1" + closers if closed else "")).encode()


DEEP_BODIES = st.builds(
    _deep, PREFIXES, PATTERNS, st.integers(min_value=65, max_value=5000), st.booleans()
)
BODIES = CALLBACKS.map(lambda d: json.dumps(d).encode()) | st.binary(max_size=2000) | DEEP_BODIES
MAX_CALLBACK_BYTES = 5 * 1024 * 1024


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    """The body as a generator: requests sends it chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _lazy(size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """`size` bytes made as they are sent, so a refusal that reads them all would show."""
    for start in range(0, size, chunk):
        yield b"[" * min(chunk, size - start)


@pytest.fixture
def service(dbs: Databases, local_settings: Settings) -> Iterator[LocalService]:
    with LocalService(local_settings, dbs, simulator=SimulatorConfig()) as running:
        yield running


def _without_dead_letters(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k != "receiver_dead_letters"}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    slug=SLUGS,
    body=BODIES,
    with_secret=st.booleans(),
    chunk=st.none() | st.integers(min_value=1, max_value=4096),
)
def test_receiver_never_fails_and_invalid_callbacks_change_nothing(
    service: LocalService,
    dbs: Databases,
    slug: str,
    body: bytes,
    with_secret: bool,
    chunk: int | None,
) -> None:
    data = body if chunk is None else _chunks(body, chunk)
    _refused_with_a_dead_letter(service, dbs, slug, data, with_secret, (401, 404, 405, 422))


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    slug=SLUGS,
    size=st.integers(min_value=MAX_CALLBACK_BYTES + 1, max_value=4 * MAX_CALLBACK_BYTES),
    with_secret=st.booleans(),
    chunked=st.booleans(),
)
def test_receiver_refuses_bodies_over_the_limit_with_a_413(
    service: LocalService, dbs: Databases, slug: str, size: int, with_secret: bool, chunked: bool
) -> None:
    data = _lazy(size) if chunked else b"[" * size
    _refused_with_a_dead_letter(service, dbs, slug, data, with_secret, (405, 413))


def _refused_with_a_dead_letter(
    service: LocalService,
    dbs: Databases,
    slug: str,
    data: bytes | Iterable[bytes],
    with_secret: bool,
    statuses: tuple[int, ...],
) -> None:
    config = service.runtime.receiver_config
    headers = {"content-type": "application/json"}
    if with_secret and config.callback_secret:
        headers[config.secret_header] = config.callback_secret
    before = table_counts(dbs)
    answer = requests.post(
        f"{service.server.url}/receivers/{slug}", data=data, headers=headers, timeout=30
    )
    after = table_counts(dbs)
    assert answer.status_code in statuses, answer.text
    assert _without_dead_letters(after) == _without_dead_letters(before)
    if answer.status_code != 405:
        assert after["receiver_dead_letters"] == before["receiver_dead_letters"] + 1


CSV_TEXT = st.lists(
    st.lists(st.text(max_size=12), min_size=1, max_size=8), min_size=0, max_size=6
).map(lambda rows: "\r\n".join(",".join(r) for r in rows))
UPLOADS = (
    CSV_TEXT.map(lambda t: t.encode())
    | st.binary(max_size=3000)
    | st.sampled_from(
        [b"First Name,Last Name,Company,Email\r\n", b"\xef\xbb\xbf", b"a,b\r\n1,2,3\r\n"]
    )
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=UPLOADS, client=st.text(max_size=30))
def test_upload_never_fails_and_refused_files_change_nothing(
    service: LocalService, dbs: Databases, content: bytes, client: str
) -> None:
    before = table_counts(dbs)
    answer = requests.post(
        f"{service.server.url}/batches",
        files={"file": (f"{uuid.uuid4()}.csv", content, "text/csv")},
        data={"client": client},
        headers={"x-api-key": service.runtime.api_key},
        timeout=30,
    )
    # 200: the same file again for the client is its existing batch.
    assert answer.status_code in (200, 201, 422), answer.text
    if answer.status_code == 422:
        body: dict[str, Any] = answer.json()
        assert body.get("error") or body.get("detail")
        assert table_counts(dbs) == before
