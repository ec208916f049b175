"""How the stream loop survives a client that never returns (librdkafka blocked in a call:
confluentinc/librdkafka#5456, #5511), partitions lost or a transaction that keeps failing: it
rebuilds its clients and reloads its state in the process, as after a crash but without the exit;
the stall watchdog (exit 3) stays as the last resort."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaException

from services.common import metrics
from services.common.clients import SESSION_TIMEOUT_MS

if TYPE_CHECKING:
    from services.common.kafka import StreamLoop

# switchboard_loop_recoveries_total{reason}: why the loop rebuilt its clients in the process
RECOVERY_REASONS = ("stalled", "partitions_lost", "transaction_failed", "producer_fatal")


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


class Worker:
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


class Recovery:
    __slots__ = ()
    # StreamLoop's state that these methods change
    max_recoveries: int
    _recoveries: list[float]
    _txn_member: str
    _busy_since: float | None
    _subscribed: Consumer | None

    def _recover(self: StreamLoop, reason: str, detail: str, stop: threading.Event) -> None:
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
        closer = Worker(f"kafka-close-{self._generation}")
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

    def _wait_member_gone(self: StreamLoop, members: set[str], stop: threading.Event) -> None:
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

    def _watchdog(self: StreamLoop, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            since = self._busy_since
            if since is not None and time.monotonic() - since > self.stall_exit_seconds:
                self.log.error("loop_stalled", seconds=round(time.monotonic() - since),
                               detail="the loop is blocked; exiting so that the service is restarted")
                os._exit(3)
