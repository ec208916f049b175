"""The audit itself, without a broker: it must see each kind of fault it is there to catch."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from services.common import topics as T
from services.common.codec import new_envelope
from services.common.dlq import Reject, check_schema_version
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, survey_pb2
from switchboard_dev.agent_json import agent_event
from tests.reliability.harness import Ledger

P = "t."


@dataclass
class Msg:
    _topic: str
    _value: bytes
    _offset: int
    _key: bytes = b""
    _headers: list[tuple[str, bytes]] = field(default_factory=list)

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return self._key

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class Topics:
    def __init__(self) -> None:
        self.msgs: dict[str, list[Msg]] = defaultdict(list)

    def add(self, topic: str, value: bytes, **kw: object) -> None:
        name = P + topic
        self.msgs[name].append(Msg(name, value, len(self.msgs[name]), **kw))  # type: ignore[arg-type]

    def arrive(self, contact: str) -> None:
        self.add(T.CONTACTS_INBOUND.name, json.dumps({"tenant_id": "acme", "contact_id": contact,
                                                       "step": "arrived"}).encode())

    def login(self, agent: str, voice: int = 1) -> None:
        ev = agent_event("login", "acme", agent, capacity={"voice": voice})
        self.add(T.AGENTS_EVENTS.name, ev.SerializeToString())

    def life(self, contact: str, kind: int, agent: str = "", answered: bool = False, event_id: str = "") -> None:
        ev = routing_pb2.LifecycleEvent(envelope=new_envelope("acme", 0, "t", event_id=event_id or None),
                                        contact_id=contact, customer_id="cust-1", kind=kind, agent_id=agent,
                                        channel=contact_pb2.CHANNEL_VOICE, answered=answered,
                                        customer_has_mobile=True)
        self.add(T.CONTACTS_LIFECYCLE.name, ev.SerializeToString())

    def survey(self, contact: str) -> None:
        r = survey_pb2.SurveyRequest(envelope=new_envelope("acme", 0, "survey"), contact_id=contact)
        self.add(T.SURVEYS_REQUESTS.name, r.SerializeToString())

    def answered_call(self, contact: str, agent: str) -> None:
        self.arrive(contact)
        self.life(contact, routing_pb2.LIFECYCLE_KIND_QUEUED)
        self.life(contact, routing_pb2.LIFECYCLE_KIND_ASSIGNED, agent)
        self.life(contact, routing_pb2.LIFECYCLE_KIND_ENDED, agent, answered=True)
        self.survey(contact)

    def ledger(self) -> Ledger:
        return Ledger.build(P, {"acme"}, self.msgs, lambda m: False)


def test_clean_traffic_has_no_violations() -> None:
    t = Topics()
    t.login("a-1")
    t.answered_call("c-1", "a-1")
    t.answered_call("c-2", "a-1")
    t.arrive("c-3")
    t.life("c-3", routing_pb2.LIFECYCLE_KIND_ABANDONED)
    led = t.ledger()
    assert led.violations() == []
    assert led.figures()["contacts_accounted"] == 3 and led.figures()["surveys_due"] == 2


def test_each_fault_is_seen() -> None:
    t = Topics()
    t.login("a-1", voice=1)
    t.arrive("lost")  # never finished
    t.answered_call("twice", "a-1")
    t.life("twice", routing_pb2.LIFECYCLE_KIND_ABANDONED)  # a second terminal state
    t.arrive("x")
    t.arrive("y")
    t.life("x", routing_pb2.LIFECYCLE_KIND_ASSIGNED, "a-1", event_id="same")
    t.life("y", routing_pb2.LIFECYCLE_KIND_ASSIGNED, "a-1", event_id="same")  # duplicate id, 2 calls at once
    t.life("x", routing_pb2.LIFECYCLE_KIND_ENDED, "a-1", answered=True)
    t.life("y", routing_pb2.LIFECYCLE_KIND_ENDED, "a-1", answered=True)
    t.survey("x")
    t.survey("x")  # sent twice; y's is missing
    t.add(T.CONTACTS_DLQ.name, b"", _headers=[("dlq.service", b"routing"), ("dlq.reason", b"internal_error")])
    text = "\n".join(t.ledger().violations())
    for expected in ("without a terminal state", "several terminal states", "duplicate event ids",
                     "capacity exceeded", "surveys due but not sent", "sent more than once",
                     "unexpected dead letters"):
        assert expected in text, (expected, text)


def test_newer_schema_versions_are_refused() -> None:
    env = agent_pb2.AgentEvent().envelope
    env.schema_version = 1
    check_schema_version(env)
    env.schema_version = 2
    with pytest.raises(Reject) as err:
        check_schema_version(env)
    assert err.value.code == "unsupported_schema_version"
