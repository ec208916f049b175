"""A transaction that can be neither committed nor aborted makes the loop recover in the process,
never end it (fake clients: the coordinator times out on every call)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.common.config import ServiceSettings
from services.common.kafka import Output, StreamLoop
from services.common.logging import JsonLogger
from services.common.recovery import Recover


class _Nothing:
    def handle(self, msg: Any) -> list[Any]:
        return []


class _TimingOutProducer:
    """Every transactional call times out, as against a coordinator that does not answer."""

    def __init__(self) -> None:
        self.aborts = 0

    def produce(self, *args: Any, **kwargs: Any) -> None:
        return None

    def poll(self, timeout: float) -> int:
        return 0

    def begin_transaction(self) -> None:
        return None

    def commit_transaction(self, timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "commit timed out", retriable=True))

    def abort_transaction(self, timeout: float) -> None:
        self.aborts += 1
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "abort timed out", retriable=True))


def _loop() -> tuple[StreamLoop, _TimingOutProducer]:
    settings = ServiceSettings.from_env("abort", 0, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    lp = StreamLoop(settings, ["in"], _Nothing(), JsonLogger("abort"))
    producer = _TimingOutProducer()
    lp.producer = producer  # type: ignore[assignment]
    lp.STEP_DEADLINE = 0.5  # type: ignore[misc]
    return lp, producer


def test_an_abort_that_times_out_recovers_instead_of_raising() -> None:
    lp, producer = _loop()
    lp._begin()
    lp._produce([Output("out", b"k", b"v")])
    with pytest.raises(Recover, match="abort failed"):
        lp._commit()
    assert producer.aborts >= 2  # retried within the step's deadline first


def test_an_empty_transaction_that_cannot_be_closed_recovers() -> None:
    lp, _ = _loop()
    lp._begin()
    with pytest.raises(Recover, match="abort failed"):
        lp._close_empty()


def test_an_abort_in_conflict_with_a_pending_commit_recovers_at_once() -> None:
    """librdkafka answers _CONFLICT to an abort while a commit it timed out on is still its own:
    retrying it for the step's deadline only kept the partitions waiting."""
    lp, producer = _loop()

    def conflict(timeout: float) -> None:
        producer.aborts += 1
        raise KafkaException(KafkaError(KafkaError._CONFLICT, "Conflicting commit_transaction API call is "
                                        "already in progress", retriable=True))

    producer.abort_transaction = conflict  # type: ignore[method-assign]
    lp._begin()
    lp._produce([Output("out", b"k", b"v")])
    with pytest.raises(Recover, match="abort failed"):
        lp._commit()
    assert producer.aborts == 1
