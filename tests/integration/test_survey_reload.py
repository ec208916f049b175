"""The survey policy file is re-read without a restart: a change applies to the next contact, a
bad file is refused with its line and the running policy stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from services.common.codec import new_envelope
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2
from tests.helpers import (
    consume_until,
    http_get,
    metric_value,
    producer,
    read_all,
    send,
    start_service,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.broker

PB = "application/x-protobuf"
DISABLED = """\
tenants:
  acme:
    queues:
      support: {enabled: false}
"""
ENABLED = """\
tenants:
  acme:
    queues:
      support: {enabled: true, questions: [csat]}
"""
BROKEN = """\
tenants:
  acme:
    queues:
      support: {enabled: maybe}
"""


def ended(contact_id: str) -> bytes:
    ev = routing_pb2.LifecycleEvent(
        envelope=new_envelope("acme", time.time(), "test"), contact_id=contact_id, customer_id=f"cust-{contact_id}",
        kind=routing_pb2.LIFECYCLE_KIND_ENDED, queue_id="support", channel=contact_pb2.CHANNEL_VOICE,
        agent_id="a-1", answered=True, talk_seconds=30, customer_has_mobile=True)
    return ev.SerializeToString()


def rewrite(path: Path, text: str) -> None:
    """Replace the file and make sure its signature (mtime, size) changes even within one tick."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        later = before + 1_000_000
        os.utime(path, ns=(later, later))


def test_policy_reload_applies_to_the_next_contact_and_a_bad_file_is_refused(
    service_env: dict[str, str], topic_prefix: str, tmp_path: Path
) -> None:
    b, t = service_env["KAFKA_BOOTSTRAP_SERVERS"], topic_prefix
    policy = tmp_path / "survey.yaml"
    policy.write_text(DISABLED)
    svc = start_service("survey", service_env, tmp_path, SURVEY_POLICY_FILE=str(policy),
                        SURVEY_POLICY_RELOAD_SECONDS="0.5")
    try:
        wait_ready([svc])
        p = producer(b)
        lifecycle = t + "contacts.lifecycle.v1"

        def skipped_disabled() -> float:
            _, body = http_get(svc.metrics_url)
            try:
                return metric_value(body, "switchboard_survey_skipped_total", tenant="acme", reason="disabled")
            except AssertionError:
                return 0.0

        send(p, lifecycle, "acme", ended("c-before"), PB)
        wait_until(lambda: skipped_disabled() >= 1, "survey to skip c-before (policy disabled)", 60, 0.2)
        assert skipped_disabled() == 1, svc.log()[-2000:]

        rewrite(policy, ENABLED)
        wait_until(lambda: "policy_reloaded" in svc.log(), "policy_reloaded in the survey log", 60, 0.2)
        send(p, lifecycle, "acme", ended("c-after"), PB)
        msg = consume_until(b, t + "surveys.requests.v1",
                            lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == "c-after")
        req = survey_pb2.SurveyRequest.FromString(msg.value())
        assert [q.question_id for q in req.questions] == ["csat"]  # the new file's questions

        rewrite(policy, BROKEN)
        wait_until(lambda: "policy_reload_failed" in svc.log(), "policy_reload_failed in the survey log", 60, 0.2)
        failed = [line for line in svc.log().splitlines() if "policy_reload_failed" in line]
        assert failed and '"line":4' in failed[0] and str(policy) in failed[0], svc.log()[-2000:]
        assert svc.proc.poll() is None  # still running, on the last good policy
        send(p, lifecycle, "acme", ended("c-still"), PB)
        consume_until(b, t + "surveys.requests.v1",
                      lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == "c-still")
        requests = read_all(b, t + "surveys.requests.v1")
        ids = [survey_pb2.SurveyRequest.FromString(m.value()).contact_id for m in requests]
        assert sorted(ids) == ["c-after", "c-still"]  # c-before was never surveyed
    finally:
        assert svc.terminate() == 0
