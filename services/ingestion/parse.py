"""Pure parsing and validation of what upstream channels publish (no I/O, no clock).

Input: JSON (documented in README "Inbound contact events") or a protobuf ContactEvent.
Output: a canonical ContactEvent, or `Reject(code, detail)` with a stable reason code.
Details never echo personal data (numbers, addresses, text): they name the field only.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from services.common.channels import CHANNEL_NAMES, CHANNELS
from services.common.codec import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROTOBUF,
    SCHEMA_VERSION,
    DecodeFailure,
    decode,
    ts_from_seconds,
    ts_to_seconds,
)
from services.common.dlq import Reject
from switchboard.v1 import contact_pb2

STEPS = {
    "arrived": contact_pb2.CONTACT_STEP_ARRIVED,
    "answered": contact_pb2.CONTACT_STEP_ANSWERED,
    "abandoned": contact_pb2.CONTACT_STEP_ABANDONED,
    "ended": contact_pb2.CONTACT_STEP_ENDED,
    "transferred": contact_pb2.CONTACT_STEP_TRANSFERRED,
    # A waiting caller chose "call me back" (IVR or web): routing keeps their place in the queue.
    "callback_requested": contact_pb2.CONTACT_STEP_CALLBACK_REQUESTED,
}
STEP_NAMES = {v: k for k, v in STEPS.items()}

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int = 64 * 1024
    max_text_chars: int = 32 * 1024
    max_age_seconds: float = 7 * 24 * 3600
    max_future_seconds: float = 300
    # Empty = any tenant is accepted.
    known_tenants: frozenset[str] = field(default_factory=frozenset)


def _str(obj: dict[str, Any], name: str, where: str = "") -> str:
    value = obj.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Reject("invalid_type", f"{where}{name} must be a string")
    return value


def _num(obj: dict[str, Any], name: str, where: str = "") -> float:
    value = obj.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Reject("invalid_type", f"{where}{name} must be a number")
    if not math.isfinite(value):  # the JSON parser refuses NaN and Infinity; a caller handing values in may not
        raise Reject("invalid_value", f"{where}{name} must be a finite number")
    if value < 0:
        raise Reject("invalid_value", f"{where}{name} must not be negative")
    return float(value)


def _timestamp(value: Any, name: str = "occurred_at") -> float:
    if isinstance(value, bool):
        raise Reject("bad_timestamp", f"{name} must be RFC 3339 or epoch seconds")
    if isinstance(value, int | float):
        # Finite and within 0001..9999 (what a protobuf Timestamp holds); found by fuzzing: 9.2e18 crashed.
        if not -62135596800 <= value <= 253402300799:
            raise Reject("bad_timestamp", f"{name} epoch seconds out of range")
        return float(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Reject("bad_timestamp", f"{name} is not RFC 3339") from None
        if parsed.tzinfo is None:
            raise Reject("bad_timestamp", f"{name} needs a time zone (e.g. Z)")
        return parsed.timestamp()
    if value is None or value == "":
        raise Reject("missing_field", f"{name} is required")
    raise Reject("bad_timestamp", f"{name} must be RFC 3339 or epoch seconds")


_DETAIL_FIELDS: dict[str, dict[str, type]] = {
    "voice": {"from_number": str, "to_number": str, "ivr_seconds": float, "ivr_language": str},
    "chat": {"session_id": str, "first_message": str, "bot_transcript": str, "page_url": str},
    "email": {"from_address": str, "to_address": str, "subject": str, "body": str},
    "sms": {"from_number": str, "text": str},
    "callback": {"phone_number": str},
    "voicemail": {"from_number": str, "duration_seconds": float, "recording_uri": str, "transcript": str},
}


_BOM = b"\xef\xbb\xbf"


def event_from_json(data: bytes) -> contact_pb2.ContactEvent:
    """Map the documented JSON onto a ContactEvent. Checks types; `validate` checks meaning."""
    try:
        # orjson: ~3x faster than the stdlib here, stricter (no NaN or Infinity literals, no lone
        # surrogates: both dead-lettered as malformed_json). A UTF-8 byte order mark, which the
        # stdlib skipped, is skipped here too.
        obj = orjson.loads(data[3:] if data[:3] == _BOM else data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:  # orjson.JSONDecodeError is a subclass
        raise Reject("malformed_json", f"not valid JSON ({type(exc).__name__} at position "
                                       f"{getattr(exc, 'pos', '?')})") from None
    if not isinstance(obj, dict):
        raise Reject("malformed_json", "the event must be a JSON object")
    ev = contact_pb2.ContactEvent()
    env = ev.envelope
    env.event_id = _str(obj, "event_id")
    env.tenant_id = _str(obj, "tenant_id")
    env.source = _str(obj, "source")
    env.schema_version = SCHEMA_VERSION
    env.occurred_at.CopyFrom(ts_from_seconds(_timestamp(obj.get("occurred_at"))))
    trace = obj.get("traceparent")
    if isinstance(trace, str):
        env.trace.traceparent = trace
    ev.contact_id = _str(obj, "contact_id")
    ev.customer_id = _str(obj, "customer_id")
    channel = _str(obj, "channel").lower()
    if channel not in CHANNELS:
        raise Reject("invalid_channel", f"channel must be one of {sorted(CHANNELS)}")
    ev.channel = CHANNELS[channel]
    step = _str(obj, "step").lower()
    if step not in STEPS:
        raise Reject("invalid_step", f"step must be one of {sorted(STEPS)}")
    ev.step = STEPS[step]
    ev.queue_hint = _str(obj, "queue")
    ev.agent_id = _str(obj, "agent_id")
    ev.transfer_queue = _str(obj, "transfer_queue")
    if "talk_seconds" in obj or "hold_seconds" in obj:
        ev.handle.talk_seconds = _num(obj, "talk_seconds")
        ev.handle.hold_seconds = _num(obj, "hold_seconds")
    attrs = obj.get("attributes", {})
    if not isinstance(attrs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()):
        raise Reject("invalid_type", "attributes must be an object of strings")
    ev.attributes.update(attrs)
    for name, fields in _DETAIL_FIELDS.items():
        block = obj.get(name)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise Reject("invalid_type", f"{name} must be an object")
        if name != channel:
            raise Reject("channel_mismatch", f"detail block {name!r} does not match channel {channel!r}")
        detail = getattr(ev, name)
        detail.SetInParent()
        for fname, ftype in fields.items():
            if fname in block:
                value = _num(block, fname, f"{name}.") if ftype is float else _str(block, fname, f"{name}.")
                setattr(detail, fname, value)
        if name == "callback" and block.get("requested_for") is not None:
            at = _timestamp(block.get("requested_for"), "callback.requested_for")
            detail.requested_for.CopyFrom(ts_from_seconds(at))
        if name == "voice":
            path = block.get("ivr_path", [])
            if not isinstance(path, list):
                raise Reject("invalid_type", "voice.ivr_path must be a list")
            for step_obj in path:
                if not isinstance(step_obj, dict):
                    raise Reject("invalid_type", "voice.ivr_path items must be objects")
                detail.ivr_path.add(
                    menu=_str(step_obj, "menu", "ivr_path."), choice=_str(step_obj, "choice", "ivr_path.")
                )
    return ev


def _check_id(value: str, name: str) -> None:
    if not value:
        raise Reject("missing_field", f"{name} is required")
    if not ID.match(value):
        raise Reject("invalid_id", f"{name} must be 1-128 characters of letters, digits and ._:@-")


def validate(ev: contact_pb2.ContactEvent, now: float, limits: Limits) -> None:
    """Meaning checks shared by JSON and protobuf input."""
    _check_id(ev.envelope.event_id, "event_id")
    _check_id(ev.envelope.tenant_id, "tenant_id")
    if limits.known_tenants and ev.envelope.tenant_id not in limits.known_tenants:
        raise Reject("unknown_tenant", "tenant_id is not a configured tenant")
    _check_id(ev.contact_id, "contact_id")
    _check_id(ev.customer_id, "customer_id")
    if ev.channel not in CHANNEL_NAMES:
        raise Reject("invalid_channel", "channel is missing or unknown")
    if ev.step not in STEP_NAMES:
        raise Reject("invalid_step", "step is missing or unknown")
    if not ev.envelope.HasField("occurred_at"):
        raise Reject("missing_field", "occurred_at is required")
    at = ts_to_seconds(ev.envelope.occurred_at)
    if at < now - limits.max_age_seconds:
        raise Reject("bad_timestamp", "occurred_at is too far in the past")
    if at > now + limits.max_future_seconds:
        raise Reject("bad_timestamp", "occurred_at is in the future")
    if len(ev.envelope.source) > 128:
        raise Reject("oversized_field", "source is longer than 128 characters")
    if len(ev.attributes) > 50 or any(len(k) > 64 or len(v) > 1024 for k, v in ev.attributes.items()):
        raise Reject("oversized_field", "attributes: at most 50, keys up to 64 and values up to 1024 characters")
    if ev.queue_hint and not ID.match(ev.queue_hint):
        raise Reject("invalid_id", "queue must be 1-128 characters of letters, digits and ._:@-")
    step = ev.step
    if step in (contact_pb2.CONTACT_STEP_ANSWERED, contact_pb2.CONTACT_STEP_ENDED):
        _check_id(ev.agent_id, "agent_id")
    if step == contact_pb2.CONTACT_STEP_TRANSFERRED:
        _check_id(ev.transfer_queue, "transfer_queue")
    detail = ev.WhichOneof("detail")
    channel = CHANNEL_NAMES[ev.channel]
    if detail is not None and detail != channel:
        raise Reject("channel_mismatch", f"detail block {detail!r} does not match channel {channel!r}")
    if step == contact_pb2.CONTACT_STEP_ARRIVED:
        if detail is None:
            raise Reject("missing_field", f"an arrived {channel} contact needs its {channel!r} block")
        _validate_detail(ev, channel, limits)


def _phone(value: str, name: str) -> None:
    if not value:
        raise Reject("missing_field", f"{name} is required")
    if not E164.match(value):
        raise Reject("invalid_phone", f"{name} is not an E.164 number")


def _text(value: str, name: str, limits: Limits) -> None:
    if len(value) > limits.max_text_chars:
        raise Reject("oversized_field", f"{name} is longer than {limits.max_text_chars} characters")


def _validate_detail(ev: contact_pb2.ContactEvent, channel: str, limits: Limits) -> None:
    if channel == "voice":
        _phone(ev.voice.from_number, "voice.from_number")
        if ev.voice.to_number:
            _phone(ev.voice.to_number, "voice.to_number")
        if not math.isfinite(ev.voice.ivr_seconds) or ev.voice.ivr_seconds > 24 * 3600:
            raise Reject("invalid_value", "voice.ivr_seconds is absurd (> 1 day, or not a finite number)")
        if len(ev.voice.ivr_path) > 50:
            raise Reject("oversized_field", "voice.ivr_path has more than 50 steps")
    elif channel == "chat":
        _check_id(ev.chat.session_id, "chat.session_id")
        _text(ev.chat.first_message, "chat.first_message", limits)
        _text(ev.chat.bot_transcript, "chat.bot_transcript", limits)
    elif channel == "email":
        if not ev.email.from_address:
            raise Reject("missing_field", "email.from_address is required")
        if len(ev.email.from_address) > 254 or not EMAIL.match(ev.email.from_address):
            raise Reject("invalid_email", "email.from_address is not a valid address")
        if len(ev.email.subject) > 998:
            raise Reject("oversized_field", "email.subject is longer than 998 characters")
        _text(ev.email.body, "email.body", limits)
    elif channel == "sms":
        _phone(ev.sms.from_number, "sms.from_number")
        if not ev.sms.text:
            raise Reject("missing_field", "sms.text is required")
        _text(ev.sms.text, "sms.text", limits)
    elif channel == "callback":
        _phone(ev.callback.phone_number, "callback.phone_number")
        if ev.callback.HasField("requested_for"):
            when = ts_to_seconds(ev.callback.requested_for)
            at = ts_to_seconds(ev.envelope.occurred_at)
            if when < at - limits.max_future_seconds or when > at + 30 * 24 * 3600:
                raise Reject("bad_timestamp", "callback.requested_for must be between now and 30 days ahead")
    elif channel == "voicemail":
        _phone(ev.voicemail.from_number, "voicemail.from_number")
        if ev.voicemail.duration_seconds > 24 * 3600:
            raise Reject("invalid_value", "voicemail.duration_seconds is absurd (> 1 day)")
        _text(ev.voicemail.transcript, "voicemail.transcript", limits)


def parse(value: bytes | None, content_type: str | None, now: float, limits: Limits) -> contact_pb2.ContactEvent:
    """Bytes from contacts.inbound.v1 → a validated canonical ContactEvent, or Reject."""
    if value is None or len(value) == 0:
        raise Reject("empty_payload", "the message has no value")
    if len(value) > limits.max_payload_bytes:
        raise Reject("oversized", f"payload of {len(value)} bytes exceeds {limits.max_payload_bytes}")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not ctype:
        ctype = CONTENT_TYPE_JSON if value.lstrip()[:1] == b"{" else CONTENT_TYPE_PROTOBUF
    if ctype == CONTENT_TYPE_JSON:
        ev = event_from_json(value)
    elif ctype in (CONTENT_TYPE_PROTOBUF, "application/protobuf"):
        try:
            ev = decode(contact_pb2.ContactEvent, value)
        except DecodeFailure:
            raise Reject("malformed_protobuf", "not a valid switchboard.v1.ContactEvent") from None
        if ev.envelope.schema_version > SCHEMA_VERSION:
            raise Reject("unsupported_schema_version",
                         f"schema_version {ev.envelope.schema_version} > supported {SCHEMA_VERSION}")
        ev.envelope.schema_version = SCHEMA_VERSION
    else:
        raise Reject("unsupported_content_type", f"content-type {ctype!r} is not JSON or protobuf")
    validate(ev, now, limits)
    return ev
