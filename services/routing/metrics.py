"""Routing's instruments: the contact-center KPIs as counters and histograms (PromQL derives the
ratios), plus agent and queue gauges collected from the engine at scrape time.

Service level for threshold T (DESIGN.md): answered within T ÷ (answered + abandoned after T):
  sum(rate(switchboard_contact_wait_seconds_bucket{outcome="answered",le="20"}[1h])) /
  (sum(rate(switchboard_contact_wait_seconds_count{outcome="answered"}[1h]))
   + sum(rate(switchboard_contact_wait_seconds_count{outcome="abandoned"}[1h]))
   - sum(rate(switchboard_contact_wait_seconds_bucket{outcome="abandoned",le="20"}[1h])))
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Bucket bounds at the service-level thresholds in use (5 s short abandon; 10/20/30/60 s SLs; email hours).
WAIT_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600, 14400, 86400)
HANDLE_BUCKETS = (30, 60, 120, 180, 300, 600, 900, 1800, 3600)

LABELS = ["tenant", "queue", "channel"]

OFFERED = Counter("switchboard_contacts_offered_total", "Contacts queued (offered to the queue)", LABELS)
ANSWERED = Counter("switchboard_contacts_answered_total", "Contacts assigned to and taken by an agent", LABELS)
ABANDONED = Counter("switchboard_contacts_abandoned_total", "Contacts abandoned while waiting (incl. short)", LABELS)
SHORT_ABANDONED = Counter(
    "switchboard_contacts_short_abandoned_total", "Abandoned within the queue's short-abandon threshold", LABELS
)
VOICEMAIL = Counter("switchboard_contacts_voicemail_total", "Contacts sent to voicemail", LABELS)
REJECTED = Counter("switchboard_contacts_rejected_total", "Contacts routing could not queue", LABELS + ["reason"])
CALLBACKS = Counter("switchboard_contacts_callback_scheduled_total",
                    "Waiting contacts turned into callbacks (they keep their place; not abandons)", LABELS)
CALLBACKS_ASSIGNED = Counter("switchboard_contacts_callback_assigned_total",
                             "Callbacks given to an agent (not counted as answered, nor in ASA or SL)", LABELS)
OFFLINE_MESSAGES = Counter("switchboard_contacts_offline_message_total",
                           "Contacts answered with an offline message (closed or past max wait)", LABELS)
OVERFLOWED = Counter("switchboard_contacts_overflowed_total",
                     "Contacts moved out of the queue by overflow; target is queue:<id> or site:<name> from the "
                     "queue config (bounded)", LABELS + ["target"])
TRANSFERRED = Counter("switchboard_contacts_transferred_total",
                      "Contacts transferred out of the queue to another one (an agent's leg, or moved while "
                      "waiting); the target queue counts them as offered again", LABELS + ["from_agent"])
ENDED = Counter("switchboard_contacts_ended_total", "Handled contacts that ended", LABELS)
WAIT = Histogram(
    "switchboard_contact_wait_seconds", "Queue wait of answered and abandoned contacts (IVR time excluded)",
    LABELS + ["outcome"], buckets=WAIT_BUCKETS,
)
IVR = Histogram("switchboard_contact_ivr_seconds", "Time in the IVR before queueing", LABELS, buckets=WAIT_BUCKETS)
HANDLE = Histogram(
    "switchboard_contact_handle_seconds", "Handle time (talk + hold + wrap-up) per handled contact", LABELS,
    buckets=HANDLE_BUCKETS,
)
TALK = Counter("switchboard_contact_talk_seconds_total", "Talk time of handled contacts", LABELS)
HOLD = Counter("switchboard_contact_hold_seconds_total", "Hold time of handled contacts", LABELS)
WRAP = Counter("switchboard_contact_wrap_seconds_total", "Wrap-up time of handled contacts", LABELS)

# Service level at each queue's own threshold T (queues.yaml service_level_seconds), counted like the
# engine: answered with wait <= T; abandoned (not short) with wait > T. SL = within / (answered + after).
ANSWERED_WITHIN_SL = Counter(
    "switchboard_contacts_answered_within_sl_total",
    "Answered contacts whose queue wait was within the queue's service-level threshold", LABELS,
)
ABANDONED_AFTER_SL = Counter(
    "switchboard_contacts_abandoned_after_sl_total",
    "Abandoned contacts (short abandons excluded) that waited longer than the queue's service-level threshold",
    LABELS,
)

# Per-agent handled count and handle time: only with ROUTING_METRICS_PER_AGENT=true. One series per
# agent x channel (x tenant), growing with the workforce and its turnover: a cardinality risk on
# large sites. Agent ids come from the workforce system (never names, numbers or addresses).
AGENT_LABELS = ["tenant", "agent", "channel"]
AGENT_HANDLED = Counter(
    "switchboard_agent_contacts_handled_total", "Handled contacts that ended, per agent (opt-in)", AGENT_LABELS,
)
AGENT_HANDLE_SECONDS = Counter(
    "switchboard_agent_handle_seconds_total", "Handle time (talk + hold + wrap-up) of ended contacts, per agent "
    "(opt-in; AHT = this / switchboard_agent_contacts_handled_total)", AGENT_LABELS,
)
_per_agent = [False]


def set_per_agent(enabled: bool) -> None:
    _per_agent[0] = enabled


def per_agent() -> bool:
    return _per_agent[0]
