"""Timed steps of a contact and an agent: the timer heap (fired in an order that depends only on
due time and entity, so a loaded state behaves like the engine it replaces), and what each timer
does: wrap-up end, offer timeout, opening, preferred-agent expiry, relaxation step, overflow, max
wait (to callback, voicemail or an offline message)."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from ..domain import (
    AgentState,
    Channel,
    ContactStatus,
    Decision,
    LifecycleKind,
)
from ..queue_config import Action
from .model import (
    TIMER_MAX_WAIT,
    TIMER_OFFER,
    TIMER_OPEN,
    TIMER_OVERFLOW,
    TIMER_PREFERRED,
    TIMER_STEP,
    TIMER_WRAP_UP,
    Contact,
)

if TYPE_CHECKING:
    from .tenant import TenantEngine


class TimedSteps:
    __slots__ = ()

    def _on_tick(self: TenantEngine, now: float, out: list[Decision]) -> None:
        while self.timers and self.timers[0][0] <= now:
            due, kind, _, key, token = heapq.heappop(self.timers)
            if kind == TIMER_WRAP_UP:
                a = self.agents.get(key)
                if a is not None and a.state is AgentState.WRAP_UP and a.wrap_token == token:
                    self._become_idle(a, now, "wrap_up_expired", out)
                    self._refresh(a, now, out)
                continue
            c = self.contacts.get(key)
            if c is None:
                continue
            if kind == TIMER_OFFER:
                if c.status is ContactStatus.OFFERED and c.offer_token == token:
                    self._withdraw_offer(c, self.agents[c.agent_id], now, out, "offer_timeout")
                continue
            if c.status is not ContactStatus.WAITING:
                continue
            cfg = self.queues[c.queue_id].config
            if kind == TIMER_OPEN:
                if c.held_until == due:
                    self._detach(c)
                    c.held_until = None
                    self._reserve(c, now)
                    self._attach(c, now)
                    self._settle_waiting(c, now, out)
            elif c.held_until is not None:
                continue
            elif kind == TIMER_PREFERRED:
                if c.reserved_for and c.reserve_until == due:
                    self._detach(c)
                    self._end_reservation(c)
                    self._attach(c, now)
                    self._settle_waiting(c, now, out)
            elif kind == TIMER_STEP:
                if c.step < len(cfg.steps) and c.entered_at + cfg.steps[c.step].after_seconds == due:
                    self._detach(c)
                    c.step += 1
                    c.group = self._group(self.queues[c.queue_id], c.channel, c.own_skills, c.own_language, c.step)
                    if c.reserved_for and c.reserved_for not in c.group.eligible:
                        self._end_reservation(c)
                    self._attach(c, now)
                    self._settle_waiting(c, now, out)
            elif kind == TIMER_OVERFLOW:
                ov = cfg.overflow
                if ov is not None and ov.after_seconds is not None and c.entered_at + ov.after_seconds == due:
                    self._overflow(c, now, out)
            elif kind == TIMER_MAX_WAIT:
                if not c.callback and cfg.max_wait_seconds is not None and c.enqueued_at + cfg.max_wait_seconds == due:
                    self._max_wait(c, now, out)

    def _push_timer(self: TenantEngine, at: float, kind: int, c: Contact | None, token: int, key: str = "") -> None:
        if c is not None:
            heapq.heappush(self.timers, (at, kind, c.seq, c.contact_id, token))
        else:
            heapq.heappush(self.timers, (at, kind, 0, key, token))

    def _max_wait(self: TenantEngine, c: Contact, now: float, out: list[Decision]) -> None:
        action = self.queues[c.queue_id].config.max_wait_action
        if action is Action.QUEUE:
            return
        if action is Action.CALLBACK:
            if c.channel is Channel.VOICE:
                self._to_callback(c, now, out, "max_wait")
                return
            action = Action.OFFLINE_MESSAGE
        self._leave(c, now, out, action, "max_wait")

    def _leave(self: TenantEngine, c: Contact, now: float, out: list[Decision], action: Action, reason: str) -> None:
        """A waiting contact leaves to voicemail or to leave a message."""
        self._detach(c)
        q = c.group.queue
        if action is Action.VOICEMAIL:
            q.voicemail += 1
            kind, status = LifecycleKind.VOICEMAIL, ContactStatus.VOICEMAIL
        else:
            q.offline_messages += 1
            kind, status = LifecycleKind.OFFLINE_MESSAGE, ContactStatus.OFFLINE_MESSAGE
        out.append(self._lifecycle(c, kind, wait_seconds=max(0.0, now - c.enqueued_at), reason=reason))
        self._terminate(c, status)

    def _make_callback(self: TenantEngine, c: Contact) -> None:
        q = self.queues[c.queue_id]
        c.channel, c.callback = Channel.CALLBACK, True
        c.group = self._group(q, c.channel, c.own_skills, c.own_language, c.step)
        if c.reserved_for and c.reserved_for not in c.group.eligible:
            self._end_reservation(c)
        q.callbacks += 1

    def _emit_callback(self: TenantEngine, c: Contact, now: float, out: list[Decision], reason: str) -> None:
        position, ewt = self.position(c, now)
        out.append(self._lifecycle(c, LifecycleKind.CALLBACK_SCHEDULED, wait_seconds=max(0.0, now - c.enqueued_at),
                                   position=position, estimated_wait_seconds=ewt, reason=reason))

    def _to_callback(self: TenantEngine, c: Contact, now: float, out: list[Decision], reason: str) -> None:
        """A waiting voice contact becomes a callback: same place in time, the callback channel."""
        self._detach(c)
        self._make_callback(c)
        self._attach(c, now)
        self._emit_callback(c, now, out, reason)
        self._settle_waiting(c, now, out)

    def _overflow(self: TenantEngine, c: Contact, now: float, out: list[Decision]) -> bool:
        """Moves a waiting contact to its queue's overflow target. False when it cannot go there
        (a queue it already left, or one that does not take its channel): it stays."""
        q = self.queues[c.queue_id]
        ov = q.config.overflow
        if ov is None:
            return False
        wait = max(0.0, now - c.enqueued_at)
        if ov.site:
            self._detach(c)
            q.overflowed += 1
            out.append(self._lifecycle(c, LifecycleKind.OVERFLOWED, wait_seconds=wait, reason=f"site:{ov.site}"))
            self._terminate(c, ContactStatus.OVERFLOWED)
            return True
        target = self._queue(ov.queue)
        if (target is None or ov.queue == c.queue_id or ov.queue in c.visited
                or (target.config.channel is not None and target.config.channel is not c.channel)):
            return False
        self._detach(c)
        if c.reserved_for:
            self._end_reservation(c)
        q.overflowed += 1
        out.append(self._lifecycle(c, LifecycleKind.OVERFLOWED, wait_seconds=wait, reason=f"queue:{ov.queue}"))
        self.marks.add(("queue", ov.queue))
        previous = c.queue_id
        c.visited = (*c.visited, previous)
        c.queue_id, c.step, c.entered_at = ov.queue, 0, now
        c.priority = target.config.priority + c.own_priority
        c.group = self._group(target, c.channel, c.own_skills, c.own_language, 0)
        target.offered += 1
        self._attach(c, now)
        position, ewt = self.position(c, now)
        out.append(self._lifecycle(c, LifecycleKind.QUEUED, wait_seconds=wait, position=position,
                                   estimated_wait_seconds=ewt, reason=f"overflow:{previous}"))
        self._settle_waiting(c, now, out)
        return True
