"""The JSON Schema files channel teams validate against: committed = generated, the examples pass both
the schema and ingestion's parser, and what the parser rejects the schema rejects too."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest

from services.common.channels import CHANNELS
from services.common.dlq import Reject
from services.ingestion.parse import Limits, parse
from services.ingestion.schemas import channel_schema, render

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
EXAMPLES = sorted((SCHEMAS / "examples").glob("*.json"))


def validator(channel: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{channel}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_committed_schema_matches_generator(channel: str) -> None:
    path = SCHEMAS / f"{channel}.schema.json"
    assert path.read_text() == render(channel), f"{path} is stale: run python -m services.ingestion.schemas"


def test_every_channel_has_an_arrived_example() -> None:
    assert {p.name.split("-")[0] for p in EXAMPLES if p.stem.endswith("arrived")} == set(CHANNELS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_validate_against_schema_and_parse(path: Path) -> None:
    obj = json.loads(path.read_text())
    errors = [e.message for e in validator(obj["channel"]).iter_errors(obj)]
    assert errors == []
    now = datetime.fromisoformat(obj["occurred_at"].replace("Z", "+00:00")).timestamp() + 1
    ev = parse(path.read_bytes(), "application/json", now, Limits())
    assert ev.envelope.event_id == obj["event_id"]


def _example(name: str) -> dict:
    return json.loads((SCHEMAS / "examples" / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("name", "change", "code"),
    [
        ("voice-arrived", {"voice": {"from_number": "0044 20 7946"}}, "invalid_phone"),
        ("voice-arrived", {"voice": None}, "missing_field"),
        ("voice-answered", {"agent_id": None}, "missing_field"),
        ("voice-transferred", {"transfer_queue": None}, "missing_field"),
        ("email-arrived", {"email": {"from_address": "nobody"}}, "invalid_email"),
        ("sms-arrived", {"sms": {"from_number": "+34600000001"}}, "missing_field"),
        ("chat-arrived", {"channel": "fax"}, "invalid_channel"),
        ("chat-arrived", {"step": "teleported"}, "invalid_step"),
        ("chat-arrived", {"customer_id": "has space"}, "invalid_id"),
        ("callback-arrived", {"callback": {"phone_number": 442079460000}}, "invalid_type"),
    ],
)
def test_schema_rejects_what_ingestion_rejects(name: str, change: dict, code: str) -> None:
    obj = {**_example(name), **change}
    obj = {k: v for k, v in obj.items() if v is not None}
    channel = _example(name)["channel"]
    assert list(validator(channel).iter_errors(obj)), "the schema accepted it"
    now = datetime.fromisoformat(obj["occurred_at"].replace("Z", "+00:00")).timestamp() + 1
    with pytest.raises(Reject) as exc:
        parse(json.dumps(obj).encode(), "application/json", now, Limits())
    assert exc.value.code == code


def test_schema_is_strict_about_unknown_properties() -> None:
    obj = {**_example("email-arrived"), "priorty": 5}
    assert any("priorty" in e.message for e in validator("email").iter_errors(obj))
    assert channel_schema("email")["properties"]["channel"] == {"const": "email"}
