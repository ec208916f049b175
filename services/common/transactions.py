"""The stream loop's transaction: opened with the first input, outputs produced into it as they are
made (and kept, to produce again if the broker aborts it), committed with the input offsets when
`commit.CommitPolicy` says so; each transactional call retried on its own, never skipping ahead.
Without transactions (at-least-once): outputs flushed and acknowledged, then the offsets committed."""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from services.common import metrics
from services.common.clients import Output, produce_all
from services.common.recovery import Recover
from services.common.tracing import TRACER

if TYPE_CHECKING:
    from services.common.kafka import StreamLoop


class Transactions:
    __slots__ = ()
    # StreamLoop's state that these methods change
    _open: bool
    _opened_at: float
    _outputs: list[Output]
    _offsets: dict[tuple[str, int], int]
    _inputs: list[tuple[str, int]]
    _delivery_errors: list[str]
    _busy_since: float | None
    _txn_member: str
    _committed_at: float

    def _on_delivery(self: StreamLoop, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err}")

    def _begin(self: StreamLoop) -> None:
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

    def _produce(self: StreamLoop, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        self._outputs.extend(outputs)
        produce_all(self.producer, outputs, None if self.eos else self._on_delivery)

    def _close_empty(self: StreamLoop) -> None:
        """A tick opened the transaction and produced nothing: end it without a round trip."""
        if self.eos:
            self._abort_or_recover(retry=False)
        self._reset_txn()

    def _abort_or_recover(self: StreamLoop, retry: bool = True) -> None:
        """Aborts the open transaction; one that cannot be aborted (the coordinator not answering
        within the step's deadline) makes the loop recover: its new producer, same transactional
        id, fences this one and the broker aborts the transaction. Escaping as a KafkaException it
        ended the process (a broker restart on a starved machine: the abort timed out for 60 s)."""
        abort = functools.partial(self.producer.abort_transaction, self.CALL_TIMEOUT)
        try:
            if retry:
                self._retry_step("abort", abort, until_conflict=True)
            else:
                self._call("abort", abort)
        except KafkaException as exc:
            raise Recover("transaction_failed", f"abort failed: {exc.args[0]}") from None

    def _reset_txn(self: StreamLoop) -> None:
        if TRACER.enabled:  # after a commit already ended; else the inputs will be handled again
            TRACER.discarded()
        self._open = False
        self._outputs = []
        self._offsets = {}
        self._inputs = []

    def _commit(self: StreamLoop) -> None:
        """Commits the open transaction: its outputs, the handler's end-of-batch records, the input
        offsets. A transaction the broker aborts is retried with the same outputs (the in-memory
        state already holds their effects); one that keeps failing makes the loop recover."""
        if self._batched:
            with self.lock:
                self._produce(self.handler.end_batch())  # type: ignore[attr-defined]
        if not self._outputs and not self._offsets:
            if self.eos:
                self._abort_or_recover(retry=False)
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
        if TRACER.enabled:
            TRACER.committed()
        self._committed_at = time.monotonic()
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

    def _offset_list(self: StreamLoop) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]

    def _commit_at_least_once(self: StreamLoop) -> None:
        remaining = self.producer.flush(60)
        if remaining or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors[:3], []
            # Do not commit: the batch will be consumed again after restart (at-least-once).
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"outputs not acknowledged: {errors}"))
        if self._offsets:
            self.consumer.commit(offsets=self._offset_list(), asynchronous=False)

    def _commit_transaction(self: StreamLoop) -> None:
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
                    self._abort_or_recover()
                    time.sleep(min(0.1 * attempt, 1.0))
                    continue
                metrics.TRANSACTIONS.labels(self.service, "fatal").inc()
                raise Recover("transaction_failed", str(err)) from None
        raise Recover("transaction_failed", "aborted 5 times in a row")

    def _retry_step(self: StreamLoop, step: str, call: Callable[[], object], until_conflict: bool = False) -> None:
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
                if until_conflict and err.code() == KafkaError._CONFLICT:
                    # an abort while librdkafka still holds a commit it timed out on ("retry call to
                    # resume"): it conflicts until that commit ends, which may be never; new clients
                    # end it at once (seen: 60 s of conflicts after a broker restart)
                    raise
                self.log.warning("transaction_retry", step=step, error=str(err))
                time.sleep(0.2)

    def _busy(self: StreamLoop) -> None:
        self._busy_since = time.monotonic()
