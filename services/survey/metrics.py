"""Survey's instruments."""

from prometheus_client import Counter

REQUESTED = Counter(
    "switchboard_survey_requests_total", "Survey requests sent, by survey channel",
    ["tenant", "queue", "channel"],
)
SKIPPED = Counter(
    "switchboard_survey_skipped_total", "Ended contacts not surveyed, by reason", ["tenant", "reason"],
)
