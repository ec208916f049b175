"""Agent desktop events as JSON lines ↔ the protobuf `AgentEvent` on agents.events.v1.

The JSON form (used by `switchboard publish` and the simulator):

    {"agent_event": "login", "tenant_id": "acme", "agent_id": "a-1",
     "skills": {"support": 3}, "languages": ["en", "es"], "capacity": {"voice": 1, "chat": 3},
     "queues": []}
    {"agent_event": "ready", "tenant_id": "acme", "agent_id": "a-1"}
    {"agent_event": "not_ready", "tenant_id": "acme", "agent_id": "a-1", "reason": "break"}
    {"agent_event": "offer_accepted", "tenant_id": "acme", "agent_id": "a-1", "contact_id": "c-1"}

Kinds: login, ready, not_ready, logout, wrap_up_done, offer_accepted, offer_rejected. Optional on
every kind: `event_id` (default: a new UUID), `occurred_at` (RFC 3339 with a zone, or epoch
seconds; default: now), `source`. A field that does not apply to the kind is an error, so a typo
never goes unnoticed. Error messages name the field, never echo personal data.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.common.channels import CHANNELS
from services.common.codec import new_envelope
from switchboard.v1 import agent_pb2

# Fields each kind takes, beyond the common ones.
KINDS: dict[str, frozenset[str]] = {
    "login": frozenset({"skills", "languages", "capacity", "queues"}),
    "ready": frozenset(),
    "not_ready": frozenset({"reason"}),
    "logout": frozenset(),
    "wrap_up_done": frozenset(),
    "offer_accepted": frozenset({"contact_id"}),
    "offer_rejected": frozenset({"contact_id"}),
}
COMMON_FIELDS = frozenset({"agent_event", "tenant_id", "agent_id", "event_id", "occurred_at", "source"})
DEFAULT_SOURCE = "switchboard-cli"
MIN_LEVEL, MAX_LEVEL = 1, 5


def agent_event(
    kind: str,
    tenant_id: str,
    agent_id: str,
    *,
    occurred_at: float | None = None,
    event_id: str | None = None,
    source: str = DEFAULT_SOURCE,
    skills: Mapping[str, int] | None = None,
    languages: Sequence[str] = (),
    capacity: Mapping[str, int] | None = None,
    queues: Sequence[str] = (),
    reason: str = "",
    contact_id: str = "",
) -> agent_pb2.AgentEvent:
    """Builds an AgentEvent from already valid values (the simulator's path; JSON input goes
    through `agent_event_from_json`, which checks everything first)."""
    if kind not in KINDS:
        raise ValueError(f"agent_event {kind!r} is not one of {', '.join(KINDS)}")
    ev = agent_pb2.AgentEvent(
        envelope=new_envelope(tenant_id, time.time() if occurred_at is None else occurred_at, source,
                              event_id=event_id),
        agent_id=agent_id,
    )
    if kind == "login":
        login = ev.login
        login.SetInParent()
        for name, level in (skills or {}).items():
            login.skills.add(name=name, level=level)
        login.languages.extend(languages)
        for channel, n in (capacity or {}).items():
            login.capacity.add(channel=CHANNELS[channel], max=n)
        login.queues.extend(queues)
    elif kind == "ready":
        ev.ready.SetInParent()
    elif kind == "not_ready":
        ev.not_ready.reason = reason
        ev.not_ready.SetInParent()
    elif kind == "logout":
        ev.logout.SetInParent()
    elif kind == "wrap_up_done":
        ev.wrap_up_done.SetInParent()
    elif kind == "offer_accepted":
        ev.offer_accepted.contact_id = contact_id
    else:  # offer_rejected
        ev.offer_rejected.contact_id = contact_id
    return ev


def _required_str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None or value == "":
        raise ValueError(f"{name} is required")
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _optional_str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _str_list(obj: Mapping[str, Any], name: str) -> list[str]:
    value = obj.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name} must be a list of non-empty strings")
    return list(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _skills(obj: Mapping[str, Any]) -> dict[str, int]:
    value = obj.get("skills", {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError('skills must be an object of skill name -> level, e.g. {"support": 3}')
    for name, level in value.items():
        if not name:
            raise ValueError("skills: a skill name is empty")
        if not _count(level) or not MIN_LEVEL <= level <= MAX_LEVEL:
            raise ValueError(f"skills.{name}: level must be an integer {MIN_LEVEL}-{MAX_LEVEL}, "
                             f"got {level!r}")
    return dict(value)


def _capacity(obj: Mapping[str, Any]) -> dict[str, int]:
    value = obj.get("capacity", {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError('capacity must be an object of channel -> count, e.g. {"voice": 1, "chat": 3}')
    for channel, n in value.items():
        if channel not in CHANNELS:
            raise ValueError(f"capacity: unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
        if not _count(n) or n < 0:
            raise ValueError(f"capacity.{channel} must be an integer >= 0, got {n!r}")
    return dict(value)


def _occurred_at(obj: Mapping[str, Any]) -> float | None:
    value = obj.get("occurred_at")
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("occurred_at must be RFC 3339 (e.g. 2026-11-23T10:00:00Z) or epoch seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("occurred_at is not RFC 3339 (e.g. 2026-11-23T10:00:00Z)") from None
        if parsed.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (e.g. a trailing Z)")
        return parsed.timestamp()
    raise ValueError("occurred_at must be RFC 3339 (e.g. 2026-11-23T10:00:00Z) or epoch seconds")


def agent_event_from_json(obj: Mapping[str, Any], *, source: str = DEFAULT_SOURCE) -> agent_pb2.AgentEvent:
    """Validates one JSON agent event and builds the AgentEvent; ValueError says what is wrong."""
    if not isinstance(obj, Mapping):
        raise ValueError("an agent event must be a JSON object")
    kind = obj.get("agent_event")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"agent_event is required (one of {', '.join(KINDS)})")
    if kind not in KINDS:
        raise ValueError(f"agent_event {kind!r} is unknown (one of {', '.join(KINDS)})")
    allowed = COMMON_FIELDS | KINDS[kind]
    extra = sorted(k for k in obj if k not in allowed)
    if extra:
        raise ValueError(f"field(s) {', '.join(extra)} do not apply to a {kind!r} agent event")
    tenant_id = _required_str(obj, "tenant_id")
    agent_id = _required_str(obj, "agent_id")
    event_id = _optional_str(obj, "event_id") or None
    occurred_at = _occurred_at(obj)
    src = _optional_str(obj, "source") or source
    if kind == "login":
        return agent_event(kind, tenant_id, agent_id, occurred_at=occurred_at, event_id=event_id, source=src,
                           skills=_skills(obj), languages=_str_list(obj, "languages"),
                           capacity=_capacity(obj), queues=_str_list(obj, "queues"))
    if kind == "not_ready":
        return agent_event(kind, tenant_id, agent_id, occurred_at=occurred_at, event_id=event_id, source=src,
                           reason=_optional_str(obj, "reason"))
    if kind in ("offer_accepted", "offer_rejected"):
        return agent_event(kind, tenant_id, agent_id, occurred_at=occurred_at, event_id=event_id, source=src,
                           contact_id=_required_str(obj, "contact_id"))
    return agent_event(kind, tenant_id, agent_id, occurred_at=occurred_at, event_id=event_id, source=src)
