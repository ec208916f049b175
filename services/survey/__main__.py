"""python -m services.survey — wires config, the stream loop and the HTTP server."""

from __future__ import annotations

from services.common import topics
from services.common.config import ConfigError, env_bool, env_float
from services.common.kafka import StreamLoop
from services.common.runtime import Runtime
from services.survey.handler import SurveyHandler
from services.survey.policy import SurveyPolicy


def main() -> int:
    rt = Runtime("survey", default_http_port=9104)
    try:
        policy = SurveyPolicy(
            expiry_seconds=env_float("SURVEY_EXPIRY_SECONDS", 72 * 3600, minimum=60),
            survey_abandoned=env_bool("SURVEY_ABANDONED", False),
        )
    except ConfigError as exc:
        rt.fail_config(exc)
    k = rt.settings.kafka
    handler = SurveyHandler(policy, k.topic(topics.SURVEYS_REQUESTS.name))
    loop = StreamLoop(rt.settings, [k.topic(topics.CONTACTS_LIFECYCLE.name)], handler, rt.log,
                      dlq_topic=k.topic(topics.CONTACTS_DLQ.name))
    return rt.run_loop(loop)


if __name__ == "__main__":
    raise SystemExit(main())
