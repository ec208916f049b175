"""One scenario per routing feature built on the core engine: relaxation steps, business hours,
callbacks keeping their place, overflow, the preferred-agent window, and reload with that state."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from test_engine import T, arrive, assigned, config, engine, lifecycles, login, rejected, state

from services.routing.domain import (
    AgentLogout,
    AgentReady,
    AgentState,
    Assignment,
    Channel,
    ContactAbandoned,
    ContactAnswered,
    ContactCallbackRequested,
    ContactEnded,
    ContactStatus,
    ContactTransferred,
    LifecycleKind,
    OfferRejected,
    Tick,
)
from services.routing.engine import is_open
from services.routing.queues import Action, Hours, Overflow, QueueConfig, Step

MADRID = ZoneInfo("Europe/Madrid")


def madrid(*args: int) -> float:
    return datetime(*args, tzinfo=MADRID).timestamp()  # type: ignore[misc]


# --- relaxation steps -------------------------------------------------------------------------


def test_steps_widen_the_requirement_on_tick_and_the_last_admits_anyone() -> None:
    e = engine(QueueConfig("q", skills={"support": 3}, language="es",
                           steps=(Step(10, {"support": 2}), Step(20, {"support": 1}, keep_language=False),
                                  Step(40))))
    login(e, "junior", skills={"support": 1}, languages=["en"])  # no Spanish, support 1
    login(e, "nobody", skills={"sales": 5}, languages=["en"])  # no support at all
    assert assigned(arrive(e, "c1", now=0)) == []
    assert assigned(e.handle(Tick(T), 19)) == []  # step 1: support 2 in Spanish
    view = e.get_contact(T, "c1")
    assert view is not None and view.step == 1 and view.skills == {"support": 2} and view.languages == {"es"}
    out = e.handle(Tick(T), 20)  # step 2: support 1, any language
    assert assigned(out) == [("c1", "junior")]

    # the last step: anyone of the queue, whatever the contact's own skills
    assert assigned(arrive(e, "c2", now=21, skills={"billing": 4})) == []
    e.handle(Tick(T), 41)  # steps count from its own arrival at 21
    view = e.get_contact(T, "c2")
    assert view is not None and view.step == 2 and view.skills == {"support": 1, "billing": 4}  # own skill stays
    assert assigned(e.handle(Tick(T), 61)) == [("c2", "nobody")]


def test_a_requeued_contact_keeps_its_step() -> None:
    e = engine(QueueConfig("q", skills={"s": 3}, offer_timeout_seconds=5, steps=(Step(10, {"s": 1}), Step(100))))
    login(e, "a1", skills={"s": 1})
    login(e, "a2", 1, skills={"s": 1})
    arrive(e, "c1", now=0)
    assert assigned(e.handle(Tick(T), 10)) == [("c1", "a1")]
    out = e.handle(OfferRejected(T, "a1", "c1"), 11)
    assert assigned(out) == [("c1", "a2")]  # still at step 1: a2 qualifies at once
    view = e.get_contact(T, "c1")
    assert view is not None and view.step == 1 and view.status is ContactStatus.OFFERED


# --- business hours ---------------------------------------------------------------------------

HOURS = Hours("Europe/Madrid", {0: ((8 * 60, 18 * 60),), 1: ((8 * 60, 18 * 60),)},
              frozenset({datetime(2026, 3, 3).date()}))  # Mon and Tue 08-18; Tue 3 March 2026 a holiday


def test_hours_are_local_time_with_holidays_and_daylight_saving() -> None:
    assert not is_open(HOURS, madrid(2026, 3, 2, 7, 59))
    assert is_open(HOURS, madrid(2026, 3, 2, 8, 0)) and is_open(HOURS, madrid(2026, 3, 2, 17, 59))
    assert not is_open(HOURS, madrid(2026, 3, 2, 18, 0))
    assert not is_open(HOURS, madrid(2026, 3, 3, 10, 0))  # holiday
    assert is_open(HOURS, madrid(2026, 3, 9, 10, 0))
    # Madrid moves to summer time on 29 March 2026: 08:00 local is 06:00 UTC the day after
    assert is_open(HOURS, datetime(2026, 3, 30, 6, 0, tzinfo=ZoneInfo("UTC")).timestamp())
    assert not is_open(HOURS, datetime(2026, 3, 30, 5, 59, tzinfo=ZoneInfo("UTC")).timestamp())
    assert is_open(None, 0)


def test_closed_actions_voicemail_offline_message_queue_and_callback() -> None:
    e = engine(QueueConfig("vm", hours=HOURS), QueueConfig("msg", hours=HOURS, closed_action=Action.OFFLINE_MESSAGE),
               QueueConfig("wait", hours=HOURS, closed_action=Action.QUEUE),
               QueueConfig("cb", hours=HOURS, closed_action=Action.CALLBACK))
    night = madrid(2026, 3, 2, 7, 0)
    opening = madrid(2026, 3, 2, 8, 0)
    login(e, "a1", night)  # ready before the opening: still gets nothing while closed
    [vm] = lifecycles(arrive(e, "c1", "vm", now=night), LifecycleKind.VOICEMAIL)
    assert vm.reason == "closed" and e.contact_status(T, "c1") is ContactStatus.VOICEMAIL
    [msg] = lifecycles(arrive(e, "c2", "msg", now=night), LifecycleKind.OFFLINE_MESSAGE)
    assert msg.reason == "closed"
    out = arrive(e, "c3", "wait", now=night)
    [queued] = lifecycles(out, LifecycleKind.QUEUED)
    assert queued.reason == "closed" and queued.estimated_wait_seconds >= 3600 and assigned(out) == []
    out = arrive(e, "c4", "cb", now=night + 1)
    assert [o.kind for o in lifecycles(out, LifecycleKind.CALLBACK_SCHEDULED)] == [LifecycleKind.CALLBACK_SCHEDULED]
    chat = arrive(e, "c5", "cb", now=night + 2, channel=Channel.CHAT)  # no callback for a chat
    assert lifecycles(chat, LifecycleKind.OFFLINE_MESSAGE)
    view = e.get_contact(T, "c3")
    assert view is not None and view.held_until == opening and view.enqueued_at == opening
    assert state(e, "a1") is AgentState.READY
    assert assigned(e.handle(Tick(T), opening - 1)) == []
    out = e.handle(Tick(T), opening)
    assert assigned(out) == [("c3", "a1")]  # in arrival order, waits counted from the opening
    [a] = [o for o in out if isinstance(o, Assignment)]
    assert a.wait_seconds == 0
    e.handle(ContactEnded(T, "c3"), opening + 60)
    out = e.handle(Tick(T), opening + 61)
    assert [(o.contact_id, o.channel) for o in out if isinstance(o, Assignment)] == []  # a1 got it at 60 already
    view = e.get_contact(T, "c4")
    assert view is not None and view.status is ContactStatus.ASSIGNED and view.channel is Channel.CALLBACK
    stats = e.queue_stats(T, "vm", opening)
    assert stats is not None and stats.voicemail == 1 and stats.offered == 0


def test_max_wait_action_callback_for_voice_and_offline_message_otherwise() -> None:
    e = engine(QueueConfig("q", max_wait_seconds=60, max_wait_action=Action.CALLBACK))
    arrive(e, "v1", now=0)
    arrive(e, "m1", now=1, channel=Channel.EMAIL)
    out = e.handle(Tick(T), 61)
    [cb] = lifecycles(out, LifecycleKind.CALLBACK_SCHEDULED)
    [msg] = lifecycles(out, LifecycleKind.OFFLINE_MESSAGE)
    assert (cb.contact_id, cb.reason, msg.contact_id, msg.reason) == ("v1", "max_wait", "m1", "max_wait")
    assert e.handle(Tick(T), 1000) == []  # a callback has no max wait
    e2 = engine(QueueConfig("q", max_wait_seconds=60, max_wait_action=Action.QUEUE))
    arrive(e2, "v1", now=0)
    assert e2.handle(Tick(T), 100) == [] and e2.contact_status(T, "v1") is ContactStatus.WAITING


# --- callbacks ----------------------------------------------------------------------------------


def test_callback_keeps_the_place_and_counts_as_neither_answer_nor_abandon() -> None:
    e = engine(QueueConfig("q", service_level_seconds=20))
    for i in range(3):
        arrive(e, f"c{i}", now=i)
    out = e.handle(ContactCallbackRequested(T, "c0"), 10)
    [cb] = lifecycles(out, LifecycleKind.CALLBACK_SCHEDULED)
    assert cb.channel is Channel.CALLBACK and cb.position == 1 and cb.reason == "requested"
    assert e.contact_position(T, "c1", 10) == (2, 360.0)
    out = login(e, "a1", 100)
    assert [(o.contact_id, o.channel) for o in out if isinstance(o, Assignment)] == [("c0", Channel.CALLBACK)]
    [lc] = lifecycles(out, LifecycleKind.ASSIGNED)
    assert lc.reason == "callback"
    e.handle(ContactEnded(T, "c0", talk_seconds=30), 140)  # ends like any contact
    assert e.contact_status(T, "c0") is ContactStatus.ENDED
    assert e.get_contact(T, "c1") is not None
    stats = e.queue_stats(T, "q", 140)
    assert stats is not None and (stats.answered, stats.callbacks, stats.abandoned) == (1, 1, 0)
    assert stats.service_level == 0.0  # c1 answered after 20 s; the callback is not counted at all
    # cancelling a waiting callback is not an abandon
    e.handle(ContactCallbackRequested(T, "c2"), 150)
    out = e.handle(ContactAbandoned(T, "c2"), 151)
    [end] = lifecycles(out, LifecycleKind.ENDED)
    assert end.reason == "callback_cancelled"
    stats = e.queue_stats(T, "q", 151)
    assert stats is not None and stats.abandoned == 0 and stats.abandoned_after_sl == 0


def test_callback_requests_that_make_no_sense_are_rejected() -> None:
    e = engine(QueueConfig("q"))
    arrive(e, "chat", now=0, channel=Channel.CHAT)
    assert rejected(e.handle(ContactCallbackRequested(T, "chat"), 1)) == ["callback_needs_voice"]
    arrive(e, "v", now=0)
    e.handle(ContactCallbackRequested(T, "v"), 1)
    assert rejected(e.handle(ContactCallbackRequested(T, "v"), 2)) == ["already_callback"]
    login(e, "a1", 3, capacity={Channel.CALLBACK: 0, Channel.CHAT: 0})
    arrive(e, "v2", now=4)
    assert rejected(e.handle(ContactCallbackRequested(T, "v2"), 5)) == ["not_waiting"]
    assert rejected(e.handle(ContactCallbackRequested(T, "zz"), 5)) == ["unknown_contact"]


# --- overflow -----------------------------------------------------------------------------------


def test_overflow_after_a_timeout_keeps_the_original_enqueue_time() -> None:
    e = engine(QueueConfig("a", overflow=Overflow(queue="b", after_seconds=30), priority=5), QueueConfig("b"))
    login(e, "b-agent", queues=["b"], ready=False)
    arrive(e, "c1", "a", now=0)
    arrive(e, "c0", "b", now=10)
    out = e.handle(Tick(T), 30)
    [ov] = lifecycles(out, LifecycleKind.OVERFLOWED)
    [queued] = lifecycles(out, LifecycleKind.QUEUED)
    assert (ov.queue_id, ov.reason, queued.queue_id, queued.reason) == ("a", "queue:b", "b", "overflow:a")
    assert queued.position == 1  # ahead of c0 (earlier enqueue time), the target's priority applies
    view = e.get_contact(T, "c1")
    assert view is not None and view.enqueued_at == 0 and view.visited == ("a",) and view.priority == 0
    out = e.handle(AgentReady(T, "b-agent"), 40)
    [a] = [o for o in out if isinstance(o, Assignment)]
    assert (a.contact_id, a.queue_id, a.wait_seconds) == ("c1", "b", 40)
    stats_a, stats_b = e.queue_stats(T, "a", 40), e.queue_stats(T, "b", 40)
    assert stats_a is not None and stats_b is not None
    assert (stats_a.offered, stats_a.overflowed, stats_b.offered, stats_b.answered) == (1, 1, 2, 1)


def test_overflow_when_no_agent_is_logged_in_at_arrival_and_at_logout() -> None:
    e = engine(QueueConfig("a", skills={"x": 1}, overflow=Overflow(queue="b", when_no_agents=True)),
               QueueConfig("b", overflow=Overflow(site="lisbon", when_no_agents=True)))
    out = arrive(e, "c1", "a", now=0)  # nobody at all: a -> b -> lisbon
    kinds = [(o.kind, o.queue_id, o.reason) for o in lifecycles(out, LifecycleKind.OVERFLOWED)]
    assert kinds == [(LifecycleKind.OVERFLOWED, "a", "queue:b"), (LifecycleKind.OVERFLOWED, "b", "site:lisbon")]
    assert e.contact_status(T, "c1") is ContactStatus.OVERFLOWED
    login(e, "x", 1, skills={"x": 1}, ready=False)  # qualifies for a and b, not ready
    arrive(e, "c2", "a", now=2)
    assert e.contact_queue(T, "c2") == "a"  # someone is logged in: it waits
    out = e.handle(AgentLogout(T, "x"), 3)
    assert [o.reason for o in lifecycles(out, LifecycleKind.OVERFLOWED)] == ["queue:b", "site:lisbon"]


def test_overflow_never_revisits_a_queue() -> None:
    # a cycle the loader refuses, built by hand: the contact goes a -> b and stays in b
    e = engine(QueueConfig("a", overflow=Overflow(queue="b", after_seconds=10)),
               QueueConfig("b", overflow=Overflow(queue="a", after_seconds=10)))
    arrive(e, "c1", "a", now=0)
    e.handle(Tick(T), 10)
    assert e.handle(Tick(T), 30) == []
    view = e.get_contact(T, "c1")
    assert view is not None and view.queue_id == "b" and view.visited == ("a",)


# --- preferred agent ----------------------------------------------------------------------------


def test_preferred_agent_window_then_anyone() -> None:
    e = engine(QueueConfig("q", preferred_agent_wait_seconds=60))
    login(e, "pref", 0)
    login(e, "other", 1)
    arrive(e, "busy", now=2)  # pref (longest idle) takes it
    out = arrive(e, "c1", now=3, preferred_agent_id="pref")
    assert assigned(out) == []  # "other" is ready but c1 waits for pref
    view = e.get_contact(T, "c1")
    assert view is not None and view.reserved_for == "pref"
    assert assigned(e.handle(ContactEnded(T, "busy"), 20)) == [("c1", "pref")]

    arrive(e, "c2", now=30, preferred_agent_id="pref")  # pref busy with c1 again
    assert assigned(e.handle(Tick(T), 89)) == []
    assert assigned(e.handle(Tick(T), 90)) == [("c2", "other")]  # the window is over


def test_preferred_agent_not_logged_in_or_logging_out_frees_the_contact() -> None:
    e = engine(QueueConfig("q", preferred_agent_wait_seconds=60))
    login(e, "other", 0)
    assert assigned(arrive(e, "c1", now=1, preferred_agent_id="ghost")) == [("c1", "other")]
    login(e, "pref", 2, ready=False)
    assert assigned(arrive(e, "c2", now=3, preferred_agent_id="pref")) == []
    out = e.handle(AgentLogout(T, "pref"), 4)
    assert e.get_contact(T, "c2") is not None and assigned(out) == []  # "other" is busy with c1
    assert assigned(e.handle(ContactEnded(T, "c1"), 5)) == [("c2", "other")]


# --- reload -------------------------------------------------------------------------------------


def test_reload_adding_overflow_moves_contacts_nobody_may_take() -> None:
    e = engine(QueueConfig("a", skills={"x": 1}), QueueConfig("b"))
    login(e, "b-agent", queues=["b"])
    arrive(e, "c1", "a", now=0)
    e.reload(config(QueueConfig("a", skills={"x": 1}, overflow=Overflow(queue="b", when_no_agents=True)),
                    QueueConfig("b")))
    out = e.handle(Tick(T), 1)
    assert lifecycles(out, LifecycleKind.OVERFLOWED) and assigned(out) == [("c1", "b-agent")]


# --- transfer ---------------------------------------------------------------------------------


def test_an_agent_transfers_a_contact_it_answered_to_another_queue() -> None:
    e = engine(QueueConfig("sales", wrap_up_seconds=10), QueueConfig("billing", priority=2))
    login(e, "seller", queues=["sales"])
    login(e, "biller", queues=["billing"], ready=False)
    assert assigned(arrive(e, "c1", "sales", now=0)) == [("c1", "seller")]
    e.handle(ContactAnswered(T, "c1", "seller"), 1)
    out = e.handle(ContactTransferred(T, "c1", "billing", talk_seconds=20), 30)
    [moved] = lifecycles(out, LifecycleKind.TRANSFERRED)
    assert (moved.queue_id, moved.agent_id, moved.reason, moved.talk_seconds, moved.wrap_seconds, moved.answered) == (
        "sales", "seller", "queue:billing", 20, 10, True)
    [queued] = lifecycles(out, LifecycleKind.QUEUED)
    assert (queued.queue_id, queued.reason, queued.position) == ("billing", "transfer:sales", 1)
    assert state(e, "seller") is AgentState.WRAP_UP  # its leg is over: wrap-up of the source queue
    view = e.get_contact(T, "c1")
    assert view is not None and view.status is ContactStatus.WAITING and not view.answered
    assert view.enqueued_at == 30 and view.priority == 2  # a new wait in billing, at billing's priority
    out = e.handle(AgentReady(T, "biller"), 45)
    [a] = [o for o in out if isinstance(o, Assignment)]
    assert (a.contact_id, a.agent_id, a.queue_id, a.wait_seconds) == ("c1", "biller", "billing", 15)
    e.handle(ContactAnswered(T, "c1", "biller"), 46)
    [ended] = lifecycles(e.handle(ContactEnded(T, "c1", talk_seconds=60), 110), LifecycleKind.ENDED)
    assert (ended.queue_id, ended.agent_id, ended.answered) == ("billing", "biller", True)
    sales, billing = e.queue_stats(T, "sales", 110), e.queue_stats(T, "billing", 110)
    assert sales is not None and billing is not None
    assert (sales.offered, sales.answered, billing.offered, billing.answered) == (1, 1, 1, 1)
    assert e.contact_status(T, "c1") is ContactStatus.ENDED


def test_a_waiting_contact_transferred_keeps_its_place_in_time() -> None:
    e = engine(QueueConfig("a"), QueueConfig("b"))
    login(e, "b-agent", queues=["b"], ready=False)
    arrive(e, "c1", "a", now=0)
    arrive(e, "c0", "b", now=5)
    out = e.handle(ContactTransferred(T, "c1", "b"), 10)
    [moved] = lifecycles(out, LifecycleKind.TRANSFERRED)
    assert (moved.agent_id, moved.wait_seconds, moved.answered) == ("", 10, False)
    [queued] = lifecycles(out, LifecycleKind.QUEUED)
    assert queued.position == 1  # ahead of c0: it has waited since 0
    assert assigned(e.handle(AgentReady(T, "b-agent"), 20)) == [("c1", "b-agent")]


def test_an_offered_contact_transferred_is_withdrawn_without_counting_as_missed() -> None:
    e = engine(QueueConfig("a", offer_timeout_seconds=20), QueueConfig("b"))
    login(e, "a1", queues=["a"])
    assert assigned(arrive(e, "c1", "a", now=0)) == [("c1", "a1")]
    out = e.handle(ContactTransferred(T, "c1", "b"), 3)
    assert [o.kind for o in lifecycles(out, LifecycleKind.TRANSFERRED)] == [LifecycleKind.TRANSFERRED]
    assert state(e, "a1") is AgentState.READY  # not NOT_READY "missed"
    view = e.get_contact(T, "c1")
    assert view is not None and view.queue_id == "b" and view.status is ContactStatus.WAITING


def test_a_transfer_that_cannot_happen_is_rejected_and_the_contact_stays() -> None:
    e = engine(QueueConfig("a"), QueueConfig("chat-only", channel=Channel.CHAT), QueueConfig("tiny", max_length=0),
               QueueConfig("shut", hours=HOURS), strict=True)
    login(e, "a1", queues=["a"])
    arrive(e, "c1", "a", now=madrid(2026, 3, 2, 20, 0))  # a Monday evening: "shut" is closed
    now = madrid(2026, 3, 2, 20, 1)
    for target, reason in (("nowhere", "unknown_queue"), ("chat-only", "channel_mismatch"),
                           ("tiny", "queue_full"), ("shut", "queue_closed")):
        assert rejected(e.handle(ContactTransferred(T, "c1", target), now)) == [reason], target
        view = e.get_contact(T, "c1")
        assert view is not None and view.queue_id == "a" and view.agent_id == "a1"
    assert rejected(e.handle(ContactTransferred(T, "c1", "a", talk_seconds=-1), now)) == ["negative_duration"]
    e.handle(ContactEnded(T, "c1"), now)
    assert rejected(e.handle(ContactTransferred(T, "c1", "a"), now)) == ["contact_finished"]
    arrive(e, "c3", "a", now=now)
    out = e.handle(ContactTransferred(T, "c3", "a"), now)  # assigned: a new leg in the same queue is allowed
    assert [o.reason for o in lifecycles(out, LifecycleKind.QUEUED)] == ["transfer:a"]
    arrive(e, "c4", "a", now=now)  # a1 holds c3 again (nobody else): c4 waits
    view = e.get_contact(T, "c4")
    assert view is not None and view.status is ContactStatus.WAITING
    assert rejected(e.handle(ContactTransferred(T, "c4", "a"), now)) == ["same_queue"]
