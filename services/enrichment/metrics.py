"""Enrichment's instruments."""

from prometheus_client import Counter, Gauge

ENRICHED = Counter(
    "switchboard_enrichment_contacts_total", "Contact events enriched, by whether the customer was known",
    ["tenant", "channel", "known_customer"],
)
PROFILES = Gauge("switchboard_enrichment_profiles", "Customer profiles held in the profile table")
