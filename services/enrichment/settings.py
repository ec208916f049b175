"""Enrichment's own settings, read from the environment once at start (ConfigError names the
variable and the reason). The shared ones (Kafka, HTTP, batch) are services/common/config.py's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.config import env_float, env_str


@dataclass(frozen=True)
class EnrichmentSettings:
    rules_file: str = ""  # "": the built-in rules
    rules_reload_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EnrichmentSettings:
        return cls(rules_file=env_str("ENRICHMENT_RULES_FILE", "", env=env),
                   rules_reload_seconds=env_float("ENRICHMENT_RULES_RELOAD_SECONDS", 5.0, minimum=0.0, env=env))
