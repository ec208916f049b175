"""The routing engine's behaviour, seen through its inputs, outputs and queries."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.routing.domain import (
    AgentChanged,
    AgentLogin,
    AgentLogout,
    AgentNotReady,
    AgentReady,
    AgentSelection,
    AgentState,
    AgentView,
    Assignment,
    Channel,
    ContactAbandoned,
    ContactAnswered,
    ContactArrived,
    ContactCallbackRequested,
    ContactEnded,
    ContactStatus,
    ContactTransferred,
    Decision,
    Lifecycle,
    LifecycleKind,
    OfferAccepted,
    OfferRejected,
    Rejected,
    Tick,
    WrapUpDone,
)
from services.routing.engine import RoutingEngine
from services.routing.queues import Action, Hours, Overflow, QueueConfig, QueuesConfig, Step, TenantConfig

T = "acme"
V, C, E = Channel.VOICE, Channel.CHAT, Channel.EMAIL


def engine(*queues: QueueConfig, strict: bool = False, default_queues: Sequence[QueueConfig] = ()) -> RoutingEngine:
    return RoutingEngine(config(*queues, strict=strict, default_queues=default_queues))


def config(*queues: QueueConfig, strict: bool = False, default_queues: Sequence[QueueConfig] = ()) -> QueuesConfig:
    return QueuesConfig({
        "default": TenantConfig("default", queues={q.queue_id: q for q in default_queues}),
        T: TenantConfig(T, strict, {q.queue_id: q for q in queues}),
    })


def login(e: RoutingEngine, agent: str, now: float = 0.0, *, skills: dict[str, int] | None = None,
          languages: Sequence[str] = ("en",), capacity: dict[Channel, int] | None = None,
          queues: Sequence[str] = (), ready: bool = True, tenant: str = T) -> list[Decision]:
    out = e.handle(AgentLogin(tenant, agent, skills or {}, frozenset(languages), capacity or {}, frozenset(queues)),
                   now)
    if ready:
        out += e.handle(AgentReady(tenant, agent), now)
    return out


def arrive(e: RoutingEngine, contact: str, queue: str = "q", now: float = 0.0, channel: Channel = V,
           tenant: str = T, **kw: object) -> list[Decision]:
    return e.handle(ContactArrived(tenant, contact, f"cust-{contact}", channel, queue, **kw), now)  # type: ignore[arg-type]


def assigned(out: Sequence[Decision]) -> list[tuple[str, str]]:
    return [(o.contact_id, o.agent_id) for o in out if isinstance(o, Assignment)]


def lifecycles(out: Sequence[Decision], kind: LifecycleKind) -> list[Lifecycle]:
    return [o for o in out if isinstance(o, Lifecycle) and o.kind is kind]


def state(e: RoutingEngine, agent: str) -> AgentState:
    view = e.get_agent(T, agent)
    assert view is not None
    return view.state


def rejected(out: Sequence[Decision]) -> list[str]:
    return [o.reason for o in out if isinstance(o, Rejected)]


# --- assignment and eligibility -----------------------------------------------------------------


def test_login_is_not_ready_and_contact_waits_until_an_agent_is_ready() -> None:
    e = engine(QueueConfig("q", channel=V, skills={"support": 2}))
    out = login(e, "a1", skills={"support": 3}, ready=False)
    assert out == [AgentChanged(T, "a1", AgentState.NOT_READY, "login")]
    out = arrive(e, "c1", now=10)
    assert assigned(out) == []
    queued = lifecycles(out, LifecycleKind.QUEUED)
    assert [(q.position, q.contact_id) for q in queued] == [(1, "c1")]

    out = e.handle(AgentReady(T, "a1"), 25)
    assert assigned(out) == [("c1", "a1")]
    [assignment] = [o for o in out if isinstance(o, Assignment)]
    assert assignment.wait_seconds == 15 and assignment.offered_at == 25 and assignment.offer_expires_at is None
    assert assignment.queue_id == "q" and assignment.channel is V and assignment.customer_id == "cust-c1"
    [lc] = lifecycles(out, LifecycleKind.ASSIGNED)
    assert lc.agent_id == "a1" and lc.wait_seconds == 15
    assert state(e, "a1") is AgentState.BUSY
    view = e.get_agent(T, "a1")
    assert view is not None and view.active_contacts == ("c1",) and view.handled == 1 and view.state_since == 25


def test_skill_level_too_low_waits_for_a_qualified_agent() -> None:
    e = engine(QueueConfig("q", skills={"support": 2}))
    login(e, "junior", skills={"support": 1})
    assert assigned(arrive(e, "c1", now=1)) == []
    assert state(e, "junior") is AgentState.READY
    assert assigned(login(e, "senior", 2, skills={"support": 2})) == [("c1", "senior")]


def test_contact_skills_are_added_to_the_queue_requirements_max_level_wins() -> None:
    e = engine(QueueConfig("q", skills={"support": 2}))
    login(e, "support-only", skills={"support": 5})
    # the contact also needs billing 2: the support-only agent may not take it
    assert assigned(arrive(e, "c1", skills={"billing": 2})) == []
    # support 1 asked by the contact does not lower the queue's 2: still needs 2
    login(e, "both", 1, skills={"support": 2, "billing": 2})
    out = arrive(e, "c2", now=2, skills={"support": 1})
    assert assigned(out) == [("c2", "support-only")]
    view = e.get_contact(T, "c1")
    assert view is not None and view.skills == {"support": 2, "billing": 2} and view.agent_id == "both"


def test_language_is_required_from_queue_and_contact() -> None:
    e = engine(QueueConfig("sales", channel=C, language="en"))
    login(e, "es-only", languages=["es"])
    assert assigned(arrive(e, "c1", "sales", channel=C)) == []
    assert assigned(login(e, "en", 1, languages=["EN"])) == [("c1", "en")]
    # a contact's own language is required on top of the queue's
    assert assigned(arrive(e, "c2", "sales", now=2, channel=C, language="es")) == []
    assert assigned(login(e, "both", 3, languages=["en", "es"])) == [("c2", "both")]


def test_agent_queue_list_restricts_eligibility() -> None:
    e = engine(QueueConfig("q1"), QueueConfig("q2"))
    login(e, "only-q2", queues=["q2"])
    assert assigned(arrive(e, "c1", "q1")) == []
    assert assigned(arrive(e, "c2", "q2", now=1)) == [("c2", "only-q2")]


def test_chat_capacity_three_then_waits_and_freed_slot_is_reused() -> None:
    e = engine(QueueConfig("q", channel=C))
    login(e, "a1")
    outs = [arrive(e, f"c{i}", now=i, channel=C) for i in range(1, 5)]
    assert [assigned(o) for o in outs] == [[("c1", "a1")], [("c2", "a1")], [("c3", "a1")], []]
    view = e.get_agent(T, "a1")
    assert view is not None and view.state is AgentState.BUSY and view.active_contacts == ("c1", "c2", "c3")
    out = e.handle(ContactEnded(T, "c2", talk_seconds=60), 100)
    assert assigned(out) == [("c4", "a1")]
    assert state(e, "a1") is AgentState.BUSY


def test_custom_capacity_and_zero_disables_a_channel() -> None:
    e = engine()
    login(e, "a1", capacity={C: 1, E: 0})
    assert assigned(arrive(e, "m1", "mail", channel=E)) == []
    assert assigned(arrive(e, "c1", "chat", now=1, channel=C)) == [("c1", "a1")]
    assert assigned(arrive(e, "c2", "chat", now=2, channel=C)) == []


def test_voice_blocks_other_channels_and_busy_agents_get_no_voice() -> None:
    e = engine()
    login(e, "a1")
    assert assigned(arrive(e, "v1", "phone", channel=V)) == [("v1", "a1")]
    assert assigned(arrive(e, "c1", "chat", now=1, channel=C)) == []  # on a call: no chat
    out = e.handle(ContactEnded(T, "v1", talk_seconds=30), 40)
    assert assigned(out) == [("c1", "a1")]
    assert assigned(arrive(e, "v2", "phone", now=41, channel=V)) == []  # chatting: no call
    assert assigned(arrive(e, "m1", "mail", now=42, channel=E)) == [("m1", "a1")]  # but email fits
    out = e.handle(ContactEnded(T, "c1"), 50)
    assert assigned(out) == []  # still on an email
    out = e.handle(ContactEnded(T, "m1"), 60)
    assert assigned(out) == [("v2", "a1")]


# --- agent choice ---------------------------------------------------------------------------------


def test_longest_idle_agent_gets_the_contact() -> None:
    e = engine(QueueConfig("q", channel=V))
    login(e, "a1", 10)
    login(e, "a2", 5)
    login(e, "a3", 20)
    assert assigned(arrive(e, "c1", now=30)) == [("c1", "a2")]
    assert assigned(arrive(e, "c2", now=31)) == [("c2", "a1")]
    e.handle(ContactEnded(T, "c2", talk_seconds=5), 40)  # a1 idle again, since 40
    assert assigned(arrive(e, "c3", now=41)) == [("c3", "a3")]
    assert assigned(arrive(e, "c4", now=42)) == [("c4", "a1")]


def test_most_skilled_agent_gets_the_contact() -> None:
    e = engine(QueueConfig("q", skills={"support": 1, "billing": 1}, agent_selection=AgentSelection.MOST_SKILLED))
    login(e, "idle-long", 0, skills={"support": 2, "billing": 2})
    login(e, "expert", 50, skills={"support": 5, "billing": 3, "sales": 5})
    assert assigned(arrive(e, "c1", now=60)) == [("c1", "expert")]


def test_fewest_contacts_agent_gets_the_contact() -> None:
    e = engine(QueueConfig("q", agent_selection=AgentSelection.FEWEST_CONTACTS))
    login(e, "a1", 0)
    for i in range(2):
        assert assigned(arrive(e, f"x{i}", now=1 + i)) == [(f"x{i}", "a1")]
        e.handle(ContactEnded(T, f"x{i}"), 1.5 + i)
    login(e, "a2", 100)
    assert assigned(arrive(e, "c1", now=101)) == [("c1", "a2")]


def test_round_robin_cycles_through_agents() -> None:
    e = engine(QueueConfig("q", agent_selection=AgentSelection.ROUND_ROBIN))
    for agent in ("a1", "a2", "a3"):
        login(e, agent)
    got = []
    for i in range(5):
        [(contact, agent)] = assigned(arrive(e, f"c{i}", now=i))
        got.append(agent)
        e.handle(ContactEnded(T, contact), i + 0.5)
    assert got == ["a1", "a2", "a3", "a1", "a2"]


def test_preferred_agent_gets_the_contact_when_eligible_and_ready() -> None:
    e = engine(QueueConfig("q"))
    login(e, "a1", 0)
    login(e, "pref", 5)
    assert assigned(arrive(e, "c1", now=10, preferred_agent_id="pref")) == [("c1", "pref")]
    # preferred agent busy: the contact goes to another eligible agent
    assert assigned(arrive(e, "c2", now=11, preferred_agent_id="pref")) == [("c2", "a1")]


# --- contact order ----------------------------------------------------------------------------------


def test_higher_priority_first_then_arrival_order() -> None:
    e = engine(QueueConfig("q"))
    arrive(e, "low", now=0, priority=0)
    arrive(e, "first", now=1, priority=3)
    arrive(e, "second", now=2, priority=3)
    login(e, "a1", 3)
    served = []
    for i in range(3):
        view = e.get_agent(T, "a1")
        assert view is not None
        [contact] = view.active_contacts
        served.append(contact)
        e.handle(ContactEnded(T, contact), 4 + i)
    assert served == ["first", "second", "low"]


def test_aging_lets_a_low_priority_contact_overtake() -> None:
    e = engine(QueueConfig("q", aging_boost_per_minute=1.0))
    arrive(e, "old-low", now=0, priority=0)
    arrive(e, "new-high", now=60, priority=5)
    # at t=120: old-low 0+2=2, new-high 5+1=6
    assert assigned(login(e, "a1", 120)) == [("new-high", "a1")]

    e2 = engine(QueueConfig("q", aging_boost_per_minute=1.0))
    arrive(e2, "old-low", now=0, priority=0)
    arrive(e2, "new-high", now=600, priority=5)
    # at t=660: old-low 0+11=11, new-high 5+1=6: the old contact has overtaken
    assert assigned(login(e2, "a1", 660)) == [("old-low", "a1")]


def test_queue_priority_orders_contacts_across_queues() -> None:
    e = engine(QueueConfig("normal"), QueueConfig("vip", priority=10))
    arrive(e, "n1", "normal", now=0)
    arrive(e, "v1", "vip", now=100)
    assert assigned(login(e, "a1", 120)) == [("v1", "a1")]


def test_sla_boost_moves_a_contact_near_its_deadline_ahead() -> None:
    e = engine(QueueConfig("q", aging_boost_per_minute=0.0, sla_boost_window_seconds=300, sla_boost_priority=10))
    arrive(e, "plain", now=0, priority=5)
    arrive(e, "sla", now=1, priority=0, sla_deadline=1000)
    assert e.contact_position(T, "sla", 100) == (2, pytest.approx(360.0))
    # boost starts at 1000 - 300 = 700: 0 + 10 > 5
    assert e.contact_position(T, "sla", 700)[0] == 1  # type: ignore[index]
    assert assigned(login(e, "a1", 701)) == [("sla", "a1")]


def test_boost_entries_of_finished_contacts_do_not_pile_up_until_their_deadline() -> None:
    # A day-long SLA (email): contacts handled in minutes must not stay in the boost heap for a day.
    e = engine(QueueConfig("q", aging_boost_per_minute=0.0, sla_boost_window_seconds=300, sla_boost_priority=10))
    arrive(e, "early", now=0, priority=0, sla_deadline=86_400)  # still waiting when its boost comes
    for i in range(5_000):
        arrive(e, f"c{i}", now=1 + i * 0.01, priority=0, sla_deadline=86_400)
        e.handle(ContactAbandoned(T, f"c{i}"), 1 + i * 0.01)
    e.handle(Tick(T), 60)
    assert len(e._tenants[T].boosts) <= 2 * len(e._tenants[T].contacts) + 1000
    arrive(e, "plain", now=61, priority=5)
    assert e.contact_position(T, "early", 86_400 - 300)[0] == 1  # type: ignore[index]
    assert assigned(login(e, "a1", 86_400 - 299)) == [("early", "a1")]


# --- offers -------------------------------------------------------------------------------------------


def test_offer_accept_makes_the_agent_busy() -> None:
    e = engine(QueueConfig("q", offer_timeout_seconds=15))
    login(e, "a1")
    out = arrive(e, "c1", now=10)
    [a] = [o for o in out if isinstance(o, Assignment)]
    assert (a.agent_id, a.offered_at, a.offer_expires_at) == ("a1", 10, 25)
    assert [lc.agent_id for lc in lifecycles(out, LifecycleKind.OFFERED)] == ["a1"]
    assert AgentChanged(T, "a1", AgentState.RESERVED, "offer") in out
    assert lifecycles(out, LifecycleKind.ASSIGNED) == []
    out = e.handle(OfferAccepted(T, "a1", "c1"), 13)
    [lc] = lifecycles(out, LifecycleKind.ASSIGNED)
    assert lc.wait_seconds == 3
    assert state(e, "a1") is AgentState.BUSY
    stats = e.queue_stats(T, "q", 13)
    assert stats is not None and stats.answered == 1 and stats.wait_seconds_answered_sum == 3
    assert rejected(e.handle(OfferAccepted(T, "a1", "c1"), 14)) == ["no_pending_offer"]


@pytest.mark.parametrize("how", ["reject", "timeout"])
def test_missed_offer_requeues_the_contact_in_its_place_and_agent_goes_not_ready(how: str) -> None:
    e = engine(QueueConfig("q", offer_timeout_seconds=15, aging_boost_per_minute=0.0))
    login(e, "a1", 0)
    arrive(e, "c1", now=10)  # offered to a1
    arrive(e, "c2", now=11)  # waits behind
    if how == "reject":
        out = e.handle(OfferRejected(T, "a1", "c1"), 12)
    else:
        assert e.handle(Tick(T), 24.9) == []
        out = e.handle(Tick(T), 25)
    assert AgentChanged(T, "a1", AgentState.NOT_READY, "missed") in out
    [requeued] = lifecycles(out, LifecycleKind.REQUEUED)
    assert requeued.position == 1 and requeued.agent_id == "a1"
    assert requeued.reason == ("offer_rejected" if how == "reject" else "offer_timeout")
    assert e.contact_position(T, "c1", 30)[0] == 1  # type: ignore[index]
    assert e.contact_position(T, "c2", 30)[0] == 2  # type: ignore[index]
    # the next agent gets c1 first, with its wait counted from its first arrival
    out = login(e, "a2", 40)
    [a] = [o for o in out if isinstance(o, Assignment)]
    assert (a.contact_id, a.agent_id, a.wait_seconds) == ("c1", "a2", 30)


def test_answering_an_offer_accepts_it() -> None:
    e = engine(QueueConfig("q", offer_timeout_seconds=15))
    login(e, "a1")
    arrive(e, "c1", now=1)
    out = e.handle(ContactAnswered(T, "c1", "a1"), 3)
    assert [lc.kind for lc in out if isinstance(lc, Lifecycle)] == [LifecycleKind.ASSIGNED, LifecycleKind.ANSWERED]
    assert state(e, "a1") is AgentState.BUSY
    assert e.handle(Tick(T), 100) == []  # the offer timer is void


def test_abandon_during_offer_frees_the_agent() -> None:
    e = engine(QueueConfig("q", offer_timeout_seconds=15))
    login(e, "a1")
    arrive(e, "c1", now=1)
    out = e.handle(ContactAbandoned(T, "c1"), 8)
    [ab] = lifecycles(out, LifecycleKind.ABANDONED)
    assert ab.wait_seconds == 7 and ab.agent_id == "a1"
    assert state(e, "a1") is AgentState.READY
    assert assigned(arrive(e, "c2", now=9)) != []


def test_logout_with_a_pending_offer_requeues_it() -> None:
    e = engine(QueueConfig("q", offer_timeout_seconds=15))
    login(e, "a1")
    arrive(e, "c1", now=1)
    out = e.handle(AgentLogout(T, "a1"), 2)
    assert AgentChanged(T, "a1", AgentState.LOGGED_OUT, "logout") in out
    assert [lc.reason for lc in lifecycles(out, LifecycleKind.REQUEUED)] == ["agent_logout"]
    assert e.contact_status(T, "c1") is ContactStatus.WAITING


def test_offers_to_a_busy_chat_agent_one_at_a_time_and_a_miss_applies_after_its_chats() -> None:
    e = engine(QueueConfig("q", channel=C, offer_timeout_seconds=10))
    login(e, "a1")
    arrive(e, "c1", now=0, channel=C)
    e.handle(OfferAccepted(T, "a1", "c1"), 1)
    out = arrive(e, "c2", now=2, channel=C)
    assert assigned(out) == [("c2", "a1")] and state(e, "a1") is AgentState.BUSY
    assert assigned(arrive(e, "c3", now=3, channel=C)) == []  # an offer is pending: no second one
    out = e.handle(OfferRejected(T, "a1", "c2"), 4)
    assert [lc.contact_id for lc in lifecycles(out, LifecycleKind.REQUEUED)] == ["c2"]
    assert state(e, "a1") is AgentState.BUSY and assigned(out) == []  # keeps its chat, takes no more
    out = e.handle(ContactEnded(T, "c1"), 20)
    assert AgentChanged(T, "a1", AgentState.NOT_READY, "missed") in out


# --- contact end, wrap-up, abandon, voicemail, queue limits ---------------------------------------------


def test_answered_and_ended_report_wait_talk_hold_wrap() -> None:
    e = engine(QueueConfig("q", wrap_up_seconds=30))
    login(e, "a1")
    arrive(e, "c1", now=0)
    login(e, "a0", 1, ready=False)
    out = e.handle(ContactAnswered(T, "c1", "a1"), 4)
    [ans] = lifecycles(out, LifecycleKind.ANSWERED)
    assert ans.wait_seconds == 0 and ans.answered
    assert rejected(e.handle(ContactAnswered(T, "c1", "a0"), 5)) == ["not_assigned_to_agent"]
    out = e.handle(ContactEnded(T, "c1", talk_seconds=100, hold_seconds=20), 130)
    [end] = lifecycles(out, LifecycleKind.ENDED)
    assert (end.agent_id, end.talk_seconds, end.hold_seconds, end.wrap_seconds) == ("a1", 100, 20, 30)
    assert end.answered
    assert AgentChanged(T, "a1", AgentState.WRAP_UP, "wrap_up") in out
    assert e.contact_status(T, "c1") is ContactStatus.ENDED
    assert rejected(e.handle(ContactEnded(T, "c1"), 131)) == ["contact_finished"]


def test_wrap_up_expires_on_tick_and_then_the_agent_takes_waiting_work() -> None:
    e = engine(QueueConfig("q", wrap_up_seconds=30))
    login(e, "a1")
    arrive(e, "c1", now=0)
    e.handle(ContactEnded(T, "c1", talk_seconds=50), 50)
    arrive(e, "c2", now=60)
    assert e.handle(Tick(T), 79.9) == []
    assert state(e, "a1") is AgentState.WRAP_UP
    out = e.handle(Tick(T), 80)
    assert AgentChanged(T, "a1", AgentState.READY, "wrap_up_expired") in out
    assert assigned(out) == [("c2", "a1")]


def test_wrap_up_done_ends_wrap_up_early() -> None:
    e = engine(QueueConfig("q", wrap_up_seconds=30))
    login(e, "a1")
    arrive(e, "c1", now=0)
    e.handle(ContactEnded(T, "c1", talk_seconds=50), 50)
    out = e.handle(WrapUpDone(T, "a1"), 55)
    assert out == [AgentChanged(T, "a1", AgentState.READY, "wrap_up_done")]
    assert e.handle(Tick(T), 100) == []  # the old wrap-up timer is void


def test_no_wrap_up_goes_straight_to_ready() -> None:
    e = engine(QueueConfig("q"))
    login(e, "a1")
    arrive(e, "c1", now=0)
    out = e.handle(ContactEnded(T, "c1", talk_seconds=5), 10)
    assert AgentChanged(T, "a1", AgentState.READY, "contact_ended") in out


def test_not_ready_while_busy_applies_after_the_contact() -> None:
    e = engine(QueueConfig("q", channel=C))
    login(e, "a1")
    arrive(e, "c1", now=0, channel=C)
    assert e.handle(AgentNotReady(T, "a1", "lunch"), 1) == []
    assert state(e, "a1") is AgentState.BUSY
    assert assigned(arrive(e, "c2", now=2, channel=C)) == []  # no new chats for a leaving agent
    out = e.handle(ContactEnded(T, "c1"), 10)
    assert AgentChanged(T, "a1", AgentState.NOT_READY, "lunch") in out and assigned(out) == []


def test_abandon_while_waiting_counts_short_and_after_threshold() -> None:
    e = engine(QueueConfig("q", short_abandon_seconds=5, service_level_seconds=20))
    arrive(e, "c1", now=0)
    arrive(e, "c2", now=0)
    arrive(e, "c3", now=0)
    out = e.handle(ContactAbandoned(T, "c1"), 3)
    [ab] = lifecycles(out, LifecycleKind.ABANDONED)
    assert (ab.wait_seconds, ab.reason) == (3, "short")
    [ab] = lifecycles(e.handle(ContactAbandoned(T, "c2"), 10), LifecycleKind.ABANDONED)
    assert (ab.wait_seconds, ab.reason) == (10, "")
    e.handle(ContactAbandoned(T, "c3"), 25)
    stats = e.queue_stats(T, "q", 30)
    assert stats is not None
    assert (stats.offered, stats.abandoned, stats.short_abandoned, stats.abandoned_after_sl, stats.waiting) == (
        3, 3, 1, 1, 0)
    assert stats.service_level == 0.0  # 0 answered within / (0 answered + 1 abandoned after T)
    assert e.contact_status(T, "c1") is ContactStatus.ABANDONED


def test_abandon_after_assignment_is_an_end_without_talk() -> None:
    e = engine(QueueConfig("q"))
    login(e, "a1")
    arrive(e, "c1", now=0)
    out = e.handle(ContactAbandoned(T, "c1"), 5)
    [end] = lifecycles(out, LifecycleKind.ENDED)
    assert (end.talk_seconds, end.reason, end.answered) == (0, "abandoned", False)
    assert lifecycles(out, LifecycleKind.ABANDONED) == []
    assert state(e, "a1") is AgentState.READY
    stats = e.queue_stats(T, "q", 5)
    assert stats is not None and stats.abandoned == 0 and stats.answered == 1


def test_max_wait_sends_the_contact_to_voicemail_on_tick() -> None:
    e = engine(QueueConfig("q", max_wait_seconds=60))
    arrive(e, "c1", now=0)
    assert e.handle(Tick(T), 59) == []
    out = e.handle(Tick(T), 61)
    [vm] = lifecycles(out, LifecycleKind.VOICEMAIL)
    assert (vm.contact_id, vm.reason, vm.wait_seconds) == ("c1", "max_wait", 61)
    assert e.contact_status(T, "c1") is ContactStatus.VOICEMAIL
    stats = e.queue_stats(T, "q", 61)
    assert stats is not None and stats.waiting == 0 and stats.voicemail == 1


def test_max_length_rejects_arrivals_beyond_it() -> None:
    e = engine(QueueConfig("q", max_length=2))
    arrive(e, "c1")
    arrive(e, "c2")
    out = arrive(e, "c3")
    [rej] = lifecycles(out, LifecycleKind.REJECTED)
    assert rej.reason == "queue_full"
    assert e.contact_status(T, "c3") is ContactStatus.REJECTED
    e.handle(ContactAbandoned(T, "c1"), 1)
    assert lifecycles(arrive(e, "c4", now=2), LifecycleKind.QUEUED) != []
    stats = e.queue_stats(T, "q", 2)
    assert stats is not None and (stats.offered, stats.rejected) == (3, 1)


def test_unknown_queue_is_implicit_unless_strict() -> None:
    e = engine(QueueConfig("q"))
    out = arrive(e, "c1", "elsewhere", skills={"x": 2})
    assert lifecycles(out, LifecycleKind.QUEUED)
    assert "elsewhere" in e.list_queues(T)
    login(e, "plain")
    assert e.contact_status(T, "c1") is ContactStatus.WAITING  # implicit queue: the contact's skills hold
    assert assigned(login(e, "skilled", skills={"x": 2})) == [("c1", "skilled")]

    strict = engine(QueueConfig("q"), strict=True)
    [rej] = lifecycles(arrive(strict, "c1", "elsewhere"), LifecycleKind.REJECTED)
    assert rej.reason == "unknown_queue"
    assert strict.list_queues(T) == ["q"]


def test_ended_while_waiting_is_an_abandon_and_contact_queue_is_known_while_live() -> None:
    e = engine(QueueConfig("q"))
    arrive(e, "c1", now=0)
    assert e.contact_queue(T, "c1") == "q"
    [ab] = lifecycles(e.handle(ContactEnded(T, "c1"), 30), LifecycleKind.ABANDONED)
    assert ab.wait_seconds == 30
    assert e.contact_queue(T, "c1") is None and e.get_contact(T, "c1") is None


def test_contact_arriving_inside_its_sla_window_is_boosted_at_once() -> None:
    e = engine(QueueConfig("q", aging_boost_per_minute=0.0, sla_boost_window_seconds=300, sla_boost_priority=10))
    arrive(e, "plain", now=0, priority=5)
    arrive(e, "urgent", now=1, sla_deadline=200)
    assert e.contact_position(T, "urgent", 1)[0] == 1  # type: ignore[index]


def test_channel_mismatch_is_rejected() -> None:
    e = engine(QueueConfig("q", channel=V))
    [rej] = lifecycles(arrive(e, "c1", channel=E), LifecycleKind.REJECTED)
    assert rej.reason == "channel_mismatch"


# --- KPIs, position, estimated wait --------------------------------------------------------------------


def test_service_level_and_asa() -> None:
    e = engine(QueueConfig("q", service_level_seconds=20, short_abandon_seconds=5))
    for i, wait in enumerate((5, 15, 30)):
        arrive(e, f"c{i}", now=100 * i)
        login(e, f"a{i}", 100 * i + wait)
    arrive(e, "short", now=400)
    e.handle(ContactAbandoned(T, "short"), 402)
    arrive(e, "late", now=500)
    e.handle(ContactAbandoned(T, "late"), 525)
    arrive(e, "early", now=600)
    e.handle(ContactAbandoned(T, "early"), 610)
    stats = e.queue_stats(T, "q", 700)
    assert stats is not None
    assert (stats.offered, stats.answered, stats.answered_within_sl, stats.abandoned, stats.short_abandoned,
            stats.abandoned_after_sl) == (6, 3, 2, 3, 1, 1)
    assert stats.wait_seconds_answered_sum == 50
    assert stats.service_level == pytest.approx(2 / 4)
    assert stats.asa_seconds == pytest.approx(50 / 3)


def test_empty_queue_stats_have_no_ratios() -> None:
    e = engine(QueueConfig("q"))
    stats = e.queue_stats(T, "q", 0)
    assert stats is not None and stats.service_level is None and stats.asa_seconds is None
    assert stats.waiting == 0 and stats.oldest_wait_seconds == 0
    assert e.queue_stats(T, "nope", 0) is None


def test_position_and_estimated_wait() -> None:
    e = engine(QueueConfig("q", default_handle_seconds=180, aging_boost_per_minute=0.0))
    login(e, "a1", 0)
    login(e, "a2", 0)
    arrive(e, "x1", now=0)
    arrive(e, "x2", now=0)  # both agents busy now
    out = [arrive(e, f"c{i}", now=1 + i) for i in range(3)]
    got = [(q.position, q.estimated_wait_seconds) for o in out for q in lifecycles(o, LifecycleKind.QUEUED)]
    assert got == [(1, 90.0), (2, 180.0), (3, 270.0)]
    # a contact of higher priority jumps ahead of them
    [high] = lifecycles(arrive(e, "vip", now=10, priority=5), LifecycleKind.QUEUED)
    assert high.position == 1
    assert e.contact_position(T, "c2", 10) == (4, 360.0)
    # observed handle time replaces the default: x1 handled 60 s
    e.handle(ContactEnded(T, "x1", talk_seconds=50, hold_seconds=10), 60)  # a1 takes vip
    assert e.contact_position(T, "c2", 60) == (3, pytest.approx(3 / 2 * 60))
    assert e.contact_position(T, "x2", 60) is None  # not waiting
    stats = e.queue_stats(T, "q", 61)
    assert stats is not None and stats.waiting == 3 and stats.oldest_wait_seconds == 60
    assert stats.agents_by_state["busy"] == 2


def test_estimated_wait_counts_only_working_eligible_agents() -> None:
    e = engine(QueueConfig("q", skills={"s": 1}))
    login(e, "a1", skills={"s": 1})
    login(e, "a2", skills={"s": 1})
    login(e, "away", skills={"s": 1}, ready=False)
    login(e, "unskilled")
    arrive(e, "x1")
    arrive(e, "x2")
    [q] = lifecycles(arrive(e, "c1", now=1), LifecycleKind.QUEUED)
    assert q.estimated_wait_seconds == 90.0  # 1 / 2 working eligible agents × 180


# --- input validation, tenants, queries, reload -----------------------------------------------------------


def test_bad_inputs_are_rejected_not_raised() -> None:
    e = engine(QueueConfig("q"))
    assert rejected(e.handle(AgentReady(T, "ghost"), 0)) == ["unknown_agent"]
    assert rejected(e.handle(AgentReady("no-such-tenant", "ghost"), 0)) == ["unknown_agent"]
    assert rejected(e.handle(ContactEnded("no-such-tenant", "c"), 0)) == ["unknown_contact"]
    assert rejected(e.handle(object(), 0)) == ["missing_tenant_id"]
    login(e, "a1")
    assert rejected(login(e, "a1", ready=False)) == ["already_logged_in"]
    assert rejected(login(e, "a2", skills={"s": 9}, ready=False)) == ["invalid_skill_level"]
    assert rejected(e.handle(OfferAccepted(T, "a1", "c9"), 0)) == ["no_pending_offer"]
    arrive(e, "c1")
    assert rejected(arrive(e, "c1")) == ["contact_already_known"]
    assert rejected(e.handle(AgentLogout(T, "a1"), 1)) == ["agent_has_active_contacts"]
    assert rejected(e.handle(ContactAbandoned(T, "zz"), 1)) == ["unknown_contact"]
    assert rejected(e.handle(ContactEnded(T, "c1", talk_seconds=-1), 1)) == ["negative_duration"]
    assert rejected(arrive(e, "c2", channel="fax")) == ["invalid_channel"]  # type: ignore[arg-type]
    assert state(e, "a1") is AgentState.BUSY  # nothing changed


def test_tenants_are_independent_and_unknown_tenant_uses_default_queues() -> None:
    e = engine(QueueConfig("q"), default_queues=[QueueConfig("general", channel=E)])
    login(e, "a1", tenant="other")
    assert assigned(arrive(e, "c1")) == []  # acme has no agent; other's agent is not used
    assert e.list_queues("other") == ["general"]
    [rej] = lifecycles(arrive(e, "v1", "general", channel=V, tenant="other"), LifecycleKind.REJECTED)
    assert rej.reason == "channel_mismatch"
    assert assigned(arrive(e, "m1", "general", channel=E, tenant="other")) == [("m1", "a1")]
    # the same ids in two tenants are different things
    assert assigned(login(e, "a1")) == [("c1", "a1")]


def test_logout_then_login_again_updates_skills() -> None:
    e = engine(QueueConfig("q", skills={"s": 3}))
    login(e, "a1", skills={"s": 1})
    assert e.handle(AgentLogout(T, "a1"), 1) == [AgentChanged(T, "a1", AgentState.LOGGED_OUT, "logout")]
    arrive(e, "c1", now=2)
    assert assigned(login(e, "a1", 3, skills={"s": 3})) == [("c1", "a1")]


def test_list_agents_filters() -> None:
    e = engine(QueueConfig("q", skills={"s": 2}))
    login(e, "b", skills={"s": 2})
    login(e, "a", skills={"t": 1}, ready=False)
    login(e, "c", skills={"s": 1})
    assert [v.agent_id for v in e.list_agents(T)] == ["a", "b", "c"]
    assert [v.agent_id for v in e.list_agents(T, state=AgentState.READY)] == ["b", "c"]
    assert [v.agent_id for v in e.list_agents(T, skill="s")] == ["b", "c"]
    assert [v.agent_id for v in e.list_agents(T, queue_id="q")] == ["b"]
    assert e.list_agents("nobody") == [] and e.get_agent(T, "zz") is None
    stats = e.queue_stats(T, "q", 0)
    assert stats is not None and stats.agents_by_state["ready"] == 1 and stats.agents_by_state["not_ready"] == 0


def test_reload_applies_new_requirements_on_the_next_event() -> None:
    e = engine(QueueConfig("q", skills={"s": 3}))
    login(e, "a1", skills={"s": 2})
    arrive(e, "c1", now=1)
    e.reload(config(QueueConfig("q", skills={"s": 2})))
    out = e.handle(Tick(T), 2)
    assert assigned(out) == [("c1", "a1")]


def test_same_inputs_give_the_same_outputs() -> None:
    def run() -> list[Decision]:
        e = engine(QueueConfig("q", offer_timeout_seconds=5, wrap_up_seconds=3), QueueConfig("c", channel=C))
        out: list[Decision] = []
        for i in range(4):
            out += login(e, f"a{i}", i, skills={"s": i + 1})
        for i in range(12):
            out += arrive(e, f"k{i}", "q" if i % 2 else "c", now=10 + i, channel=V if i % 2 else C, priority=i % 3)
            out += e.handle(Tick(T), 10 + i + 0.5)
        return out

    assert run() == run()


# --- invariants over random event sequences ---------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from services.routing.domain import BLOCKING_CHANNELS, DEFAULT_CAPACITY  # noqa: E402

PROPERTY_QUEUES = (
    # relaxation: s1 2 -> s1 1 (any language) after 20 s -> anyone after 60 s; callbacks after 50 s
    QueueConfig("voice", channel=V, skills={"s1": 2}, wrap_up_seconds=5, language="en",
                steps=(Step(20, {"s1": 1}, keep_language=False), Step(60, {}, keep_language=False)),
                max_wait_seconds=50, max_wait_action=Action.CALLBACK),
    QueueConfig("chat", channel=C, language="en", agent_selection=AgentSelection.FEWEST_CONTACTS,
                preferred_agent_wait_seconds=30),
    QueueConfig("any", offer_timeout_seconds=10, max_wait_seconds=60, max_length=3,
                agent_selection=AgentSelection.ROUND_ROBIN, wrap_up_seconds=3,
                overflow=Overflow(queue="skilled", after_seconds=45, when_no_agents=True)),
    QueueConfig("skilled", skills={"s2": 1}, agent_selection=AgentSelection.MOST_SKILLED,
                offer_timeout_seconds=5, sla_boost_window_seconds=20, preferred_agent_wait_seconds=15,
                overflow=Overflow(site="remote", after_seconds=90)),
    # 1970-01-01 (the tests' clock starts there) was a Thursday
    QueueConfig("night", hours=Hours("UTC", {3: ((5, 12), (25, 40))}), closed_action=Action.CALLBACK,
                max_wait_seconds=40, max_wait_action=Action.OFFLINE_MESSAGE, steps=(Step(30),)),
    QueueConfig("closed", hours=Hours("Europe/Madrid", {0: ((8 * 60, 18 * 60),)}), closed_action=Action.QUEUE,
                overflow=Overflow(queue="voice", when_no_agents=True)),
)
TENANTS = (T, "other")  # "other" has no queues of its own: implicit queues with the defaults
AGENTS = ("a1", "a2", "a3", "a4")
CONTACTS = tuple(f"c{i}" for i in range(16))
QUEUE_IDS = ("voice", "chat", "any", "skilled", "adhoc", "night", "closed")
CHANNELS = (V, V, C, C, E, Channel.SMS)
ALL_KINDS = (
    "login", "login", "ready", "ready", "not_ready", "logout", "wrap_done", "accept", "accept", "reject",
    "arrive", "arrive", "arrive", "arrive", "arrive", "arrive", "answer", "abandon", "end", "end", "tick", "tick",
    "callback", "transfer",
)
TERMINAL_KINDS = (LifecycleKind.ENDED, LifecycleKind.ABANDONED, LifecycleKind.VOICEMAIL, LifecycleKind.REJECTED,
                  LifecycleKind.OFFLINE_MESSAGE)
# A busy contact center: few agents, many arrivals, so agents fill up to their capacity.
LOADED_KINDS = ("login", "ready", "accept", "accept", "tick", "end", *["arrive"] * 8)

skills_st = st.dictionaries(st.sampled_from(["s1", "s2"]), st.integers(1, 3), max_size=2)
languages_st = st.frozensets(st.sampled_from(["en", "es"]), max_size=2)
capacity_st = st.fixed_dictionaries(  # small capacities fill up quickly
    {C: st.integers(1, 2), E: st.integers(0, 2), Channel.SMS: st.integers(0, 2)}, optional={V: st.integers(0, 1)})


class Model:
    """What the test knows from what it sent and what came back, to judge the engine by."""

    def __init__(self, agents: Sequence[str] = AGENTS, kinds: Sequence[str] = ALL_KINDS,
                 simple_contacts: bool = False) -> None:
        self.e = RoutingEngine(config(*PROPERTY_QUEUES))
        self.agents = tuple(agents)  # the agent ids events use
        self.kinds = tuple(kinds)  # the event kinds drawn from (repeats weigh more)
        self.simple_contacts = simple_contacts  # contacts any agent may take (only capacity limits)
        self.logins: dict[tuple[str, str], AgentLogin] = {}  # last accepted login
        self.arrivals: dict[tuple[str, str], ContactArrived] = {}  # accepted (queued or rejected)
        self.holder: dict[tuple[str, str], str] = {}  # contact -> agent it is offered/assigned to
        self.finished: set[tuple[str, str]] = set()
        self.pending: set[tuple[str, str]] = set()  # busy agents who asked for not-ready
        self.now = 0.0
        self.last_event: object = None

    def send(self, event: object) -> list[Decision]:
        agent_key = (getattr(event, "tenant_id", ""), getattr(event, "agent_id", ""))
        before = self.e.get_agent(*agent_key)
        out = self.e.handle(event, self.now)
        self.last_event = event
        # A not-ready asked for while busy (or an offer missed while busy) waits for the contacts.
        after = self.e.get_agent(*agent_key)
        busy = (AgentState.BUSY, AgentState.RESERVED)
        if before is not None and after is not None and before.state in busy and not rejected(out):
            if isinstance(event, AgentNotReady | OfferRejected) and after.state in busy:
                self.pending.add(agent_key)
            elif isinstance(event, AgentReady):
                self.pending.discard(agent_key)
        for o in out:
            if isinstance(o, AgentChanged) and o.reason == "login":
                assert isinstance(event, AgentLogin)
                self.logins[(o.tenant_id, o.agent_id)] = event
            if isinstance(o, AgentChanged) and o.state not in (AgentState.BUSY, AgentState.RESERVED):
                self.pending.discard((o.tenant_id, o.agent_id))
            if isinstance(o, Assignment):
                key = (o.tenant_id, o.contact_id)
                assert key not in self.holder, f"{key} assigned twice"
                self.holder[key] = o.agent_id
            if isinstance(o, Lifecycle):
                key = (o.tenant_id, o.contact_id)
                terminal = o.kind in TERMINAL_KINDS or (o.kind is LifecycleKind.OVERFLOWED
                                                        and o.reason.startswith("site:"))
                if (isinstance(event, ContactArrived) and event.contact_id == o.contact_id
                        and key not in self.arrivals):  # the arrival is accepted, refused or sent away at once
                    assert o.kind in (LifecycleKind.QUEUED, LifecycleKind.REJECTED, LifecycleKind.VOICEMAIL,
                                      LifecycleKind.OFFLINE_MESSAGE)
                    self.arrivals[key] = event
                elif o.kind is LifecycleKind.QUEUED:  # only a first arrival, an overflow or a transfer queues
                    assert o.reason.startswith(("overflow:", "transfer:")) and key in self.arrivals
                    assert key not in self.holder
                if o.kind is LifecycleKind.TRANSFERRED:
                    assert isinstance(event, ContactTransferred) and o.reason == f"queue:{event.queue_id}"
                    if o.agent_id:  # an agent's leg (assigned); an offered one is withdrawn without it
                        assert self.holder.get(key) == o.agent_id
                    self.holder.pop(key, None)
                if o.kind is LifecycleKind.OVERFLOWED:
                    assert key not in self.holder, "an offered or assigned contact never overflows"
                if o.kind in (LifecycleKind.REQUEUED, LifecycleKind.ENDED, LifecycleKind.ABANDONED):
                    self.holder.pop(key, None)
                if o.kind is LifecycleKind.REQUEUED and o.reason == "offer_timeout":
                    missed = self.e.get_agent(o.tenant_id, o.agent_id)
                    if missed is not None and missed.state in (AgentState.BUSY, AgentState.RESERVED):
                        self.pending.add((o.tenant_id, o.agent_id))
                if terminal:
                    assert key not in self.holder or o.kind in (LifecycleKind.ENDED, LifecycleKind.ABANDONED)
                    assert key not in self.finished, f"{key} finished twice"
                    self.finished.add(key)
        return out

    def check(self) -> None:
        for tenant in TENANTS:
            self.check_tenant(tenant)

    def check_tenant(self, tenant: str) -> None:
        e = self.e
        views = {v.agent_id: v for v in e.list_agents(tenant)}
        held_by: dict[str, str] = {}
        for agent_id, view in views.items():
            per_channel: dict[Channel, int] = {}
            for contact_id in view.active_contacts:
                assert contact_id not in held_by, f"{contact_id} held by {held_by[contact_id]} and {agent_id}"
                held_by[contact_id] = agent_id
                contact = e.get_contact(tenant, contact_id)
                assert contact is not None and contact.agent_id == agent_id
                assert contact.status in (ContactStatus.OFFERED, ContactStatus.ASSIGNED)
                per_channel[contact.channel] = per_channel.get(contact.channel, 0) + 1
            for channel, n in per_channel.items():
                assert n <= view.capacity[channel], f"{agent_id} over capacity on {channel}"
                if channel in BLOCKING_CHANNELS:
                    assert set(per_channel) == {channel}, f"{agent_id} mixes {channel} with others"
            if view.state in (AgentState.READY, AgentState.NOT_READY, AgentState.WRAP_UP, AgentState.LOGGED_OUT):
                assert view.active_contacts == ()
            else:
                assert view.active_contacts != ()

        # every arrived contact is in exactly one of waiting / active / terminal, and agrees with outputs
        waiting: list[str] = []
        for (t, contact_id), _ in self.arrivals.items():
            if t != tenant:
                continue
            status = e.contact_status(tenant, contact_id)
            assert status is not None
            is_waiting = status is ContactStatus.WAITING
            is_active = status in (ContactStatus.OFFERED, ContactStatus.ASSIGNED)
            assert [is_waiting, is_active, status.terminal].count(True) == 1
            assert is_active == (contact_id in held_by) == ((tenant, contact_id) in self.holder)
            if is_active:
                assert self.holder[(tenant, contact_id)] == held_by[contact_id]
            assert status.terminal == ((tenant, contact_id) in self.finished)
            if is_waiting:
                waiting.append(contact_id)
        assert sorted(e.list_contacts(tenant)) == sorted(
            cid for (t, cid) in self.arrivals if t == tenant and (t, cid) not in self.finished)
        total_waiting = 0
        for queue_id in e.list_queues(tenant):
            stats = e.queue_stats(tenant, queue_id, self.now)
            assert stats is not None
            total_waiting += stats.waiting
        assert total_waiting == len(waiting)

        # no READY agent (nor busy one with room on a multi-capacity channel) idles while a
        # contact it may take waits
        for contact_id in waiting:
            contact = e.get_contact(tenant, contact_id)
            assert contact is not None
            position = e.contact_position(tenant, contact_id, self.now)
            assert position is not None and 1 <= position[0] <= len(waiting)
            if contact.held_until is not None:  # accepted while closed: nobody takes it before the opening
                assert contact.held_until > self.now or self.last_event != Tick(tenant)
                continue
            for agent_id, view in views.items():
                if contact.reserved_for and agent_id != contact.reserved_for:
                    continue  # reserved for its preferred agent
                if not self.has_room(tenant, view, contact.channel):
                    continue
                login = self.logins[(tenant, agent_id)]
                eligible = (
                    (not login.queues or contact.queue_id in login.queues)
                    and all(view.skills.get(s, 0) >= lvl for s, lvl in contact.skills.items())
                    and contact.languages <= view.languages
                )
                assert not eligible, f"{agent_id} ({view.state.value}) may take waiting {contact_id}"

    def has_room(self, tenant: str, view: AgentView, channel: Channel) -> bool:
        capacity = view.capacity[channel]
        if view.state is AgentState.READY:
            return capacity > 0
        if view.state is not AgentState.BUSY or (tenant, view.agent_id) in self.pending or capacity <= 1:
            return False
        held = [self.e.get_contact(tenant, c) for c in view.active_contacts]
        if any(c is None or c.status is ContactStatus.OFFERED for c in held):
            return False
        channels = [c.channel for c in held if c is not None]
        if channels.count(channel) >= capacity:
            return False
        if channel in BLOCKING_CHANNELS:
            return all(ch is channel for ch in channels)
        return not any(ch in BLOCKING_CHANNELS for ch in channels)


def random_event(data: st.DataObject, m: Model) -> object:
    """Mostly events that make sense in the current state, sometimes ones that do not."""
    tenant = data.draw(st.sampled_from([T, T, T, "other"]), label="tenant")
    kind = data.draw(st.sampled_from(m.kinds), label="kind")
    e = m.e
    live = e.list_contacts(tenant)
    offered = [c for c in live if (view := e.get_contact(tenant, c)) and view.status is ContactStatus.OFFERED]
    active = [c for c in live if (tenant, c) in m.holder]
    agents = {v.agent_id: v.state for v in e.list_agents(tenant)}

    def pick(pool: Sequence[str], fallback: Sequence[str], label: str) -> str:
        use_pool = pool and data.draw(st.integers(0, 9), label="sensible") > 0
        return data.draw(st.sampled_from(list(pool) if use_pool else list(fallback)), label=label)

    if kind == "login":
        agent = pick([a for a in m.agents if agents.get(a, AgentState.LOGGED_OUT) is AgentState.LOGGED_OUT],
                     m.agents, "agent")
        return AgentLogin(tenant, agent, data.draw(skills_st, label="skills"),
                          data.draw(languages_st, label="languages") | data.draw(st.sampled_from([{"en"}, set()])),
                          data.draw(capacity_st, label="capacity"),
                          data.draw(st.frozensets(st.sampled_from(QUEUE_IDS), max_size=2), label="queues"))
    if kind in ("ready", "not_ready", "logout", "wrap_done"):
        wanted = {"ready": (AgentState.NOT_READY, AgentState.WRAP_UP), "wrap_done": (AgentState.WRAP_UP,),
                  "not_ready": tuple(AgentState), "logout": tuple(AgentState)}[kind]
        agent = pick([a for a, s in agents.items() if s in wanted], m.agents, "agent")
        if kind == "ready":
            return AgentReady(tenant, agent)
        if kind == "not_ready":
            return AgentNotReady(tenant, agent, data.draw(st.sampled_from(["break", "lunch"])))
        return AgentLogout(tenant, agent) if kind == "logout" else WrapUpDone(tenant, agent)
    if kind in ("accept", "reject"):
        contact = pick(offered, CONTACTS, "contact")
        holder = m.holder.get((tenant, contact)) or data.draw(st.sampled_from(m.agents))
        return (OfferAccepted if kind == "accept" else OfferRejected)(tenant, holder, contact)
    if kind == "arrive" and m.simple_contacts:
        fresh = [c for c in CONTACTS if (tenant, c) not in m.arrivals]
        return ContactArrived(tenant, pick(fresh, CONTACTS, "contact"), "cust",
                              data.draw(st.sampled_from(CHANNELS), label="channel"),
                              data.draw(st.sampled_from(["adhoc", "any"]), label="queue"))
    if kind == "arrive":
        fresh = [c for c in CONTACTS if (tenant, c) not in m.arrivals]
        return ContactArrived(
            tenant, pick(fresh, CONTACTS, "contact"), "cust",
            data.draw(st.sampled_from(CHANNELS), label="channel"),
            data.draw(st.sampled_from(QUEUE_IDS), label="queue"),
            priority=data.draw(st.integers(0, 3)),
            skills=data.draw(st.just({}) | skills_st, label="contact skills"),
            language=data.draw(st.sampled_from(["", "", "en", "es"]), label="language"),
            sla_deadline=data.draw(st.none() | st.floats(0, 100).map(lambda d: m.now + d), label="sla"),
            preferred_agent_id=data.draw(st.sampled_from(["", "", *m.agents]), label="preferred"),
        )
    if kind == "answer":
        contact = pick(active, CONTACTS, "contact")
        return ContactAnswered(tenant, contact, m.holder.get((tenant, contact)) or data.draw(st.sampled_from(m.agents)))
    if kind == "abandon":
        return ContactAbandoned(tenant, pick(live, CONTACTS, "contact"))
    if kind == "callback":
        return ContactCallbackRequested(tenant, pick(live, CONTACTS, "contact"))
    if kind == "transfer":
        return ContactTransferred(tenant, pick(live, CONTACTS, "contact"),
                                  data.draw(st.sampled_from([*QUEUE_IDS, "nowhere"]), label="target"),
                                  talk_seconds=data.draw(st.floats(0, 100), label="talk"))
    if kind == "end":
        return ContactEnded(tenant, pick(active or live, CONTACTS, "contact"),
                            talk_seconds=data.draw(st.floats(0, 100), label="talk"))
    return Tick(tenant)


def run_random_events(data: st.DataObject, m: Model, max_steps: int) -> None:
    for _ in range(data.draw(st.integers(1, max_steps), label="steps")):
        m.now += data.draw(st.sampled_from([0.0, 0.5, 2.0, 7.0, 30.0]), label="dt")
        m.send(random_event(data, m))
        m.check()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_invariants_hold_after_every_event(data: st.DataObject) -> None:
    run_random_events(data, Model(), max_steps=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_invariants_hold_under_load(data: st.DataObject) -> None:
    run_random_events(data, Model(agents=AGENTS[:2], kinds=LOADED_KINDS, simple_contacts=True), max_steps=40)


def test_default_capacity_matches_the_brief() -> None:
    assert (DEFAULT_CAPACITY[V], DEFAULT_CAPACITY[C], DEFAULT_CAPACITY[E]) == (1, 3, 5)
