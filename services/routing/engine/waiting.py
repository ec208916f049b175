"""Where a waiting contact waits, in order: its group's sorted list (best last, by a static key
that orders contacts as their effective priority would at any time), its preferred agent's own
list while reserved, or nowhere until its queue opens; SLA boosts and requeues."""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from typing import TYPE_CHECKING

from ..domain import (
    ContactStatus,
    Decision,
    LifecycleKind,
)
from .model import (
    TIMER_MAX_WAIT,
    TIMER_OPEN,
    TIMER_OVERFLOW,
    TIMER_PREFERRED,
    TIMER_STEP,
    Contact,
)

if TYPE_CHECKING:
    from .tenant import TenantEngine


class WaitingLists:
    __slots__ = ()

    def _attach(self: TenantEngine, c: Contact, now: float) -> None:
        """Puts a waiting contact where it waits (its group, its preferred agent's list, or nowhere
        until the opening) and pushes its timers."""
        c.status, c.agent_id = ContactStatus.WAITING, ""
        q = c.group.queue
        q.waiting += 1
        self._mark(c)
        if c.held_until is not None:
            q.outside.add(c.contact_id)
            self._push_timer(c.held_until, TIMER_OPEN, c, 0)
            return
        cfg = q.config
        if c.sla_deadline is not None and not c.boosted:
            boost_at = c.sla_deadline - cfg.sla_boost_window_seconds
            c.boosted = now >= boost_at
            if not c.boosted:
                heapq.heappush(self.boosts, (boost_at, c.seq, c.contact_id))
        self._insert(c)
        if c.reserved_for:
            self._push_timer(c.reserve_until, TIMER_PREFERRED, c, 0)
        if c.step < len(cfg.steps):
            self._push_timer(c.entered_at + cfg.steps[c.step].after_seconds, TIMER_STEP, c, 0)
        if cfg.overflow is not None and cfg.overflow.after_seconds is not None:
            self._push_timer(c.entered_at + cfg.overflow.after_seconds, TIMER_OVERFLOW, c, 0)
        if cfg.max_wait_seconds is not None and not c.callback:
            self._push_timer(c.enqueued_at + cfg.max_wait_seconds, TIMER_MAX_WAIT, c, 0)

    def _insert(self: TenantEngine, c: Contact) -> None:
        cfg = c.group.queue.config
        key = c.priority + (cfg.sla_boost_priority if c.boosted else 0.0) \
            - cfg.aging_boost_per_minute * c.enqueued_at / 60.0
        c.entry = (key, -c.seq, c.contact_id)
        if c.reserved_for:
            insort(self.reserved.setdefault((c.reserved_for, c.channel), []), c.entry)
            c.group.queue.outside.add(c.contact_id)
        else:
            insort(c.group.waiting, c.entry)

    def _detach(self: TenantEngine, c: Contact) -> None:
        """Takes a waiting contact out of where it waits."""
        q = c.group.queue
        q.waiting -= 1
        self._mark(c)
        if c.entry is None:  # held
            q.outside.discard(c.contact_id)
            return
        if c.reserved_for:
            key = (c.reserved_for, c.channel)
            waiting = self.reserved[key]
            q.outside.discard(c.contact_id)
        else:
            waiting = c.group.waiting
        i = bisect_left(waiting, c.entry)
        assert waiting[i] == c.entry
        del waiting[i]
        if c.reserved_for and not waiting:
            del self.reserved[key]
        c.entry = None

    def _reserve(self: TenantEngine, c: Contact, now: float) -> None:
        """Reserves a new (or just opened) contact for its preferred agent when the queue waits
        for preferred agents and that agent is logged in and may take it."""
        wait = c.group.queue.config.preferred_agent_wait_seconds
        if (wait > 0 and c.preferred_agent_id and not c.preferred_done and c.preferred_agent_id in c.group.eligible
                and now < c.enqueued_at + wait):
            c.reserved_for, c.reserve_until = c.preferred_agent_id, c.enqueued_at + wait
        elif c.preferred_agent_id:
            c.preferred_done = True

    def _end_reservation(self: TenantEngine, c: Contact) -> None:
        c.reserved_for, c.reserve_until, c.preferred_done = "", 0.0, True
        self._mark(c)

    def apply_boosts(self: TenantEngine, now: float) -> None:
        if len(self.boosts) > 2 * len(self.contacts) + 1000:
            # Entries of contacts gone long before their boost time (a 24 h email SLA: a day of them)
            # would otherwise stay until that time; popping skips them anyway, so dropping them
            # changes nothing but the memory. Amortized: at most once per 1,000 entries pushed.
            self.boosts = [e for e in self.boosts if (c := self.contacts.get(e[2])) is not None and not c.boosted]
            heapq.heapify(self.boosts)
        while self.boosts and self.boosts[0][0] <= now:
            _, _, contact_id = heapq.heappop(self.boosts)
            c = self.contacts.get(contact_id)
            if (c is None or c.status is not ContactStatus.WAITING or c.boosted or c.sla_deadline is None
                    or c.entry is None):
                continue
            if now >= c.sla_deadline - c.group.queue.config.sla_boost_window_seconds:
                self._detach(c)
                c.boosted = True
                c.group.queue.waiting += 1
                self._insert(c)

    def _requeue(self: TenantEngine, c: Contact, now: float, out: list[Decision], reason: str,
                 agent_id: str) -> None:
        if c.preferred_agent_id:
            c.preferred_done = True  # a missed preferred agent does not get it reserved again
        self._attach(c, now)
        position, ewt = self.position(c, now)
        out.append(self._lifecycle(c, LifecycleKind.REQUEUED, agent_id=agent_id,
                                   wait_seconds=max(0.0, now - c.enqueued_at), position=position,
                                   estimated_wait_seconds=ewt, reason=reason))
        self._settle_waiting(c, now, out)

    def _mark(self: TenantEngine, c: Contact) -> None:
        self.marks.add(("contact", c.contact_id))
