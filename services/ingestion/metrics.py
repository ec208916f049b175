"""Ingestion's instruments (pipeline counters shared by all services are in common/metrics.py;
rejects on the Kafka path are `switchboard_dead_letters_total{service="ingestion",reason}`)."""

from prometheus_client import Counter, Gauge

ACCEPTED = Counter(
    "switchboard_ingestion_accepted_total", "Contact events accepted and normalized",
    ["tenant", "channel", "step"],
)
DUPLICATES = Counter(
    "switchboard_ingestion_duplicates_total", "Contact events dropped as duplicates of an earlier event_id",
    ["tenant"],
)
DEDUPE_IDS = Gauge("switchboard_ingestion_dedupe_ids", "Event ids remembered for duplicate detection")
API_EVENTS = Counter(
    "switchboard_ingest_api_events_total",
    "Events received by IngestService.Publish, by outcome (accepted, duplicate, rejected) and reject reason",
    ["tenant", "outcome", "reason"],
)
API_REQUESTS = Counter(
    "switchboard_ingest_api_requests_total", "IngestService.Publish calls by gRPC status code", ["code"],
)
