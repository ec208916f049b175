"""RoutingEngine: the engine's face to the routing service and the gRPC API. It keeps one
TenantEngine per tenant, turns events into decisions, state into records and back, and answers
the queries; the rules live in the tenant's rooms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..domain import (
    AgentLogin,
    AgentLogout,
    AgentNotReady,
    AgentReady,
    AgentState,
    AgentView,
    ContactAbandoned,
    ContactAnswered,
    ContactArrived,
    ContactCallbackRequested,
    ContactEnded,
    ContactStatus,
    ContactTransferred,
    ContactView,
    Decision,
    OfferAccepted,
    OfferRejected,
    QueueStats,
    Rejected,
    Tick,
    WrapUpDone,
)
from ..queue_config import QueueConfig, QueuesConfig
from .model import Change, Queue
from .stats import agent_view, queue_stats
from .tenant import TenantEngine


class RoutingEngine:
    def __init__(self, queues: QueuesConfig, *, finished_memory: int = 100_000) -> None:
        """finished_memory: how many ended contacts per tenant are remembered to reject replays."""
        self._config = queues
        self._finished_memory = finished_memory
        self._tenants: dict[str, TenantEngine] = {}

    # -- events ---------------------------------------------------------------------------------

    def handle(self, event: object, now: float) -> list[Decision]:
        """Applies one event at `now` and returns the decisions it caused."""
        tenant_id = getattr(event, "tenant_id", None)
        if not isinstance(tenant_id, str) or not tenant_id:
            return [Rejected(str(tenant_id or ""), "missing_tenant_id", event)]
        t = self._tenants.get(tenant_id)
        if t is None:
            if isinstance(event, Tick):
                return []
            if isinstance(event, AgentReady | AgentNotReady | AgentLogout | WrapUpDone | OfferAccepted
                          | OfferRejected):
                return [Rejected(tenant_id, "unknown_agent", event)]
            if isinstance(event, ContactAnswered | ContactAbandoned | ContactEnded | ContactCallbackRequested
                          | ContactTransferred):
                return [Rejected(tenant_id, "unknown_contact", event)]
            if not isinstance(event, AgentLogin | ContactArrived):
                return [Rejected(tenant_id, "unsupported_event", event)]
            t = self._tenants[tenant_id] = TenantEngine.new(tenant_id, self._config.tenant(tenant_id),
                                                            self._finished_memory)
        return t.handle(event, now)

    def reload(self, queues: QueuesConfig) -> None:
        """Applies a new queue configuration. Waiting contacts keep their place in time (and their
        relaxation step, cut to the new number of steps); counters stay. Matching under the new
        rules (and overflow of contacts nobody may take any more) happens with the tenant's next
        event."""
        self._config = queues
        for t in self._tenants.values():
            t.reload(queues.tenant(t.tenant_id))

    # -- state export / restore -----------------------------------------------------------------

    def drain_changes(self) -> list[Change]:
        """(tenant_id, kind, entity_id, record) for every entity changed since the last drain, in
        tenant, kind ("tenant", "agent", "queue", "contact") and id order; record is None when the
        entity is gone (a contact forgotten from the finished memory)."""
        changes: list[Change] = []
        for tenant_id in sorted(tid for tid, t in self._tenants.items() if t.marks):
            changes.extend((tenant_id, kind, entity_id, record)
                           for kind, entity_id, record in self._tenants[tenant_id].drain())
        return changes

    def export_tenant(self, tenant_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Every record of the tenant (kind, entity_id, record), as drain_changes would give them."""
        t = self._tenants.get(tenant_id)
        return t.export() if t is not None else []

    def load_tenant(self, tenant_id: str, records: Iterable[tuple[str, str, dict[str, Any]]], now: float) -> None:
        """Replaces the tenant's state with the one the records describe (as written by
        drain_changes) and rebuilds its indexes and timers. Loading marks nothing as changed.
        Raises ValueError on a record it cannot read."""
        t = TenantEngine(tenant_id, self._config.tenant(tenant_id), self._finished_memory)
        t.load(records)
        self._tenants[tenant_id] = t

    def drop_tenant(self, tenant_id: str) -> None:
        """Forgets the tenant (another replica owns it now); its pending changes are dropped."""
        self._tenants.pop(tenant_id, None)

    def erase_customer(self, tenant_id: str, customer_id: str) -> list[str]:
        """Right to erasure: the customer's live contacts stop carrying their id (they keep their
        place, agent and timers: the conversation may be going on) and are marked changed, so their
        state records are rewritten without it. Finished contacts hold no customer id. Returns the
        ids of the contacts changed."""
        t = self._tenants.get(tenant_id)
        if t is None or not customer_id:
            return []
        return t.erase_customer(customer_id)

    # -- queries --------------------------------------------------------------------------------

    def get_agent(self, tenant_id: str, agent_id: str) -> AgentView | None:
        t = self._tenants.get(tenant_id)
        a = t.agents.get(agent_id) if t else None
        return agent_view(tenant_id, a) if a else None

    def list_agents(self, tenant_id: str, state: AgentState | None = None, skill: str | None = None,
                    queue_id: str | None = None) -> list[AgentView]:
        """Agents by id (logged-out ones too unless filtered out). With queue_id: the logged-in
        agents who serve that queue's own requirements."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return []
        if queue_id is not None:
            q = t.queues.get(queue_id)
            ids = sorted(q.members) if q else []
        else:
            ids = sorted(t.agents)
        views = []
        for agent_id in ids:
            a = t.agents[agent_id]
            if (state is None or a.state is state) and (skill is None or skill in a.skills):
                views.append(agent_view(tenant_id, a))
        return views

    def list_queues(self, tenant_id: str) -> list[str]:
        """Configured queues of the tenant (or the default tenant's) and queues seen since."""
        ids = set(self._config.tenant(tenant_id).queues)
        t = self._tenants.get(tenant_id)
        if t is not None:
            ids.update(t.queues)
        return sorted(ids)

    def queue_stats(self, tenant_id: str, queue_id: str, now: float) -> QueueStats | None:
        t = self._tenants.get(tenant_id)
        if t is None:
            cfg = self._config.tenant(tenant_id).queues.get(queue_id)
            return queue_stats(tenant_id, Queue(cfg, implicit=False), None, now) if cfg else None
        q = t.queues.get(queue_id)
        return queue_stats(tenant_id, q, t, now) if q else None

    def queue_config(self, tenant_id: str, queue_id: str) -> QueueConfig | None:
        """The queue's configuration in force (an implicit queue's defaults), None if unknown."""
        t = self._tenants.get(tenant_id)
        q = t.queues.get(queue_id) if t else None
        return q.config if q is not None else self._config.tenant(tenant_id).queues.get(queue_id)

    def contact_position(self, tenant_id: str, contact_id: str, now: float) -> tuple[int, float] | None:
        """(1-based position among the waiting contacts of its queue, estimated wait seconds), or
        None when the contact is not waiting."""
        t = self._tenants.get(tenant_id)
        c = t.contacts.get(contact_id) if t else None
        if t is None or c is None or c.status is not ContactStatus.WAITING:
            return None
        t.apply_boosts(now)
        return t.position(c, now)

    def contact_queue(self, tenant_id: str, contact_id: str) -> str | None:
        """The queue of a live (waiting, offered or assigned) contact."""
        t = self._tenants.get(tenant_id)
        c = t.contacts.get(contact_id) if t else None
        return c.queue_id if c else None

    def get_contact(self, tenant_id: str, contact_id: str) -> ContactView | None:
        """A live (waiting, offered or assigned) contact."""
        t = self._tenants.get(tenant_id)
        c = t.contacts.get(contact_id) if t else None
        if c is None:
            return None
        return ContactView(
            tenant_id=tenant_id, contact_id=c.contact_id, status=c.status, queue_id=c.queue_id,
            channel=c.channel, customer_id=c.customer_id, agent_id=c.agent_id, enqueued_at=c.enqueued_at,
            priority=c.priority, skills=dict(c.group.skills), languages=c.group.languages, answered=c.answered,
            step=c.step, callback=c.callback, reserved_for=c.reserved_for, held_until=c.held_until,
            visited=c.visited,
        )

    def contact_status(self, tenant_id: str, contact_id: str) -> ContactStatus | None:
        """Status of a live contact or of a remembered finished one."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return None
        c = t.contacts.get(contact_id)
        if c is not None:
            return c.status
        done = t.finished.get(contact_id)
        return done[0] if done is not None else None

    def list_contacts(self, tenant_id: str, queue_id: str | None = None) -> list[str]:
        """Ids of the live contacts (of one queue), in arrival order."""
        t = self._tenants.get(tenant_id)
        if t is None:
            return []
        live = sorted(t.contacts.values(), key=lambda c: c.seq)
        return [c.contact_id for c in live if queue_id is None or c.queue_id == queue_id]

    def tenants(self) -> list[str]:
        return sorted(self._tenants)
