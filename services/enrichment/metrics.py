"""Enrichment's instruments. Label values come from configuration (tags, intents, departments) or
fixed sets, never from the contact's content."""

from prometheus_client import Counter, Gauge

ENRICHED = Counter(
    "switchboard_enrichment_contacts_total", "Contact events enriched, by whether the customer was known",
    ["tenant", "channel", "known_customer"],
)
PROFILES = Gauge("switchboard_enrichment_profiles", "Customer profiles held in the profile table")
HISTORY = Gauge("switchboard_enrichment_history_customers", "Customers with recent contacts held in memory")
TAGS = Counter(
    "switchboard_enrichment_tags_total",
    "Arrived contacts by tag given (vip, high_value, repeat, repeat_issue, legacy, new, chronic:<id>, ...)",
    ["tenant", "tag"],
)
INTENTS = Counter(
    "switchboard_enrichment_intents_total", "Arrived contacts classified, by intent and department",
    ["tenant", "intent", "department"],
)
LANGUAGE = Counter(
    "switchboard_enrichment_language_total", "Arrived contacts by where the language came from "
    "(ivr, profile, detected, default, none)", ["tenant", "source"],
)
RULE_RELOADS = Counter(
    "switchboard_enrichment_rules_reloads_total", "Rules file reloads by outcome (ok, failed)", ["outcome"],
)
