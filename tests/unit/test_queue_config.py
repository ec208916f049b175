from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from services.routing.domain import AgentSelection, Channel
from services.routing.queues import (
    _QUEUE_OPTIONS,
    ConfigError,
    QueueConfig,
    QueuesConfig,
    load_queues,
    parse_queues,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "queues.yaml"


def test_example_file_loads_with_the_demo_queues() -> None:
    config = load_queues(EXAMPLE)
    assert set(config.tenants) == {"default", "acme"}
    acme = config.tenant("acme")
    assert set(acme.queues) == {"support", "billing", "sales", "spanish", "vip"}
    support = acme.queues["support"]
    assert support.channel is Channel.VOICE and support.skills == {"support": 2}
    assert acme.queues["sales"].channel is Channel.CHAT and acme.queues["sales"].language == "en"
    assert acme.queues["spanish"].language == "es"
    assert acme.queues["vip"].priority == 10
    assert acme.queues["vip"].agent_selection is AgentSelection.MOST_SKILLED
    # tenant defaults reach every queue; a queue's own value wins
    assert acme.queues["sales"].wrap_up_seconds == 10.0
    assert acme.queues["billing"].wrap_up_seconds == 30.0


def test_unknown_tenant_falls_back_to_default_tenant() -> None:
    config = parse_queues("tenants:\n  default:\n    queues:\n      general: {channel: email}\n")
    assert config.tenant("nobody").queues["general"].channel is Channel.EMAIL
    assert config.tenant("nobody").tenant_id == "default"


def test_default_tenant_is_added_when_missing_and_null_queue_means_defaults() -> None:
    config = parse_queues("tenants:\n  acme:\n    strict: true\n    queues:\n      support:\n")
    assert "default" in config.tenants and config.tenants["default"].queues == {}
    assert config.tenant("acme").strict is True
    assert config.tenant("acme").queues["support"] == QueueConfig("support")


def test_every_option_is_typed_and_parsed() -> None:
    text = """\
tenants:
  t:
    queues:
      q:
        channel: sms
        skills: {a: 1, b: 5}
        language: ES
        priority: -2
        service_level_seconds: 30
        short_abandon_seconds: 2.5
        max_wait_seconds: 90
        max_length: 7
        wrap_up_seconds: 0
        offer_timeout_seconds: 12
        agent_selection: round_robin
        aging_boost_per_minute: 0.5
        sla_boost_window_seconds: 60
        sla_boost_priority: 4
        default_handle_seconds: 240
"""
    q = parse_queues(text).tenant("t").queues["q"]
    assert q == QueueConfig(
        queue_id="q", channel=Channel.SMS, skills={"a": 1, "b": 5}, language="es", priority=-2,
        service_level_seconds=30.0, short_abandon_seconds=2.5, max_wait_seconds=90.0, max_length=7,
        wrap_up_seconds=0.0, offer_timeout_seconds=12.0, agent_selection=AgentSelection.ROUND_ROBIN,
        aging_boost_per_minute=0.5, sla_boost_window_seconds=60.0, sla_boost_priority=4.0,
        default_handle_seconds=240.0,
    )
    # each QueueConfig field (but the id) can be set from the file
    assert set(_QUEUE_OPTIONS) == {f.name for f in dataclasses.fields(QueueConfig)} - {"queue_id"}


def test_queues_config_default_has_only_an_empty_default_tenant() -> None:
    config = QueuesConfig.default()
    assert list(config.tenants) == ["default"]
    assert config.tenant("acme").queues == {} and not config.tenant("acme").strict


HEAD = "tenants:\n  acme:\n    queues:\n      support:\n"  # the queue's options start on line 5
Q = "tenants.acme.queues.support"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (HEAD + "        skils: {support: 2}\n", 5,
         f"{Q}: unknown key 'skils' (allowed: agent_selection, aging_boost_per_minute"),
        ("tenants:\n  acme:\n    queue: {}\n", 3,
         "tenants.acme: unknown key 'queue' (allowed: defaults, queues, strict)"),
        ("version: 2\ntenants: {}\n", 1, "top level: unknown key 'version' (allowed: tenants)"),
        (HEAD + "        channel: voice\n        wrap_up_seconds: ten\n", 6,
         f"{Q}.wrap_up_seconds: expected a number, got str 'ten'"),
        (HEAD + "        wrap_up_seconds: true\n", 5,
         f"{Q}.wrap_up_seconds: expected a number, got bool True"),
        (HEAD + "        priority: 1.5\n", 5, f"{Q}.priority: expected an integer, got float 1.5"),
        (HEAD + "        skills:\n          support: 6\n", 6,
         f"{Q}.skills.support: skill level must be an integer from 1 to 5, got int 6"),
        (HEAD + "        skills: {support: 0}\n", 5, "skill level must be an integer from 1 to 5, got int 0"),
        (HEAD + "        skills: {support: high}\n", 5, "skill level must be an integer from 1 to 5, got str 'high'"),
        (HEAD + "        skills: [support]\n", 5, f"{Q}.skills: expected a mapping, got a sequence"),
        (HEAD + "        agent_selection: random\n", 5,
         f"{Q}.agent_selection: must be one of longest_idle, most_skilled, "
         "fewest_contacts, round_robin, got str 'random'"),
        (HEAD + "        wrap_up_seconds: -5\n", 5, f"{Q}.wrap_up_seconds: must be >= 0, got -5"),
        (HEAD + "        offer_timeout_seconds: -0.5\n", 5, "offer_timeout_seconds: must be >= 0, got -0.5"),
        (HEAD + "        max_wait_seconds: 0\n", 5, "max_wait_seconds: must be > 0, got 0"),
        (HEAD + "        default_handle_seconds: -1\n", 5, "default_handle_seconds: must be > 0, got -1"),
        (HEAD + "        max_length: 0\n", 5, "max_length: must be >= 1, got 0"),
        (HEAD + "        channel: fax\n", 5,
         "channel: must be one of voice, chat, email, sms, callback, voicemail, got str 'fax'"),
        ("tenants:\n  acme:\n    strict: 1\n", 3, "tenants.acme.strict: expected true or false, got int 1"),
        (HEAD + "        priority: 1\n        priority: 2\n", 6, f"{Q}: duplicate key 'priority'"),
        ("tenants:\n  acme:\n    queues:\n      - support\n", 4,
         "tenants.acme.queues: expected a mapping, got a sequence"),
        ("tenants:\n  acme:\n    defaults:\n      wrap_up: 3\n", 4, "tenants.acme.defaults: unknown key 'wrap_up'"),
        ("queues: {}\n", 1, "top level: unknown key 'queues'"),
        ("{}\n", 1, "top level: missing key 'tenants'"),
        ("", 1, "empty file"),
        ("- a\n- b\n", 1, "top level: expected a mapping, got a sequence"),
        # YAML syntax errors carry the line YAML reports
        ("tenants:\n  acme:\n    queues: {support: {skills: {a: 1}}\n", 4, "invalid YAML: expected ',' or '}'"),
        ("tenants:\n  acme:\n    queues:\n      support:\n        channel: voice\n       skills: {}\n", 6,
         "invalid YAML: "),
        ("tenants:\n  acme: [\n", 3, "invalid YAML: "),
    ],
)
def test_errors_name_file_line_and_reason(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_queues(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert reason in err.value.reason, str(err.value)
    assert (err.value.path, err.value.line) == (str(path), line)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml:1: cannot read file"):
        load_queues(missing)
