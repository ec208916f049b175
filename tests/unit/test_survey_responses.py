"""Survey responses (validation, scoring, follow-up), the state store's changelog and score windows."""

from __future__ import annotations

import pytest

from services.common.codec import new_envelope, ts_from_seconds
from services.common.dlq import Reject
from services.survey.policy import CustomerFacts, QueuePolicy, decide
from services.survey.responses import followup_contact, result, validate
from services.survey.scores import ScoreWindow, entry_of
from services.survey.state import SurveyStore
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2

NOW = 1_795_000_000.0
K = survey_pb2


def open_survey(expires_in: float = 3600, questions: tuple[str, ...] = ("csat", "nps", "ces", "comment")
                ) -> survey_pb2.OpenSurvey:
    ev = routing_pb2.LifecycleEvent(
        envelope=new_envelope("acme", NOW, "routing", event_id="life-1"), contact_id="c-1", customer_id="cust-1",
        kind=routing_pb2.LIFECYCLE_KIND_ENDED, queue_id="support", channel=contact_pb2.CHANNEL_VOICE,
        agent_id="a-1", answered=True, customer_has_mobile=True)
    req = decide(ev, NOW, QueuePolicy(questions=questions), CustomerFacts()).request
    req.expires_at.CopyFrom(ts_from_seconds(NOW + expires_in))
    return survey_pb2.OpenSurvey(request=req, customer_segments=["at_risk"], followup_queue="supervisors")


def response(survey_id: str, *answers: tuple[str, int, str]) -> survey_pb2.SurveyResponse:
    return survey_pb2.SurveyResponse(
        envelope=new_envelope("acme", NOW, "sms-gateway"), survey_id=survey_id,
        answers=[survey_pb2.Answer(question_id=q, score=s, comment=c) for q, s, c in answers])


def test_a_valid_response_is_scored_into_a_result_with_agent_queue_channel_segments() -> None:
    s = open_survey()
    resp = response(s.request.survey_id, ("csat", 5, ""), ("nps", 9, ""), ("ces", 2, ""), ("comment", 0, "great"))
    scored = validate(resp, s, NOW + 60)
    assert (scored.csat, scored.nps, scored.ces, scored.comment, scored.detractor) == (5, 9, 2, "great", False)
    res = result(resp, s, scored, NOW + 60)
    assert (res.agent_id, res.queue_id, res.contact_channel, list(res.customer_segments)) == \
        ("a-1", "support", contact_pb2.CHANNEL_VOICE, ["at_risk"])
    assert (res.csat, res.nps, res.ces, res.survey_channel) == (5, 9, 2, K.SURVEY_CHANNEL_SMS)


@pytest.mark.parametrize(("mutate", "code"), [
    (lambda s, r: (None, r), "unknown_survey"),
    (lambda s, r: (s, response("")), "missing_field"),
    (lambda s, r: (open_survey(expires_in=-1), r), "expired"),
    (lambda s, r: (s.__class__(request=s.request, answered=True), r), "duplicate"),
    (lambda s, r: (s, response(s.request.survey_id, ("csat", 6, ""))), "score_out_of_range"),
    (lambda s, r: (s, response(s.request.survey_id, ("nps", -1, ""))), "score_out_of_range"),
    (lambda s, r: (s, response(s.request.survey_id, ("ces", 0, ""))), "score_out_of_range"),
    (lambda s, r: (s, response(s.request.survey_id, ("csat", 3, ""), ("csat", 4, ""))), "invalid_value"),
    (lambda s, r: (s, response(s.request.survey_id, ("mood", 3, ""))), "unknown_question"),
    (lambda s, r: (s, response(s.request.survey_id)), "missing_field"),
])
def test_bad_responses_are_rejected_with_a_reason(mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    s = open_survey()
    survey, resp = mutate(s, response(s.request.survey_id, ("csat", 4, "")))
    with pytest.raises(Reject) as err:
        validate(resp, survey, NOW)
    assert err.value.code == code


def test_expiry_allows_the_gateway_grace() -> None:
    s = open_survey(expires_in=0)
    resp = response(s.request.survey_id, ("csat", 4, ""))
    assert validate(resp, s, NOW + 200, grace_seconds=300).csat == 4
    with pytest.raises(Reject):
        validate(resp, s, NOW + 301, grace_seconds=300)


@pytest.mark.parametrize(("answers", "detractor"), [
    ((("nps", 6, ""),), True), ((("nps", 7, ""),), False), ((("csat", 2, ""),), True),
    ((("csat", 3, ""),), False), ((("csat", 5, ""), ("nps", 0, "")), True), ((("ces", 7, ""),), False),
])
def test_detractor_is_nps_0_to_6_or_csat_1_to_2(answers, detractor: bool) -> None:  # type: ignore[no-untyped-def]
    s = open_survey()
    assert validate(response(s.request.survey_id, *answers), s, NOW).detractor is detractor


def test_followup_contact_carries_the_comment_to_the_supervisor_queue_and_passes_ingestion() -> None:
    from services.ingestion.parse import Limits, parse

    s = open_survey()
    resp = response(s.request.survey_id, ("nps", 2, ""), ("comment", 0, "nobody listened"))
    res = result(resp, s, validate(resp, s, NOW), NOW)
    ev = followup_contact(res, "cust-1", "supervisors", NOW)
    parsed = parse(ev.SerializeToString(), "application/x-protobuf", NOW, Limits())
    assert (parsed.queue_hint, parsed.step, parsed.customer_id) == ("supervisors", contact_pb2.CONTACT_STEP_ARRIVED,
                                                                     "cust-1")
    assert parsed.email.body == "nobody listened" and "NPS 2" in parsed.email.subject
    assert parsed.attributes["survey_id"] == s.request.survey_id
    assert parsed.attributes["original_contact_id"] == "c-1"
    assert followup_contact(res, "cust-1", "supervisors", NOW + 9).envelope.event_id == ev.envelope.event_id


def test_store_changelog_rebuilds_the_same_state() -> None:
    store = SurveyStore("state")
    s = open_survey()
    pending = survey_pb2.PendingSurvey(request=s.request, due_at=ts_from_seconds(NOW + 100), source_partition=1)
    log = [store.put_pending("acme", pending), store.put_customer("acme", "cust-1", NOW)]
    assert store.has_pending("acme", "cust-1")
    assert store.due(NOW + 99, None) == [] and store.due(NOW + 100, {0}) == []
    assert [p.request.survey_id for _, p in store.due(NOW + 100, {1})] == [s.request.survey_id]
    log += [store.drop_pending("acme", s.request.survey_id), store.put_open("acme", s)]
    rebuilt = SurveyStore("state")
    rebuilt.load((o.key, o.value) for o in log)  # what the compacted topic replays
    assert rebuilt.pending == {} and not rebuilt.has_pending("acme", "cust-1")
    assert rebuilt.open_survey(s.request.survey_id) == s
    assert rebuilt.last_surveyed("acme", "cust-1") == NOW
    assert all(o.topic == "state" for o in log) and log[2].value is None  # a tombstone
    out = rebuilt.cleanup(NOW + 3600 + 7 * 86400 + 1, 7 * 86400, 86400)
    assert {o.key for o in out} == {b"acme/open/" + s.request.survey_id.encode(), b"acme/customer/cust-1"}
    assert rebuilt.open == {} and rebuilt.customers == {}


def test_score_window_csat_nps_ces_by_queue_agent_channel() -> None:
    w = ScoreWindow()

    def add(i: int, at: float, queue: str, agent: str, csat: int, nps: int, ces: int) -> None:
        res = survey_pb2.SurveyResult(envelope=new_envelope("acme", at, "t", event_id=f"r{i}"), queue_id=queue,
                                      agent_id=agent, contact_channel=contact_pb2.CHANNEL_CHAT, csat=csat, nps=nps,
                                      ces=ces, detractor=nps <= 6 or csat <= 2)
        res.answered_at.CopyFrom(ts_from_seconds(at))
        w.add("acme", res.envelope.event_id, entry_of(res))

    add(1, NOW - 10, "support", "a-1", 5, 10, 2)
    add(2, NOW - 20, "support", "a-2", 4, 8, 4)
    add(3, NOW - 30, "billing", "a-1", 1, 3, 7)
    add(3, NOW - 30, "billing", "a-1", 1, 3, 7)         # read twice: counted once
    add(4, NOW - 90000, "support", "a-1", 1, 0, 7)      # older than a day
    groups, total = w.query("acme", NOW, 86400, survey_pb2.SCORE_GROUPING_QUEUE)
    assert [g.key for g in groups] == ["billing", "support"]
    assert (total.responses, total.csat, total.nps, total.ces, total.detractors) == (3, 2 / 3, 0.0, 13 / 3, 1)
    support = groups[1]
    assert (support.csat, support.nps, support.ces) == (1.0, 50.0, 3.0)
    by_agent, _ = w.query("acme", NOW, 86400, survey_pb2.SCORE_GROUPING_AGENT)
    assert [(g.key, g.responses) for g in by_agent] == [("a-1", 2), ("a-2", 1)]
    by_channel, _ = w.query("acme", NOW, 86400, survey_pb2.SCORE_GROUPING_CHANNEL, agent="a-2")
    assert [(g.key, g.responses) for g in by_channel] == [("chat", 1)]
    empty, total = w.query("other", NOW, 86400, survey_pb2.SCORE_GROUPING_QUEUE)
    assert empty == [] and total.responses == 0 and not total.HasField("csat")
