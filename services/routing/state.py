"""routing.state.v1: the routing engine's changelog, and every replica's copy of it.

The engine reports what each event changed (`RoutingEngine.drain_changes()`): one record per
agent, contact, queue and tenant, or None when the entity is gone. The handler writes them to the
compacted `routing.state.v1` in the same Kafka transaction as the decisions and the input offsets,
so the topic always holds the state that matches the committed offsets: after a crash, the new
owner of a tenant loads the tenant from it and goes on from the committed offsets.

Every replica reads the whole topic (no consumer group) into a `StateStore`. It serves three uses:
recovery when partitions are assigned, answering gRPC queries for tenants another replica owns,
and streaming agent changes to WatchAgents clients.

Keys are the JSON array ``[tenant_id, kind, entity_id]`` (unambiguous whatever the ids contain);
values are JSON documents with a schema version ``"v"``. They mirror engine internals and change
with them, so they are an internal format, not a contract for other teams (those read
contacts.lifecycle.v1 and the gRPC API).
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from services.common.codec import HeaderList
from services.common.config import KafkaSettings
from services.common.kafka import Output, retry_transient, topic_refresher
from services.common.logging import JsonLogger, kafka_logger
from services.common.reader import Batch, Follower, TopicReader

JSON_HEADERS: HeaderList = [("content-type", b"application/json")]

Change = tuple[str, str, str, dict[str, Any] | None]  # (tenant_id, kind, entity_id, record or None)
# (tenant_id, kind, entity_id, the record as written or None when deleted): decoding is left to
# the listener (record()), since most changes interest nobody
Listener = Callable[[str, str, str, bytes | None], None]


_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\\]")  # and '"', counted below
_KEY_NEEDS_JSON = re.compile(rb"[\x00-\x1f\\]")


def state_key(tenant_id: str, kind: str, entity_id: str) -> bytes:
    """The JSON array, written directly when no part needs escaping (the common case): the same
    bytes as json.dumps(separators=(",", ":"), ensure_ascii=False), for a fifth of the cost."""
    joined = f'["{tenant_id}","{kind}","{entity_id}"]'
    if joined.count('"') == 6 and _NEEDS_ESCAPE.search(joined) is None:
        return joined.encode()
    return json.dumps([tenant_id, kind, entity_id], separators=(",", ":"), ensure_ascii=False).encode()


def parse_key(key: bytes) -> tuple[str, str, str]:
    if key[:2] == b'["' and key[-2:] == b'"]' and _KEY_NEEDS_JSON.search(key) is None:
        # no escapes: the parts are the text between the quotes (a quote inside a part is escaped)
        parts = key[2:-2].split(b'","')
        if len(parts) == 3 and all(b'"' not in p for p in parts):
            return parts[0].decode(), parts[1].decode(), parts[2].decode()
    value = json.loads(key)
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
        raise ValueError("state key must be a JSON array of three strings")
    return value[0], value[1], value[2]


def encode_record(record: dict[str, Any]) -> bytes:
    """Compact JSON, keys sorted, UTF-8: orjson gives the same bytes as json.dumps(separators=(",",
    ":"), ensure_ascii=False, sort_keys=True) for these records, 1.8 against 13 µs for an agent (the
    stdlib call was 5.8 % of routing's CPU). What orjson refuses (an int beyond 64 bits, a key
    that is not a string) goes through the stdlib. It would write NaN and infinity as null: the
    adapter rejects inputs that carry them (no engine value is computed from anything else)."""
    try:
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def changes_to_outputs(changes: Iterable[Change], topic: str) -> list[Output]:
    return [
        Output(topic, state_key(tenant, kind, entity), None if record is None else encode_record(record),
               JSON_HEADERS)
        for tenant, kind, entity, record in changes
    ]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's default partitioner; librdkafka's `murmur2_random`)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    tail = length - rest
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed record lands on with the murmur2 partitioner."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class StateStore:
    """The latest record of every entity in routing.state.v1, by tenant, kept current by a
    background reader of every partition (read_committed: only what a transaction committed)."""

    def __init__(self, kafka: KafkaSettings, topic: str, log: JsonLogger, client_id: str) -> None:
        self.topic = topic
        self._log = log
        self._tenants: dict[str, dict[tuple[str, str], bytes]] = {}  # records as read (see _decode)
        self._versions: dict[str, int] = {}
        self._cond = threading.Condition()
        self._end: dict[int, int] = {}  # partition -> offset reached (at end-of-partition events)
        self._listeners: list[Listener] = []
        self.decode_errors = 0
        common = {**kafka.client_config(), "client.id": client_id, "enable.auto.commit": False,
                  "isolation.level": "read_committed", "logger": kafka_logger(log)}
        # A group id is required by librdkafka; nothing is ever committed with it. Every group id starts
        # with <prefix>switchboard-: one ACL covers them (the chart's KafkaUser).
        self._follower = Follower(TopicReader(kafka, topic, log, client_id), "routing-state-reader", self._batch,
                                  on_caught_up=lambda seconds: log.info("routing_state_loaded",
                                                                        tenants=len(self.tenants()), seconds=seconds))
        self.started = self._follower.running
        self._offsets = Consumer({**common,
                                  "group.id": f"{kafka.topic_prefix}switchboard-{client_id}-state-offsets-unused"})
        self._partitions: list[int] = []

    # -- reading ------------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        with self._cond:
            return sorted(self._tenants)

    def records(self, tenant_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        with self._cond:
            raw = list(self._tenants.get(tenant_id, {}).items())
        out = []
        for (kind, entity), value in raw:
            record = self._decode(value)
            if record is not None:
                out.append((kind, entity, record))
        return out

    def record(self, tenant_id: str, kind: str, entity_id: str) -> dict[str, Any] | None:
        with self._cond:
            value = self._tenants.get(tenant_id, {}).get((kind, entity_id))
        return None if value is None else self._decode(value)

    def _decode(self, value: bytes) -> dict[str, Any] | None:
        """Records are held as the bytes read and decoded when asked for: most are overwritten
        before anyone reads them (this replica's own writes, read back), so decoding each one on
        arrival was most of the reader's cost."""
        try:
            record = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            self.decode_errors += 1
            return None
        if not isinstance(record, dict):
            self.decode_errors += 1
            return None
        return record

    def version(self, tenant_id: str) -> int:
        """Bumped on every change of the tenant's records (for caches built from them)."""
        with self._cond:
            return self._versions.get(tenant_id, 0)

    def add_listener(self, listener: Listener) -> None:
        """Called on the reader thread for every change applied; must not block."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def wait_caught_up(self, timeout: float = 60.0) -> bool:
        """Waits until everything committed to the topic before this call has been read."""
        deadline = time.monotonic() + timeout
        if not self.started.wait(timeout):
            return False
        targets = {}
        for p in self._partitions:
            watermarks = functools.partial(self._offsets.get_watermark_offsets, TopicPartition(self.topic, p),
                                           timeout=10, cached=False)
            _, targets[p] = retry_transient(watermarks, max(0.0, deadline - time.monotonic()),
                                            refresh=topic_refresher(self._offsets, self.topic))
        with self._cond:
            while True:
                if all(self._end.get(p, -1) >= high for p, high in targets.items()):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> StateStore:
        self._follower.start()  # a missing topic fails the service at start, not the thread
        self._partitions = self._follower.reader.partitions
        return self

    def stop(self) -> None:
        self._follower.stop()
        self._offsets.close()

    def _apply(self, batch: list[tuple[bytes, bytes | None]], ends: dict[int, int]) -> None:
        """One consumed batch under one lock (per record, the lock and the wake-ups were most of the
        reader's cost: it reads back every record this replica writes)."""
        parsed = []
        for key, value in batch:
            try:
                tenant, kind, entity = parse_key(key)
            except (ValueError, UnicodeDecodeError):
                self.decode_errors += 1
                continue
            parsed.append((tenant, kind, entity, value))
        with self._cond:
            tenants, versions = self._tenants, self._versions
            for tenant, kind, entity, value in parsed:
                entities = tenants.get(tenant)
                if entities is None:
                    entities = tenants[tenant] = {}
                if value is None:
                    entities.pop((kind, entity), None)
                    if not entities:
                        del tenants[tenant]
                else:
                    entities[(kind, entity)] = value
                versions[tenant] = versions.get(tenant, 0) + 1
            for partition, offset in ends.items():
                if offset > self._end.get(partition, -1):
                    self._end[partition] = offset
            if ends:
                self._cond.notify_all()
            listeners = list(self._listeners)
        if not listeners:
            return
        for tenant, kind, entity, value in parsed:
            for listener in listeners:
                try:
                    listener(tenant, kind, entity, value)
                except Exception as exc:  # a broken watcher must not stop the reader
                    self._log.warning("state_listener_failed", error=type(exc).__name__)

    def _batch(self, batch: Batch) -> None:
        records = [(key, msg.value()) for msg in batch.records if (key := msg.key()) is not None]
        if records or batch.ends:
            self._apply(records, batch.ends)
