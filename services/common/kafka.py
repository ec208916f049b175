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

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

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
from services.common.clients import (  # noqa: F401 (re-exported: the loop module is the services' Kafka entry)
    SESSION_TIMEOUT_MS,
    TRANSIENT_METADATA_ERRORS,
    Handler,
    KafkaNotAuthorized,
    Output,
    consumer_config,
    make_producer,
    not_authorized,
    offsets_for_times,
    produce_all,
    producer_config,
    retry_transient,
    topic_refresher,
    topics_lacking,
)
from services.common.commit import CommitPolicy
from services.common.config import ServiceSettings, env_float
from services.common.dlq import Reject, dead_letter
from services.common.logging import JsonLogger, kafka_logger
from services.common.recovery import RECOVERY_REASONS, Recover, Recovery, Stalled, Worker
from services.common.transactions import Transactions


class StreamLoop(Transactions, Recovery):
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
        self._worker: Worker
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
        # Probes (see liveness() and readiness()).
        self.liveness_seconds = env_float("SWITCHBOARD_LIVENESS_SECONDS", 180.0, minimum=5.0)
        self.readiness_stall_seconds = env_float("SWITCHBOARD_READINESS_STALL_SECONDS", 30.0, minimum=1.0)
        self._progress_at = time.monotonic()  # the loop last went round (or was assigned partitions)
        self._committed_at = time.monotonic()  # the last commit (or assignment: input may wait from then)
        self._in_callback = False  # loading state for partitions just assigned (on_assign)
        metrics.LOOP_STALL_SECONDS.labels(self.service).set_function(lambda: self.stall_seconds())
        # Export the error counters at 0 from the start, so rates and alerts see a series.
        metrics.PROCESSING_ERRORS.labels(self.service)
        for outcome in ("committed", "aborted", "fatal"):
            metrics.TRANSACTIONS.labels(self.service, outcome)
        metrics.LAG_POLL_ERRORS.labels(self.service)
        for reason in RECOVERY_REASONS:
            metrics.LOOP_RECOVERIES.labels(self.service, reason)

    def _new_clients(self) -> None:
        self._generation += 1
        bridge = kafka_logger(self.log)
        client_id = self._client_id if self._generation == 1 else f"{self._client_id}-g{self._generation}"
        self.consumer = Consumer({**consumer_config(self.settings.kafka, self.settings.group_id, client_id),
                                  "logger": bridge})
        self.producer = Producer({**producer_config(self.settings.kafka, client_id, self.transactional_id),
                                  "logger": bridge})
        self._worker = Worker(f"kafka-calls-{self._generation}")

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
                self._busy_since = None  # done: an idle loop is not a stalled one
                return
            except KafkaException as exc:
                err = exc.args[0]
                self._raise_if_not_authorized(err)
                if not err.retriable() or stop.is_set():
                    raise
                self.log.warning("transaction_retry", step="init_transactions", error=str(err))
                time.sleep(0.5)

    def _subscribe(self) -> None:
        self._lost = False
        self._subscribed = self.consumer
        self.consumer.subscribe(self.topics, on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._partitions_lost)

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
            self._in_callback = True
            try:
                with self.lock:
                    self._on_assign(partitions)
            finally:
                self._in_callback = False
        self._progress_at = self._committed_at = time.monotonic()
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

    def _handle(self, msg: Message) -> Sequence[Output]:
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
                self._raise_if_not_authorized(err, m.topic())
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
        self._progress_at = time.monotonic()
        return len(good)

    # -- rights -------------------------------------------------------------------------------

    def _retry_step(self, step: str, call: Callable[[], object], until_conflict: bool = False) -> None:
        try:
            super()._retry_step(step, call, until_conflict)
        except KafkaException as exc:
            self._raise_if_not_authorized(exc.args[0])
            raise

    def _raise_if_not_authorized(self, err: KafkaError, topic: str | None = None) -> None:
        """An authorization failure is not retried (nor recovered from): the user lacks an ACL and
        only an operator can grant it. Raises KafkaNotAuthorized naming the resource: the group, the
        transactional id, or the topic (the broker is asked which of the loop's topics it lacks)."""
        code = err.code()
        if code == KafkaError.GROUP_AUTHORIZATION_FAILED:
            name: str | None = self.settings.group_id
        elif code == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            name = self.transactional_id
        elif code == KafkaError.TOPIC_AUTHORIZATION_FAILED and topic is None:
            wanted = {t: "READ" for t in self.topics}
            wanted.update({out.topic: "WRITE" for out in self._outputs})
            lacking = topics_lacking(self.settings.kafka, wanted)
            name = lacking[0][0] if lacking else "one of " + ", ".join(sorted(wanted))
            operation = lacking[0][1] if lacking else ""
        else:
            name, operation = topic, ""
        failure = not_authorized(err, name, operation if code == KafkaError.TOPIC_AUTHORIZATION_FAILED else "")
        if failure is not None:
            # Nothing of the open transaction is committed (closing must not try again: the revoke
            # callback commits an open one); the broker aborts it when the process is gone.
            self._reset_txn()
            raise failure

    # -- probes -------------------------------------------------------------------------------

    def stall_seconds(self, now: float | None = None) -> float:
        """How long the loop has not gone round, not counting a Kafka call with a deadline (the
        watchdog's, SWITCHBOARD_STALL_EXIT_SECONDS) or a state load after an assignment (its own
        timeout): a handler stuck on an event, or a blocked call nothing else watches."""
        if self._busy_since is not None or self._in_callback:
            return 0.0
        return max(0.0, (time.monotonic() if now is None else now) - self._progress_at)

    def _waiting_input(self, now: float) -> int:
        """Events waiting on this instance's partitions by the last lag poll, if it is recent (0 if
        not known: a broker that cannot be asked is not a reason to restart). A fully consumed
        partition shows a lag of 1 (the last transaction's commit marker)."""
        last = self._lag_poller.last if self._lag_poller is not None else None
        if last is None or now - last[0] > 3 * self.lag_poll_seconds:
            return 0
        return sum(lag for lag in last[1].values() if lag > 1)

    def liveness(self, now: float | None = None) -> str | None:
        """None while alive, else why not (/healthz answers 503 and the orchestrator restarts the
        process): the loop has not gone round for SWITCHBOARD_LIVENESS_SECONDS, or input has waited
        that long with nothing committed."""
        now = time.monotonic() if now is None else now
        stalled = self.stall_seconds(now)
        if stalled > self.liveness_seconds:
            return f"the stream loop has not gone round for {stalled:.0f} s"
        if self._in_callback or not self.assigned.is_set():
            return None
        waiting = self._waiting_input(now)
        idle = now - self._committed_at
        if waiting and idle > self.liveness_seconds:
            return f"{waiting} events wait and nothing was committed for {idle:.0f} s"
        return None

    def readiness(self, now: float | None = None) -> str | None:
        """None while ready, else why not: no partitions (yet, or while loading their state or
        recovering), a Kafka call waited on for SWITCHBOARD_READINESS_STALL_SECONDS (the broker is
        away or slow), or the loop not going round for that long."""
        now = time.monotonic() if now is None else now
        if not self.assigned.is_set():
            return "no partitions assigned (starting, rebalancing, loading state or recovering)"
        busy = self._busy_since
        if busy is not None and now - busy > self.readiness_stall_seconds:
            return f"waiting on Kafka for {now - busy:.0f} s"
        stalled = self.stall_seconds(now)
        if stalled > self.readiness_stall_seconds:
            return f"the stream loop has not gone round for {stalled:.0f} s"
        return None

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
