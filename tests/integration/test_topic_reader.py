"""TopicReader (services/common/reader.py), the one way the services read a topic outside their
group, against the real broker: to the end from the beginning or from a time, following, only
committed records, and one policy for a missing topic."""

from __future__ import annotations

import io
import json
import time

import pytest
from confluent_kafka import Producer

from services.common import topics
from services.common.config import KafkaSettings
from services.common.logging import JsonLogger
from services.common.reader import END, TopicMissing, TopicReader
from switchboard_dev.broker import BrokerHandle
from tests.helpers import producer, send, wait_until


def _reader(broker: BrokerHandle, topic: str, **kw: object) -> TopicReader:
    return TopicReader(KafkaSettings(bootstrap_servers=broker.bootstrap), topic,
                       JsonLogger("test", stream=io.StringIO()), "t-reader", **kw)  # type: ignore[arg-type]


def test_reads_to_the_end_only_committed_records_in_partition_order(broker: BrokerHandle, topic_prefix: str) -> None:
    topic = topic_prefix + topics.ROUTING_STATE.name
    p = producer(broker.bootstrap)
    for i in range(6):
        send(p, topic, f"k{i}", f"v{i}".encode())
    aborted = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": f"t-{topic}"})
    aborted.init_transactions(30)
    aborted.begin_transaction()
    aborted.produce(topic, key=b"never", value=b"aborted")
    aborted.flush(30)
    aborted.abort_transaction(30)
    send(p, topic, "k6", b"v6")
    with _reader(broker, topic) as reader:
        got = [(m.key(), m.value()) for m in reader.read_to_end(timeout=60)]
        assert reader.caught_up
    assert sorted(got) == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(7)]


def test_from_a_time_skips_older_records_and_following_sees_new_ones(broker: BrokerHandle,
                                                                     topic_prefix: str) -> None:
    topic = topic_prefix + topics.SURVEYS_RESULTS.name
    p = producer(broker.bootstrap)
    send(p, topic, "old", b"old")
    time.sleep(1.5)
    since = time.time()
    send(p, topic, "recent", b"recent")
    with _reader(broker, topic, start=since) as reader:
        assert [m.value() for m in reader.read_to_end(timeout=60)] == [b"recent"]
        send(p, topic, "new", b"new")  # following: records written after the end was reached
        seen: list[bytes] = []

        def got_new() -> bool:
            seen.extend(m.value() for m in reader.poll().records)
            return b"new" in seen
        wait_until(got_new, "the record written after the end")
    with _reader(broker, topic, start=END) as reader:
        assert list(reader.read_to_end(timeout=60)) == []


def test_a_missing_topic_fails_at_open_naming_the_fix(broker: BrokerHandle, topic_prefix: str) -> None:
    reader = _reader(broker, topic_prefix + "no.such.topic.v1")
    with pytest.raises(TopicMissing) as info:
        reader.open()
    assert "switchboard topics create" in str(info.value)
    reader.close()  # closing again is harmless


def test_reading_past_the_deadline_says_which_topic(broker: BrokerHandle, topic_prefix: str) -> None:
    topic = topic_prefix + topics.ENRICHMENT_HISTORY.name
    send(producer(broker.bootstrap), topic, "k", json.dumps({"a": 1}).encode())
    with _reader(broker, topic) as reader, pytest.raises(RuntimeError, match=topic):
        list(reader.read_to_end(timeout=-1))
