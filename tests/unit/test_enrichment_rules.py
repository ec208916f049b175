"""Every enrichment rule, on the pure function (real lingua detection, no I/O)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.codec import new_envelope, ts_to_seconds
from services.enrichment.config import RulesConfig, TenantRules, load_rules
from services.enrichment.rules import _matches, apply_lifecycle, enrich, open_site
from switchboard.v1 import contact_pb2, routing_pb2

ROOT = Path(__file__).resolve().parents[2]
# Tuesday 2026-11-24 10:00 UTC: 11:00 in Madrid (open), 04:00 in Chicago (closed).
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
RULES = load_rules(str(ROOT / "deploy/config/enrichment.yaml"))
ACME = RULES.for_tenant("acme")
VOICE, CHAT, EMAIL, SMS = (contact_pb2.CHANNEL_VOICE, contact_pb2.CHANNEL_CHAT, contact_pb2.CHANNEL_EMAIL,
                           contact_pb2.CHANNEL_SMS)


def arrived(channel: int = VOICE, at: float = NOW, contact_id: str = "c-1", **kw: object) -> contact_pb2.ContactEvent:
    return contact_pb2.ContactEvent(
        envelope=new_envelope("acme", at, "test"), contact_id=contact_id, customer_id="cust-1",
        channel=channel, step=contact_pb2.CONTACT_STEP_ARRIVED, **kw,
    )


def profile(**kw: object) -> contact_pb2.CustomerProfile:
    return contact_pb2.CustomerProfile(customer_id="cust-1", tenant_id="acme", **kw)


def email(subject: str, body: str = "", **kw: object) -> contact_pb2.ContactEvent:
    return arrived(EMAIL, email=contact_pb2.EmailDetail(from_address="a@example.com", subject=subject, body=body),
                   **kw)


def test_vip_profile_raises_priority_own_queue_language_sla_and_sticky_agent() -> None:
    p = profile(tier=contact_pb2.CUSTOMER_TIER_VIP, preferred_language="es-MX", last_agent_id="a-7",
                segments=["legacy_product", "at_risk"])
    out, _ = enrich(arrived(queue_hint="billing"), p, ACME)
    assert out.known_customer and out.profile.customer_id == "cust-1"
    r = out.routing
    assert (r.queue_id, r.priority, r.language, r.language_source, r.preferred_agent_id) == (
        "vip", 10, "es", "profile", "a-7")
    assert set(r.tags) == {"vip", "legacy", "at_risk"}
    assert [(s.skill, s.min_level) for s in r.skills] == [("legacy_systems", 2)]
    assert ts_to_seconds(r.sla_deadline) == NOW + 20


def test_unknown_customer_is_new_with_ivr_language_first_and_standard_sla() -> None:
    ev = arrived(voice=contact_pb2.VoiceDetail(from_number="+14155550100", ivr_language="fr-CA"),
                 queue_hint="support")
    out, history = enrich(ev, profile(preferred_language="de"), ACME)
    assert (out.routing.language, out.routing.language_source) == ("fr", "ivr")
    out, history = enrich(ev, None, ACME)
    assert not out.known_customer and "new" in out.routing.tags
    assert (out.routing.queue_id, out.routing.priority) == ("support", 0)
    assert ts_to_seconds(out.routing.sla_deadline) == NOW + 60
    assert history is not None and [c.contact_id for c in history.contacts] == ["c-1"]


def test_high_value_customer_gets_priority_without_being_vip() -> None:
    out, _ = enrich(arrived(queue_hint="support"), profile(lifetime_value=60_000), ACME)
    assert "high_value" in out.routing.tags and out.routing.priority == 5
    out, _ = enrich(arrived(queue_hint="support"), profile(lifetime_value=10_000), ACME)
    assert "high_value" not in out.routing.tags and out.routing.priority == 0


def test_email_is_classified_to_billing_with_skills_priority_and_queue() -> None:
    out, _ = enrich(email("Invoice 4411 charged twice", "Please refund me."), None, ACME)
    r = out.routing
    assert (r.intent, r.department, r.queue_id, r.priority) == ("billing_dispute", "billing", "billing", 2)
    assert [(s.skill, s.min_level) for s in r.skills] == [("billing", 2)]
    assert ts_to_seconds(r.sla_deadline) == NOW + DAY


def test_classification_uses_whole_words_regex_and_the_channel_hint_wins_over_its_queue() -> None:
    out, _ = enrich(email("re: invoice#991"), None, ACME)
    assert out.routing.intent == "billing_dispute"  # the regex, no keyword
    out, _ = enrich(email("Cancellation policy question"), None, ACME)
    assert out.routing.intent == ""  # "cancel" is not a word of "Cancellation"
    chat = arrived(CHAT, chat=contact_pb2.ChatDetail(session_id="s", first_message="I want to upgrade"),
                   queue_hint="sales")
    out, _ = enrich(chat, None, ACME)
    assert (out.routing.intent, out.routing.department, out.routing.queue_id) == ("upgrade_plan", "sales", "sales")
    voice = arrived(voice=contact_pb2.VoiceDetail(from_number="+14155550100"))
    assert enrich(voice, None, ACME)[0].routing.intent == ""  # no text to classify on voice


def test_language_is_detected_among_the_tenants_languages_when_nothing_else_says() -> None:
    chat = arrived(CHAT, chat=contact_pb2.ChatDetail(session_id="s", first_message="Hola, quiero cambiar mi plan de "
                                                                                   "datos, por favor"))
    out, _ = enrich(chat, None, ACME)
    assert (out.routing.language, out.routing.language_source) == ("es", "detected")
    assert out.routing.intent == "upgrade_plan"
    out, _ = enrich(email("Ok"), None, ACME)
    assert (out.routing.language, out.routing.language_source) == ("en", "default")  # too short to tell
    one = TenantRules(languages=("en",))
    out, _ = enrich(chat, None, one)
    assert (out.routing.language, out.routing.language_source) == ("", "")


def test_chronic_issue_by_ivr_or_keywords_gets_its_tag_and_own_queue() -> None:
    ivr = arrived(voice=contact_pb2.VoiceDetail(from_number="+14155550100",
                                                ivr_path=[contact_pb2.IvrSelection(menu="main", choice="9")]),
                  queue_hint="support")
    out, history = enrich(ivr, profile(tier=contact_pb2.CUSTOMER_TIER_VIP), ACME)
    assert "chronic:fiber-outage-2026-11" in out.routing.tags
    assert (out.routing.queue_id, out.routing.intent) == ("outage", "outage")  # not the VIP queue
    assert history is not None and "chronic:fiber-outage-2026-11" in history.contacts[0].tags
    sms = arrived(SMS, sms=contact_pb2.SmsDetail(from_number="+34600000001", text="No tengo internet desde ayer"))
    out, _ = enrich(sms, None, ACME)
    assert out.routing.queue_id == "outage" and out.routing.language == "es"
    other = arrived(voice=contact_pb2.VoiceDetail(from_number="+1415555", ivr_path=[
        contact_pb2.IvrSelection(menu="billing", choice="9")]))
    assert not any(t.startswith("chronic:") for t in enrich(other, None, ACME)[0].routing.tags)


def _history(*contacts: tuple[str, float, str]) -> contact_pb2.CustomerHistory:
    h = contact_pb2.CustomerHistory(tenant_id="acme", customer_id="cust-1")
    for cid, at, intent in contacts:
        c = h.contacts.add(contact_id=cid, channel=VOICE, intent=intent, outcome="ended", agent_id="a-2")
        c.arrived_at.seconds = int(at)
    return h


def test_repeat_contacts_within_the_window_raise_priority_and_same_issue_asks_for_more_skill() -> None:
    h = _history(("c-old", NOW - 20 * DAY, "billing_dispute"), ("c-a", NOW - 3 * DAY, "billing_dispute"),
                 ("c-b", NOW - DAY, "technical_issue"))
    out, updated = enrich(email("Invoice wrong again"), None, ACME, h)
    r = out.routing
    assert {"repeat", "repeat_issue"} <= set(r.tags)
    assert r.priority == 2 + 5
    assert [(s.skill, s.min_level) for s in r.skills] == [("billing", 3)]
    assert out.context.contacts_in_window == 3
    assert [c.contact_id for c in out.context.recent] == ["c-b", "c-a", "c-old"]  # newest first, 30 days
    assert updated is not None and [c.contact_id for c in updated.contacts] == ["c-old", "c-a", "c-b", "c-1"]
    # Only two in the window: not a repeat.
    out, _ = enrich(email("Invoice wrong again"), None, ACME, _history(("c-a", NOW - 3 * DAY, "billing_dispute")))
    assert "repeat" not in out.routing.tags and out.routing.priority == 2
    # A different issue repeats: priority but no higher skill; without skills, the escalation skill.
    h2 = _history(("c-a", NOW - 3 * DAY, "technical_issue"), ("c-b", NOW - DAY, "technical_issue"))
    out, _ = enrich(arrived(queue_hint="support"), None, ACME, h2)
    assert "repeat" in out.routing.tags and "repeat_issue" not in out.routing.tags and not out.routing.skills
    out, _ = enrich(email("error again, not working"), None, ACME, h2)
    assert "repeat_issue" in out.routing.tags and [(s.skill, s.min_level) for s in out.routing.skills] == [
        ("support", 3)]
    rules = TenantRules(repeat_escalation_skill="senior", repeat_contacts=2)
    h3 = _history(("c-a", NOW - DAY, "x"))
    h3.contacts[0].intent = "outage"
    out, _ = enrich(arrived(voice=contact_pb2.VoiceDetail(from_number="+14155550100", ivr_path=[
        contact_pb2.IvrSelection(menu="main", choice="9")])), None,
        TenantRules(**{**rules.__dict__, "chronic": ACME.chronic}), h3)
    assert [(s.skill, s.min_level) for s in out.routing.skills] == [("senior", 2)]


def test_history_is_pruned_to_its_window_and_size() -> None:
    rules = TenantRules(history_days=10, history_max=2)
    h = _history(("c-ancient", NOW - 11 * DAY, ""), ("c-a", NOW - 2 * DAY, ""), ("c-b", NOW - DAY, ""))
    _, updated = enrich(arrived(), None, rules, h)
    assert updated is not None and [c.contact_id for c in updated.contacts] == ["c-b", "c-1"]


def test_omnichannel_context_carries_outcomes_agents_and_the_bot_transcript() -> None:
    h = _history(("c-a", NOW - DAY, "billing_dispute"))
    h.contacts[0].outcome = "arrived"
    h.contacts[0].agent_id = ""
    life = routing_pb2.LifecycleEvent(contact_id="c-a", customer_id="cust-1", kind=routing_pb2.LIFECYCLE_KIND_ANSWERED,
                                      agent_id="a-9", queue_id="billing")
    assert apply_lifecycle(h, life)
    life.kind = routing_pb2.LIFECYCLE_KIND_ENDED
    life.answered = True
    assert apply_lifecycle(h, life)
    life.kind = routing_pb2.LIFECYCLE_KIND_QUEUED  # late, less final: does not undo "ended"
    assert not apply_lifecycle(h, life)
    chat = arrived(CHAT, chat=contact_pb2.ChatDetail(session_id="s", first_message="still wrong",
                                                     bot_transcript="bot: hi\ncustomer: my invoice is wrong"))
    out, _ = enrich(chat, None, ACME, h)
    assert [(c.contact_id, c.channel, c.intent, c.outcome, c.agent_id) for c in out.context.recent] == [
        ("c-a", VOICE, "billing_dispute", "ended", "a-9")]
    assert out.context.bot_transcript.endswith("my invoice is wrong")
    assert out.routing.intent == "billing_dispute"  # the bot transcript is read too


def test_later_steps_pass_through_and_record_the_outcome() -> None:
    h = _history(("c-1", NOW - 60, ""))
    h.contacts[0].outcome, h.contacts[0].agent_id = "arrived", ""
    ev = arrived(queue_hint="sales")
    ev.step, ev.agent_id = contact_pb2.CONTACT_STEP_ANSWERED, "a-3"
    out, updated = enrich(ev, None, ACME, h)
    assert out.routing.queue_id == "sales" and out.routing.priority == 0 and not out.routing.HasField("sla_deadline")
    assert updated is not None and (updated.contacts[0].outcome, updated.contacts[0].agent_id) == ("answered", "a-3")
    assert enrich(ev, None, ACME, None)[1] is None


def test_time_based_routing_picks_the_open_site_and_after_hours_queue() -> None:
    out, _ = enrich(arrived(queue_hint="support"), None, ACME)
    assert out.routing.site == "madrid"
    evening = NOW + 10 * 3600  # 21:00 Madrid (closed), 14:00 Chicago (open)
    assert open_site(ACME.sites, evening).name == "austin"  # type: ignore[union-attr]
    christmas = datetime(2026, 12, 25, 15, 0, tzinfo=UTC).timestamp()
    assert open_site(ACME.sites, christmas) is None
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()
    assert open_site(ACME.sites, sunday) is None
    from dataclasses import replace
    rules = replace(ACME, after_hours_queue="voicemail",
                    sites=(replace(ACME.sites[0], queues={"support": "support-madrid"}),))
    assert enrich(arrived(queue_hint="support"), None, rules)[0].routing.queue_id == "support-madrid"
    closed, _ = enrich(arrived(at=sunday, queue_hint="support"), None, rules)
    assert closed.routing.queue_id == "voicemail" and "after_hours" in closed.routing.tags


def test_tenants_without_a_section_use_default_and_then_built_in_rules() -> None:
    assert RULES.for_tenant("globex") is RULES.tenants["default"]
    assert RulesConfig().for_tenant("x").default_queue == "support"


def _one_search_per_keyword(text: str, keywords: tuple[str, ...]) -> bool:
    """How keywords matched before they were compiled into one pattern per rule."""
    lower = text.lower()
    return any(re.search(r"(?<!\w)" + re.escape(kw) + r"(?!\w)", lower) for kw in keywords)


_WORDS = st.sampled_from(["refund", "re", "fund", "card", "credit card", "c++", "a.b", "naïve", "x", "ß", "-"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, min_size=1, max_size=4).map(tuple),
       st.lists(st.one_of(_WORDS, st.sampled_from([" ", ".", ",", "_", "\n", "Refunds", "CARD!", "ab"])),
                max_size=10).map("".join))
def test_keywords_compiled_into_one_pattern_match_as_before(keywords: tuple[str, ...], text: str) -> None:
    assert _matches(text, keywords, ()) == _one_search_per_keyword(text, keywords)
