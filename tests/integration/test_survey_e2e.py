"""Survey end to end: the four services as processes on the real broker. Contacts go in as JSON on
contacts.inbound.v1, routing answers and ends them, survey decides, sends, validates responses,
scores them, raises follow-ups that routing queues, and keeps its timers across restarts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.codec import new_envelope, ts_to_seconds
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, survey_pb2, survey_pb2_grpc
from switchboard_dev.broker import BrokerHandle, free_port
from tests.helpers import (
    ServiceProcess,
    consume_until,
    contact,
    eventually,
    header,
    http_get,
    metric_value,
    producer,
    read_all,
    send,
    send_json,
    start_service,
    wait_for_profiles,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.broker

TENANT = "acme"
PB = "application/x-protobuf"
QUEUES = """\
tenants:
  acme:
    queues:
      support: {channel: voice}
      night: {channel: voice}
      supervisors: {}
"""
POLICY = """\
tenants:
  acme:
    defaults:
      suppression_days: 30
      expiry_hours: 72
      questions: [csat, nps, comment]
      followup_queue: supervisors
    queues:
      night:
        time_zone: America/New_York
        quiet_hours: {{start: "{start}", end: "{end}"}}
      supervisors: {{enabled: false}}
"""


class Pipeline:
    def __init__(self, broker: BrokerHandle, prefix: str, env: dict[str, str], tmp: Path, policy: str) -> None:
        self.b, self.t, self.env, self.tmp = broker.bootstrap, prefix, env, tmp
        (tmp / "queues.yaml").write_text(QUEUES)
        (tmp / "survey.yaml").write_text(policy)
        self.p = producer(self.b)
        self.svcs: dict[str, ServiceProcess] = {
            "ingestion": start_service("ingestion", env, tmp),
            "enrichment": start_service("enrichment", env, tmp),
            "routing": start_service("routing", env, tmp, SWITCHBOARD_QUEUES_FILE=str(tmp / "queues.yaml")),
        }
        self.grpc_port = free_port()
        self.start_survey()
        wait_ready(list(self.svcs.values()))

    def start_survey(self, offset: float = 0.0, restart: int = 0) -> ServiceProcess:
        log_dir = self.tmp / f"survey-{restart}"
        log_dir.mkdir(exist_ok=True)
        svc = start_service("survey", self.env, log_dir, SURVEY_POLICY_FILE=str(self.tmp / "survey.yaml"),
                            SURVEY_GRPC_PORT=str(self.grpc_port), SURVEY_CLOCK_OFFSET_SECONDS=str(offset))
        self.svcs["survey"] = svc
        return svc

    def restart_survey(self, offset: float, restart: int) -> None:
        old = self.svcs["survey"]
        assert old.terminate(timeout=30) == 0, old.log()[-2000:]
        wait_ready([self.start_survey(offset, restart)])

    def stop(self) -> None:
        for svc in self.svcs.values():
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)

    def topic(self, name: str) -> str:
        return self.t + name

    def profile(self, customer: str, mobile: bool = True, segments: tuple[str, ...] = ()) -> None:
        prof = contact_pb2.CustomerProfile(customer_id=customer, tenant_id=TENANT, has_mobile=mobile,
                                           segments=list(segments), preferred_language="en")
        send(self.p, self.topic("customers.profiles.v1"), customer, prof.SerializeToString())

    def agent(self, agent_id: str) -> None:
        login = agent_pb2.AgentLogin(languages=["en"], capacity=[
            agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)])
        for kind in ({"login": login}, {"ready": agent_pb2.AgentReady()}):
            ev = agent_pb2.AgentEvent(envelope=new_envelope(TENANT, time.time(), "test"), agent_id=agent_id, **kind)
            send(self.p, self.topic("agents.events.v1"), TENANT, ev.SerializeToString(), PB)

    def call(self, contact_id: str, customer: str, queue: str = "support") -> None:
        """A voice call answered by an agent, then ended."""
        send_json(self.p, self.topic("contacts.inbound.v1"), contact(
            TENANT, contact_id, customer, "arrived", queue=queue, voice={"from_number": "+14155550123"}))
        msg = consume_until(self.b, self.topic("routing.assignments.v1"),
                            lambda m: routing_pb2.Assignment.FromString(m.value()).contact_id == contact_id)
        agent = routing_pb2.Assignment.FromString(msg.value()).agent_id
        send_json(self.p, self.topic("contacts.inbound.v1"), contact(TENANT, contact_id, customer, "answered",
                                                                     agent_id=agent))
        send_json(self.p, self.topic("contacts.inbound.v1"), contact(TENANT, contact_id, customer, "ended",
                                                                     agent_id=agent, talk_seconds=30.0))

    def survey_request(self, contact_id: str, timeout: float = 60.0) -> survey_pb2.SurveyRequest:
        msg = consume_until(self.b, self.topic("surveys.requests.v1"),
                            lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == contact_id,
                            timeout=timeout)
        return survey_pb2.SurveyRequest.FromString(msg.value())

    def requests_for(self, customer: str) -> list[survey_pb2.SurveyRequest]:
        reqs = [survey_pb2.SurveyRequest.FromString(m.value()) for m in read_all(self.b, self.topic(
            "surveys.requests.v1"))]
        return [r for r in reqs if r.customer_id == customer]

    def respond(self, req: survey_pb2.SurveyRequest, csat: int | None = None, nps: int | None = None,
                comment: str = "") -> str:
        resp = survey_pb2.SurveyResponse(envelope=new_envelope(TENANT, time.time(), "sms-gateway"),
                                         survey_id=req.survey_id)
        for qid, score in (("csat", csat), ("nps", nps)):
            if score is not None:
                resp.answers.append(survey_pb2.Answer(question_id=qid, score=score))
        if comment:
            resp.answers.append(survey_pb2.Answer(question_id="comment", comment=comment))
        send(self.p, self.topic("surveys.responses.v1"), req.customer_id, resp.SerializeToString(), PB)
        return resp.envelope.event_id

    def result(self, survey_id: str) -> survey_pb2.SurveyResult:
        msg = consume_until(self.b, self.topic("surveys.results.v1"),
                            lambda m: survey_pb2.SurveyResult.FromString(m.value()).survey_id == survey_id)
        return survey_pb2.SurveyResult.FromString(msg.value())

    def dead_letter(self, survey_id: str) -> str | None:
        def match(m: object) -> bool:
            if header(m, "dlq.service") != "survey":  # type: ignore[arg-type]
                return False
            try:
                return survey_pb2.SurveyResponse.FromString(m.value()).survey_id == survey_id  # type: ignore[attr-defined]
            except Exception:
                return False
        return header(consume_until(self.b, self.topic("contacts.dlq.v1"), match), "dlq.reason")

    def metrics(self) -> str:
        status, body = http_get(self.svcs["survey"].metrics_url)
        assert status == 200
        return body


@pytest.fixture
def make_pipeline(broker: BrokerHandle, topic_prefix: str, service_env: dict[str, str], tmp_path: Path
                  ) -> Iterator:
    made: list[Pipeline] = []

    def make(policy: str) -> Pipeline:
        made.append(Pipeline(broker, topic_prefix, service_env, tmp_path, policy))
        return made[-1]

    yield make
    for pl in made:
        pl.stop()


def cust() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


def test_sms_survey_scored_duplicate_opt_out_detractor_followup_and_scores_api(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    pl: Pipeline = make_pipeline(POLICY.format(start="00:00", end="00:01"))
    pl.agent("a-1")
    happy, opted_out, unhappy = cust(), cust(), cust()
    pl.profile(happy, segments=("at_risk",))
    pl.profile(opted_out)
    pl.profile(unhappy)
    wait_for_profiles(pl.svcs["enrichment"], 3)

    # A voice call answered by an agent → an SMS survey (mobile known), carrying no address.
    pl.call("c-happy", happy)
    req = pl.survey_request("c-happy")
    assert req.channel == survey_pb2.SURVEY_CHANNEL_SMS
    assert (req.agent_id, req.queue_id, req.customer_id) == ("a-1", "support", happy)
    assert [q.question_id for q in req.questions] == ["csat", "nps", "comment"]
    assert ts_to_seconds(req.expires_at) == pytest.approx(ts_to_seconds(req.envelope.occurred_at) + 72 * 3600)
    assert b"+1415" not in req.SerializeToString()

    # The answer is scored and published with agent, queue, channel and segment; a repeat is dead-lettered.
    pl.respond(req, csat=5, nps=10)
    res = pl.result(req.survey_id)
    assert (res.agent_id, res.queue_id, res.contact_channel) == ("a-1", "support", contact_pb2.CHANNEL_VOICE)
    assert list(res.customer_segments) == ["at_risk"]
    assert (res.csat, res.nps, res.detractor) == (5, 10, False)
    pl.respond(req, csat=1, nps=0)
    assert pl.dead_letter(req.survey_id) == "duplicate"

    # An opted-out customer is never surveyed (opt-out from the compacted preferences topic).
    pref = survey_pb2.SurveyPreference(envelope=new_envelope(TENANT, time.time(), "preference-centre"),
                                       customer_id=opted_out, opted_out=True)
    send(pl.p, pl.topic("surveys.preferences.v1"), f"{TENANT}/{opted_out}", pref.SerializeToString(), PB)
    time.sleep(1.0)  # the preference table follows the topic in the background
    pl.call("c-optout", opted_out)

    # A detractor (NPS 0-6): a follow-up contact for the supervisors' queue, through the normal pipeline.
    pl.call("c-unhappy", unhappy)
    req2 = pl.survey_request("c-unhappy")  # same tenant partition, so the opted-out call was decided first
    assert pl.requests_for(opted_out) == []
    pl.respond(req2, csat=2, nps=3, comment="I was on hold forever")
    res2 = pl.result(req2.survey_id)
    assert res2.detractor and res2.comment == "I was on hold forever"
    msg = consume_until(pl.b, pl.topic("contacts.lifecycle.v1"), lambda m: (
        routing_pb2.LifecycleEvent.FromString(m.value()).contact_id == f"followup:{req2.survey_id}"))
    queued = routing_pb2.LifecycleEvent.FromString(msg.value())
    assert (queued.kind, queued.queue_id, queued.customer_id) == (routing_pb2.LIFECYCLE_KIND_QUEUED, "supervisors",
                                                                  unhappy)
    enriched = consume_until(pl.b, pl.topic("contacts.enriched.v1"), lambda m: (
        contact_pb2.EnrichedContact.FromString(m.value()).contact.contact_id == f"followup:{req2.survey_id}"))
    followup = contact_pb2.EnrichedContact.FromString(enriched.value()).contact
    assert followup.email.body == "I was on hold forever"
    assert followup.attributes["original_contact_id"] == "c-unhappy"

    # Counters for PromQL, by tenant/queue/channel.
    text = pl.metrics()
    labels = {"tenant": TENANT, "queue": "support", "channel": "voice"}
    assert metric_value(text, "switchboard_survey_responses_total", **labels) == 2
    assert metric_value(text, "switchboard_survey_answers_total", question="csat", band="satisfied", **labels) == 1
    assert metric_value(text, "switchboard_survey_answers_total", question="nps", band="detractor", **labels) == 1
    assert metric_value(text, "switchboard_survey_score_points_total", question="nps", **labels) == 13
    assert metric_value(text, "switchboard_survey_skipped_total", tenant=TENANT, reason="opted_out") == 1
    assert metric_value(text, "switchboard_survey_followups_total", tenant=TENANT, queue="supervisors") == 1
    assert metric_value(text, "switchboard_dead_letters_total", service="survey", reason="duplicate") == 1
    assert "agent=" not in "\n".join(ln for ln in text.splitlines() if ln.startswith("switchboard_survey_"))

    # The gRPC API: the last day's scores by queue and by agent; health; bad requests.
    with grpc.insecure_channel(f"127.0.0.1:{pl.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = survey_pb2_grpc.SurveyServiceStub(channel)

        def scored() -> survey_pb2.GetScoresResponse:  # the results tail follows surveys.results.v1
            scores = stub.GetScores(survey_pb2.GetScoresRequest(tenant_id=TENANT), timeout=5)
            assert scores.total.responses == 2, f"{scores.total.responses} responses scored"
            return scores

        scores = eventually(scored, 30, 0.5, "GetScores to count both responses")
        assert [(g.key, g.responses, g.csat, g.nps) for g in scores.groups] == [("support", 2, 0.5, 0.0)]
        by_agent = stub.GetScores(
            survey_pb2.GetScoresRequest(tenant_id=TENANT, group_by=survey_pb2.SCORE_GROUPING_AGENT), timeout=5)
        assert [(g.key, g.nps_detractors, g.nps_promoters) for g in by_agent.groups] == [("a-1", 1, 1)]
        for bad in (survey_pb2.GetScoresRequest(), survey_pb2.GetScoresRequest(tenant_id=TENANT, window_seconds=90000)):
            with pytest.raises(grpc.RpcError) as err:
                stub.GetScores(bad, timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_suppression_quiet_hours_and_expiry_survive_restarts(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    # Quiet hours in New York from an hour ago until ~80 s from now (the "night" queue only).
    ny = ZoneInfo("America/New_York")
    quiet_end = datetime.now(ny).replace(microsecond=0) + timedelta(seconds=80)
    quiet_start = quiet_end - timedelta(hours=1)
    pl: Pipeline = make_pipeline(POLICY.format(start=quiet_start.strftime("%H:%M:%S"),
                                               end=quiet_end.strftime("%H:%M:%S")))
    pl.agent("a-1")
    regular, other, sleeper = cust(), cust(), cust()
    for c in (regular, other, sleeper):
        pl.profile(c)
    wait_for_profiles(pl.svcs["enrichment"], 3)

    # Yesterday (survey's clock one day back): the regular customer is surveyed.
    pl.restart_survey(offset=-86400, restart=1)
    pl.call("c-yesterday", regular)
    yesterday = pl.survey_request("c-yesterday")
    assert ts_to_seconds(yesterday.envelope.occurred_at) == pytest.approx(time.time() - 86400, abs=120)

    # Today, after a restart: within 30 days, so no second survey; the state came back from the topic.
    pl.restart_survey(offset=0, restart=2)
    pl.call("c-today", regular)
    pl.call("c-other", other)
    today = pl.survey_request("c-other")
    assert [r.contact_id for r in pl.requests_for(regular)] == ["c-yesterday"]
    assert metric_value(pl.metrics(), "switchboard_survey_skipped_total", tenant=TENANT, reason="suppressed") == 1

    # Quiet hours: the survey waits for the morning, across a restart.
    pl.call("c-night", sleeper, queue="night")
    deferred = wait_until(  # not exported yet counts as not yet
        lambda: metric_value(pl.metrics(), "switchboard_survey_deferred_total", reason="quiet_hours"),
        "survey to defer c-night for quiet hours (switchboard_survey_deferred_total)", timeout=60)
    assert deferred == 1
    assert metric_value(pl.metrics(), "switchboard_survey_pending") == 1
    assert pl.requests_for(sleeper) == []
    pl.restart_survey(offset=0, restart=3)
    night = pl.survey_request("c-night", timeout=150)
    sent_at = ts_to_seconds(night.envelope.occurred_at)
    assert sent_at >= quiet_end.timestamp() - 0.001, (sent_at, quiet_end.timestamp())

    # Four days later the 72-hour survey sent today has expired: its response is dead-lettered.
    pl.restart_survey(offset=4 * 86400, restart=4)
    pl.respond(today, csat=4)
    assert pl.dead_letter(today.survey_id) == "expired"
