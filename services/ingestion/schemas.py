"""JSON Schema (draft 2020-12) for each channel's inbound JSON, built from the same constants the
parser uses, so the files channel teams validate against cannot drift from what ingestion accepts.

`python -m services.ingestion.schemas [DIR]` writes `DIR/<channel>.schema.json` (default `schemas/`);
tests/unit/test_ingestion_schemas.py fails when the committed files differ from what this writes.

The schemas are stricter than the parser in one way: unknown properties are errors, so a typo is
caught at the source (ingestion itself ignores unknown properties, for forward compatibility).
Checks a schema cannot express (timestamp age, total payload bytes, known tenants) are documented
in each schema's description and enforced by ingestion.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.common.channels import CHANNELS
from services.ingestion.parse import STEPS

SCHEMA_ID_BASE = "https://switchboard.example/schemas/inbound/"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
TEXT_MAX = 32768  # default INGESTION_MAX_TEXT_CHARS

_ID = {"type": "string", "pattern": ID_PATTERN}
_PHONE = {"type": "string", "pattern": E164_PATTERN, "description": "E.164, e.g. +14155550123"}
_TIMESTAMP = {
    "oneOf": [
        {"type": "string", "format": "date-time", "pattern": r"(Z|[+-][0-9]{2}:[0-9]{2})$"},
        {"type": "number", "minimum": 0},
    ],
    "description": "RFC 3339 with a zone, or epoch seconds",
}
_SECONDS = {"type": "number", "minimum": 0, "maximum": 86400}
_TEXT = {"type": "string", "maxLength": TEXT_MAX}

DETAIL_SCHEMAS: dict[str, dict[str, Any]] = {
    "voice": {
        "properties": {
            "from_number": _PHONE,
            "to_number": _PHONE,
            "ivr_path": {
                "type": "array", "maxItems": 50,
                "items": {"type": "object", "additionalProperties": False,
                          "properties": {"menu": {"type": "string"}, "choice": {"type": "string"}}},
                "description": "IVR menus passed and the choice made in each, in order",
            },
            "ivr_seconds": {**_SECONDS, "description": "time spent in the IVR before arriving"},
            "ivr_language": {"type": "string", "description": "BCP 47 tag chosen in the IVR, e.g. es"},
        },
        "required": ["from_number"],
    },
    "chat": {
        "properties": {
            "session_id": _ID,
            "first_message": _TEXT,
            "bot_transcript": {**_TEXT, "description": "what the customer told a bot before hand-over"},
            "page_url": {"type": "string", "maxLength": 2048},
        },
        "required": ["session_id"],
    },
    "email": {
        "properties": {
            "from_address": {"type": "string", "format": "email", "maxLength": 254},
            "to_address": {"type": "string", "maxLength": 254},
            "subject": {"type": "string", "maxLength": 998},
            "body": _TEXT,
        },
        "required": ["from_address"],
    },
    "sms": {
        "properties": {"from_number": _PHONE, "text": {**_TEXT, "minLength": 1}},
        "required": ["from_number", "text"],
    },
    "callback": {
        "properties": {
            "phone_number": _PHONE,
            "requested_for": {**_TIMESTAMP, "description": "when to call back (up to 30 days ahead); "
                                                           "absent = as soon as possible"},
        },
        "required": ["phone_number"],
    },
    "voicemail": {
        "properties": {
            "from_number": _PHONE,
            "duration_seconds": _SECONDS,
            "recording_uri": {"type": "string", "maxLength": 2048},
            "transcript": _TEXT,
        },
        "required": ["from_number"],
    },
}


def channel_schema(channel: str) -> dict[str, Any]:
    detail = DETAIL_SCHEMAS[channel]
    block = {"type": "object", "additionalProperties": False, "properties": detail["properties"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID_BASE}{channel}.schema.json",
        "title": f"Switchboard inbound {channel} contact event",
        "description": (
            f"One JSON object per message on contacts.inbound.v1 (header content-type: application/json, "
            f"key: customer_id) for the {channel} channel, one message per step. Ingestion also rejects: "
            f"payloads over INGESTION_MAX_PAYLOAD_BYTES (oversized), occurred_at older than 7 days or more "
            f"than 5 minutes ahead (bad_timestamp), tenants that are not configured (unknown_tenant)."
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "event_id": {**_ID, "description": "idempotency key: a repeat within the dedupe window is dropped"},
            "tenant_id": _ID,
            "occurred_at": _TIMESTAMP,
            "source": {"type": "string", "maxLength": 128, "description": "the publishing system"},
            "traceparent": {"type": "string", "description": "W3C trace context"},
            "contact_id": _ID,
            "customer_id": _ID,
            "channel": {"const": channel},
            "step": {"enum": sorted(STEPS)},
            "queue": {**_ID, "description": "queue requested by the channel (IVR menu, chat entry point)"},
            "agent_id": _ID,
            "transfer_queue": _ID,
            "talk_seconds": {"type": "number", "minimum": 0},
            "hold_seconds": {"type": "number", "minimum": 0},
            "attributes": {"type": "object", "maxProperties": 50,
                           "additionalProperties": {"type": "string", "maxLength": 1024}},
            channel: {**block, "required": detail["required"]},
        },
        "required": ["event_id", "tenant_id", "occurred_at", "contact_id", "customer_id", "channel", "step"],
        "allOf": [
            {"if": {"properties": {"step": {"const": "arrived"}}}, "then": {"required": [channel]}},
            {"if": {"properties": {"step": {"enum": ["answered", "ended"]}}}, "then": {"required": ["agent_id"]}},
            {"if": {"properties": {"step": {"const": "transferred"}}}, "then": {"required": ["transfer_queue"]}},
        ],
    }


def render(channel: str) -> str:
    return json.dumps(channel_schema(channel), indent=2, sort_keys=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for channel in CHANNELS:
        path = directory / f"{channel}.schema.json"
        path.write_text(render(channel))
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "schemas"
    for p in write_all(target):
        print(p)
