"""The survey store holds open and pending surveys compactly (fields + changelog bytes, decoded on
demand) and shrinks expired ones to markers that still dead-letter a late response as `expired`."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.codec import new_envelope, ts_from_seconds
from services.common.dlq import Reject
from services.survey.policy import CustomerFacts, QueuePolicy, decide
from services.survey.responses import validate
from services.survey.state import SurveyStore
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2

NOW = 1_795_000_000.0
GRACE = 300.0
RETENTION = 7 * 86400.0


def opened(contact: str, customer: str = "cust-1", expires_in: float = 3600) -> survey_pb2.OpenSurvey:
    ev = routing_pb2.LifecycleEvent(
        envelope=new_envelope("acme", NOW, "routing", event_id=f"life-{contact}"), contact_id=contact,
        customer_id=customer, kind=routing_pb2.LIFECYCLE_KIND_ENDED, queue_id="support",
        channel=contact_pb2.CHANNEL_VOICE, agent_id="a-1", answered=True, customer_has_mobile=True)
    req = decide(ev, NOW, QueuePolicy(), CustomerFacts()).request
    assert req is not None
    req.expires_at.CopyFrom(ts_from_seconds(NOW + expires_in))
    return survey_pb2.OpenSurvey(request=req, customer_segments=["gold"], followup_queue="supervisors")


def answer(survey_id: str, tenant: str = "acme") -> survey_pb2.SurveyResponse:
    return survey_pb2.SurveyResponse(envelope=new_envelope(tenant, NOW, "sms"), survey_id=survey_id,
                                     answers=[survey_pb2.Answer(question_id="csat", score=4)])


def reason(store: SurveyStore, resp: survey_pb2.SurveyResponse, now: float) -> str:
    with pytest.raises(Reject) as exc:
        validate(resp, store.open_survey(resp.survey_id), now, GRACE)
    return exc.value.code


def test_store_holds_no_decoded_messages_and_decodes_the_same_survey_on_demand() -> None:
    """Open surveys live in a file (OpenSurveys), not in the heap; what is read back is the bytes."""
    store = SurveyStore("state")
    s = opened("c-1")
    out = store.put_open("acme", s)
    entry = store.open[s.request.survey_id]
    assert entry.raw == out.value  # the produced changelog bytes (held on disk: services/common/diskmap.py)
    assert not any(isinstance(f, survey_pb2.OpenSurvey) for f in entry)
    assert store.open_survey(s.request.survey_id) == s
    pending = survey_pb2.PendingSurvey(request=opened("c-2").request, due_at=ts_from_seconds(NOW + 60),
                                       source_partition=3, reason="delay")
    store.put_pending("acme", pending)
    assert not any(isinstance(f, survey_pb2.PendingSurvey) for f in store.pending[pending.request.survey_id])
    assert store.due(NOW + 59, None) == [] and store.due(NOW + 60, {2}) == []
    assert store.due(NOW + 60, {3}) == [("acme", pending)]


def test_expired_survey_becomes_a_marker_on_the_topic_and_in_memory_and_still_rejects_as_expired() -> None:
    store = SurveyStore("state")
    s, done = opened("c-1"), opened("c-2", customer="cust-2")
    log = [store.put_open("acme", s), store.put_open("acme", done)]
    answered = survey_pb2.OpenSurvey()
    answered.CopyFrom(done)
    answered.answered = True
    log.append(store.put_open("acme", answered))
    assert store.cleanup(NOW + 3600 + GRACE, RETENTION, 86400, GRACE) == []  # within the grace: untouched
    out = store.cleanup(NOW + 3600 + GRACE + 1, RETENTION, 86400, GRACE)
    assert {o.key for o in out} == {b"acme/open/" + s.request.survey_id.encode(),
                                    b"acme/open/" + done.request.survey_id.encode()}
    for o in out:  # the rewritten records carry no customer, questions or segments
        marker = survey_pb2.SurveyState.FromString(o.value).open
        assert not marker.request.customer_id and not marker.request.questions and not marker.customer_segments
        assert b"cust-" not in o.value
    assert all(e.raw is None and e.customer == "" for e in store.open.values())
    later = NOW + 3 * 86400
    assert reason(store, answer(s.request.survey_id), later) == "expired"
    assert reason(store, answer(done.request.survey_id), later) == "duplicate"
    assert reason(store, answer(s.request.survey_id, tenant="other"), later) == "tenant_mismatch"
    # A replica rebuilt from the compacted topic holds the same markers.
    rebuilt = SurveyStore("state")
    rebuilt.load((o.key, o.value) for o in [*log, *out])
    assert rebuilt.open == store.open
    assert reason(rebuilt, answer(s.request.survey_id), later) == "expired"
    # An erasure finds nothing of the customer in a marker (it holds none).
    assert [o.key for o in rebuilt.erase_customer("acme", "cust-1")] == [b"acme/customer/cust-1"]
    # After the retention the marker is tombstoned: a later response is an unknown survey.
    gone = rebuilt.cleanup(NOW + 3600 + RETENTION + 1, RETENTION, 86400, GRACE)
    assert {(o.key, o.value) for o in gone} == {(b"acme/open/" + s.request.survey_id.encode(), None),
                                               (b"acme/open/" + done.request.survey_id.encode(), None)}
    assert reason(rebuilt, answer(s.request.survey_id), NOW + 3600 + RETENTION + 2) == "unknown_survey"


def test_zero_retention_drops_at_expiry_plus_grace_never_before() -> None:
    store = SurveyStore("state")
    s = opened("c-1")
    store.put_open("acme", s)
    assert store.cleanup(NOW + 3600 + GRACE, 0, 86400, GRACE) == []
    out = store.cleanup(NOW + 3600 + GRACE + 1, 0, 86400, GRACE)
    assert [(o.key, o.value) for o in out] == [(b"acme/open/" + s.request.survey_id.encode(), None)]
    assert store.open == {}


def test_open_surveys_are_on_disk_and_the_timers_query_only_what_expired(tmp_path: Path) -> None:
    """72 h of open surveys outgrow the heap: they live in a SQLite file, and cleanup asks the
    expiry index for what is due instead of walking every survey."""
    from services.survey.state import OpenSurveys

    store = SurveyStore("state", OpenSurveys(tmp_path / "open.sqlite"))
    for i in range(50):
        store.put_open("acme", opened(f"c-{i}", customer=f"cust-{i}"))
    assert (tmp_path / "open.sqlite").stat().st_size > 0 and len(store.open) == 50
    expiry = store.open[opened("c-0").request.survey_id].expires_at
    assert len(store.erase_customer("acme", "cust-3")) == 2  # the open survey and the customer record
    assert len(store.open) == 49
    assert store.open.expiring(expiry - 1, expiry - 1) == []
    assert store.cleanup(expiry - 1, 86400, 0, GRACE) == []
    shrunk = store.cleanup(expiry + GRACE + 1, 86400, 0, GRACE)
    assert len(shrunk) == 49 and all(e.raw is None and e.customer == "" for e in store.open.values())
    assert store.open.expiring(expiry + GRACE + 2 - 86400, expiry + GRACE + 2) == []  # markers: not walked again
    gone = store.cleanup(expiry + 86400 + 1, 86400, 0, GRACE)
    assert len(gone) == 49 and len(store.open) == 0
