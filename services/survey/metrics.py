"""Survey's instruments. Counters only for scores (counts and sums): PromQL divides, over any window.

Labels never carry personal data. `channel` on requests is the survey channel (sms, email,
in_chat); on answers and responses it is the contact's channel (voice, chat, email, ...).
The per-agent families are only written when SURVEY_METRICS_PER_AGENT=true: one series per
agent × question × band, which grows with the workforce (cardinality).
"""

from prometheus_client import Counter, Gauge

REQUESTED = Counter(
    "switchboard_survey_requests_total", "Survey requests sent, by survey channel",
    ["tenant", "queue", "channel"],
)
SKIPPED = Counter(
    "switchboard_survey_skipped_total",
    "Ended contacts not surveyed (or waiting surveys dropped), by reason", ["tenant", "reason"],
)
DEFERRED = Counter(
    "switchboard_survey_deferred_total", "Surveys scheduled for later, by why (delay, quiet_hours)",
    ["tenant", "reason"],
)
PENDING = Gauge("switchboard_survey_pending", "Surveys waiting for their time (delay, quiet hours)")
OPEN = Gauge("switchboard_survey_open", "Sent surveys remembered for validating responses")
RESPONSES = Counter(
    "switchboard_survey_responses_total", "Valid survey responses, by contact channel",
    ["tenant", "queue", "channel"],
)
ANSWERS = Counter(
    "switchboard_survey_answers_total",
    "Scored answers by question (csat, nps, ces) and band (csat: satisfied 4-5 / neutral 3 / dissatisfied 1-2; "
    "nps: promoter 9-10 / passive 7-8 / detractor 0-6; ces: all)",
    ["tenant", "queue", "channel", "question", "band"],
)
SCORE_POINTS = Counter(
    "switchboard_survey_score_points_total", "Sum of the scores given, by question (mean = points / answers)",
    ["tenant", "queue", "channel", "question"],
)
AGENT_ANSWERS = Counter(
    "switchboard_survey_agent_answers_total", "Like switchboard_survey_answers_total, per agent (opt-in)",
    ["tenant", "agent", "question", "band"],
)
AGENT_SCORE_POINTS = Counter(
    "switchboard_survey_agent_score_points_total", "Like switchboard_survey_score_points_total, per agent (opt-in)",
    ["tenant", "agent", "question"],
)
FOLLOWUPS = Counter(
    "switchboard_survey_followups_total", "Follow-up contacts raised for detractors", ["tenant", "queue"],
)
