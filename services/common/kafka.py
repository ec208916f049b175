"""The consume–process–produce loop every service runs, and Kafka client factories.

Guarantees:
- exactly-once mode (default): each polled batch's outputs and its input offsets are committed in
  one Kafka transaction (KIP-447 style, fenced by the consumer group's generation);
- at-least-once mode (brokers without transactions): outputs are produced with an idempotent,
  acks=all producer, flushed, and only when every one is acknowledged are the offsets committed.
A handler rejects bad input by raising `Reject`; that event goes to the dead-letter topic with its
reason and the stream goes on. An unexpected exception in a handler dead-letters the event too
(reason `internal_error`) and is counted: one bad event never stops a partition.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from services.common import metrics
from services.common.config import KafkaSettings, ServiceSettings, env_float
from services.common.logging import JsonLogger, kafka_logger


class Output(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


class Handler(Protocol):
    def handle(self, msg: Message) -> Sequence[Output]: ...


def producer_config(kafka: KafkaSettings, client_id: str, transactional_id: str | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **kafka.client_config(),
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
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
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        "max.poll.interval.ms": 120_000,
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
    for out in outputs:
        while True:
            try:
                producer.produce(out.topic, value=out.value, key=out.key, headers=out.headers,
                                 on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain (back-pressure)
                producer.poll(0.05)
        producer.poll(0)


def offsets_for_times(consumer: Consumer, wanted: list[TopicPartition], timeout: float = 60.0
                      ) -> list[TopicPartition]:
    """consumer.offsets_for_times, retried while partition leaders are being elected (a topic
    created moments ago answers NOT_LEADER_FOR_PARTITION / LEADER_NOT_AVAILABLE for a while)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return list(consumer.offsets_for_times(wanted, timeout=30))
        except KafkaException as exc:
            err = exc.args[0]
            # UNKNOWN_LEADER_EPOCH: the broker has just restarted and the client's metadata is older.
            transient = err.retriable() or err.code() in (KafkaError.NOT_LEADER_FOR_PARTITION,
                                                           KafkaError.LEADER_NOT_AVAILABLE,
                                                           KafkaError.UNKNOWN_LEADER_EPOCH)
            if time.monotonic() > deadline or not transient:
                raise
            time.sleep(0.5)


def _next_offsets(msgs: Sequence[Message]) -> list[TopicPartition]:
    highest: dict[tuple[str, int], int] = {}
    for m in msgs:
        tp = (m.topic(), m.partition())
        highest[tp] = max(highest.get(tp, -1), m.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]


class StreamLoop:
    """Runs `handler` over `topics` until `stop` is set; see the module docstring."""

    def __init__(
        self,
        settings: ServiceSettings,
        topics: Sequence[str],
        handler: Handler,
        log: JsonLogger,
        dlq_topic: str | None = None,
        tick: Callable[[float], Sequence[Output]] | None = None,
        tick_interval: float = 1.0,
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[list[TopicPartition]], None] | None = None,
        clock: Callable[[], float] = time.time,
        lock: threading.Lock | None = None,
    ) -> None:
        self.settings = settings
        self.service = settings.service
        self.topics = list(topics)
        self.handler = handler
        self.log = log
        self.dlq_topic = dlq_topic
        self.tick = tick
        self.tick_interval = tick_interval
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self.clock = clock
        # Held while handling a batch, so readers (gRPC) see state between batches only.
        self.lock = lock or threading.Lock()
        self.assigned = threading.Event()
        self.eos = settings.kafka.exactly_once
        client_id = f"{settings.service}-{settings.instance_id}"
        self.transactional_id = (
            f"{settings.kafka.topic_prefix}switchboard-{settings.service}-{settings.instance_id}" if self.eos else None
        )
        bridge = kafka_logger(log)
        self.consumer = Consumer({**consumer_config(settings.kafka, settings.group_id, client_id), "logger": bridge})
        self.producer = Producer({**producer_config(settings.kafka, client_id, self.transactional_id),
                                  "logger": bridge})
        self._delivery_errors: list[str] = []
        self._last_tick = 0.0
        # librdkafka can block in send_offsets_to_transaction past its timeout once the group coordinator
        # has gone away and come back (confluentinc/librdkafka#5456; seen here after a broker restart):
        # a commit stuck this long ends the process (exit 3) so the orchestrator restarts it, and the
        # state is rebuilt from the topics as after any crash.
        self.stall_exit_seconds = float(os.environ.get("SWITCHBOARD_STALL_EXIT_SECONDS", "") or 150.0)
        self._commit_since: float | None = None
        # Consumer lag (committed vs end offsets) polled in the background; 0 turns it off.
        from services.common.config import env_float

        self.lag_poll_seconds = env_float("SWITCHBOARD_LAG_POLL_SECONDS", 10.0, minimum=0.0)
        self._lag_poller: metrics.ConsumerLagPoller | None = None
        self._lag_consumer: Consumer | None = None
        self._client_id = client_id
        # The loop's partitions as its rebalance callbacks report them: the lag poller reads this
        # instead of calling the loop's consumer from its own thread.
        self._assignment: dict[tuple[str, int], TopicPartition] = {}
        # Export the error counters at 0 from the start, so rates and alerts see a series.
        metrics.PROCESSING_ERRORS.labels(self.service)
        metrics.LAG_POLL_ERRORS.labels(self.service)

    # -- rebalance ---------------------------------------------------------------------------
    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.log.info("partitions_assigned", partitions=[f"{p.topic}[{p.partition}]" for p in partitions])
        self._assignment.update({(p.topic, p.partition): TopicPartition(p.topic, p.partition) for p in partitions})
        if self._on_assign:
            with self.lock:
                self._on_assign(partitions)
        self.assigned.set()

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.log.info("partitions_revoked", partitions=[f"{p.topic}[{p.partition}]" for p in partitions])
        for p in partitions:
            self._assignment.pop((p.topic, p.partition), None)
        if self._on_revoke:
            with self.lock:
                self._on_revoke(partitions)

    # -- processing --------------------------------------------------------------------------
    def _handle(self, msg: Message) -> Sequence[Output]:
        from services.common.dlq import Reject, dead_letter

        try:
            return self.handler.handle(msg)
        except Reject as rej:
            if self.dlq_topic is None:
                raise
            metrics.DEAD_LETTERS.labels(self.service, rej.code).inc()
            self.log.warning("dead_lettered", reason=rej.code, detail=rej.detail,
                             topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
            return [dead_letter(msg, self.dlq_topic, self.service, rej.code, rej.detail)]
        except Exception as exc:
            metrics.PROCESSING_ERRORS.labels(self.service).inc()
            if self.dlq_topic is None:
                raise
            metrics.DEAD_LETTERS.labels(self.service, "internal_error").inc()
            self.log.error("handler_failed", error=type(exc).__name__, detail=str(exc)[:300],
                           topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
            return [dead_letter(msg, self.dlq_topic, self.service, "internal_error", type(exc).__name__)]

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err}")

    def _commit_at_least_once(self, outputs: Sequence[Output], msgs: Sequence[Message]) -> None:
        self._delivery_errors.clear()
        produce_all(self.producer, outputs, self._on_delivery)
        remaining = self.producer.flush(60)
        if remaining or self._delivery_errors:
            # Do not commit: the batch will be consumed again after restart (at-least-once).
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT,
                                            f"outputs not acknowledged: {self._delivery_errors[:3]}"))
        if msgs:
            self.consumer.commit(offsets=_next_offsets(msgs), asynchronous=False)

    def _commit_transaction(self, outputs: Sequence[Output], msgs: Sequence[Message]) -> None:
        for attempt in range(1, 6):
            try:
                self.producer.begin_transaction()
                produce_all(self.producer, outputs)
                if msgs:
                    offsets = _next_offsets(msgs)
                    group = self.consumer.consumer_group_metadata()
                    self._retry_step("send_offsets", functools.partial(
                        self.producer.send_offsets_to_transaction, offsets, group, 30))
                self._retry_step("commit", lambda: self.producer.commit_transaction(60))
                metrics.TRANSACTIONS.labels(self.service, "committed").inc()
                return
            except KafkaException as exc:
                err = exc.args[0]
                if err.txn_requires_abort() or err.retriable():
                    metrics.TRANSACTIONS.labels(self.service, "aborted").inc()
                    self.log.warning("transaction_aborted", attempt=attempt, error=str(err))
                    self._retry_step("abort", lambda: self.producer.abort_transaction(30))
                    time.sleep(min(0.1 * attempt, 1.0))
                    continue
                metrics.TRANSACTIONS.labels(self.service, "fatal").inc()
                raise
        raise RuntimeError("transaction failed 5 times in a row")

    def _retry_step(self, step: str, call: Callable[[], object], deadline_s: float = 120.0) -> None:
        """One transactional call, repeated while it fails with a retriable error (broker restarting,
        coordinator moving). Never skips ahead: committing after a failed send_offsets would commit
        the outputs without the input offsets, and the batch would be processed twice."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                call()
                return
            except KafkaException as exc:
                err = exc.args[0]
                if not err.retriable() or err.txn_requires_abort() or time.monotonic() > deadline:
                    raise
                self.log.warning("transaction_retry", step=step, error=str(err))
                time.sleep(0.5)

    def _commit(self, outputs: Sequence[Output], msgs: Sequence[Message]) -> None:
        self._commit_since = time.monotonic()
        try:
            if self.eos:
                self._commit_transaction(outputs, msgs)
            else:
                self._commit_at_least_once(outputs, msgs)
        finally:
            self._commit_since = None
        for out in outputs:
            metrics.EVENTS_PRODUCED.labels(self.service, out.topic).inc()

    def run_once(self, timeout: float = 0.2) -> int:
        """Poll one batch, process it, commit. Returns the number of messages consumed."""
        # Wait for the first message only, then take what has already arrived: consume(n, timeout)
        # waits the whole timeout unless n messages come, which added up to 200 ms per service to every
        # event below 2,500 events/s (bench pipeline stage). Under load batches still fill up.
        first = self.consumer.poll(timeout)
        msgs = [] if first is None else [first]
        if first is not None and self.settings.batch_size > 1:
            msgs.extend(self.consumer.consume(self.settings.batch_size - 1, timeout=0))
        started = time.perf_counter()
        good: list[Message] = []
        for m in msgs:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif err.fatal():
                raise KafkaException(err)
            else:
                self.log.warning("consume_error", error=str(err))
        outputs: list[Output] = []
        # A handler with begin_batch()/end_batch() may hold outputs back until the batch's end (routing
        # coalesces its state records: one per changed entity per transaction, not one per event).
        batched = good and hasattr(self.handler, "begin_batch") and hasattr(self.handler, "end_batch")
        with self.lock:
            if batched:
                self.handler.begin_batch()  # type: ignore[attr-defined]
            try:
                for m in good:
                    metrics.EVENTS_CONSUMED.labels(self.service, m.topic()).inc()
                    outputs.extend(self._handle(m))
            finally:
                if batched:
                    outputs.extend(self.handler.end_batch())  # type: ignore[attr-defined]
            now = self.clock()
            if self.tick is not None and now - self._last_tick >= self.tick_interval:
                self._last_tick = now
                outputs.extend(self.tick(now))
        if good or outputs:
            self._commit(outputs, good)
            metrics.PROCESSING_SECONDS.labels(self.service).observe(time.perf_counter() - started)
            self._observe_latency(good)
        return len(good)

    def _observe_latency(self, msgs: Sequence[Message]) -> None:
        done_ms = time.time() * 1000.0
        for m in msgs:
            kind, ts = m.timestamp()
            if kind != TIMESTAMP_NOT_AVAILABLE and ts > 0:
                metrics.EVENT_LATENCY_SECONDS.labels(self.service, m.topic()).observe(max(0.0, done_ms - ts) / 1000.0)

    def _watchdog(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            since = self._commit_since
            if since is not None and time.monotonic() - since > self.stall_exit_seconds:
                self.log.error("loop_stalled", seconds=round(time.monotonic() - since),
                               detail="a commit is blocked; exiting so that the service is restarted")
                os._exit(3)

    def run(self, stop: threading.Event) -> None:
        if self.eos:
            self.producer.init_transactions(60)
        self.consumer.subscribe(self.topics, on_assign=self._assigned, on_revoke=self._revoked)
        self.log.info("loop_started", topics=self.topics, group=self.settings.group_id,
                      exactly_once=self.eos)
        threading.Thread(target=self._watchdog, args=(stop,), name="commit-watchdog", daemon=True).start()
        if self.lag_poll_seconds > 0:
            # Its own client (same group id, never subscribed, so never a group member), and the
            # assignment from our rebalance callbacks: the loop's consumer is used by the loop thread
            # only. Shared, a committed() blocked during a broker restart can hold up the loop's poll()
            # (a likely cause of one enrichment that never resumed in the broker-restart test).
            self._lag_consumer = Consumer({
                **consumer_config(self.settings.kafka, self.settings.group_id, f"{self._client_id}-lag"),
                "logger": kafka_logger(self.log)})
            self._lag_poller = metrics.ConsumerLagPoller(
                self._lag_consumer, self.service, self.lag_poll_seconds, log=self.log,
                assignment=lambda: list(self._assignment.values())).start()
        try:
            while not stop.is_set():
                self.run_once()
        finally:
            if self._lag_poller is not None:  # before close: it uses the consumer
                self._lag_poller.stop()
            if self._lag_consumer is not None:
                self._lag_consumer.close()
            # The last batch is committed (run_once returned); leave the group so partitions move now.
            self.consumer.close()
            self.producer.flush(30)
            self.log.info("loop_stopped")
