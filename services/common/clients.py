"""Kafka clients as every service configures them, the record a handler returns, and the calls
retried while partition leaders move (a broker restart, a roll)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from services.common.codec import HeaderList
from services.common.config import KafkaSettings, env_float, env_int

SESSION_TIMEOUT_MS = 10_000

# The broker's "this user lacks a right" answers, and the kind of resource each is about. Retrying does
# not help (an operator has to grant the ACL): the service exits with status 2 (Runtime), naming it.
AUTHORIZATION_ERRORS = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
}


class KafkaNotAuthorized(Exception):
    """The broker refused this user a right on `resource` ("topic x", "group y", "transactional id
    z"): a configuration error, logged as `kafka_not_authorized` and exit status 2."""

    def __init__(self, resource: str, detail: str, operation: str = "") -> None:
        super().__init__(f"not authorized: {resource}{f' ({operation})' if operation else ''}: {detail}")
        self.resource, self.detail, self.operation = resource, detail, operation


class KafkaAuthenticationFailed(Exception):
    """The broker refused the credentials (SASL): logged as `kafka_authentication_failed`, exit 2."""


def not_authorized(err: KafkaError, name: str | None, operation: str = "") -> KafkaNotAuthorized | None:
    """KafkaNotAuthorized for `err` if it is an authorization failure (`name`: the topic, group or
    transactional id it was about, when known), else None."""
    kind = AUTHORIZATION_ERRORS.get(err.code())
    if kind is None:
        return None
    return KafkaNotAuthorized(f"{kind} {name}" if name and kind != "cluster" else kind, err.str(), operation)


def topics_lacking(kafka: KafkaSettings, wanted: dict[str, str], timeout: float = 10.0) -> list[tuple[str, str]]:
    """(topic, operation) of `wanted` (topic -> operation: "READ", "WRITE") this user may not do,
    as the broker says (KIP-430 authorized operations; a topic it may not even Describe: "DESCRIBE").
    Empty when the broker cannot tell."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation, AdminClient

    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    lacking: list[tuple[str, str]] = []
    try:
        futures = admin.describe_topics(TopicCollection(sorted(wanted)), request_timeout=timeout,
                                        include_authorized_operations=True)
    except Exception:  # noqa: BLE001 (cannot tell: the caller names what it knows)
        return []
    for topic, future in futures.items():
        try:
            ops = future.result(timeout=timeout).authorized_operations or []
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                lacking.append((topic, "DESCRIBE"))
            continue
        except Exception:  # noqa: BLE001
            continue
        op = wanted[topic]
        if ops and getattr(AclOperation, op) not in ops and AclOperation.ALL not in ops:
            lacking.append((topic, op))
    return lacking


class Output(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None
    headers: HeaderList | None = None


class Handler(Protocol):
    def handle(self, msg: Message) -> Sequence[Output]: ...


def producer_config(kafka: KafkaSettings, client_id: str, transactional_id: str | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **kafka.client_config(),
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        # After a commit the coordinator answers CONCURRENT_TRANSACTIONS to the next transaction's
        # first AddPartitions until the markers are written; librdkafka retries after this backoff
        # (100 ms by default: it added ~100 ms to every hop). KAFKA-5477 set the Java client's to
        # 20 ms for the same reason. Measured in docs/decisions/0002-commit-cadence.md.
        "retry.backoff.ms": env_int("SWITCHBOARD_KAFKA_RETRY_BACKOFF_MS", 10, minimum=1, maximum=1000),
        "compression.type": "lz4",
        # Same partitioner as the Java client, so every producer (CRM, channels, us) puts a key
        # on the same partition: co-partitioning by tenant depends on it.
        "partitioner": "murmur2_random",
    }
    if transactional_id:
        conf["transactional.id"] = transactional_id
        # How long a dead replica's open transaction blocks the partitions it held: until the
        # coordinator aborts it, the group's offsets there are unstable and the new owner waits.
        # Lower = faster failover, but a replica starved of CPU for longer loses its batch.
        conf["transaction.timeout.ms"] = int(1000 * env_float("SWITCHBOARD_TRANSACTION_TIMEOUT_SECONDS", 60.0,
                                                               minimum=5.0))
    return conf


def consumer_config(kafka: KafkaSettings, group_id: str, client_id: str) -> dict[str, Any]:
    return {
        **kafka.client_config(),
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 2_000,
        "max.poll.interval.ms": 120_000,
        # How long the broker parks a fetch with nothing to return (librdkafka: 500 ms). Committed
        # records wake it anyway; a shorter bound caps the rare fetch that misses the wake-up
        # (measured commit->visible: max 99.5 ms at 500, 6.9 ms at 100) for ~10 idle fetches/s.
        "fetch.wait.max.ms": 100,
        # After a failed fetch (a partition leader that moved in a roll) librdkafka waits 500 ms before
        # fetching that partition again; the Java client 100 ms (its retry.backoff.ms).
        "fetch.error.backoff.ms": 100,
        # Back-pressure bound: a consumer far behind (a backlog, a slow downstream) holds at most this
        # much prefetched data whatever the backlog (librdkafka's default: 64 MB and 100,000 messages
        # per partition). 16 MB is still some 20,000 typical events ahead of a 500-event batch.
        "queued.max.messages.kbytes": _prefetch_kb(),
        "fetch.max.bytes": _prefetch_kb() * 1024,
    }


def _prefetch_kb() -> int:
    return max(1024, int(os.environ.get("SWITCHBOARD_CONSUMER_PREFETCH_KB", "") or 16_384))


def make_producer(kafka: KafkaSettings, client_id: str) -> Producer:
    return Producer(producer_config(kafka, client_id))


def produce_all(producer: Producer, outputs: Sequence[Output], on_delivery: Callable[..., None] | None = None) -> None:
    produce = producer.produce
    for out in outputs:
        while True:
            try:
                produce(out.topic, value=out.value, key=out.key, headers=out.headers, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain (back-pressure)
                producer.poll(0.05)
    # Serve delivery reports once per call, not per record (a poll per record was 3 % of routing's CPU).
    producer.poll(0)


# _DESTROY_BROKER: the broker handle a request waited on was replaced (the bootstrap handle once the
# cluster's brokers are known, or a broker coming back); the query never got an answer, so it is asked
# again (retry_transient is only used for read-only lookups). A broker restart once ended ingestion
# with it, reloading its dedupe ids (RELIABILITY.md finding 14).
TRANSIENT_METADATA_ERRORS = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                             KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError._UNKNOWN_PARTITION,
                             KafkaError._DESTROY_BROKER)


def retry_transient(call: Callable[[], Any], timeout: float = 60.0,
                    refresh: Callable[[], Any] | None = None) -> Any:
    """call(), retried every 0.5 s on a retriable or leader-election error for up to `timeout`.

    refresh (e.g. `client.list_topics(topic)`) runs before each retry: a client that reads a topic
    it neither consumes nor produces to (watermarks of a state topic, of a lag poll) is not kept
    up to date by librdkafka, and in a three-broker roll one answered _UNKNOWN_PARTITION for two
    minutes on end until a metadata request for the topic (RELIABILITY.md finding 13)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0]
            if time.monotonic() > deadline or not (err.retriable() or err.code() in TRANSIENT_METADATA_ERRORS):
                raise
            time.sleep(0.5)
            if refresh is not None:
                try:
                    refresh()
                except KafkaException:
                    pass  # the next try says whether it helped


def topic_refresher(client: Any, topic: str) -> Callable[[], Any]:
    """A metadata request for `topic` (for retry_transient's refresh)."""
    return lambda: client.list_topics(topic, timeout=5)


def offsets_for_times(consumer: Consumer, wanted: list[TopicPartition], timeout: float = 60.0
                      ) -> list[TopicPartition]:
    """consumer.offsets_for_times, retried while partition leaders are being elected."""
    return list(retry_transient(lambda: consumer.offsets_for_times(wanted, timeout=30), timeout))
