"""Survey policy: whether, when and how to survey; the YAML file and its errors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.common.codec import new_envelope
from services.survey.policy import (
    CustomerFacts,
    PolicyError,
    QueuePolicy,
    after_quiet_hours,
    decide,
    parse_policy,
    sampled,
    still_wanted,
)
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2

NOW = 1_795_000_000.0  # 2026-11-18 (a Wednesday)
NONE = CustomerFacts()


def ended(channel: int = contact_pb2.CHANNEL_VOICE, answered: bool = True, mobile: bool = False,
          email: bool = False, contact_id: str = "c-1", queue: str = "support") -> routing_pb2.LifecycleEvent:
    return routing_pb2.LifecycleEvent(
        envelope=new_envelope("acme", NOW, "routing", event_id=f"life-{contact_id}"), contact_id=contact_id,
        customer_id="cust-1", kind=routing_pb2.LIFECYCLE_KIND_ENDED, queue_id=queue, channel=channel,
        agent_id="a-1", answered=answered, customer_has_mobile=mobile, customer_has_email=email,
    )


def test_survey_channel_follows_the_contact() -> None:
    p = QueuePolicy()
    assert decide(ended(contact_pb2.CHANNEL_CHAT), NOW, p, NONE).request.channel == survey_pb2.SURVEY_CHANNEL_IN_CHAT
    sms = decide(ended(mobile=True, email=True), NOW, p, NONE).request
    assert sms.channel == survey_pb2.SURVEY_CHANNEL_SMS
    assert decide(ended(email=True), NOW, p, NONE).request.channel == survey_pb2.SURVEY_CHANNEL_EMAIL
    assert decide(ended(contact_pb2.CHANNEL_EMAIL), NOW, p, NONE).request.channel == survey_pb2.SURVEY_CHANNEL_EMAIL
    assert decide(ended(), NOW, p, NONE).skip == "no_channel"  # no way to reach them
    assert (sms.agent_id, sms.queue_id, sms.customer_id) == ("a-1", "support", "cust-1")
    assert [q.question_id for q in sms.questions] == ["csat", "nps", "comment"]


def test_abandoned_only_when_the_policy_says_so_and_non_final_events_never() -> None:
    assert decide(ended(contact_pb2.CHANNEL_CHAT, answered=False), NOW, QueuePolicy(), NONE).skip == "not_answered"
    assert decide(ended(contact_pb2.CHANNEL_CHAT, answered=False), NOW, QueuePolicy(survey_abandoned=True),
                  NONE).request is not None
    queued = ended(contact_pb2.CHANNEL_CHAT)
    queued.kind = routing_pb2.LIFECYCLE_KIND_QUEUED
    assert decide(queued, NOW, QueuePolicy(), NONE).skip == "not_ended"


def test_survey_id_is_stable_across_replays() -> None:
    a = decide(ended(contact_pb2.CHANNEL_CHAT), NOW, QueuePolicy(), NONE).request
    b = decide(ended(contact_pb2.CHANNEL_CHAT), NOW + 5, QueuePolicy(), NONE).request
    assert a.survey_id == b.survey_id == a.envelope.event_id


def test_sampling_is_deterministic_by_contact_and_close_to_the_rate() -> None:
    picks = [sampled("acme", f"c-{i}", 0.3) for i in range(10_000)]
    assert picks == [sampled("acme", f"c-{i}", 0.3) for i in range(10_000)]
    assert 0.27 < sum(picks) / len(picks) < 0.33
    assert not any(sampled("acme", f"c-{i}", 0.0) for i in range(100))
    p = QueuePolicy(sample_rate=0.3)
    skipped = [i for i in range(50) if decide(ended(mobile=True, contact_id=f"c-{i}"), NOW, p, NONE).skip]
    assert skipped == [i for i in range(50) if not sampled("acme", f"c-{i}", 0.3)]


def test_opted_out_disabled_and_followup_queue_are_not_surveyed() -> None:
    assert decide(ended(mobile=True), NOW, QueuePolicy(), CustomerFacts(opted_out=True)).skip == "opted_out"
    assert decide(ended(mobile=True), NOW, QueuePolicy(enabled=False), NONE).skip == "disabled"
    assert decide(ended(mobile=True, queue="supervisors"), NOW, QueuePolicy(), NONE,
                  {"supervisors"}).skip == "followup_contact"


def test_one_survey_per_customer_per_window() -> None:
    p = QueuePolicy(suppression_days=7)
    yesterday = CustomerFacts(last_surveyed_at=NOW - 86400)
    assert decide(ended(mobile=True), NOW, p, yesterday).skip == "suppressed"
    assert decide(ended(mobile=True), NOW, p, CustomerFacts(last_surveyed_at=NOW - 8 * 86400)).request
    assert decide(ended(mobile=True), NOW, QueuePolicy(), yesterday).request  # 0 = no window
    assert decide(ended(mobile=True), NOW, p, CustomerFacts(has_pending=True)).skip == "suppressed"
    assert still_wanted(p, yesterday, NOW) == "suppressed"
    assert still_wanted(p, CustomerFacts(opted_out=True), NOW) == "opted_out"
    assert still_wanted(p, NONE, NOW) is None


def at(tz: str, *args: int) -> float:
    return datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()


def test_quiet_hours_wait_for_the_morning_in_the_customers_time_zone() -> None:
    p = parse_policy('tenants: {acme: {defaults: {quiet_hours: {start: "21:00", end: "08:00"}, '
                     'time_zone: Europe/Berlin, delay_seconds: 60}}}').for_contact("acme", "support")
    q = p.quiet_hours
    # 22:30 in Berlin → 08:00 the next morning; 06:00 → 08:00 the same day; 12:00 → as is.
    assert after_quiet_hours(at("Europe/Berlin", 2026, 11, 18, 22, 30), "Europe/Berlin", q) == \
        at("Europe/Berlin", 2026, 11, 19, 8, 0)
    assert after_quiet_hours(at("Europe/Berlin", 2026, 11, 18, 6, 0), "Europe/Berlin", q) == \
        at("Europe/Berlin", 2026, 11, 18, 8, 0)
    noon = at("Europe/Berlin", 2026, 11, 18, 12, 0)
    assert after_quiet_hours(noon, "Europe/Berlin", q) == noon
    # Across a DST change (Berlin, 2026-03-29 02:00 → 03:00): still 08:00 local.
    assert after_quiet_hours(at("Europe/Berlin", 2026, 3, 28, 23, 0), "Europe/Berlin", q) == \
        at("Europe/Berlin", 2026, 3, 29, 8, 0)
    # decide(): the customer's own zone wins over the policy's; the delay comes first.
    late_berlin = at("Europe/Berlin", 2026, 11, 18, 20, 59, 30)  # + 60 s delay = 21:00:30 → quiet
    d = decide(ended(mobile=True), late_berlin, p, NONE)
    assert (d.wait, d.due_at) == ("quiet_hours", at("Europe/Berlin", 2026, 11, 19, 8, 0))
    d = decide(ended(mobile=True), late_berlin, p, CustomerFacts(time_zone="America/New_York"))  # 14:59 there
    assert (d.wait, d.due_at) == ("delay", late_berlin + 60)


def test_policy_file_tenant_defaults_queue_overrides_and_default_tenant() -> None:
    text = """\
tenants:
  default:
    defaults: {suppression_days: 30}
  acme:
    defaults:
      sample_rate: 0.5
      expiry_hours: 48
      questions: [csat, ces]
      followup_queue: supervisors
    queues:
      vip: {sample_rate: 1, incentive_code: THANKS}
      supervisors: {enabled: false}
"""
    pol = parse_policy(text)
    vip = pol.for_contact("acme", "vip")
    assert (vip.sample_rate, vip.expiry_seconds, vip.questions, vip.incentive_code) == (1.0, 48 * 3600, ("csat", "ces"),
                                                                                        "THANKS")
    assert pol.for_contact("acme", "other").sample_rate == 0.5
    assert pol.for_contact("globex", "x").suppression_days == 30  # unknown tenant → "default"
    assert pol.followup_queues("acme") == {"supervisors"}
    assert pol.max_suppression_seconds() == 30 * 86400
    d = decide(ended(mobile=True, queue="vip"), NOW, vip, NONE)
    assert d.request.incentive_code == "THANKS" and d.expiry_seconds == 48 * 3600


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("tenants:\n  acme:\n    defaults:\n      sample_rate: 1.5\n", 4, "sample_rate must be at most 1.0"),
    ("tenants:\n  acme:\n    defaults:\n      samplerate: 1\n", 4, "unknown option tenants.acme.defaults.samplerate"),
    ("tenants:\n  acme:\n    queues:\n      q1:\n        time_zone: Mars/Olympus\n", 5, "unknown time zone"),
    ("tenants:\n  acme:\n    defaults:\n      quiet_hours: {start: '25:00', end: '08:00'}\n", 4, "time of day"),
    ("tenants:\n  acme:\n    defaults:\n      quiet_hours: {start: '21:00'}\n", 4, "needs end"),
    ("tenants:\n  acme:\n    defaults:\n      questions: [csat, wow]\n", 4, "unknown question 'wow'"),
    ("tenants:\n  acme:\n    defaults:\n      enabled: maybe\n", 4, "must be true or false"),
    ("tenants:\n  acme:\n    defaults:\n      delay_seconds: -1\n", 4, "at least 0"),
    ("tenants:\n  acme:\n    defaults:\n      expiry_hours: 0\n", 4, "more than 0"),
    ("tenants:\n  acme:\n    defaults:\n      followup_queue: 'no spaces'\n", 4, "queue id"),
    ("tenants:\n  acme:\n    other: 1\n", 3, "unknown key tenants.acme.other"),
    ("tenant: {}\n", 1, "unknown top-level key"),
    ("tenants:\n  acme: [1\n", 3, "not valid YAML"),
])
def test_policy_errors_name_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "survey.yaml")
    assert (err.value.path, err.value.line) == ("survey.yaml", line), str(err.value)
    assert reason in err.value.reason
    assert str(err.value).startswith(f"survey.yaml:{line}: ")


def test_shipped_policy_file_is_valid() -> None:
    from pathlib import Path

    from services.survey.policy import load_policy

    pol = load_policy(Path(__file__).resolve().parents[2] / "deploy/config/survey.yaml")
    assert pol.for_contact("acme", "supervisors").enabled is False
