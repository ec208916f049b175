"""retry_transient: leader-election errors are retried within the deadline, anything else is not."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.common.kafka import retry_transient


def _failing(codes: list[int], result: object = "done"):
    calls = []

    def call() -> object:
        calls.append(1)
        if codes:
            raise KafkaException(KafkaError(codes.pop(0)))
        return result

    return call, calls


def test_leader_moves_are_retried_until_the_call_succeeds() -> None:
    # _UNKNOWN_PARTITION: a client whose metadata has not caught up with a moved leader (a roll)
    call, calls = _failing([KafkaError._UNKNOWN_PARTITION, KafkaError.NOT_LEADER_FOR_PARTITION,
                            KafkaError._DESTROY_BROKER])
    assert retry_transient(call, timeout=30) == "done"
    assert len(calls) == 4


def test_other_errors_are_raised_at_once() -> None:
    call, calls = _failing([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException) as info:
        retry_transient(call, timeout=30)
    assert info.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert len(calls) == 1


def test_a_transient_error_past_the_deadline_is_raised() -> None:
    call, calls = _failing([KafkaError.LEADER_NOT_AVAILABLE] * 100)
    started = time.monotonic()
    with pytest.raises(KafkaException) as info:
        retry_transient(call, timeout=1.0)
    assert info.value.args[0].code() == KafkaError.LEADER_NOT_AVAILABLE
    assert 2 <= len(calls) < 100
    assert time.monotonic() - started < 10


def test_metadata_is_refreshed_before_each_retry() -> None:
    call, calls = _failing([KafkaError._UNKNOWN_PARTITION] * 3)
    refreshed: list[int] = []
    assert retry_transient(call, timeout=30, refresh=lambda: refreshed.append(len(calls))) == "done"
    assert refreshed == [1, 2, 3]  # after each failed try, before the next


def test_a_failing_refresh_does_not_end_the_retries() -> None:
    call, calls = _failing([KafkaError._UNKNOWN_PARTITION] * 2)

    def refresh() -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    assert retry_transient(call, timeout=30, refresh=refresh) == "done"
    assert len(calls) == 3
