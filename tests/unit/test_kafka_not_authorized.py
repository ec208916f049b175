"""A user without a right, or with wrong credentials, is a configuration error: never retried or
waited on, named (resource, operation) and exit status 2. A topic that does not exist yet is still
waited for. Fake clients here; tests/integration/test_kafka_sasl_ssl_acls.py runs the real thing."""

from __future__ import annotations

import io
import json
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.common import kafka as kafka_module
from services.common import runtime as runtime_module
from services.common.clients import KafkaAuthenticationFailed, KafkaNotAuthorized, not_authorized
from services.common.config import ServiceSettings
from services.common.kafka import Output, StreamLoop
from services.common.logging import JsonLogger
from services.common.runtime import Runtime


def _error(code: int, text: str = "refused") -> KafkaException:
    return KafkaException(KafkaError(code, text))


def test_each_authorization_error_names_its_kind_of_resource() -> None:
    cases = {KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic t", KafkaError.GROUP_AUTHORIZATION_FAILED: "group t",
             KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id t",
             KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster"}
    for code, resource in cases.items():
        failure = not_authorized(KafkaError(code), "t", "WRITE")
        assert failure is not None and failure.resource == resource and failure.operation == "WRITE"
        assert resource in str(failure)
    for code in (KafkaError._TRANSPORT, KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT):
        assert not_authorized(KafkaError(code), "t") is None


# -- the stream loop ----------------------------------------------------------------------------

class _Nothing:
    def handle(self, msg: Any) -> list[Any]:
        return []


class _RefusingProducer:
    """begin/produce fine; the transaction is refused at send_offsets/commit with `code`."""

    def __init__(self, code: int) -> None:
        self.code, self.aborts = code, 0

    def produce(self, *args: Any, **kwargs: Any) -> None:
        return None

    def poll(self, timeout: float) -> int:
        return 0

    def begin_transaction(self) -> None:
        return None

    def commit_transaction(self, timeout: float) -> None:
        raise KafkaException(KafkaError(self.code, "Failed to add partition(s) to transaction",
                                        txn_requires_abort=True))

    def abort_transaction(self, timeout: float) -> None:
        self.aborts += 1


def _loop(code: int) -> tuple[StreamLoop, _RefusingProducer]:
    settings = ServiceSettings.from_env("ingestion", 0, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                                                         "SWITCHBOARD_TOPIC_PREFIX": "p.",
                                                         "SWITCHBOARD_INSTANCE_ID": "i-1"})
    lp = StreamLoop(settings, ["p.in"], _Nothing(), JsonLogger("ingestion"))
    producer = _RefusingProducer(code)
    lp.producer = producer  # type: ignore[assignment]
    return lp, producer


def test_a_topic_the_transaction_may_not_write_ends_the_loop_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, str]] = []

    def lacking(kafka: Any, wanted: dict[str, str], timeout: float = 10.0) -> list[tuple[str, str]]:
        asked.append(wanted)
        return [("p.out", "WRITE")]

    monkeypatch.setattr(kafka_module, "topics_lacking", lacking)
    lp, producer = _loop(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    lp._begin()
    lp._produce([Output("p.out", b"k", b"v")])
    with pytest.raises(KafkaNotAuthorized) as info:
        lp._commit()
    assert (info.value.resource, info.value.operation) == ("topic p.out", "WRITE")
    assert asked == [{"p.in": "READ", "p.out": "WRITE"}]
    assert producer.aborts == 0  # not retried: aborting and trying again cannot help
    assert not lp._open  # closing will not try to commit it again


def test_a_topic_the_broker_cannot_single_out_is_named_among_the_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_module, "topics_lacking", lambda *a, **k: [])
    lp, _ = _loop(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    lp._begin()
    lp._produce([Output("p.out", b"k", b"v")])
    with pytest.raises(KafkaNotAuthorized, match="topic one of p.in, p.out"):
        lp._commit()


def test_a_transactional_id_or_group_refused_is_named() -> None:
    lp, _ = _loop(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    lp._begin()
    lp._produce([Output("p.out", b"k", b"v")])
    with pytest.raises(KafkaNotAuthorized) as info:
        lp._commit()
    assert info.value.resource == "transactional id p.switchboard-ingestion-i-1"
    with pytest.raises(KafkaNotAuthorized) as info:
        lp._raise_if_not_authorized(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    assert info.value.resource == "group p.switchboard-ingestion"
    lp._raise_if_not_authorized(KafkaError(KafkaError._TRANSPORT))  # anything else: not this path


# -- the runtime ----------------------------------------------------------------------------------

def _runtime(monkeypatch: pytest.MonkeyPatch) -> tuple[Runtime, io.StringIO]:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("SWITCHBOARD_HTTP_PORT", "0")
    monkeypatch.setattr(runtime_module, "TOPICS_POLL_SECONDS", 0.01)
    rt = Runtime("ingestion", 0)
    out = io.StringIO()
    rt.log = JsonLogger("ingestion", stream=out)
    return rt, out


def _events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


class _Meta:
    def __init__(self, topics: dict[str, Any]) -> None:
        self.topics = topics


class _Admin:
    """list_topics without the wanted topic; describe_topics answers `code` for it."""

    def __init__(self, code: int) -> None:
        self.code, self.described = code, 0

    def list_topics(self, timeout: float) -> _Meta:
        return _Meta({})

    def poll(self, timeout: float) -> int:
        return 0

    def describe_topics(self, topics: Any, request_timeout: float) -> dict[str, Future[Any]]:
        self.described += 1
        out: dict[str, Future[Any]] = {}
        for name in topics.topic_names:
            future: Future[Any] = Future()
            future.set_exception(_error(self.code))
            out[name] = future
        return out


def test_a_topic_the_user_may_not_describe_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    rt, out = _runtime(monkeypatch)
    with pytest.raises(SystemExit) as info:
        rt.wait_for_topics(["p.in"], admin=_Admin(KafkaError.TOPIC_AUTHORIZATION_FAILED))  # type: ignore[arg-type]
    assert info.value.code == 2
    refused = [e for e in _events(out) if e["event"] == "kafka_not_authorized"]
    assert refused and refused[0]["resource"] == "topic p.in" and refused[0]["operation"] == "DESCRIBE"
    assert refused[0]["user"] == "svc"


def test_a_topic_that_does_not_exist_yet_is_still_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    rt, out = _runtime(monkeypatch)
    rt.topics_wait_seconds = 0.2  # the wait's own limit ends it: it did not exit on the describe
    admin = _Admin(KafkaError.UNKNOWN_TOPIC_OR_PART)
    with pytest.raises(SystemExit) as info:
        rt.wait_for_topics(["p.in"], admin=admin)  # type: ignore[arg-type]
    assert info.value.code == 2 and admin.described >= 2
    events = [e["event"] for e in _events(out)]
    assert "waiting_for_topics" in events and "kafka_not_authorized" not in events


def test_failures_end_with_status_2_and_their_own_event(monkeypatch: pytest.MonkeyPatch) -> None:
    rt, out = _runtime(monkeypatch)
    assert rt.finish(KafkaNotAuthorized("group g", "refused")) == 2
    assert rt.finish(KafkaAuthenticationFailed("SASL authentication error: invalid credentials")) == 2
    assert rt.finish(RuntimeError("other")) == 1
    assert [e["event"] for e in _events(out)] == ["kafka_not_authorized", "kafka_authentication_failed",
                                                  "service_failed"]
