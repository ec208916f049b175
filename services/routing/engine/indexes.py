"""The tenant's indexes: queues (implicit ones made on first use), groups of contacts with the same
channel and effective requirements, and which logged-in agents qualify for each (by queue list and
by skill, so a new group never scans every agent); rebuilt from the state alone after a load or a
configuration change."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..domain import (
    AgentState,
    Channel,
    ContactStatus,
)
from ..queue_config import QueueConfig
from .model import (
    TIMER_OFFER,
    TIMER_WRAP_UP,
    WORKING,
    Agent,
    Group,
    Queue,
    Signature,
)
from .rules import qualifies, requirements, selection_key, serves, takeable, touch

if TYPE_CHECKING:
    from .tenant import TenantEngine


class Indexes:
    __slots__ = ()

    def _queue(self: TenantEngine, queue_id: str) -> Queue | None:
        q = self.queues.get(queue_id)
        if q is None and not self.config.strict and queue_id:
            q = self.queues[queue_id] = Queue(QueueConfig(queue_id), implicit=True)
            q.members = {a.agent_id for a in self._candidates(queue_id) if serves(a, q.config)}
            self.marks.add(("queue", queue_id))
        return q

    def _group_candidates(self: TenantEngine, queue_id: str, skills: dict[str, int]) -> Iterable[Agent]:
        """Agents who may qualify for a new group: with skills required, only those having the
        rarest of them (a new group must not cost a scan of every agent)."""
        if skills:
            rarest = min(skills, key=lambda skill: (len(self.by_skill.get(skill, ())), skill))
            having = self.by_skill.get(rarest, {})
            if len(having) < len(self.any_queue) + len(self.by_queue.get(queue_id, ())):
                return [a for a in having.values() if not a.queues or queue_id in a.queues]
        return self._candidates(queue_id)

    def _candidates(self: TenantEngine, queue_id: str) -> list[Agent]:
        """Logged-in agents the queue may use: those listing it and those listing no queue."""
        return [*self.any_queue.values(), *self.by_queue.get(queue_id, {}).values()]

    def _group(self: TenantEngine, q: Queue, channel: Channel, own_skills: dict[str, int],
               own_language: str, step: int) -> Group:
        """The group for a contact of the queue with these requirements of its own, at this step."""
        plain = not own_skills and not own_language
        if plain and (channel, step) in q.plain:
            return q.plain[(channel, step)]
        skills, languages = requirements(q.config, own_skills, own_language, step)
        signature: Signature = (channel, tuple(sorted(skills.items())), languages)
        g = q.groups.get(signature)
        if g is None:
            g = q.groups[signature] = Group(q, channel, skills, languages, rate=q.config.aging_boost_per_minute / 60.0)
            for a in self._group_candidates(q.config.queue_id, skills):
                if qualifies(a, g):
                    self._join(a, g)
        if plain:
            q.plain[(channel, step)] = g
        return g

    def _join(self: TenantEngine, a: Agent, g: Group) -> None:
        g.eligible.add(a.agent_id)
        a.groups.append(g)
        if a.state in WORKING:
            g.staffed += 1
        if g.channel in takeable(a):
            heapq.heappush(g.agents, (selection_key(g, a), a.version, a.agent_id))

    def _agent_queues(self: TenantEngine, a: Agent) -> list[Queue]:
        if not a.queues:
            return list(self.queues.values())
        return [self.queues[queue_id] for queue_id in sorted(a.queues) if queue_id in self.queues]

    def _index_agent(self: TenantEngine, a: Agent) -> None:
        self._add_candidate(a)
        a.groups = []
        for q in self._agent_queues(a):
            if serves(a, q.config):
                q.members.add(a.agent_id)
            for g in q.groups.values():
                if qualifies(a, g):
                    self._join(a, g)

    def _unindex_agent(self: TenantEngine, a: Agent) -> None:
        for g in a.groups:
            g.eligible.discard(a.agent_id)
        for q in self._agent_queues(a):
            q.members.discard(a.agent_id)
        self.any_queue.pop(a.agent_id, None)
        for queue_id in a.queues:
            self.by_queue.get(queue_id, {}).pop(a.agent_id, None)
        for skill in a.skills:
            self.by_skill.get(skill, {}).pop(a.agent_id, None)
        a.groups = []
        touch(a)

    def _rebuild_indexes(self: TenantEngine) -> None:
        """After a config change or a load: regroups every live contact, requalifies every agent
        and pushes every timer again, all from the state alone."""
        for a in self.agents.values():
            a.groups = []
            touch(a)
        for queue_id, q in self.queues.items():
            q.groups, q.plain, q.waiting, q.outside = {}, {}, 0, set()
            q.members = {a.agent_id for a in self._candidates(queue_id) if serves(a, q.config)}
        self.reserved.clear()
        self.timers.clear()
        self.boosts.clear()
        for a in sorted(self.agents.values(), key=lambda a: a.agent_id):
            if a.state is AgentState.WRAP_UP:
                self._push_timer(a.wrap_until, TIMER_WRAP_UP, None, a.wrap_token, a.agent_id)
        for c in sorted(self.contacts.values(), key=lambda c: c.seq):
            q = self.queues[c.queue_id]
            c.group = self._group(q, c.channel, c.own_skills, c.own_language, c.step)
            c.priority = q.config.priority + c.own_priority
            if c.status is ContactStatus.WAITING:
                if c.reserved_for and c.reserved_for not in c.group.eligible:
                    self._end_reservation(c)
                c.entry = None
                self._attach(c, -math.inf)  # keeps `boosted` as it is
            elif c.status is ContactStatus.OFFERED:
                self._push_timer(c.offer_expires_at, TIMER_OFFER, c, c.offer_token)

    def _add_candidate(self: TenantEngine, a: Agent) -> None:
        """Indexes a logged-in agent by queue list and skills (who may serve new groups)."""
        if a.queues:
            for queue_id in a.queues:
                self.by_queue.setdefault(queue_id, {})[a.agent_id] = a
        else:
            self.any_queue[a.agent_id] = a
        for skill in a.skills:
            self.by_skill.setdefault(skill, {})[a.agent_id] = a
