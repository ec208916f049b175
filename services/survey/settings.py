"""Survey's own settings, read from the environment once at start (ConfigError names the variable
and the reason). The shared ones (Kafka, HTTP, batch) are services/common/config.py's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.config import env_bool, env_float, env_int, env_str


@dataclass(frozen=True)
class SurveySettings:
    grpc_port: int = 50053
    policy_file: str = ""  # "": the built-in policy for every tenant
    policy_reload_seconds: float = 5.0
    expiry_seconds: float = 72 * 3600  # the built-in policy's survey expiry
    survey_abandoned: bool = False  # the built-in policy: survey abandoned contacts too
    metrics_per_agent: bool = False
    response_grace_seconds: float = 300.0
    # How long an expired survey's marker (id, tenant, expiry, answered) is kept after expiry, so a
    # late response is dead-lettered as `expired` rather than `unknown_survey`.
    expired_retention_seconds: float = 2 * 86400
    clock_offset_seconds: float = 0.0  # testing and demos only: survey's now is shifted

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SurveySettings:
        return cls(
            grpc_port=env_int("SURVEY_GRPC_PORT", 50053, minimum=0, maximum=65535, env=env),
            policy_file=env_str("SURVEY_POLICY_FILE", "", env=env),
            policy_reload_seconds=env_float("SURVEY_POLICY_RELOAD_SECONDS", 5.0, minimum=0.0, env=env),
            expiry_seconds=env_float("SURVEY_EXPIRY_SECONDS", 72 * 3600, minimum=60, env=env),
            survey_abandoned=env_bool("SURVEY_ABANDONED", False, env=env),
            metrics_per_agent=env_bool("SURVEY_METRICS_PER_AGENT", False, env=env),
            response_grace_seconds=env_float("SURVEY_RESPONSE_GRACE_SECONDS", 300, minimum=0, env=env),
            expired_retention_seconds=env_float("SURVEY_EXPIRED_RETENTION_SECONDS", 2 * 86400, minimum=0, env=env),
            clock_offset_seconds=env_float("SURVEY_CLOCK_OFFSET_SECONDS", 0.0, env=env),
        )
