"""The simulator's pure state machine (switchboard_dev/simulate.py): virtual time, no Kafka."""

from __future__ import annotations

import io
import json
import re
import statistics

import pytest

from services.ingestion.parse import Limits, event_from_json, validate
from switchboard_dev.agent_json import agent_event_from_json
from switchboard_dev.simulate import (
    AGENT_TEMPLATES,
    DEMO_CUSTOMERS,
    Emit,
    Progress,
    SimConfig,
    Simulator,
    Stats,
    demo_profiles,
    email_address,
    phone_number,
    rfc3339,
)

T0 = 1_800_000_000.0  # virtual start


def first_arrival(sim: Simulator, channels: tuple[str, ...] = ("voice", "chat", "email", "sms")) -> Emit:
    """Advances until a contact on one of `channels` arrives; returns its arrived event."""
    t = sim.start_at
    while True:
        t += 0.5
        for e in sim.advance(t):
            if e.event.get("step") == "arrived" and e.event["channel"] in channels:
                return e


def for_contact(emits: list[Emit], contact_id: str) -> list[Emit]:
    return [e for e in emits if e.kind == "contact" and e.event["contact_id"] == contact_id]


def test_assignment_leads_to_answered_then_ended_then_wrap_up_done() -> None:
    sim = Simulator(SimConfig(seed=1, rate=0.5, answer_delay=1.0, wrap_delay=3.0), T0)
    arrived = first_arrival(sim, ("voice",))
    cid = arrived.event["contact_id"]
    contact = sim.contacts[cid]
    t_assign = arrived.at + 0.25
    assert for_contact(sim.advance(t_assign), cid) == []
    assert sim.on_assignment(cid, "a-3", t_assign)
    assert sim.stats.assigned == 1

    assert for_contact(sim.advance(t_assign + 0.999), cid) == []
    answered = for_contact(sim.advance(t_assign + 1.0), cid)
    assert [e.event["step"] for e in answered] == ["answered"]
    assert answered[0].at == pytest.approx(t_assign + 1.0)
    assert answered[0].event["agent_id"] == "a-3"
    assert answered[0].event["occurred_at"] == rfc3339(t_assign + 1.0)
    assert "voice" not in answered[0].event and "queue" not in answered[0].event

    t_end = t_assign + 1.0 + contact.handle_seconds
    assert for_contact(sim.advance(t_end - 0.001), cid) == []
    emitted = sim.advance(t_end)
    ended = for_contact(emitted, cid)
    assert [e.event["step"] for e in ended] == ["ended"]
    assert ended[0].at == pytest.approx(t_end)
    assert ended[0].event["agent_id"] == "a-3"
    assert ended[0].event["talk_seconds"] == round(contact.handle_seconds, 1)
    assert ended[0].event["hold_seconds"] == 0.0
    assert ended[0].key == contact.customer_id

    wrap = [e for e in sim.advance(t_end + 3.0) if e.kind == "agent"]
    assert [(e.event["agent_event"], e.event["agent_id"], e.at) for e in wrap] == [
        ("wrap_up_done", "a-3", pytest.approx(t_end + 3.0))]
    assert wrap[0].key == "acme"
    assert sim.stats.answered == 1 and sim.stats.ended == 1  # others arrive and abandon meanwhile
    # The patience timer of the finished contact does nothing.
    assert for_contact(sim.advance(arrived.at + 10_000), cid) == []
    assert cid not in sim.contacts


def test_unassigned_caller_abandons_after_its_patience() -> None:
    sim = Simulator(SimConfig(seed=2, rate=0.5, mean_patience=30.0), T0)
    arrived = first_arrival(sim, ("voice", "chat"))
    cid = arrived.event["contact_id"]
    patience = sim.contacts[cid].patience
    assert patience is not None and patience > 0
    waiting_before = sim.stats.waiting

    assert for_contact(sim.advance(arrived.at + patience - 0.001), cid) == []
    abandoned = for_contact(sim.advance(arrived.at + patience), cid)
    assert [e.event["step"] for e in abandoned] == ["abandoned"]
    assert abandoned[0].at == pytest.approx(arrived.at + patience)
    assert "agent_id" not in abandoned[0].event
    assert sim.stats.abandoned >= 1
    assert cid not in sim.contacts
    # An assignment that comes too late is ignored: nobody answers a caller who hung up.
    assert not sim.on_assignment(cid, "a-1", arrived.at + patience + 0.5)
    assert for_contact(sim.advance(arrived.at + patience + 5.0), cid) == []
    assert sim.stats.late_assignments == 1
    assert waiting_before >= 1


def test_assignment_before_patience_runs_out_prevents_the_abandon() -> None:
    sim = Simulator(SimConfig(seed=3, rate=0.5, mean_patience=30.0, mean_handle=1000.0), T0)
    arrived = first_arrival(sim, ("voice", "chat"))
    cid = arrived.event["contact_id"]
    patience = sim.contacts[cid].patience
    assert patience is not None
    sim.on_assignment(cid, "a-2", arrived.at + patience / 2)
    steps = [e.event["step"] for e in for_contact(sim.advance(arrived.at + patience + 1.0), cid)]
    assert steps == ["answered"]


def test_email_waits_without_abandoning() -> None:
    sim = Simulator(SimConfig(seed=4, rate=0.5, mean_patience=5.0), T0)
    arrived = first_arrival(sim, ("email",))
    cid = arrived.event["contact_id"]
    assert sim.contacts[cid].patience is None
    assert for_contact(sim.advance(arrived.at + 3600), cid) == []
    assert sim.contacts[cid].status.value == "waiting"


def test_reassignment_before_answer_moves_the_answer_to_the_new_agent() -> None:
    sim = Simulator(SimConfig(seed=5, rate=0.5, answer_delay=2.0), T0)
    arrived = first_arrival(sim, ("voice",))
    cid = arrived.event["contact_id"]
    sim.on_assignment(cid, "a-1", arrived.at)
    assert sim.on_assignment(cid, "a-1", arrived.at + 0.5)  # a repeat changes nothing
    sim.on_assignment(cid, "a-2", arrived.at + 1.0)  # the offer moved on
    answered = for_contact(sim.advance(arrived.at + 3.0), cid)
    assert [(e.event["step"], e.event["agent_id"], e.at) for e in answered] == [
        ("answered", "a-2", pytest.approx(arrived.at + 3.0))]
    assert sim.stats.assigned == 1 and sim.stats.reassigned == 1 and sim.stats.answered == 1


def test_arrivals_are_poisson() -> None:
    rate = 2.0
    sim = Simulator(SimConfig(seed=42, rate=rate), T0)
    times: list[float] = []
    t = T0
    while len(times) < 5001:
        t += 100.0
        times += [e.at for e in sim.advance(t) if e.event.get("step") == "arrived"]
    gaps = [b - a for a, b in zip([T0, *times[:4999]], times[:5000], strict=True)]
    assert len(gaps) == 5000
    mean = statistics.fmean(gaps)
    assert abs(mean - 1 / rate) / (1 / rate) < 0.10
    # Exponential gaps: standard deviation ≈ mean (coefficient of variation 1).
    assert 0.9 < statistics.pstdev(gaps) / mean < 1.1
    assert all(g >= 0 for g in gaps)


def test_channel_mix_and_queues() -> None:
    sim = Simulator(SimConfig(seed=9, rate=1.0), T0)
    arrived = [e.event for e in sim.advance(T0 + 2000) if e.event.get("step") == "arrived"]
    channels = {ch: sum(1 for e in arrived if e["channel"] == ch) / len(arrived) for ch in ("voice", "chat")}
    assert 0.3 < channels["voice"] < 0.5 and 0.25 < channels["chat"] < 0.45
    queues = {e["queue"] for e in arrived}
    assert queues == {"support", "billing", "sales", "spanish", "vip"}
    for e in arrived:
        if e["queue"] == "vip":
            assert e["channel"] == "voice" and e["customer_id"].startswith("cust-vip-")
        if e["queue"] == "spanish":
            assert e["channel"] == "chat"
        if e["queue"] == "sales":
            assert e["channel"] == "chat"
        if e["queue"] == "support":
            assert e["channel"] == "voice"


def test_same_seed_same_traffic_different_seed_different_traffic() -> None:
    def run(seed: int) -> list[tuple[float, str]]:
        sim = Simulator(SimConfig(seed=seed, rate=1.0, run_id="r1"), T0)
        out = sim.login_agents() + sim.advance(T0 + 20)
        for e in out:
            if e.event.get("step") == "arrived":
                sim.on_assignment(e.event["contact_id"], "a-1", e.at + 0.1)
        out += sim.advance(T0 + 200)
        return [(e.at, json.dumps(e.event, sort_keys=True)) for e in out]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_events_are_valid_wire_format() -> None:
    sim = Simulator(SimConfig(seed=11, rate=1.0, agents=12), T0)
    emits = sim.login_agents() + sim.advance(T0 + 300)
    for e in emits:
        if e.event.get("step") == "arrived":
            sim.on_assignment(e.event["contact_id"], "a-4", e.at)
    emits += sim.advance(T0 + 900) + sim.stop(T0 + 900)
    steps = {e.event.get("step") for e in emits if e.kind == "contact"}
    assert steps == {"arrived", "answered", "ended", "abandoned"} or steps == {"arrived", "answered", "ended"}
    ids = set()
    for e in emits:
        ids.add(e.event["event_id"])
        if e.kind == "agent":
            ev = agent_event_from_json(e.event)
            assert ev.envelope.tenant_id == "acme" and e.key == "acme"
            continue
        raw = json.dumps(e.event).encode()
        parsed = event_from_json(raw)  # ingestion's own parser and validation accept it
        validate(parsed, now=e.at, limits=Limits())
        ev = e.event
        assert e.key == ev["customer_id"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["occurred_at"])
        blocks = [k for k in ("voice", "chat", "email", "sms", "callback", "voicemail") if k in ev]
        if ev["step"] == "arrived":
            assert blocks == [ev["channel"]] and ev["queue"]
            if ev["channel"] == "voice":
                assert re.fullmatch(r"\+1\d{3}55501\d\d", ev["voice"]["from_number"])
            if ev["channel"] == "sms":
                assert re.fullmatch(r"\+1\d{3}55501\d\d", ev["sms"]["from_number"])
            if ev["channel"] == "email":
                assert ev["email"]["from_address"].endswith("@example.com")
        else:
            assert blocks == [] and "queue" not in ev
    assert len(ids) == len(emits), "event ids are unique"


def test_login_agents_logs_in_then_readies_everyone_with_a_mix_of_skills() -> None:
    sim = Simulator(SimConfig(seed=1, agents=12), T0)
    emits = sim.login_agents()
    kinds = [e.event["agent_event"] for e in emits]
    assert kinds == ["login"] * 12 + ["ready"] * 12
    logins = [agent_event_from_json(e.event) for e in emits[:12]]
    assert [ev.agent_id for ev in logins] == [f"a-{i}" for i in range(1, 13)]
    skills = {s.name for ev in logins for s in ev.login.skills}
    assert {"support", "billing", "sales"} <= skills
    assert any("es" in ev.login.languages for ev in logins)
    assert all(1 <= s.level <= 5 for ev in logins for s in ev.login.skills)
    assert len(AGENT_TEMPLATES) == 12


def test_stop_closes_open_contacts_and_sets_agents_not_ready() -> None:
    sim = Simulator(SimConfig(seed=12, rate=1.0, agents=3, mean_handle=1000.0, mean_patience=1000.0), T0)
    arrived = [e for e in sim.advance(T0 + 30) if e.event.get("step") == "arrived"]
    assert len(arrived) >= 3
    sim.on_assignment(arrived[0].event["contact_id"], "a-1", T0 + 30)
    sim.advance(T0 + 32)  # a-1 answered
    closing = sim.stop(T0 + 40)
    steps = {e.event["contact_id"]: e.event["step"] for e in closing if e.kind == "contact"}
    assert steps[arrived[0].event["contact_id"]] == "ended"
    assert all(steps[e.event["contact_id"]] in ("abandoned", "ended") for e in arrived if
               e.event["contact_id"] in steps)
    assert [e.event["agent_event"] for e in closing if e.kind == "agent"] == ["not_ready"] * 3
    assert sim.stats.waiting == 0 and sim.next_due() is None
    assert [(e.event["agent_event"], e.event["agent_id"]) for e in sim.logout_agents(T0 + 43)] == [
        ("logout", "a-1"), ("logout", "a-2"), ("logout", "a-3")]


def test_rate_zero_means_agents_only() -> None:
    sim = Simulator(SimConfig(seed=1, rate=0.0), T0)
    assert sim.next_due() is None and sim.advance(T0 + 1e6) == []


@pytest.mark.parametrize("kw", [
    {"rate": -1.0}, {"agents": -1}, {"mean_handle": 0.0}, {"mean_patience": -5.0},
])
def test_config_rejects_nonsense(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimConfig(**kw)  # type: ignore[arg-type]


def test_fake_contact_data_is_fictional_and_stable() -> None:
    assert phone_number("cust-00001") == phone_number("cust-00001")
    assert re.fullmatch(r"\+1\d{3}55501\d\d", phone_number("cust-00042"))
    assert email_address("cust-00042").endswith("@example.com")


def test_demo_profiles_cover_vip_and_spanish_customers() -> None:
    profiles = demo_profiles("acme", T0)
    assert [p.customer_id for p in profiles] == [c.customer_id for c in DEMO_CUSTOMERS]
    assert any(p.tier == 2 for p in profiles)  # CUSTOMER_TIER_VIP
    assert any(p.preferred_language == "es" for p in profiles)
    assert all(p.tenant_id == "acme" for p in profiles)


def test_progress_line_tty_and_plain() -> None:
    stats = Stats(arrived=5, assigned=4, answered=3, ended=2, abandoned=1, waiting=1)
    tty = io.StringIO()
    p = Progress(tty, tty=True)
    p.update(stats, 1.0)
    p.update(stats, 1.5)  # too soon: nothing
    p.update(stats, 2.0)
    p.finish(stats, 2.2)
    assert tty.getvalue().count("\r") == 3 and tty.getvalue().endswith("\n")
    assert "arrived 5 | assigned 4 | answered 3 | ended 2 | abandoned 1 | waiting 1" in tty.getvalue()
    plain = io.StringIO()
    p = Progress(plain, tty=False)
    for t in range(0, 11):
        p.update(stats, float(t))
    assert "\r" not in plain.getvalue() and len(plain.getvalue().splitlines()) == 3  # at 0, 5, 10 s
