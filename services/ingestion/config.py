"""Ingestion settings from env vars (and the tenants file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.config import ConfigError, env_float, env_int, env_str
from services.ingestion.parse import Limits
from services.ingestion.tenants import Tenants, load_tenants_file, parse_tokens

MAX_WINDOW_SECONDS = 7 * 24 * 3600  # occurred_at older than 7 days is rejected anyway (and topic retention)


@dataclass(frozen=True)
class IngestionConfig:
    limits: Limits
    dedupe_window_seconds: float
    dedupe_max_entries: int
    tenants: Tenants = field(default_factory=Tenants)
    grpc_port: int = 50052
    grpc_max_batch: int = 500

    @classmethod
    def from_env(cls) -> IngestionConfig:
        listed = {t.strip() for t in env_str("SWITCHBOARD_TENANTS", "").split(",") if t.strip()}
        tenants_file = env_str("SWITCHBOARD_TENANTS_FILE", "")
        tenants = load_tenants_file(tenants_file) if tenants_file else Tenants()
        tokens = {**tenants.tokens, **parse_tokens(env_str("INGESTION_API_TOKENS", ""))}
        known = frozenset(tenants.known | listed)
        if known and set(tokens) - known:
            unknown = sorted(set(tokens) - known)
            raise ConfigError(f"INGESTION_API_TOKENS names tenants that are not configured: {unknown}")
        window = env_float("INGESTION_DEDUPE_WINDOW_SECONDS", 24 * 3600, minimum=0)
        if window > MAX_WINDOW_SECONDS:
            raise ConfigError(f"INGESTION_DEDUPE_WINDOW_SECONDS={window:g} is above the maximum {MAX_WINDOW_SECONDS} "
                              "(events older than 7 days are rejected, and ingestion.dedupe.v1 keeps 7 days)")
        return cls(
            limits=Limits(
                max_payload_bytes=env_int("INGESTION_MAX_PAYLOAD_BYTES", 64 * 1024, minimum=1024),
                max_text_chars=env_int("INGESTION_MAX_TEXT_CHARS", 32 * 1024, minimum=1),
                known_tenants=known,
            ),
            dedupe_window_seconds=window,
            dedupe_max_entries=env_int("INGESTION_DEDUPE_MAX_ENTRIES", 2_000_000, minimum=1),
            tenants=Tenants(known, tokens),
            grpc_port=env_int("INGESTION_GRPC_PORT", 50052, minimum=0, maximum=65535),
            grpc_max_batch=env_int("INGESTION_GRPC_MAX_BATCH", 500, minimum=1, maximum=10_000),
        )
