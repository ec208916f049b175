"""Reload the event ids ingestion accepted within the dedupe window from ingestion.dedupe.v1.

Each record: key `tenant_id/event_id`, value the acceptance time (epoch seconds, ASCII), written in
the same transaction as the normalized event, so the topic holds exactly the ids whose events were
committed. The reader seeks each partition to the window's start by timestamp and reads to the end
(read_committed), so a restart costs one window of ids, not the whole topic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_END, Consumer, KafkaError, TopicPartition

from services.common.config import KafkaSettings
from services.common.kafka import offsets_for_times
from services.common.logging import JsonLogger, kafka_logger


def encode_seen(at: float) -> bytes:
    return f"{at:.3f}".encode()


def load_seen(kafka: KafkaSettings, topic: str, since: float, log: JsonLogger, timeout: float = 120.0
              ) -> list[tuple[str, float]]:
    """(key, seen_at) for every id recorded since `since` (epoch seconds), in partition order."""
    return list(iter_seen(kafka, topic, since, log, timeout))


def iter_seen(kafka: KafkaSettings, topic: str, since: float, log: JsonLogger, timeout: float = 120.0
              ) -> Iterator[tuple[str, float]]:
    """As `load_seen`, one id at a time as read: a window of ids (millions) is never a list in the
    heap on its way to the on-disk Deduplicator. The consumer closes when the iterator is exhausted
    or closed."""
    consumer = Consumer({
        **kafka.client_config(),
        "group.id": f"ingestion-dedupe-loader-{uuid.uuid4().hex}",  # never committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "logger": kafka_logger(log),
    })
    count = 0
    started = time.monotonic()
    try:
        meta = consumer.list_topics(topic, timeout=30)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            raise RuntimeError(f"topic {topic} does not exist: run `switchboard topics create` first")
        parts = sorted(meta.topics[topic].partitions)
        wanted = [TopicPartition(topic, p, int(since * 1000)) for p in parts]
        starts = offsets_for_times(consumer, wanted, timeout=60)
        assign = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END) for tp in starts]
        consumer.assign(assign)
        pending = set(parts)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic} took longer than {timeout}s")
            for msg in consumer.consume(1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    continue
                key, value = msg.key(), msg.value()
                if key is None or value is None:
                    continue
                try:
                    item = (key.decode(), float(value))
                except (UnicodeDecodeError, ValueError):
                    continue
                count += 1
                yield item
    finally:
        consumer.close()
    log.info("dedupe_loaded", topic=topic, ids=count, seconds=round(time.monotonic() - started, 3))
