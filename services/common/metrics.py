"""Pipeline-health instruments every service shares (one definition, labelled by service).

Service-specific instruments live in each service's own metrics.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "switchboard_events_consumed_total", "Events read from a topic", ["service", "topic"]
)
EVENTS_PRODUCED = Counter(
    "switchboard_events_produced_total", "Events written to a topic (acknowledged)", ["service", "topic"]
)
DEAD_LETTERS = Counter(
    "switchboard_dead_letters_total", "Events sent to a dead-letter topic, by reason code", ["service", "reason"]
)
PROCESSING_SECONDS = Histogram(
    "switchboard_batch_processing_seconds",
    "Time from a transaction's first input being polled to its outputs and offsets being committed",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
TRANSACTIONS = Counter(
    "switchboard_kafka_transactions_total", "Kafka transactions by outcome", ["service", "outcome"]
)
COMMIT_SECONDS = Histogram(
    "switchboard_kafka_commit_seconds",
    "Time to commit one transaction (offsets and commit round trips; outputs and offsets when not transactional)",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
TRANSACTION_INPUTS = Histogram(
    "switchboard_kafka_transaction_inputs", "Input events committed by one transaction", ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)
LOOP_RECOVERIES = Counter(
    "switchboard_loop_recoveries_total",
    "Times the stream loop rebuilt its Kafka clients and reloaded its state in the process, by reason",
    ["service", "reason"],
)
PROCESSING_ERRORS = Counter(
    "switchboard_processing_errors_total", "Unexpected errors while handling an event", ["service"]
)
READY = Gauge("switchboard_ready", "1 when the service is ready to take work", ["service"])
LOOP_STALL_SECONDS = Gauge(
    "switchboard_loop_stall_seconds",
    "Seconds since the stream loop last went round (0 while it waits on Kafka in a call with a deadline, "
    "or loads state after an assignment: those have their own limits)",
    ["service"],
)

# Consumer lag of this instance's assigned partitions, from the broker: the partition's end offset
# (high watermark) minus the group's committed offset. Polled in the background (ConsumerLagPoller);
# summed over the instances of a service it is the group's lag. With transactional producers the
# commit markers occupy offsets, so an idle, fully consumed partition may show a lag of 1.
CONSUMER_LAG = Gauge(
    "switchboard_kafka_consumer_lag_messages",
    "End offset minus the group's committed offset, per assigned partition (polled every few seconds)",
    ["service", "topic", "partition"],
)
LAG_POLL_ERRORS = Counter(
    "switchboard_kafka_consumer_lag_poll_errors_total", "Failed consumer-lag polls (broker unreachable, timeout)",
    ["service"],
)
# Per event: how long after the event was written to its topic (Kafka timestamp) this service
# finished handling it. Grows with consumer lag; includes the time spent in the batch.
EVENT_LATENCY_SECONDS = Histogram(
    "switchboard_event_latency_seconds",
    "Time from an event's Kafka timestamp to the end of its processing by this service",
    ["service", "topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)


_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: prometheus_client checks and converts the values and
    takes a lock on every call (~4 µs), and the services ask for the same few series per event.
    Only for series that are never removed (the cache would hand out a removed child); the cache
    holds one entry per series, as the registry does."""
    key = (metric, values)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*values)
    return found


def partition_lag(committed: int, low: int, high: int) -> int:
    """Messages behind on one partition. `committed` < 0 means the group has no committed offset
    yet: everything still retained (low..high) is behind (auto.offset.reset=earliest)."""
    start = committed if committed >= 0 else low
    return max(0, high - max(start, low))


class ConsumerLagPoller:
    """Every `interval` seconds, asks the broker for the committed offsets and high watermarks of
    the consumer's current assignment and sets CONSUMER_LAG; series of partitions no longer
    assigned are removed (another instance reports them now).

    `consumer` is a client of its own (the stream loop gives it one that never joins the group) and
    `assignment` says which partitions this instance owns (default: the consumer's assignment)."""

    def __init__(self, consumer: Any, service: str, interval: float = 10.0, timeout: float = 5.0,
                 log: Any = None, assignment: Any = None) -> None:
        self.consumer = consumer
        self.assignment = assignment or consumer.assignment
        self.service = service
        self.interval = interval
        self.timeout = timeout
        self.log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: set[tuple[str, str]] = set()
        # the last successful poll: (monotonic time, lag per partition); the liveness probe reads it
        self.last: tuple[float, dict[tuple[str, int], int]] | None = None

    def poll_once(self) -> dict[tuple[str, int], int]:
        assignment = self.assignment()
        lags: dict[tuple[str, int], int] = {}
        if assignment:
            for tp in self.consumer.committed(assignment, timeout=self.timeout):
                low, high = self.consumer.get_watermark_offsets(tp, timeout=self.timeout, cached=False)
                lags[(tp.topic, tp.partition)] = partition_lag(tp.offset, low, high)
        current = {(t, str(p)) for t, p in lags}
        for topic, partition in self._reported - current:
            try:
                CONSUMER_LAG.remove(self.service, topic, partition)
            except KeyError:
                pass
        for (topic, number), lag in lags.items():
            CONSUMER_LAG.labels(self.service, topic, str(number)).set(lag)
        self._reported = current
        self.last = (time.monotonic(), lags)
        return lags

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 (a failed poll must not stop the service)
                LAG_POLL_ERRORS.labels(self.service).inc()
                if self.log is not None:
                    self.log.warning("lag_poll_failed", error=type(exc).__name__, detail=str(exc)[:200])
                self._refresh_metadata()

    def _refresh_metadata(self) -> None:
        """This client consumes nothing, so librdkafka does not keep its metadata of the polled
        topics current: after a leader moved (a broker roll) it answered _UNKNOWN_PARTITION for
        minutes. A metadata request per topic brings it up to date (RELIABILITY.md finding 13)."""
        try:
            for topic in sorted({tp.topic for tp in self.assignment() or ()}):
                self.consumer.list_topics(topic, timeout=5)
        except Exception as exc:  # noqa: BLE001 (the next poll reports whether it helped)
            if self.log is not None:
                self.log.warning("lag_metadata_refresh_failed", error=type(exc).__name__)

    def start(self) -> ConsumerLagPoller:
        self._thread = threading.Thread(target=self._run, name="lag-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for the thread (before the consumer is closed); drop this instance's series."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout * 3)
        for topic, partition in self._reported:
            try:
                CONSUMER_LAG.remove(self.service, topic, partition)
            except KeyError:
                pass
        self._reported = set()
