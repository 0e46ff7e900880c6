"""The receiver's limits: a body nested deeper than the parser allows, or larger than the
receiver reads, is refused with a 4xx and a dead letter (secrets removed), never a 500, without
reading past the limit and without changing any other table."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from orchestrator.callbacks.receive import ReceiverConfig, Refused, read_callback
from orchestrator.db.pool import Databases
from orchestrator.providers.simulators.clay import SimulatorConfig
from orchestrator.runtimes.service import LocalService
from orchestrator.settings import Settings
from support.faults import rows
from support.pipeline import table_counts

COMPANY_STEP = "enrich_company_via_waterfall_in_clay"
# The documented limits (orchestrator.callbacks.receive), spelled out so a change is deliberate.
DEPTH_LIMIT = 64
BODY_LIMIT = 5 * 1024 * 1024
STREAMED = 100 * 1024 * 1024
CHUNK = 64 * 1024
CONFIG = ReceiverConfig(signing_key=b"k" * 32, callback_secret=None)


def _callback(data: str) -> bytes:
    """A callback body whose `data` is the given JSON text (the body itself is level 1)."""
    return f'{{"entity_id": "{uuid.uuid4()}", "callback_token": "t", "data": {data}}}'.encode()


def _nested(levels: int) -> bytes:
    """A callback whose containers nest `levels` deep, counting the body (3 at least)."""
    inner = levels - 2
    return _callback('{"x": ' + "[" * inner + "]" * inner + "}")


def test_parsing_accepts_the_depth_limit_and_refuses_one_level_more() -> None:
    assert read_callback(CONFIG, COMPANY_STEP, {}, _nested(DEPTH_LIMIT)).data is not None
    with pytest.raises(Refused) as deeper:
        read_callback(CONFIG, COMPANY_STEP, {}, _nested(DEPTH_LIMIT + 1))
    assert deeper.value.status_code == 422
    assert f"nested deeper than {DEPTH_LIMIT}" in deeper.value.reason


@pytest.mark.parametrize(
    "body",
    [
        _nested(1500),
        _nested(200_000),
        b"[" * 200_000,  # never closed: the parser would recurse before finding the error
        # An escaped quote does not end a string, an escaped backslash does not escape it.
        b'{"a": "\\"", "b": ' + b"[" * 5000,
        b'{"a": "' + b"\\\\" * 10 + b'", "b": ' + b"[" * 5000,
        # The parser reads UTF-16 and -32 too: so does the count.
        '{"a": "\\"", "b": '.encode("utf-16") + ("[" * 5000).encode("utf-16-le"),
    ],
    ids=["1500", "200000", "unclosed", "after-escaped-quote", "after-backslashes", "utf-16"],
)
def test_parsing_refuses_deep_bodies_with_a_422_not_a_recursion_error(body: bytes) -> None:
    with pytest.raises(Refused) as refused:
        read_callback(CONFIG, COMPANY_STEP, {}, body)
    assert refused.value.status_code == 422
    assert f"nested deeper than {DEPTH_LIMIT}" in refused.value.reason


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = "[{" * 5000 + '\\"' + "]}" * 10
    callback = read_callback(CONFIG, COMPANY_STEP, {}, _callback(json.dumps({"s": text})))
    assert callback.data == {"s": text}


@pytest.fixture
def service(dbs: Databases, local_settings: Settings) -> Iterator[LocalService]:
    with LocalService(local_settings, dbs, simulator=SimulatorConfig(drop_rate=1.0)) as running:
        yield running


def _url(service: LocalService) -> str:
    return f"{service.server.url}/receivers/{COMPANY_STEP}"


def _headers(service: LocalService, **extra: str) -> dict[str, str]:
    config = service.runtime.receiver_config
    assert config.callback_secret is not None
    return {
        config.secret_header: config.callback_secret,
        "content-type": "application/json",
        **extra,
    }


def _dead_letters(dbs: Databases) -> list[dict[str, Any]]:
    return rows(dbs, "SELECT http_status, reason, headers, body FROM receiver_dead_letters")


def _only_dead_letters_changed(before: dict[str, int], after: dict[str, int], added: int) -> None:
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    dead = before["receiver_dead_letters"]
    assert changed == {"receiver_dead_letters": (dead, dead + added)}


def test_a_deeply_nested_callback_is_refused_422_with_a_dead_letter(
    service: LocalService, dbs: Databases
) -> None:
    before = table_counts(dbs)
    answers = [
        requests.post(_url(service), data=body, headers=_headers(service), timeout=30)
        for body in (_nested(1500), b"[" * 100_000)
    ]
    after = table_counts(dbs)

    assert [a.status_code for a in answers] == [422, 422], [a.text for a in answers]
    assert all(f"nested deeper than {DEPTH_LIMIT}" in a.json()["error"] for a in answers)
    _only_dead_letters_changed(before, after, 2)
    letters = _dead_letters(dbs)
    assert {letter["http_status"] for letter in letters} == {422}
    assert letters[0]["body"].startswith('{"entity_id"')


class _Counted:
    """A lazy body of `total` bytes that counts how much of it the client was asked for."""

    def __init__(self, total: int, first: bytes = b'{"entity_id": "') -> None:
        self.total, self.first, self.sent = total, first, 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = self.first + b"x" * (CHUNK - len(self.first))
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk
            chunk = b"x" * CHUNK


def test_a_chunked_body_over_the_limit_is_refused_413_without_being_read(
    service: LocalService, dbs: Databases
) -> None:
    body = _Counted(STREAMED)
    before = table_counts(dbs)
    started = time.monotonic()
    # No Content-Length: requests sends a generator with Transfer-Encoding: chunked.
    answer = requests.post(_url(service), data=iter(body), headers=_headers(service), timeout=30)
    elapsed = time.monotonic() - started
    after = table_counts(dbs)

    assert answer.status_code == 413, answer.text
    assert answer.json() == {"error": f"callback body is larger than {BODY_LIMIT} bytes"}
    # The server stopped at the limit; only what the sockets buffered was sent past it.
    assert body.sent < STREAMED // 4, body.sent
    assert elapsed < 20
    _only_dead_letters_changed(before, after, 1)
    [letter] = _dead_letters(dbs)
    config = service.runtime.receiver_config
    assert letter["http_status"] == 413
    assert letter["headers"]["transfer-encoding"] == "chunked"
    assert config.secret_header not in letter["headers"]
    assert letter["body"].startswith('{"entity_id": "xxx') and len(letter["body"]) >= 1024


def test_a_declared_length_over_the_limit_is_refused_413_before_the_body_is_sent(
    service: LocalService, dbs: Databases
) -> None:
    before = table_counts(dbs)
    parts = urlsplit(_url(service))
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.putrequest("POST", parts.path)
        for name, value in _headers(service, **{"content-length": str(STREAMED)}).items():
            conn.putheader(name, value)
        conn.endheaders()  # and not one byte of the body
        answer = conn.getresponse()
        status, text = answer.status, answer.read()
    finally:
        conn.close()
    after = table_counts(dbs)

    assert status == 413, text
    assert json.loads(text) == {"error": f"callback body is larger than {BODY_LIMIT} bytes"}
    _only_dead_letters_changed(before, after, 1)
    [letter] = _dead_letters(dbs)
    assert letter["http_status"] == 413 and letter["body"] == ""
    assert letter["headers"]["content-length"] == str(STREAMED)


def test_a_chunked_body_within_the_limit_is_read_whole(
    service: LocalService, dbs: Databases
) -> None:
    entity = uuid.uuid4()
    text = json.dumps({"entity_id": str(entity), "callback_token": "t", "data": {"x": "y" * 10}})
    pieces = [text[i : i + 7].encode() for i in range(0, len(text), 7)]
    answer = requests.post(_url(service), data=iter(pieces), headers=_headers(service), timeout=30)
    # Parsed whole: refused only because no such entity exists.
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"error": f"unknown company {entity}"}
