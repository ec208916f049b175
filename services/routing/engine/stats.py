"""Statistics and estimated wait: a waiting contact's position and estimated wait, queue
statistics and the views the gRPC API returns."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from typing import TYPE_CHECKING

from ..domain import (
    AgentState,
    AgentView,
    QueueStats,
)
from .model import (
    Agent,
    Contact,
    Queue,
)

if TYPE_CHECKING:
    from .tenant import TenantEngine


class Statistics:
    __slots__ = ()

    def position(self: TenantEngine, c: Contact, now: float) -> tuple[int, float]:
        g, q = c.group, c.group.queue
        mean_handle = q.handle_sum / q.handle_count if q.handle_count else q.config.default_handle_seconds
        if c.entry is None:  # held until the opening: behind everyone waiting now
            position = q.waiting
            return position, max(0.0, (c.held_until or now) - now) + position / max(1, g.staffed) * mean_handle
        ahead = 0
        for other in q.groups.values():
            if other.waiting:
                ahead += len(other.waiting) - bisect_right(other.waiting, c.entry)
        for contact_id in q.outside:
            other_c = self.contacts[contact_id]
            if other_c.entry is not None and other_c.entry > c.entry:
                ahead += 1
        position = ahead + 1
        return position, position / max(1, g.staffed) * mean_handle


def agent_view(tenant_id: str, a: Agent) -> AgentView:
    return AgentView(tenant_id, a.agent_id, a.state, a.reason, dict(a.skills), a.languages, dict(a.capacity),
                     tuple(a.held), a.state_since, a.handled)


def queue_stats(tenant_id: str, q: Queue, t: TenantEngine | None, now: float) -> QueueStats:
    """A queue's statistics now (t None: a configured queue of a tenant not seen yet)."""
    oldest = 0.0
    states: Counter[AgentState] = Counter()
    if t is not None:
        for g in q.groups.values():
            for _, _, contact_id in g.waiting:
                oldest = max(oldest, now - t.contacts[contact_id].enqueued_at)
        for contact_id in q.outside:
            oldest = max(oldest, now - t.contacts[contact_id].enqueued_at)
        for agent_id in q.members:
            states[t.agents[agent_id].state] += 1
    by_state = {s.value: states[s] for s in AgentState if s is not AgentState.LOGGED_OUT}
    denominator = q.answered + q.abandoned_after_sl
    return QueueStats(
        tenant_id=tenant_id, queue_id=q.config.queue_id, waiting=q.waiting, oldest_wait_seconds=oldest,
        agents_by_state=by_state, offered=q.offered, answered=q.answered, abandoned=q.abandoned,
        short_abandoned=q.short_abandoned, answered_within_sl=q.answered_within_sl,
        abandoned_after_sl=q.abandoned_after_sl, wait_seconds_answered_sum=q.wait_answered_sum,
        service_level=q.answered_within_sl / denominator if denominator else None,
        asa_seconds=q.wait_answered_sum / q.answered if q.answered else None,
        voicemail=q.voicemail, rejected=q.rejected, callbacks=q.callbacks,
        offline_messages=q.offline_messages, overflowed=q.overflowed,
    )
