from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from services.routing.domain import AgentSelection, Channel
from services.routing.queues import (
    _QUEUE_OPTIONS,
    Action,
    ConfigError,
    Hours,
    Overflow,
    QueueConfig,
    QueuesConfig,
    Step,
    load_queues,
    parse_queues,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "queues.yaml"
EXAMPLE_DIR = EXAMPLE.parent / "queues.d"


def test_example_file_loads_with_the_demo_queues() -> None:
    config = load_queues(EXAMPLE)
    assert set(config.tenants) == {"default", "acme"}
    acme = config.tenant("acme")
    assert set(acme.queues) == {"support", "billing", "sales", "spanish", "vip", "tier2"}
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
        ("tenants:\n  acme:\n    queues: {support: {skills: {a: 1}}\n", 4, "not valid YAML: expected ',' or '}'"),
        ("tenants:\n  acme:\n    queues:\n      support:\n        channel: voice\n       skills: {}\n", 6,
         "not valid YAML: "),
        ("tenants:\n  acme: [\n", 3, "not valid YAML: "),
        # relaxation steps
        (HEAD + "        steps: {after_seconds: 3}\n", 5, f"{Q}.steps: expected a list of steps, got a mapping"),
        (HEAD + "        steps:\n          - {skills: {a: 1}}\n", 6, f"{Q}.steps[0]: missing key 'after_seconds'"),
        (HEAD + "        steps:\n          - {after_seconds: 10, skills: {a: 1}}\n          - {after_seconds: 10}\n", 7,
         f"{Q}.steps[1].after_seconds: must be greater than the previous step's (10)"),
        (HEAD + "        steps:\n          - {after_seconds: 10, skills: {a: 1}}\n", 6,
         f"{Q}.steps[0]: the last step admits any agent of the queue"),
        (HEAD + "        steps:\n          - {after_seconds: 5, language: maybe}\n          - {after_seconds: 9}\n", 6,
         f"{Q}.steps[0].language: must be keep or any, got str 'maybe'"),
        (HEAD + "        steps:\n          - {after_seconds: 5, skill: {a: 1}}\n", 6,
         f"{Q}.steps[0]: unknown key 'skill'"),
        # business hours
        (HEAD + "        hours: {weekly: {}}\n", 5, f"{Q}.hours: missing key 'time_zone'"),
        (HEAD + "        hours:\n          time_zone: Mars/Olympus\n", 6,
         f"{Q}.hours.time_zone: unknown time zone 'Mars/Olympus'"),
        (HEAD + "        hours:\n          time_zone: UTC\n          weekly:\n            funday: []\n", 8,
         f"{Q}.hours.weekly: unknown day 'funday'"),
        (HEAD + "        hours:\n          time_zone: UTC\n          weekly:\n            mon: ['18:00-08:00']\n", 8,
         "is not a range within one day"),
        (HEAD + "        hours:\n          time_zone: UTC\n          weekly:\n            mon: ['8-18']\n", 8,
         f"{Q}.hours.weekly.mon: expected \"HH:MM-HH:MM\", got str '8-18'"),
        (HEAD + "        hours:\n          time_zone: UTC\n          weekly:\n"
                "            mon: ['08:00-12:00', '11:00-13:00']\n", 8, "overlaps another range"),
        (HEAD + "        hours:\n          time_zone: UTC\n          holidays:\n            - 2026-02-30\n", 8,
         f"{Q}.hours.holidays: expected a date YYYY-MM-DD, got str '2026-02-30'"),
        (HEAD + "        closed_action: hangup\n", 5,
         f"{Q}.closed_action: must be one of voicemail, callback, offline_message, queue, got str 'hangup'"),
        # overflow
        (HEAD + "        overflow: {queue: b, site: x, after_seconds: 3}\n", 5,
         f"{Q}.overflow: needs exactly one of 'queue' or 'site'"),
        (HEAD + "        overflow: {site: lisbon}\n", 5,
         f"{Q}.overflow: set after_seconds, when_no_agents: true, or both"),
        (HEAD + "        overflow: {site: lisbon, when_no_agents: yes please}\n", 5,
         f"{Q}.overflow.when_no_agents: expected true or false"),
        (HEAD + "        overflow:\n          queue: nowhere\n          after_seconds: 5\n", 6,
         f"{Q}.overflow.queue: unknown queue 'nowhere'"),
        ("tenants:\n  acme:\n    queues:\n      a: {overflow: {queue: b, after_seconds: 5}}\n"
         "      b: {overflow: {queue: c, after_seconds: 5}}\n      c:\n        overflow:\n"
         "          queue: a\n          when_no_agents: true\n", 4,
         "tenants.acme.queues.a.overflow.queue: overflow cycle a -> b -> c -> a"),
        ("tenants:\n  acme:\n    defaults: {overflow: {queue: a, after_seconds: 5}}\n    queues:\n      a:\n", 3,
         "overflow cycle a -> a"),
        ("tenants:\n  acme:\n    queues:\n      a: {channel: voice, overflow: {queue: b, after_seconds: 5}}\n"
         "      b: {channel: chat}\n", 4, "'b' takes chat contacts, this queue voice"),
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
    with pytest.raises(ConfigError, match=r"nope\.yaml:1: cannot read the file"):
        load_queues(missing)


def test_new_options_parse_with_their_defaults() -> None:
    text = """\
tenants:
  t:
    defaults:
      hours:
        time_zone: Europe/Madrid
        weekly: {mon: ["08:00-14:00", "15:00-24:00"], sun: []}
        holidays: [2026-12-25, "2027-01-01"]
      closed_action: queue
    queues:
      a:
        steps:
          - {after_seconds: 10, skills: {x: 2}}
          - {after_seconds: 20, skills: {x: 1}, language: any}
          - {after_seconds: 30}
        max_wait_action: callback
        overflow: {queue: b, after_seconds: 60, when_no_agents: true}
        preferred_agent_wait_seconds: 45
      b:
        hours: null
        overflow: {site: lisbon, when_no_agents: true}
"""
    queues = parse_queues(text).tenant("t").queues
    a, b = queues["a"], queues["b"]
    assert a.steps == (Step(10, {"x": 2}), Step(20, {"x": 1}, keep_language=False), Step(30, {}, keep_language=False))
    assert a.hours == Hours("Europe/Madrid", {0: ((480, 840), (900, 1440)), 6: ()},
                            frozenset({date(2026, 12, 25), date(2027, 1, 1)}))
    assert (a.closed_action, a.max_wait_action) == (Action.QUEUE, Action.CALLBACK)
    assert a.overflow == Overflow(queue="b", after_seconds=60, when_no_agents=True)
    assert a.preferred_agent_wait_seconds == 45
    assert b.hours is None and b.overflow == Overflow(site="lisbon", when_no_agents=True)
    assert b.closed_action is Action.QUEUE and b.max_wait_action is Action.VOICEMAIL and b.steps == ()


def test_directory_of_tenant_files(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text("strict: true\nqueues:\n  support: {channel: voice}\n")
    (tmp_path / "globex.yml").write_text("defaults: {priority: 2}\nqueues:\n  sales:\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "notes.txt").write_text("not a tenant")
    config = load_queues(tmp_path)
    assert sorted(config.tenants) == ["acme", "default", "empty", "globex"]
    assert config.tenant("acme").strict and config.tenant("acme").queues["support"].channel is Channel.VOICE
    assert config.tenant("globex").queues["sales"].priority == 2
    assert config.tenant("empty").queues == {}


def test_directory_errors_name_the_tenant_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text("queues:\n  support: {channel: voice}\n")
    bad = tmp_path / "globex.yaml"
    bad.write_text("queues:\n  sales:\n    priority: high\n")
    with pytest.raises(ConfigError) as err:
        load_queues(tmp_path)
    assert (err.value.path, err.value.line) == (str(bad), 3)
    assert err.value.reason == "globex.queues.sales.priority: expected an integer, got str 'high'"
    bad.write_text("tenants: {}\n")
    with pytest.raises(ConfigError, match=r"globex\.yaml:1: globex: unknown key 'tenants'"):
        load_queues(tmp_path)
    (tmp_path / "globex.yml").write_text("queues: {}\n")
    bad.unlink()
    (tmp_path / "acme.yml").write_text("queues: {}\n")
    with pytest.raises(ConfigError, match="tenant 'acme' is defined by two files"):
        load_queues(tmp_path)


def test_example_directory_loads() -> None:
    config = load_queues(EXAMPLE_DIR)
    acme = config.tenant("acme")
    assert acme.strict and set(acme.queues) == {"support", "overflow", "chat", "supervisors"}
    assert acme.queues["support"].overflow == Overflow(queue="overflow", after_seconds=300)
    assert acme.queues["chat"].hours is not None and acme.queues["chat"].hours.time_zone == "Europe/Madrid"
    assert config.tenant("other").tenant_id == "default"
