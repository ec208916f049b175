"""Ingestion settings from env vars."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import env_float, env_int, env_str
from services.ingestion.parse import Limits


@dataclass(frozen=True)
class IngestionConfig:
    limits: Limits
    dedupe_window_seconds: float
    dedupe_max_entries: int

    @classmethod
    def from_env(cls) -> IngestionConfig:
        tenants = env_str("SWITCHBOARD_TENANTS", "")
        return cls(
            limits=Limits(
                max_payload_bytes=env_int("INGESTION_MAX_PAYLOAD_BYTES", 64 * 1024, minimum=1024),
                max_text_chars=env_int("INGESTION_MAX_TEXT_CHARS", 32 * 1024, minimum=1),
                known_tenants=frozenset(t.strip() for t in tenants.split(",") if t.strip()),
            ),
            dedupe_window_seconds=env_float("INGESTION_DEDUPE_WINDOW_SECONDS", 24 * 3600, minimum=0),
            dedupe_max_entries=env_int("INGESTION_DEDUPE_MAX_ENTRIES", 2_000_000, minimum=1),
        )
