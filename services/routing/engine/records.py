"""State records: what routing.state.v1 holds for a tenant (one record per tenant, agent, queue
and contact, a finished contact as its status and finish order) and how a tenant is rebuilt from
them. The format is internal (see services/routing/state.py); "v" is STATE_VERSION."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..domain import AgentState, Channel, ContactStatus
from ..queue_config import QueueConfig
from .model import QUEUE_COUNTERS, REQUIRED_COUNTERS, STATE_VERSION, Agent, Contact, Group, Queue

if TYPE_CHECKING:
    from .tenant import TenantEngine

KIND_ORDER = {"tenant": 0, "agent": 1, "queue": 2, "contact": 3}

CONTACT_FIELDS = ("customer_id", "queue_id", "own_priority", "own_language", "sla_deadline", "preferred_agent_id",
                  "ivr_seconds", "seq", "enqueued_at", "entered_at", "boosted", "agent_id", "offer_token",
                  "offer_expires_at", "assigned_at", "wait_seconds", "answered", "step", "callback", "reserved_for",
                  "reserve_until", "preferred_done", "held_until")


def by_kind(mark: tuple[str, str]) -> tuple[int, str]:
    """The order records are written and exported in: tenant, agents, queues, contacts; by id."""
    return KIND_ORDER[mark[0]], mark[1]


class Records:
    __slots__ = ()

    def record(self: TenantEngine, kind: str, entity_id: str) -> dict[str, Any] | None:
        """The entity's record as it is now, None when it is gone."""
        if kind == "tenant":
            return {"v": STATE_VERSION, "seq": self.seq, "assign_seq": self.assign_seq,
                    "finish_seq": self.finish_seq, "redispatch": self.redispatch}
        if kind == "agent":
            a = self.agents.get(entity_id)
            return agent_record(a) if a is not None else None
        if kind == "queue":
            q = self.queues.get(entity_id)
            if q is None:
                return None
            record: dict[str, Any] = {"v": STATE_VERSION, "implicit": q.implicit}
            for name in QUEUE_COUNTERS:
                record[name] = getattr(q, name)
            return record
        c = self.contacts.get(entity_id)
        if c is not None:
            return contact_record(c)
        done = self.finished.get(entity_id)
        return {"v": STATE_VERSION, "status": done[0].value, "n": done[1]} if done is not None else None

    def drain(self: TenantEngine) -> list[tuple[str, str, dict[str, Any] | None]]:
        """(kind, entity_id, record or None) of every entity changed since the last drain."""
        marks = sorted(self.marks, key=by_kind)
        self.marks.clear()  # in place: agents hold the same set
        return [(kind, entity_id, self.record(kind, entity_id)) for kind, entity_id in marks]

    def export(self: TenantEngine) -> list[tuple[str, str, dict[str, Any]]]:
        """Every record of the tenant (kind, entity_id, record), as drain would give them."""
        keys = [("tenant", ""), *(("agent", a) for a in self.agents), *(("queue", q) for q in self.queues),
                *(("contact", c) for c in self.contacts), *(("contact", c) for c in self.finished)]
        records = []
        for kind, entity_id in sorted(keys, key=by_kind):
            record = self.record(kind, entity_id)
            if record is not None:
                records.append((kind, entity_id, record))
        return records

    def load(self: TenantEngine, records: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Fills a new tenant with the state the records describe (as written by drain) and
        rebuilds its indexes and timers. Loading marks nothing as changed. Raises ValueError on a
        record it cannot read."""
        for queue_id, cfg in self.config.queues.items():
            self.queues[queue_id] = Queue(cfg, implicit=False)
        finished: list[tuple[int, str, ContactStatus]] = []
        contacts: list[dict[str, Any]] = []
        try:
            for kind, entity_id, record in records:
                if record is None:
                    continue
                if record.get("v") != STATE_VERSION:
                    raise ValueError(f"{kind} {entity_id!r}: unsupported state version {record.get('v')!r}")
                if kind == "tenant":
                    self.seq, self.assign_seq = int(record["seq"]), int(record["assign_seq"])
                    self.finish_seq, self.redispatch = int(record["finish_seq"]), bool(record["redispatch"])
                elif kind == "queue":
                    q = self.queues.get(entity_id)
                    if q is None:
                        q = self.queues[entity_id] = Queue(QueueConfig(entity_id), implicit=True)
                    for name in QUEUE_COUNTERS:  # a counter added after the record was written starts at 0
                        setattr(q, name, record[name] if name in REQUIRED_COUNTERS else record.get(name, 0))
                elif kind == "agent":
                    self.agents[entity_id] = agent_from_record(entity_id, record, self.marks)
                elif kind == "contact":
                    if "n" in record:
                        finished.append((int(record["n"]), entity_id, ContactStatus(record["status"])))
                    else:
                        contacts.append({**record, "contact_id": entity_id})
                else:
                    raise ValueError(f"unknown record kind {kind!r}")
            placeholder = Group(Queue(QueueConfig(""), implicit=True), Channel.VOICE, {}, frozenset())
            for record in contacts:
                c = contact_from_record(record, placeholder)
                if c.queue_id not in self.queues:
                    self.queues[c.queue_id] = Queue(QueueConfig(c.queue_id), implicit=True)
                self.contacts[c.contact_id] = c
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed state record: {exc!r}") from None
        for n, contact_id, status in sorted(finished):
            self.finished[contact_id] = (status, n)
        for a in self.agents.values():
            if a.state is not AgentState.LOGGED_OUT:
                self._add_candidate(a)
        self._rebuild_indexes()
        for a in sorted(self.agents.values(), key=lambda a: a.agent_id):
            if a.state is not AgentState.LOGGED_OUT:
                self._register(a)
        self.marks.clear()


def agent_record(a: Agent) -> dict[str, Any]:
    return {
        "v": STATE_VERSION, "skills": dict(a.skills), "languages": sorted(a.languages),
        "capacity": {ch.value: n for ch, n in a.capacity.items()}, "queues": sorted(a.queues),
        "state": a.state.value, "reason": a.reason, "state_since": a.state_since, "idle_since": a.idle_since,
        "handled": a.handled, "last_assigned": a.last_assigned,
        "held": [[cid, ch.value] for cid, ch in a.held.items()], "offers": sorted(a.offers),
        "pending_not_ready": a.pending_not_ready, "wrap_token": a.wrap_token, "wrap_until": a.wrap_until,
    }


def agent_from_record(agent_id: str, r: dict[str, Any], marks: set[tuple[str, str]]) -> Agent:
    capacity = {Channel(ch): int(n) for ch, n in r["capacity"].items()}
    a = Agent(agent_id, {str(k): int(v) for k, v in r["skills"].items()}, frozenset(r["languages"]), capacity,
               frozenset(r["queues"]), tuple(ch for ch, n in capacity.items() if n > 0), marks)
    a.state, a.reason = AgentState(r["state"]), str(r["reason"])
    a.state_since, a.idle_since = float(r["state_since"]), float(r["idle_since"])
    a.handled, a.last_assigned = int(r["handled"]), int(r["last_assigned"])
    for contact_id, ch in r["held"]:
        a.held[contact_id] = Channel(ch)
        a.load[Channel(ch)] = a.load.get(Channel(ch), 0) + 1
    a.offers = set(r["offers"])
    a.pending_not_ready = r["pending_not_ready"]
    a.wrap_token, a.wrap_until = int(r["wrap_token"]), float(r["wrap_until"])
    return a


def contact_record(c: Contact) -> dict[str, Any]:
    record: dict[str, Any] = {"v": STATE_VERSION, "status": c.status.value, "channel": c.channel.value,
                              "own_skills": dict(c.own_skills), "visited": list(c.visited)}
    for name in CONTACT_FIELDS:
        record[name] = getattr(c, name)
    return record


def contact_from_record(r: dict[str, Any], placeholder: Group) -> Contact:
    c = Contact(
        contact_id=r["contact_id"], customer_id=r["customer_id"], channel=Channel(r["channel"]),
        queue_id=r["queue_id"], own_priority=int(r["own_priority"]),
        own_skills={str(k): int(v) for k, v in r["own_skills"].items()}, own_language=r["own_language"],
        sla_deadline=r["sla_deadline"], preferred_agent_id=r["preferred_agent_id"], ivr_seconds=r["ivr_seconds"],
        seq=int(r["seq"]), enqueued_at=float(r["enqueued_at"]), entered_at=float(r["entered_at"]), group=placeholder,
    )
    for name in CONTACT_FIELDS[9:]:
        setattr(c, name, r[name])
    c.status = ContactStatus(r["status"])
    c.visited = tuple(r["visited"])
    return c
