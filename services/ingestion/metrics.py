"""Ingestion's instruments (pipeline counters shared by all services are in common/metrics.py)."""

from prometheus_client import Counter

ACCEPTED = Counter(
    "switchboard_ingestion_accepted_total", "Contact events accepted and normalized",
    ["tenant", "channel", "step"],
)
DUPLICATES = Counter(
    "switchboard_ingestion_duplicates_total", "Contact events dropped as duplicates of an earlier event_id",
    ["tenant"],
)
