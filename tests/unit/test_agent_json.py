"""JSON agent events → AgentEvent protobuf (switchboard_dev/agent_json.py)."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.codec import ts_to_seconds
from switchboard.v1 import agent_pb2, contact_pb2
from switchboard_dev.agent_json import agent_event, agent_event_from_json

BASE = {"tenant_id": "acme", "agent_id": "a-1"}


def test_login_with_everything() -> None:
    ev = agent_event_from_json({
        "agent_event": "login", **BASE, "skills": {"support": 3, "billing": 1}, "languages": ["en", "es"],
        "capacity": {"voice": 1, "chat": 3, "email": 5}, "queues": ["support"],
        "event_id": "e-1", "occurred_at": "2026-11-23T10:00:00.250Z", "source": "desktop",
    })
    assert isinstance(ev, agent_pb2.AgentEvent)
    assert ev.WhichOneof("kind") == "login"
    assert ev.agent_id == "a-1"
    assert ev.envelope.tenant_id == "acme" and ev.envelope.event_id == "e-1"
    assert ev.envelope.source == "desktop" and ev.envelope.schema_version == 1
    assert ts_to_seconds(ev.envelope.occurred_at) == pytest.approx(1795428000.25)
    assert {(s.name, s.level) for s in ev.login.skills} == {("support", 3), ("billing", 1)}
    assert list(ev.login.languages) == ["en", "es"]
    assert {(c.channel, c.max) for c in ev.login.capacity} == {
        (contact_pb2.CHANNEL_VOICE, 1), (contact_pb2.CHANNEL_CHAT, 3), (contact_pb2.CHANNEL_EMAIL, 5)}
    assert list(ev.login.queues) == ["support"]
    # It survives the wire.
    assert agent_pb2.AgentEvent.FromString(ev.SerializeToString()) == ev


def test_login_minimal_gets_an_event_id_and_time() -> None:
    ev = agent_event_from_json({"agent_event": "login", **BASE})
    assert ev.WhichOneof("kind") == "login"
    assert ev.envelope.event_id and ev.envelope.HasField("occurred_at")
    assert ev.envelope.source == "switchboard-cli"
    assert len(ev.login.skills) == 0


@pytest.mark.parametrize("kind", ["ready", "logout", "wrap_up_done"])
def test_kinds_without_fields(kind: str) -> None:
    ev = agent_event_from_json({"agent_event": kind, **BASE})
    assert ev.WhichOneof("kind") == kind
    assert agent_pb2.AgentEvent.FromString(ev.SerializeToString()).WhichOneof("kind") == kind


def test_not_ready_with_and_without_reason() -> None:
    ev = agent_event_from_json({"agent_event": "not_ready", **BASE, "reason": "break"})
    assert ev.WhichOneof("kind") == "not_ready" and ev.not_ready.reason == "break"
    ev = agent_event_from_json({"agent_event": "not_ready", **BASE})
    assert ev.WhichOneof("kind") == "not_ready" and ev.not_ready.reason == ""


@pytest.mark.parametrize("kind", ["offer_accepted", "offer_rejected"])
def test_offer_responses(kind: str) -> None:
    ev = agent_event_from_json({"agent_event": kind, **BASE, "contact_id": "c-9"})
    assert ev.WhichOneof("kind") == kind
    assert getattr(ev, kind).contact_id == "c-9"


def test_epoch_occurred_at() -> None:
    ev = agent_event_from_json({"agent_event": "ready", **BASE, "occurred_at": 1795428000.5})
    assert ts_to_seconds(ev.envelope.occurred_at) == pytest.approx(1795428000.5)


def test_helper_builds_the_same_as_json() -> None:
    a = agent_event("login", "acme", "a-2", occurred_at=100.0, event_id="x", source="simulator",
                    skills={"sales": 2}, languages=["en"], capacity={"chat": 3})
    b = agent_event_from_json({"agent_event": "login", "tenant_id": "acme", "agent_id": "a-2",
                               "occurred_at": 100, "event_id": "x", "source": "simulator",
                               "skills": {"sales": 2}, "languages": ["en"], "capacity": {"chat": 3}})
    assert a == b
    assert agent_event("wrap_up_done", "acme", "a-2").WhichOneof("kind") == "wrap_up_done"
    with pytest.raises(ValueError, match="not one of"):
        agent_event("dance", "acme", "a-2")


@pytest.mark.parametrize(("obj", "message"), [
    ({**BASE}, "agent_event is required"),
    ({"agent_event": "", **BASE}, "agent_event is required"),
    ({"agent_event": 3, **BASE}, "agent_event is required"),
    ({"agent_event": "lunch", **BASE}, "agent_event 'lunch' is unknown"),
    ({"agent_event": "ready", "agent_id": "a-1"}, "tenant_id is required"),
    ({"agent_event": "ready", "tenant_id": "", "agent_id": "a-1"}, "tenant_id is required"),
    ({"agent_event": "ready", "tenant_id": "acme"}, "agent_id is required"),
    ({"agent_event": "ready", "tenant_id": "acme", "agent_id": 7}, "agent_id must be a string"),
    ({"agent_event": "login", **BASE, "skills": {"support": 0}}, r"skills.support: level must be an integer"),
    ({"agent_event": "login", **BASE, "skills": {"support": 6}}, r"level must be an integer 1-5, got 6"),
    ({"agent_event": "login", **BASE, "skills": {"support": 2.5}}, r"skills.support: level must be"),
    ({"agent_event": "login", **BASE, "skills": {"support": True}}, r"skills.support: level must be"),
    ({"agent_event": "login", **BASE, "skills": ["support"]}, "skills must be an object"),
    ({"agent_event": "login", **BASE, "capacity": {"fax": 1}}, "capacity: unknown channel 'fax'"),
    ({"agent_event": "login", **BASE, "capacity": {"chat": -1}}, r"capacity.chat must be an integer >= 0"),
    ({"agent_event": "login", **BASE, "capacity": [1]}, "capacity must be an object"),
    ({"agent_event": "login", **BASE, "languages": "en"}, "languages must be a list"),
    ({"agent_event": "login", **BASE, "queues": [""]}, "queues must be a list of non-empty strings"),
    ({"agent_event": "offer_accepted", **BASE}, "contact_id is required"),
    ({"agent_event": "offer_rejected", **BASE, "contact_id": 5}, "contact_id must be a string"),
    ({"agent_event": "ready", **BASE, "skills": {"support": 3}}, "skills do not apply to a 'ready'"),
    ({"agent_event": "login", **BASE, "skill": {"support": 3}}, "skill do not apply to a 'login'"),
    ({"agent_event": "ready", **BASE, "occurred_at": "yesterday"}, "occurred_at is not RFC 3339"),
    ({"agent_event": "ready", **BASE, "occurred_at": "2026-11-23T10:00:00"}, "occurred_at needs a time zone"),
    ({"agent_event": "ready", **BASE, "occurred_at": True}, "occurred_at must be RFC 3339"),
    ({"agent_event": "not_ready", **BASE, "reason": 3}, "reason must be a string"),
])
def test_errors(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        agent_event_from_json(obj)


def test_not_an_object() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        agent_event_from_json(["ready"])  # type: ignore[arg-type]
