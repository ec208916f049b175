"""Fuzzing the ingestion parsers and handler (hypothesis): arbitrary bytes, arbitrary JSON and
mutated valid events (JSON and protobuf). The only way out other than an accepted event is the
documented Reject with a reason code and a detail that never quotes the input's values.
CI runs 6,200 inputs in all (and 1,600 more to check what they reach); FUZZ_EXAMPLES=<n> raises
each fuzz test's count (e.g. 50000)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.common.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF
from services.common.dlq import Reject
from services.ingestion.config import IngestionConfig
from services.ingestion.handler import IngestionHandler
from services.ingestion.parse import STEPS, Limits, parse
from switchboard.v1 import contact_pb2

N = int(os.environ.get("FUZZ_EXAMPLES", "0"))
NOW = time.time()
LIMITS = Limits(max_payload_bytes=16 * 1024, max_text_chars=2048, known_tenants=frozenset({"acme", "globex"}))
MARK = "Qx9"  # in every generated string value: a reason that quotes input would contain it


def budget(ci: int) -> Any:
    return settings(max_examples=max(ci, N), deadline=None, derandomize=N == 0,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def outcome(value: bytes | None, ctype: str | None, reasons: set[str] | None = None
            ) -> contact_pb2.ContactEvent | None:
    try:
        ev = parse(value, ctype, NOW, LIMITS)
    except Reject as rej:
        assert rej.code and rej.code.replace("_", "").isalpha() and rej.code.islower(), rej.code
        assert rej.detail, rej.code
        assert MARK not in rej.detail, rej.detail  # never echoes a value (personal data)
        if reasons is not None:
            reasons.add(rej.code)
        return None
    assert isinstance(ev, contact_pb2.ContactEvent)
    assert ev.envelope.tenant_id in LIMITS.known_tenants and ev.contact_id and ev.envelope.event_id
    return ev


VALID: dict[str, dict[str, Any]] = {
    "voice": {"from_number": "+14155550123", "ivr_path": [{"menu": "main", "choice": "1"}], "ivr_seconds": 3},
    "chat": {"session_id": "s-1", "first_message": "hi", "bot_transcript": "bot", "page_url": "https://x/y"},
    "email": {"from_address": "a@example.org", "to_address": "b@example.org", "subject": "s", "body": "b"},
    "sms": {"from_number": "+447700900123", "text": "hello"},
    "callback": {"phone_number": "+33612345678"},
    "voicemail": {"from_number": "+493012345678", "duration_seconds": 10, "transcript": "t"},
}


def valid_event(channel: str, step: str = "arrived") -> dict[str, Any]:
    return {"event_id": "e-1", "tenant_id": "acme", "occurred_at": NOW - 5, "source": "fuzz",
            "contact_id": "c-1", "customer_id": "cust-1", "channel": channel, "step": step,
            "queue": "support", "attributes": {"k": "v"}, channel: dict(VALID[channel])}


marked_text = st.text(max_size=40).map(lambda s: MARK + s)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), marked_text)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=20)
ctypes = st.sampled_from([CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF, "application/protobuf", None, "",
                          "text/plain", "application/json; charset=utf-8"])
arbitrary_bytes = st.binary(max_size=2048)


def test_all_valid_channels_parse() -> None:
    for channel in VALID:
        assert outcome(json.dumps(valid_event(channel)).encode(), CONTENT_TYPE_JSON) is not None, channel


@budget(1500)
@given(arbitrary_bytes, ctypes)
def test_arbitrary_bytes(value: bytes, ctype: str | None) -> None:
    outcome(value, ctype)


@budget(1200)
@given(json_value)
def test_arbitrary_json(obj: Any) -> None:
    outcome(json.dumps(obj).encode(), CONTENT_TYPE_JSON)


FIELDS = ["event_id", "tenant_id", "occurred_at", "source", "contact_id", "customer_id", "channel", "step",
          "queue", "attributes", "schema_version", "trace", "agent_id", "talk_seconds", "unknown_field"]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    channel = draw(st.sampled_from(sorted(VALID)))
    ev = valid_event(channel, draw(st.sampled_from(sorted(STEPS))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "replace", "replace_detail", "drop_detail", "swap_block"]))
        if kind == "drop":
            ev.pop(draw(st.sampled_from(sorted(ev))), None)
        elif kind == "replace":
            ev[draw(st.sampled_from(FIELDS))] = draw(json_value)
        elif kind in ("replace_detail", "drop_detail") and isinstance(ev.get(channel), dict):
            block = ev[channel]
            name = draw(st.sampled_from(sorted(block) + ["extra"]))
            if kind == "drop_detail":
                block.pop(name, None)
            else:
                block[name] = draw(json_value)
        elif kind == "swap_block":
            ev[draw(st.sampled_from(sorted(VALID)))] = dict(VALID[draw(st.sampled_from(sorted(VALID)))])
    return ev


@budget(1500)
@given(mutated())
# Found by a FUZZ_EXAMPLES=10000 run: epoch seconds beyond a protobuf Timestamp raised ValueError.
@example(dict(valid_event("callback"), occurred_at=9.223372036854776e18))
@example(dict(valid_event("voice"), occurred_at=-1e300))
@example(dict(valid_event("sms"), occurred_at=float("inf")))
@example(dict(valid_event("email"), occurred_at=float("nan")))
@example(dict(valid_event("callback"), callback={"phone_number": "+33612345678", "requested_for": 1e30}))
def test_mutated_json_events(ev: dict[str, Any]) -> None:
    outcome(json.dumps(ev).encode(), CONTENT_TYPE_JSON)


def _proto(channel: str) -> bytes:
    ev = contact_pb2.ContactEvent(contact_id="c-1", customer_id="cust-1", step=contact_pb2.CONTACT_STEP_ARRIVED,
                                  channel=contact_pb2.CHANNEL_SMS if channel == "sms" else contact_pb2.CHANNEL_EMAIL)
    ev.envelope.event_id, ev.envelope.tenant_id, ev.envelope.schema_version = "e-1", "acme", 1
    ev.envelope.occurred_at.FromSeconds(int(NOW) - 5)
    if channel == "sms":
        ev.sms.from_number, ev.sms.text = "+447700900123", "hello"
    else:
        ev.email.from_address, ev.email.subject = "a@example.org", "s"
    return ev.SerializeToString()


proto_channels = st.sampled_from(["sms", "email"])
byte_flips = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6)
proto_tails = st.binary(max_size=16)


def flipped(channel: str, flips: list[tuple[int, int]], tail: bytes) -> bytes:
    raw = bytearray(_proto(channel))
    for pos, byte in flips:
        raw[pos % len(raw)] = byte
    return bytes(raw) + tail


@budget(1200)
@given(proto_channels, byte_flips, proto_tails)
def test_mutated_protobuf_events(channel: str, flips: list[tuple[int, int]], tail: bytes) -> None:
    outcome(flipped(channel, flips, tail), CONTENT_TYPE_PROTOBUF)


class Msg:
    """What the stream loop hands the handler: a consumed record's value and headers."""

    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes]] | None) -> None:
        self._value, self._headers = value, headers

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


HANDLER = IngestionHandler(IngestionConfig(limits=LIMITS, dedupe_window_seconds=60, dedupe_max_entries=1000),
                           "out", "dedupe", clock=lambda: NOW)


@budget(800)
@given(st.one_of(mutated().map(lambda e: json.dumps(e).encode()), st.binary(max_size=512), st.none()),
       st.one_of(st.none(), st.lists(st.tuples(st.sampled_from(["content-type", "x", "traceparent"]),
                                               st.binary(max_size=40)), max_size=3)))
def test_handler_outputs_or_rejects(value: bytes | None, headers: list[tuple[str, bytes]] | None) -> None:
    try:
        outs = HANDLER.handle(Msg(value, headers))  # type: ignore[arg-type]
    except Reject as rej:
        assert rej.code and rej.detail and MARK not in rej.detail
        return
    for out in outs:
        assert out.topic in ("out", "dedupe") and out.value


REASONS_EXAMPLES = 400  # inputs per generator: the same ones every run (derandomized, no database)
MIN_REASONS = 10  # of the 18 reason codes; these 1,600 inputs reach 13


def test_the_fuzzing_reaches_many_reasons() -> None:
    """The generators above hit most reject paths, not one. The test runs each of them itself
    (a fixed budget and seed), so it holds alone and in any order, and fails if they get weaker."""
    reasons: set[str] = set()
    generators = [
        st.tuples(arbitrary_bytes, ctypes),
        json_value.map(lambda obj: (json.dumps(obj).encode(), CONTENT_TYPE_JSON)),
        mutated().map(lambda ev: (json.dumps(ev).encode(), CONTENT_TYPE_JSON)),
        st.builds(flipped, proto_channels, byte_flips, proto_tails).map(lambda raw: (raw, CONTENT_TYPE_PROTOBUF)),
    ]
    for inputs in generators:
        @settings(max_examples=REASONS_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(inputs)
        def fuzz(case: tuple[bytes, str | None]) -> None:
            outcome(*case, reasons)

        fuzz()
    assert len(reasons) >= MIN_REASONS, f"the fuzzing reached only {len(reasons)} reasons: {sorted(reasons)}"
