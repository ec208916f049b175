"""Routing's own settings, read from the environment once at start (ConfigError names the
variable and the reason). The shared ones (Kafka, HTTP, batch) are services/common/config.py's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.config import env_bool, env_float, env_int, env_str, renamed


@dataclass(frozen=True)
class RoutingSettings:
    grpc_port: int = 50051
    queues_file: str = ""  # "" : the built-in default queues
    queues_reload_seconds: float = 5.0  # 0: read at start only (SIGHUP still reloads)
    # Finished contacts remembered per tenant (to refuse a replayed event of an ended contact);
    # each costs ~560 B in this replica (the engine's entry + the routing.state.v1 copy).
    finished_memory: int = 100_000
    metrics_per_agent: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RoutingSettings:
        return cls(
            grpc_port=env_int(renamed("ROUTING_GRPC_PORT", "SWITCHBOARD_GRPC_PORT", env=env), 50051, minimum=0,
                              maximum=65535, env=env),
            queues_file=env_str("SWITCHBOARD_QUEUES_FILE", "", env=env),
            queues_reload_seconds=env_float("SWITCHBOARD_QUEUES_RELOAD_SECONDS", 5.0, minimum=0.0, env=env),
            finished_memory=env_int("ROUTING_FINISHED_MEMORY", 100_000, minimum=1, env=env),
            metrics_per_agent=env_bool("ROUTING_METRICS_PER_AGENT", False, env=env),
        )
