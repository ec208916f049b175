from __future__ import annotations

import json

import pytest

from services.common.dlq import Reject
from services.ingestion.dedupe import Deduplicator
from services.ingestion.parse import Limits, parse
from switchboard.v1 import contact_pb2

NOW = 1_795_000_000.0
LIMITS = Limits()


def voice(**over: object) -> dict:
    ev = {
        "event_id": "e-1", "tenant_id": "acme", "occurred_at": NOW - 5, "source": "ivr",
        "contact_id": "c-1", "customer_id": "cust-1", "channel": "voice", "step": "arrived",
        "queue": "support",
        "voice": {"from_number": "+14155550123", "ivr_path": [{"menu": "main", "choice": "2"}],
                  "ivr_seconds": 12.5, "ivr_language": "es"},
    }
    ev.update(over)
    return ev


def js(obj: object) -> bytes:
    return json.dumps(obj).encode()


def reason(value: bytes, ctype: str | None = "application/json", limits: Limits = LIMITS) -> str:
    with pytest.raises(Reject) as exc:
        parse(value, ctype, NOW, limits)
    return exc.value.code


def test_voice_json_normalizes_to_canonical_event() -> None:
    ev = parse(js(voice(occurred_at="2026-11-18T08:26:35Z")), "application/json", NOW, LIMITS)
    assert ev.channel == contact_pb2.CHANNEL_VOICE
    assert ev.step == contact_pb2.CONTACT_STEP_ARRIVED
    assert ev.voice.ivr_path[0].choice == "2"
    assert ev.voice.ivr_seconds == 12.5
    assert ev.queue_hint == "support"
    assert ev.envelope.occurred_at.seconds == 1_794_990_395


def test_protobuf_input_is_accepted_and_sniffed_without_header() -> None:
    ev = parse(js(voice()), "application/json", NOW, LIMITS)
    again = parse(ev.SerializeToString(), None, NOW, LIMITS)
    assert again == ev


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"[1,2]", "malformed_json"),
        (js(voice(channel="fax")), "invalid_channel"),
        (js(voice(step="teleported")), "invalid_step"),
        (js(voice(event_id="")), "missing_field"),
        (js(voice(customer_id="has space")), "invalid_id"),
        (js(voice(occurred_at=NOW - 30 * 86400)), "bad_timestamp"),
        (js(voice(occurred_at=NOW + 3600)), "bad_timestamp"),
        (js(voice(occurred_at="yesterday")), "bad_timestamp"),
        (js(voice(voice={"from_number": "0044 20 7946 0000"})), "invalid_phone"),
        (js(voice(voice=None)), "missing_field"),
        (js(voice(step="answered", voice=None)), "missing_field"),  # answered needs agent_id
        (js(voice(chat={"session_id": "s"})), "channel_mismatch"),
        (js(voice(channel="email", voice=None, email={"from_address": "not-an-address"})), "invalid_email"),
        (js(voice(channel="sms", voice=None, sms={"from_number": "+14155550123"})), "missing_field"),
        (js(voice(voice={"from_number": 14155550123})), "invalid_type"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(payload: bytes, code: str) -> None:
    assert reason(payload) == code


def test_sizes_content_type_and_tenants() -> None:
    assert reason(b"") == "empty_payload"
    assert reason(js(voice(attributes={"x": "y" * 70_000}))) == "oversized"
    assert reason(js(voice()), "text/csv") == "unsupported_content_type"
    assert reason(b"\x08\x96\x01garbage\xff", "application/x-protobuf") == "malformed_protobuf"
    only_globex = Limits(known_tenants=frozenset({"globex"}))
    assert reason(js(voice()), limits=only_globex) == "unknown_tenant"


def test_reject_details_never_echo_personal_data() -> None:
    with pytest.raises(Reject) as exc:
        parse(js(voice(voice={"from_number": "+1 415 555 0123"})), "application/json", NOW, LIMITS)
    assert "555" not in str(exc.value)


def test_every_channel_arrives() -> None:
    details = {
        "chat": {"session_id": "s-1", "first_message": "hola"},
        "email": {"from_address": "ana@example.com", "subject": "Invoice", "body": "hi"},
        "sms": {"from_number": "+34600000001", "text": "help"},
        "callback": {"phone_number": "+34600000001"},
        "voicemail": {"from_number": "+34600000001", "duration_seconds": 30},
    }
    for channel, block in details.items():
        ev = parse(js(voice(channel=channel, voice=None, **{channel: block})), "application/json", NOW, LIMITS)
        assert ev.WhichOneof("detail") == channel


def test_dedupe_window() -> None:
    d = Deduplicator(window_seconds=60)
    assert not d.seen("a", 0)
    assert d.seen("a", 30)
    assert not d.seen("a", 100)  # expired, seen anew
    small = Deduplicator(window_seconds=60, max_entries=2)
    for key in "abc":
        small.seen(key, 0)
    assert len(small) == 2


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (js(voice(channel="callback", voice=None,
                  callback={"phone_number": "+34600000001", "requested_for": NOW + 90 * 86400})), "bad_timestamp"),
        (js(voice(channel="callback", voice=None,
                  callback={"phone_number": "+34600000001", "requested_for": "tomorrow"})), "bad_timestamp"),
        (js(voice(channel="voicemail", voice=None,
                  voicemail={"from_number": "+34600000001", "duration_seconds": 90_000})), "invalid_value"),
        (js(voice(voice={"from_number": "+14155550123", "ivr_seconds": 100_000})), "invalid_value"),
        (js(voice(source="s" * 200)), "oversized_field"),
        (js(voice(attributes={f"k{i}": "v" for i in range(60)})), "oversized_field"),
        (js(voice(occurred_at=None)), "missing_field"),
        (js(voice(occurred_at=[1])), "bad_timestamp"),
        (js(voice(occurred_at="2026-11-18T08:26:35")), "bad_timestamp"),  # no zone
        (js(voice(channel="chat", voice=None, chat={"session_id": "s", "first_message": "x" * 40_000})),
         "oversized_field"),
        (js(voice(talk_seconds=-1)), "invalid_value"),
        # NaN and Infinity are not JSON (json.dumps writes them as literals; the parser refuses them),
        # nor is a number too large for a double; routing could not write them to its state either
        (js(voice(talk_seconds=float("nan"))), "malformed_json"),
        (js(voice(voice={"from_number": "+14155550123", "ivr_seconds": float("inf")})), "malformed_json"),
        (js(voice(talk_seconds=1)).replace(b'"talk_seconds": 1', b'"talk_seconds": 1e400'), "malformed_json"),
    ],
)
def test_more_precise_reasons(payload: bytes, code: str) -> None:
    assert reason(payload) == code


def test_a_utf8_byte_order_mark_is_skipped() -> None:
    assert parse(b"\xef\xbb\xbf" + js(voice()), "application/json", NOW, LIMITS) == parse(
        js(voice()), "application/json", NOW, LIMITS)


def test_callback_time_is_kept() -> None:
    ev = parse(js(voice(channel="callback", voice=None,
                        callback={"phone_number": "+34600000001", "requested_for": NOW + 3600})),
               "application/json", NOW, LIMITS)
    assert ev.callback.requested_for.seconds == int(NOW + 3600)


def test_callback_request_step_reaches_routing_as_its_own_step() -> None:
    ev = parse(js(voice(step="callback_requested", voice=None)), "application/json", NOW, LIMITS)
    assert ev.step == contact_pb2.CONTACT_STEP_CALLBACK_REQUESTED
    again = parse(ev.SerializeToString(), "application/x-protobuf", NOW, LIMITS)
    assert again.step == contact_pb2.CONTACT_STEP_CALLBACK_REQUESTED
