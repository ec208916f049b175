"""The one way the services read a topic outside their consumer group: state and tables loaded at
start (to the end) or kept current (following), from the beginning, from a time or from the end.

Every partition, read_committed (only what a transaction committed), no consumer group (librdkafka
wants a group id; nothing is ever committed with it). One policy for what goes wrong:

- a missing topic raises TopicMissing when the reader opens, naming the fix, so a service fails
  at start instead of a background thread dying later;
- a fatal client error raises KafkaException;
- any other error (a broker restarting, a leader moving) is logged as `topic_reader_error`, once
  per error code until reading goes on, and the client retries by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Message, TopicPartition

from services.common.clients import offsets_for_times
from services.common.config import KafkaSettings
from services.common.logging import JsonLogger, kafka_logger

BEGINNING = "beginning"
END = "end"


class TopicMissing(RuntimeError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} does not exist: run `switchboard topics create` first")
        self.topic = topic


@dataclass(slots=True)
class Batch:
    records: list[Message] = field(default_factory=list)  # data records (keyed or not), in order
    ends: dict[int, int] = field(default_factory=dict)  # partition -> offset read up to, in this batch
    caught_up: bool = False  # every partition has reached its end once (in this batch or before)


class TopicReader:
    """Reads `topic` from `start`: BEGINNING, END, or epoch seconds (each partition from its first
    record at or after that time, or its end)."""

    def __init__(self, kafka: KafkaSettings, topic: str, log: JsonLogger, client_id: str, *,
                 start: str | float = BEGINNING, batch: int = 1000, poll_seconds: float = 0.2) -> None:
        self.topic = topic
        self._log = log
        self._start = start
        self._batch = batch
        self._poll = poll_seconds
        self._consumer = Consumer({
            **kafka.client_config(), "client.id": client_id,
            "group.id": f"{kafka.topic_prefix}switchboard-{client_id}-reader-unused",
            "enable.auto.commit": False, "enable.partition.eof": True, "isolation.level": "read_committed",
            "logger": kafka_logger(log),
        })
        self.partitions: list[int] = []
        self._pending: set[int] = set()
        self._logged: set[int] = set()  # error codes logged since reading last went on
        self.caught_up = False
        self._closed = False

    def open(self) -> TopicReader:
        meta = self._consumer.list_topics(self.topic, timeout=30)
        if self.topic not in meta.topics or meta.topics[self.topic].error is not None:
            self.close()
            raise TopicMissing(self.topic)
        self.partitions = sorted(meta.topics[self.topic].partitions)
        if self._start == BEGINNING:
            assignment = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions]
        elif self._start == END:
            assignment = [TopicPartition(self.topic, p, OFFSET_END) for p in self.partitions]
        else:
            since_ms = int(float(self._start) * 1000)  # broker timestamps are wall-clock
            found = offsets_for_times(self._consumer, [TopicPartition(self.topic, p, since_ms)
                                                       for p in self.partitions])
            assignment = [TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                          for tp in found]
        self._consumer.assign(assignment)
        self._pending = set(self.partitions)
        return self

    def poll(self) -> Batch:
        """What arrived within one poll (at most `batch` records)."""
        out = Batch()
        for msg in self._consumer.consume(self._batch, timeout=self._poll):
            err = msg.error()
            partition = int(msg.partition() or 0)
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    out.ends[partition] = int(msg.offset() or 0)
                    self._pending.discard(partition)
                elif err.fatal():
                    raise KafkaException(err)
                elif err.code() not in self._logged:
                    self._logged.add(err.code())
                    self._log.warning("topic_reader_error", topic=self.topic, error=str(err))
                continue
            self._logged.clear()
            out.records.append(msg)
            out.ends[partition] = int(msg.offset() or 0) + 1
        if not self._pending:
            self.caught_up = True
        out.caught_up = self.caught_up
        return out

    def read_to_end(self, timeout: float = 120.0) -> Iterator[Message]:
        """Every record up to the end of every partition as it was when each was reached."""
        deadline = time.monotonic() + timeout
        while not self.caught_up:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {self.topic} took longer than {timeout}s")
            yield from self.poll().records

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Follower:
    """A TopicReader kept current on a thread of its own. `on_batch(batch)` gets every poll's
    batch on that thread (it must not block); `caught_up` is set, and `on_caught_up(seconds)`
    called, once every partition has reached its end. The reader opens in start(), so a missing
    topic fails the caller."""

    def __init__(self, reader: TopicReader, name: str, on_batch: Callable[[Batch], None],
                 on_caught_up: Callable[[float], None] | None = None, every: float = 0.0,
                 periodic: Callable[[], None] | None = None) -> None:
        self.reader = reader
        self.caught_up = threading.Event()
        self._on_batch, self._on_caught_up = on_batch, on_caught_up
        self._every, self._periodic = every, periodic  # e.g. pruning a window, between polls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.running = threading.Event()

    def start(self) -> Follower:
        self.reader.open()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        self.running.set()
        started = last = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = self.reader.poll()
                self._on_batch(batch)
                if batch.caught_up and not self.caught_up.is_set():
                    self.caught_up.set()
                    if self._on_caught_up is not None:
                        self._on_caught_up(round(time.monotonic() - started, 3))
                if self._periodic is not None and time.monotonic() - last > self._every:
                    last = time.monotonic()
                    self._periodic()
        finally:
            self.reader.close()
