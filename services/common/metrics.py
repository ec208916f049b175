"""Pipeline-health instruments every service shares (one definition, labelled by service).

Service-specific instruments live in each service's own metrics.py.
"""

from __future__ import annotations

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
    "Time from polling a batch to its outputs and offsets being committed",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
TRANSACTIONS = Counter(
    "switchboard_kafka_transactions_total", "Kafka transactions by outcome", ["service", "outcome"]
)
PROCESSING_ERRORS = Counter(
    "switchboard_processing_errors_total", "Unexpected errors while handling an event", ["service"]
)
READY = Gauge("switchboard_ready", "1 when the service is ready to take work", ["service"])
