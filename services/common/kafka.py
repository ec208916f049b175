"""The consume–process–produce loop every service runs, and Kafka client factories.

Guarantees:
- exactly-once mode (default): the outputs of the inputs polled since the last commit and their
  input offsets are committed in one Kafka transaction (KIP-447 style, fenced by the consumer
  group's generation); the transaction stays open across polls and is committed by the policy of
  `services/common/commit.py` (at once after an idle spell, else paced by
  SWITCHBOARD_COMMIT_INTERVAL_MS, or at SWITCHBOARD_BATCH_SIZE inputs);
- at-least-once mode (brokers without transactions): outputs are produced with an idempotent,
  acks=all producer, flushed, and only when every one is acknowledged are the offsets committed.
A handler rejects bad input by raising `Reject`; that event goes to the dead-letter topic with its
reason and the stream goes on. An unexpected exception in a handler dead-letters the event too
(reason `internal_error`) and is counted: one bad event never stops a partition.
A broker that goes away and comes back is waited for; a client call that never returns makes the
loop rebuild its clients in the process (see StreamLoop), not exit.
"""

from __future__ import annotations

import collections
import functools
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
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
from services.common.codec import HeaderList
from services.common.commit import CommitPolicy
from services.common.config import KafkaSettings, ServiceSettings, env_float, env_int
from services.common.logging import JsonLogger, kafka_logger

SESSION_TIMEOUT_MS = 10_000
# switchboard_loop_recoveries_total{reason}: why the loop rebuilt its clients in the process
RECOVERY_REASONS = ("stalled", "partitions_lost", "transaction_failed", "producer_fatal")


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


# Errors of a cluster that is electing leaders (a topic created moments ago, a broker restarting or
# rolled): NOT_LEADER / LEADER_NOT_AVAILABLE; UNKNOWN_LEADER_EPOCH when the client's metadata is
# older than the broker's; _UNKNOWN_PARTITION from a client whose metadata has not caught up with a
# leader that moved (a routing replica exited on it during a roll, RELIABILITY.md finding 12).
TRANSIENT_METADATA_ERRORS = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                             KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError._UNKNOWN_PARTITION)


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


class Stalled(Exception):
    """A Kafka client call did not return within its deadline (librdkafka can block past its own
    timeout: confluentinc/librdkafka#5456, #5511). The loop recovers by rebuilding its clients."""


class Recover(Exception):
    """The loop's clients or its uncommitted state cannot go on (a stalled call, partitions lost,
    a transaction that failed again and again): rebuild the clients and reload the state."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class _Worker:
    """Runs blocking client calls on a daemon thread of its own, so the loop thread can give up
    on a call that librdkafka never returns from. A worker whose call overran is abandoned (with
    its client): its thread may stay blocked, but it holds no lock and the process can exit."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.stuck = False

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            call, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(call())
            except BaseException as exc:  # noqa: BLE001 (handed to the caller)
                fut.set_exception(exc)

    def call(self, step: str, call: Callable[[], Any], deadline: float) -> Any:
        if self.stuck:
            raise Stalled(f"{step}: an earlier call of this client never returned")
        fut: Future[Any] = Future()
        self._jobs.put((call, fut))
        try:
            return fut.result(timeout=deadline)
        except FutureTimeout:
            self.stuck = True
            raise Stalled(f"{step} did not return within {deadline:.0f} s") from None

    def close(self) -> None:
        if not self.stuck:
            self._jobs.put(None)


class StreamLoop:
    """Runs `handler` over `topics` until `stop` is set; see the module docstring.

    The transaction stays open across polls and is committed when `commit.CommitPolicy` says so
    (at once after an idle spell, else at most one commit per SWITCHBOARD_COMMIT_INTERVAL_MS, or at
    SWITCHBOARD_BATCH_SIZE inputs). A handler with begin_batch()/end_batch() gets them per
    transaction. Before partitions are revoked the open transaction is committed (as Kafka Streams
    does), so whatever this instance processed is committed under its own group generation.

    Recovery without a restart: every transactional call runs with a deadline. A call that overruns
    it (librdkafka blocked), partitions lost, or a transaction that keeps failing make the loop
    rebuild itself in the process: the open transaction is given up (the new producer, same
    transactional id, fences the old one and aborts it), the handler forgets what it did not commit
    (`on_revoke` of every partition, then `on_reset`), a new consumer rejoins the group, and
    `on_assign` reloads the state from the topics, as after a crash. The stall watchdog (process
    exit 3) stays as the last resort, for a loop blocked where no deadline reaches.
    """

    # transactional calls: librdkafka's own timeout, and how long the loop waits for the call to return
    CALL_TIMEOUT = 10.0
    CALL_GRACE = 5.0
    # a transactional step retried on retriable errors for this long before the transaction is aborted
    STEP_DEADLINE = 60.0

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
        on_reset: Callable[[], None] | None = None,
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
        self._on_reset = on_reset
        self.clock = clock
        # Held while handling, so readers (gRPC) see state between polls only.
        self.lock = lock or threading.Lock()
        self.assigned = threading.Event()
        self.eos = settings.kafka.exactly_once
        client_id = f"{settings.service}-{settings.instance_id}"
        self._client_id = client_id
        self.transactional_id = (
            f"{settings.kafka.topic_prefix}switchboard-{settings.service}-{settings.instance_id}" if self.eos else None
        )
        self.policy = CommitPolicy(
            interval=env_float("SWITCHBOARD_COMMIT_INTERVAL_MS", 20.0, minimum=0.0) / 1000.0,
            max_inputs=settings.batch_size)
        self._batched = hasattr(handler, "begin_batch") and hasattr(handler, "end_batch")
        self.consumer: Consumer
        self.producer: Producer
        self._worker: _Worker
        self._generation = 0
        self._new_clients()
        # The open transaction: outputs produced into it (kept to produce again if it is aborted and
        # retried), the next offset of every input partition, when its first input was polled.
        self._open = False
        self._outputs: list[Output] = []
        self._offsets: dict[tuple[str, int], int] = {}
        self._inputs: list[tuple[str, int]] = []  # (topic, CreateTime ms) of each input, for latency
        self._opened_at = 0.0
        self._delivery_errors: list[str] = []
        self._last_tick = 0.0
        self._lost = False
        self._subscribed: Consumer | None = None  # the consumer whose rebalance callbacks count
        self._txn_member = ""  # the group member id of the last send_offsets (see _recover)
        # Recoveries in the last hour: past SWITCHBOARD_MAX_RECOVERIES_PER_HOUR the loop gives up and
        # the process exits non-zero (something is wrong that a rebuild does not fix).
        self._recoveries: list[float] = []
        self.max_recoveries = int(env_float("SWITCHBOARD_MAX_RECOVERIES_PER_HOUR", 20, minimum=1))
        self._abandoned: list[tuple[Consumer | None, Producer | None]] = []  # clients blocked in a call
        # Last resort: a commit or recovery phase that makes no progress this long ends the process
        # (exit 3) so the orchestrator restarts it.
        self.stall_exit_seconds = env_float("SWITCHBOARD_STALL_EXIT_SECONDS", 150.0, minimum=1.0)
        self._busy_since: float | None = None
        # Consumer lag (committed vs end offsets) polled in the background; 0 turns it off.
        self.lag_poll_seconds = env_float("SWITCHBOARD_LAG_POLL_SECONDS", 10.0, minimum=0.0)
        self._lag_poller: metrics.ConsumerLagPoller | None = None
        self._lag_consumer: Consumer | None = None
        # The loop's partitions as its rebalance callbacks report them: the lag poller reads this
        # instead of calling the loop's consumer from its own thread.
        self._assignment: dict[tuple[str, int], TopicPartition] = {}
        # Export the error counters at 0 from the start, so rates and alerts see a series.
        metrics.PROCESSING_ERRORS.labels(self.service)
        metrics.LAG_POLL_ERRORS.labels(self.service)
        for reason in RECOVERY_REASONS:
            metrics.LOOP_RECOVERIES.labels(self.service, reason)

    # -- clients -----------------------------------------------------------------------------
    def _new_clients(self) -> None:
        self._generation += 1
        bridge = kafka_logger(self.log)
        client_id = self._client_id if self._generation == 1 else f"{self._client_id}-g{self._generation}"
        self.consumer = Consumer({**consumer_config(self.settings.kafka, self.settings.group_id, client_id),
                                  "logger": bridge})
        self.producer = Producer({**producer_config(self.settings.kafka, client_id, self.transactional_id),
                                  "logger": bridge})
        self._worker = _Worker(f"kafka-calls-{self._generation}")

    def _call(self, step: str, call: Callable[[], Any], timeout: float | None = None) -> Any:
        return self._worker.call(step, call, (timeout or self.CALL_TIMEOUT) + self.CALL_GRACE)

    def _init_producer(self, stop: threading.Event) -> None:
        """init_transactions, retried while the broker is away (it fences a previous producer of the
        same transactional id and aborts its open transaction)."""
        if not self.eos:
            return
        while True:
            self._busy()
            try:
                self._call("init_transactions", lambda: self.producer.init_transactions(30), 30)
                return
            except KafkaException as exc:
                err = exc.args[0]
                if not err.retriable() or stop.is_set():
                    raise
                self.log.warning("transaction_retry", step="init_transactions", error=str(err))
                time.sleep(0.5)

    def _subscribe(self) -> None:
        self._lost = False
        self._subscribed = self.consumer
        self.consumer.subscribe(self.topics, on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._partitions_lost)

    # -- rebalance ---------------------------------------------------------------------------
    def _stale(self, consumer: Consumer, event: str) -> bool:
        """A callback of a consumer the loop has given up (closed during a recovery): its partitions
        and state were dropped already, and acting on it would disturb the new one (a late on_lost
        once made the loop recover a second time, 13 s more, right after the first)."""
        if consumer is self._subscribed:
            return False
        self.log.info("stale_rebalance_callback", callback=event)
        return True

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._stale(consumer, "assign"):
            return
        self.log.info("partitions_assigned", partitions=[f"{p.topic}[{p.partition}]" for p in partitions])
        self._assignment.update({(p.topic, p.partition): TopicPartition(p.topic, p.partition) for p in partitions})
        if self._on_assign:
            with self.lock:
                self._on_assign(partitions)
        self.assigned.set()

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._stale(consumer, "revoke"):
            return
        self.log.info("partitions_revoked", partitions=[f"{p.topic}[{p.partition}]" for p in partitions])
        # What was processed from these partitions is committed before they go (still our generation).
        if self._open and not self._lost:
            self._commit()
        self._drop(partitions)

    def _partitions_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group moved on without us (session or poll interval exceeded): the open transaction can
        # no longer commit these partitions' offsets. Recover after poll() returns.
        if self._stale(consumer, "lost"):
            return
        self.log.warning("partitions_lost", partitions=[f"{p.topic}[{p.partition}]" for p in partitions])
        self._lost = True
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        for p in partitions:
            self._assignment.pop((p.topic, p.partition), None)
        if not self._assignment:
            self.assigned.clear()
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

    def _begin(self) -> None:
        """Opens the transaction (the handler's batch with it); called under the lock."""
        if self.eos:
            try:
                self.producer.begin_transaction()
            except KafkaException as exc:  # the producer is in an error state: start over
                raise Recover("transaction_failed", str(exc.args[0])) from None
        if self._batched:
            self.handler.begin_batch()  # type: ignore[attr-defined]
        self._open = True
        self._opened_at = time.perf_counter()

    def _produce(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        self._outputs.extend(outputs)
        produce_all(self.producer, outputs, None if self.eos else self._on_delivery)

    def run_once(self, timeout: float = 0.2) -> int:
        """Poll what has arrived, process it into the open transaction, commit when due.
        Returns the number of messages consumed."""
        now = self.clock()
        wait = self.policy.wait(time.monotonic(), len(self._inputs), bool(self._outputs))
        if wait is not None:
            timeout = min(timeout, wait)
        if self.tick is not None:
            timeout = min(timeout, max(0.0, self._last_tick + self.tick_interval - now))
        # Wait for the first message only, then take what has already arrived: consume(n, timeout)
        # would wait the whole timeout unless n messages came.
        first = self.consumer.poll(timeout)
        if self._lost:
            raise Recover("partitions_lost")
        msgs = [] if first is None else [first]
        if first is not None and self.settings.batch_size > 1:
            msgs.extend(self.consumer.consume(self.settings.batch_size - 1, timeout=0))
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
        now = self.clock()
        tick_due = self.tick is not None and now - self._last_tick >= self.tick_interval
        if good or tick_due:
            with self.lock:
                if not self._open:
                    self._begin()
                for m in good:
                    topic, partition, offset = str(m.topic()), int(m.partition() or 0), int(m.offset() or 0)
                    metrics.child(metrics.EVENTS_CONSUMED, self.service, topic).inc()
                    self._produce(self._handle(m))
                    self._offsets[(topic, partition)] = offset + 1
                    kind, ts = m.timestamp()
                    self._inputs.append((topic, ts if kind != TIMESTAMP_NOT_AVAILABLE else 0))
                if tick_due:
                    self._last_tick = now
                    assert self.tick is not None
                    self._produce(self.tick(now))
        if self._open and self.policy.due(time.monotonic(), len(self._inputs), bool(self._outputs)):
            self._commit()
        elif self._open and not self._inputs and not self._outputs and not self._batched:
            self._close_empty()
        return len(good)

    def _close_empty(self) -> None:
        """A tick opened the transaction and produced nothing: end it without a round trip."""
        if self.eos:
            self._call("abort", lambda: self.producer.abort_transaction(self.CALL_TIMEOUT))
        self._reset_txn()

    def _reset_txn(self) -> None:
        self._open = False
        self._outputs = []
        self._offsets = {}
        self._inputs = []

    # -- commit ------------------------------------------------------------------------------
    def _commit(self) -> None:
        """Commits the open transaction: its outputs, the handler's end-of-batch records, the input
        offsets. A transaction the broker aborts is retried with the same outputs (the in-memory
        state already holds their effects); one that keeps failing makes the loop recover."""
        if self._batched:
            with self.lock:
                self._produce(self.handler.end_batch())  # type: ignore[attr-defined]
        if not self._outputs and not self._offsets:
            if self.eos:
                self._call("abort", lambda: self.producer.abort_transaction(self.CALL_TIMEOUT))
            self._reset_txn()
            return
        self._busy()
        started = time.perf_counter()
        try:
            if self.eos:
                self._commit_transaction()
            else:
                self._commit_at_least_once()
        finally:
            self._busy_since = None
        done = time.perf_counter()
        metrics.child(metrics.COMMIT_SECONDS, self.service).observe(done - started)
        self.policy.committed(time.monotonic())
        for topic, n in collections.Counter(out.topic for out in self._outputs).items():
            metrics.child(metrics.EVENTS_PRODUCED, self.service, topic).inc(n)
        if self._inputs:
            metrics.child(metrics.PROCESSING_SECONDS, self.service).observe(done - self._opened_at)
            metrics.child(metrics.TRANSACTION_INPUTS, self.service).observe(len(self._inputs))
            done_ms = time.time() * 1000.0
            for topic, ts in self._inputs:
                if ts > 0:
                    metrics.child(metrics.EVENT_LATENCY_SECONDS, self.service, topic).observe(
                        max(0.0, done_ms - ts) / 1000.0)
        self._reset_txn()

    def _offset_list(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]

    def _commit_at_least_once(self) -> None:
        remaining = self.producer.flush(60)
        if remaining or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors[:3], []
            # Do not commit: the batch will be consumed again after restart (at-least-once).
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"outputs not acknowledged: {errors}"))
        if self._offsets:
            self.consumer.commit(offsets=self._offset_list(), asynchronous=False)

    def _commit_transaction(self) -> None:
        for attempt in range(1, 6):
            try:
                if attempt > 1:
                    self.producer.begin_transaction()
                    produce_all(self.producer, self._outputs)
                if self._offsets:
                    offsets = self._offset_list()
                    group = self.consumer.consumer_group_metadata()
                    # whose TxnOffsetCommit this is: a recovery waits for that member to leave the group
                    self._txn_member = self.consumer.memberid() or self._txn_member
                    self._retry_step("send_offsets", functools.partial(
                        self.producer.send_offsets_to_transaction, offsets, group, self.CALL_TIMEOUT))
                self._retry_step("commit", lambda: self.producer.commit_transaction(self.CALL_TIMEOUT))
                metrics.child(metrics.TRANSACTIONS, self.service, "committed").inc()
                return
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal():
                    metrics.TRANSACTIONS.labels(self.service, "fatal").inc()
                    # fenced by another instance with our transactional id, or a producer the broker
                    # no longer accepts: this one can do nothing more
                    raise Recover("producer_fatal", str(err)) from None
                if err.txn_requires_abort() or err.retriable():
                    metrics.TRANSACTIONS.labels(self.service, "aborted").inc()
                    self.log.warning("transaction_aborted", attempt=attempt, error=str(err))
                    self._retry_step("abort", lambda: self.producer.abort_transaction(self.CALL_TIMEOUT))
                    time.sleep(min(0.1 * attempt, 1.0))
                    continue
                metrics.TRANSACTIONS.labels(self.service, "fatal").inc()
                raise Recover("transaction_failed", str(err)) from None
        raise Recover("transaction_failed", "aborted 5 times in a row")

    def _retry_step(self, step: str, call: Callable[[], object]) -> None:
        """One transactional call, repeated while it fails with a retriable error (broker restarting,
        coordinator moving). Never skips ahead: committing after a failed send_offsets would commit
        the outputs without the input offsets, and the batch would be processed twice. A call that
        does not return at all raises Stalled."""
        deadline = time.monotonic() + self.STEP_DEADLINE
        while True:
            self._busy()
            try:
                self._call(step, call)
                return
            except KafkaException as exc:
                err = exc.args[0]
                if not err.retriable() or err.txn_requires_abort() or time.monotonic() > deadline:
                    raise
                self.log.warning("transaction_retry", step=step, error=str(err))
                time.sleep(0.2)

    def _busy(self) -> None:
        self._busy_since = time.monotonic()

    # -- recovery ----------------------------------------------------------------------------
    def _recover(self, reason: str, detail: str, stop: threading.Event) -> None:
        """Gives up the clients and everything not committed, then joins again as after a restart."""
        now = time.monotonic()
        self._recoveries = [t for t in self._recoveries if now - t < 3600] + [now]
        metrics.LOOP_RECOVERIES.labels(self.service, reason).inc()
        self.log.warning("loop_recovering", reason=reason, detail=detail[:300], generation=self._generation,
                         recoveries_last_hour=len(self._recoveries))
        if len(self._recoveries) > self.max_recoveries:
            raise RuntimeError(f"{len(self._recoveries)} recoveries within an hour (last: {reason}); giving up")
        self._busy()
        started = time.monotonic()
        self.assigned.clear()
        # Forget what was not committed: the handler drops the state of every partition it owned and
        # whatever else it keeps (on_reset); on_assign will load it back from the topics.
        owned = list(self._assignment.values())
        self._assignment.clear()
        with self.lock:
            if owned and self._on_revoke:
                self._on_revoke(owned)
        self._reset_txn()
        self._subscribed = None  # from now on, the old consumer's callbacks are ignored (_stale)
        old_consumer, old_producer, old_worker = self.consumer, self.producer, self._worker
        members = {self._txn_member}
        try:
            members.add(old_consumer.memberid() or "")
        except Exception as exc:  # noqa: BLE001 (a closed or broken consumer: its member id is the one above)
            self.log.debug("member_id_unknown", error=type(exc).__name__)
        members.discard("")
        self._txn_member = ""
        # Leave the group now (on a worker of its own: the loop's worker may be the one blocked).
        closer = _Worker(f"kafka-close-{self._generation}")
        consumer_closed = False
        try:
            closer.call("consumer_close", old_consumer.close, 10.0)
            consumer_closed = True
        except Stalled:
            pass
        except Exception as exc:  # noqa: BLE001 (a broken client: abandoned below)
            self.log.warning("consumer_close_failed", error=type(exc).__name__, detail=str(exc)[:200])
            consumer_closed = True
        closer.close()
        old_worker.close()
        abandoned = old_worker.stuck or not consumer_closed
        if abandoned:
            # Blocked inside librdkafka: kept referenced, never destroyed under a running call. The
            # recovery cap bounds the leak.
            self._abandoned.append((None if consumer_closed else old_consumer, old_producer))
        del old_producer, old_consumer
        # New clients now (not started): an old producer that is not blocked is destroyed here, on
        # the loop thread, as the previous references go. Kept alive instead, one whose timed-out
        # call was never resumed hit an assertion inside librdkafka once the broker came back
        # (rd_kafka_enq_once_del_source_return, SIGABRT); destroyed on another thread after a
        # purge(), the same.
        self._new_clients()
        # Fence the old producer only once its group member is gone. A blocked producer may still
        # send its TxnOffsetCommit when the broker comes back: while the old member is in the group
        # the coordinator accepts it, and if that happens after the new producer aborted the old
        # transaction, those offsets stay pending for ever (the partition reads UNSTABLE_OFFSET_COMMIT
        # and nobody consumes it; seen in the broker-restart test). Once the member is gone, it is
        # refused (UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION); before, the abort clears it.
        # A producer destroyed above sends nothing more: no wait then (partitions lost, a failed
        # transaction), which saved the session timeout, 12 s, on most recoveries of a broker restart.
        if members and abandoned:
            self._wait_member_gone(members, stop)
        while True:
            try:
                self._init_producer(stop)
                break
            except Stalled:  # the new producer blocked too: another one
                self._abandoned.append((None, self.producer))
                self._worker.close()
                self._new_clients()
        if self._on_reset:
            with self.lock:
                self._on_reset()
        self._subscribe()
        self._busy_since = None
        self.log.info("loop_recovered", reason=reason, generation=self._generation,
                      seconds=round(time.monotonic() - started, 2), abandoned_clients=len(self._abandoned))

    def _wait_member_gone(self, members: set[str], stop: threading.Event) -> None:
        """Until the old group member can no longer commit: the broker is reachable again and the
        group's session timeout has passed since (the member's LeaveGroup may not have reached it).
        Asking the group itself (AdminClient.describe_consumer_groups) while the broker was away hit
        an assertion inside librdkafka (rd_kafka_enq_once_del_source_return, SIGABRT); a metadata
        request does not go through the coordinator code."""
        started = time.monotonic()
        while not stop.is_set():
            self._busy()
            try:
                self.producer.list_topics(timeout=5)  # a metadata request: returns within its timeout
                break
            except KafkaException:
                time.sleep(0.5)
        session = SESSION_TIMEOUT_MS / 1000.0 + 2.0
        reachable = time.monotonic()
        while not stop.is_set() and time.monotonic() - reachable < session:
            self._busy()
            time.sleep(0.5)
        self.log.info("old_member_expired", members=len(members), seconds=round(time.monotonic() - started, 1))

    def _watchdog(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            since = self._busy_since
            if since is not None and time.monotonic() - since > self.stall_exit_seconds:
                self.log.error("loop_stalled", seconds=round(time.monotonic() - since),
                               detail="the loop is blocked; exiting so that the service is restarted")
                os._exit(3)

    def run(self, stop: threading.Event) -> None:
        while True:
            try:
                self._init_producer(stop)
                break
            except Stalled:  # blocked in librdkafka: a new producer (same transactional id)
                self._abandoned.append((None, self.producer))
                self._worker.close()
                self._new_clients()
        self._subscribe()
        self.log.info("loop_started", topics=self.topics, group=self.settings.group_id,
                      exactly_once=self.eos, commit_interval_ms=round(self.policy.interval * 1000, 1),
                      max_inputs=self.policy.max_inputs)
        threading.Thread(target=self._watchdog, args=(stop,), name="commit-watchdog", daemon=True).start()
        if self.lag_poll_seconds > 0:
            # Its own client (same group id, never subscribed, so never a group member), and the
            # assignment from our rebalance callbacks: the loop's consumer is used by the loop thread
            # only.
            self._lag_consumer = Consumer({
                **consumer_config(self.settings.kafka, self.settings.group_id, f"{self._client_id}-lag"),
                "logger": kafka_logger(self.log)})
            self._lag_poller = metrics.ConsumerLagPoller(
                self._lag_consumer, self.service, self.lag_poll_seconds, log=self.log,
                assignment=lambda: list(self._assignment.values())).start()
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                except Recover as exc:
                    self._recover(exc.reason, exc.detail, stop)
                except Stalled as exc:
                    self._recover("stalled", str(exc), stop)
            if self._open:
                try:
                    self._commit()  # what was processed before SIGTERM
                except (Recover, Stalled) as exc:
                    self.log.warning("final_commit_failed", detail=str(exc)[:300])
        finally:
            if self._lag_poller is not None:  # before close: it uses the consumer
                self._lag_poller.stop()
            if self._lag_consumer is not None:
                self._lag_consumer.close()
            if not self._worker.stuck:
                # leave the group so partitions move now
                try:
                    self._call("consumer_close", self.consumer.close, 10.0)
                    self._call("producer_flush", lambda: self.producer.flush(30), 30.0)
                except Stalled:
                    self.log.warning("close_stalled")
            self._worker.close()
            self.log.info("loop_stopped", generation=self._generation)
