"""Reload the event ids ingestion accepted within the dedupe window from ingestion.dedupe.v1.

Each record: key `tenant_id/event_id`, value the acceptance time (epoch seconds, ASCII), written in
the same transaction as the normalized event, so the topic holds exactly the ids whose events were
committed. The reader seeks each partition to the window's start by timestamp and reads to the end
(read_committed), so a restart costs one window of ids, not the whole topic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from services.common.config import KafkaSettings
from services.common.logging import JsonLogger
from services.common.reader import TopicReader


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
    count = 0
    started = time.monotonic()
    with TopicReader(kafka, topic, log, "ingestion-dedupe-loader", start=since) as reader:
        for msg in reader.read_to_end(timeout):
            key, value = msg.key(), msg.value()
            if key is None or value is None:
                continue
            try:
                item = (key.decode(), float(value))
            except (UnicodeDecodeError, ValueError):
                continue
            count += 1
            yield item
    log.info("dedupe_loaded", topic=topic, ids=count, seconds=round(time.monotonic() - started, 3))
