"""Queue configuration files: a validating YAML loader of the model in queue_config.py.

File layout (see deploy/config/queues.yaml for a documented example)::

    tenants:
      <tenant_id>:
        strict: false          # true: contacts for a queue not listed here are rejected
        defaults: {<option>: <value>, ...}   # applied to every queue of the tenant
        queues:
          <queue_id>: {<option>: <value>, ...}

A tenant missing from the file uses the "default" tenant's queues (an empty one is added when the
file has none). Every error names the file and the 1-based line of the offending YAML node.

`load_queues` also takes a directory of ``<tenant_id>.yaml`` files (``.yml`` too), one tenant each,
with the tenant's block (``strict``, ``defaults``, ``queues``) at the top level.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from services.common.configfile import ConfigFileError, compose, read_text
from services.common.hours import Hours

from .domain import AgentSelection, Channel
from .queue_config import (  # noqa: F401 (re-exported: the queue file's model)
    DEFAULT_TENANT,
    Action,
    Overflow,
    QueueConfig,
    QueuesConfig,
    Step,
    TenantConfig,
)

ConfigError = ConfigFileError  # the name routing's callers use
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def load_queues(path: str | Path) -> QueuesConfig:
    """A queues file, or a directory of one `<tenant_id>.yaml` file per tenant."""
    p = Path(path)
    if p.is_dir():
        return _load_directory(p)
    return parse_queues(_read(p), str(path))


def _read(p: Path) -> str:
    return read_text(p)


def _load_directory(directory: Path) -> QueuesConfig:
    tenants: dict[str, TenantConfig] = {}
    files = sorted(f for f in directory.iterdir() if f.suffix in (".yaml", ".yml") and not f.name.startswith("."))
    for f in files:
        tenant_id = f.stem
        if tenant_id in tenants:
            raise ConfigError(str(f), 1, f"tenant '{tenant_id}' is defined by two files")
        root = _compose(_read(f), str(f))
        tenants[tenant_id] = _Parser(str(f)).tenant(tenant_id, root, name=tenant_id)
    tenants.setdefault(DEFAULT_TENANT, TenantConfig(DEFAULT_TENANT))
    return QueuesConfig(tenants)


def parse_queues(text: str, path: str = "<string>") -> QueuesConfig:
    """Parses and validates queue configuration text (path is only used in error messages)."""
    return _Parser(path).config(_compose(text, path))


def _compose(text: str, path: str) -> Node | None:
    return compose(text, path)


# Queue options: name -> validator(parser, node, dotted name) -> value. QueueConfig's fields
# other than queue_id, one for one.
_Validator = Callable[["_Parser", Node, str], Any]


def _number(minimum: float, inclusive: bool = True) -> _Validator:
    def check(p: _Parser, node: Node, name: str) -> float:
        value = p.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise p.error(node, f"{name}: expected a number, got {_describe(value)}")
        if value < minimum or (not inclusive and value == minimum):
            raise p.error(node, f"{name}: must be {'>=' if inclusive else '>'} {minimum:g}, got {value:g}")
        return float(value)
    return check


def _optional(inner: _Validator) -> _Validator:
    def check(p: _Parser, node: Node, name: str) -> Any:
        return None if p.scalar(node) is None else inner(p, node, name)
    return check


def _integer(minimum: int | None = None) -> _Validator:
    def check(p: _Parser, node: Node, name: str) -> int:
        value = p.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int):
            raise p.error(node, f"{name}: expected an integer, got {_describe(value)}")
        if minimum is not None and value < minimum:
            raise p.error(node, f"{name}: must be >= {minimum}, got {value}")
        return value
    return check


def _string(p: _Parser, node: Node, name: str) -> str:
    value = p.scalar(node)
    if not isinstance(value, str):
        raise p.error(node, f"{name}: expected a string, got {_describe(value)}")
    return value.strip().lower()


def _channel(p: _Parser, node: Node, name: str) -> Channel | None:
    value = p.scalar(node)
    if value is None:
        return None
    allowed = [c.value for c in Channel]
    if not isinstance(value, str) or value not in allowed:
        raise p.error(node, f"{name}: must be one of {', '.join(allowed)}, got {_describe(value)}")
    return Channel(value)


def _selection(p: _Parser, node: Node, name: str) -> AgentSelection:
    value = p.scalar(node)
    allowed = [s.value for s in AgentSelection]
    if not isinstance(value, str) or value not in allowed:
        raise p.error(node, f"{name}: must be one of {', '.join(allowed)}, got {_describe(value)}")
    return AgentSelection(value)


def _skills(p: _Parser, node: Node, name: str) -> dict[str, int]:
    skills: dict[str, int] = {}
    for _, value_node, key in p.mapping(node, name):
        value = p.scalar(value_node)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise p.error(value_node, f"{name}.{key}: skill level must be an integer from 1 to 5, "
                                      f"got {_describe(value)}")
        skills[key] = value
    return skills


def _boolean(p: _Parser, node: Node, name: str) -> bool:
    value = p.scalar(node)
    if not isinstance(value, bool):
        raise p.error(node, f"{name}: expected true or false, got {_describe(value)}")
    return value


def _action(p: _Parser, node: Node, name: str) -> Action:
    value = p.scalar(node)
    allowed = [a.value for a in Action]
    if not isinstance(value, str) or value not in allowed:
        raise p.error(node, f"{name}: must be one of {', '.join(allowed)}, got {_describe(value)}")
    return Action(value)


def _steps(p: _Parser, node: Node, name: str) -> tuple[Step, ...]:
    if isinstance(node, ScalarNode) and p.scalar(node) is None:
        return ()
    if not isinstance(node, SequenceNode):
        raise p.error(node, f"{name}: expected a list of steps, got {_describe(p.scalar(node))}")
    steps: list[Step] = []
    for i, step_node in enumerate(node.value):
        step_name = f"{name}[{i}]"
        items = p.mapping(step_node, step_name)
        p.check_keys(items, ("after_seconds", "skills", "language"), step_name)
        fields = {key: value_node for _, value_node, key in items}
        if "after_seconds" not in fields:
            raise p.error(step_node, f"{step_name}: missing key 'after_seconds'")
        after = _number(0, inclusive=False)(p, fields["after_seconds"], f"{step_name}.after_seconds")
        if steps and after <= steps[-1].after_seconds:
            raise p.error(fields["after_seconds"], f"{step_name}.after_seconds: must be greater than the "
                                                   f"previous step's ({steps[-1].after_seconds:g})")
        skills = _skills(p, fields["skills"], f"{step_name}.skills") if "skills" in fields else {}
        keep_language = True
        if "language" in fields:
            value = p.scalar(fields["language"])
            if value not in ("keep", "any"):
                raise p.error(fields["language"], f"{step_name}.language: must be keep or any, got {_describe(value)}")
            keep_language = value == "keep"
        last = i == len(node.value) - 1
        if last and (skills or ("language" in fields and keep_language)):
            raise p.error(step_node, f"{step_name}: the last step admits any agent of the queue; "
                                     "put skills and language in an earlier step")
        steps.append(Step(after, skills, keep_language if not last else False))
    return tuple(steps)


_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def _hours(p: _Parser, node: Node, name: str) -> Hours | None:
    if isinstance(node, ScalarNode) and p.scalar(node) is None:
        return None
    items = p.mapping(node, name)
    p.check_keys(items, ("time_zone", "weekly", "holidays"), name)
    fields = {key: value_node for _, value_node, key in items}
    if "time_zone" not in fields:
        raise p.error(node, f"{name}: missing key 'time_zone'")
    tz_node = fields["time_zone"]
    tz = p.scalar(tz_node)
    if not isinstance(tz, str):
        raise p.error(tz_node, f"{name}.time_zone: expected a string, got {_describe(tz)}")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise p.error(tz_node, f"{name}.time_zone: unknown time zone {tz!r}") from None
    weekly: dict[int, tuple[tuple[int, int], ...]] = {}
    if "weekly" in fields:
        for key_node, ranges_node, day in p.mapping(fields["weekly"], f"{name}.weekly"):
            if day not in WEEKDAYS:
                raise p.error(key_node, f"{name}.weekly: unknown day '{day}' (allowed: {', '.join(WEEKDAYS)})")
            day_name = f"{name}.weekly.{day}"
            if isinstance(ranges_node, ScalarNode) and p.scalar(ranges_node) is None:
                continue
            if not isinstance(ranges_node, SequenceNode):
                raise p.error(ranges_node, f"{day_name}: expected a list of \"HH:MM-HH:MM\" ranges")
            ranges: list[tuple[int, int]] = []
            for range_node in ranges_node.value:
                text = p.scalar(range_node)
                match = _RANGE.match(text) if isinstance(text, str) else None
                if match is None:
                    raise p.error(range_node, f"{day_name}: expected \"HH:MM-HH:MM\", got {_describe(text)}")
                h1, m1, h2, m2 = (int(g) for g in match.groups())
                start, end = h1 * 60 + m1, h2 * 60 + m2
                if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or start >= end:
                    raise p.error(range_node, f"{day_name}: {text!r} is not a range within one day "
                                              "(start before end, 00:00 to 24:00)")
                for other in ranges:
                    if start < other[1] and other[0] < end:
                        raise p.error(range_node, f"{day_name}: {text!r} overlaps another range")
                ranges.append((start, end))
            weekly[WEEKDAYS.index(day)] = tuple(sorted(ranges))
    holidays: set[date] = set()
    if "holidays" in fields:
        hol_node = fields["holidays"]
        if not isinstance(hol_node, SequenceNode):
            raise p.error(hol_node, f"{name}.holidays: expected a list of dates (YYYY-MM-DD)")
        for day_node in hol_node.value:
            try:
                value = p.scalar(day_node)
            except ValueError:  # YAML read it as a date that does not exist (2026-02-30)
                value = day_node.value
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    pass
            if not isinstance(value, date):
                raise p.error(day_node, f"{name}.holidays: expected a date YYYY-MM-DD, got {_describe(value)}")
            holidays.add(value)
    return Hours(tz, weekly, frozenset(holidays))


def _overflow(p: _Parser, node: Node, name: str) -> Overflow | None:
    if isinstance(node, ScalarNode) and p.scalar(node) is None:
        return None
    items = p.mapping(node, name)
    p.check_keys(items, ("queue", "site", "after_seconds", "when_no_agents"), name)
    fields = {key: value_node for _, value_node, key in items}
    targets = [k for k in ("queue", "site") if k in fields]
    if len(targets) != 1:
        raise p.error(node, f"{name}: needs exactly one of 'queue' or 'site'")
    target_node = fields[targets[0]]
    target = p.scalar(target_node)
    if not isinstance(target, str) or not target:
        raise p.error(target_node, f"{name}.{targets[0]}: expected a non-empty string, got {_describe(target)}")
    after = None
    if "after_seconds" in fields:
        after = _optional(_number(0, inclusive=False))(p, fields["after_seconds"], f"{name}.after_seconds")
    when_no_agents = _boolean(p, fields["when_no_agents"], f"{name}.when_no_agents") \
        if "when_no_agents" in fields else False
    if after is None and not when_no_agents:
        raise p.error(node, f"{name}: set after_seconds, when_no_agents: true, or both")
    overflow = Overflow(queue=target if targets[0] == "queue" else "",
                        site=target if targets[0] == "site" else "", after_seconds=after,
                        when_no_agents=when_no_agents)
    p.overflow_lines[id(overflow)] = target_node.start_mark.line + 1
    return overflow


_QUEUE_OPTIONS: dict[str, _Validator] = {
    "channel": _channel,
    "skills": _skills,
    "language": _string,
    "priority": _integer(),
    "service_level_seconds": _number(0),
    "short_abandon_seconds": _number(0),
    "max_wait_seconds": _optional(_number(0, inclusive=False)),
    "max_length": _optional(_integer(1)),
    "wrap_up_seconds": _number(0),
    "offer_timeout_seconds": _number(0),
    "agent_selection": _selection,
    "aging_boost_per_minute": _number(0),
    "sla_boost_window_seconds": _number(0),
    "sla_boost_priority": _number(0),
    "default_handle_seconds": _number(0, inclusive=False),
    "steps": _steps,
    "hours": _hours,
    "closed_action": _action,
    "max_wait_action": _action,
    "overflow": _overflow,
    "preferred_agent_wait_seconds": _number(0),
}

_TENANT_KEYS = ("strict", "defaults", "queues")
_ROOT_KEYS = ("tenants",)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self._constructor = SafeConstructor()
        self.overflow_lines: dict[int, int] = {}  # id(Overflow) -> line of its target (for errors)

    def error(self, node: Node, reason: str) -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, reason)

    def scalar(self, node: Node) -> Any:
        """The plain value of a scalar node (YAML 1.1 typing as yaml.safe_load would)."""
        if not isinstance(node, ScalarNode):
            return _Composite(node)
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: Node, name: str, allow_null: bool = False) -> list[tuple[Node, Node, str]]:
        """(key node, value node, key) of a mapping with string keys, rejecting duplicates."""
        if allow_null and isinstance(node, ScalarNode) and self.scalar(node) is None:
            return []
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{name}: expected a mapping, got {_describe(self.scalar(node))}")
        seen: set[str] = set()
        items: list[tuple[Node, Node, str]] = []
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if not isinstance(key, str) or not key:
                raise self.error(key_node, f"{name}: keys must be non-empty strings, got {_describe(key)}")
            if key in seen:
                raise self.error(key_node, f"{name}: duplicate key '{key}'")
            seen.add(key)
            items.append((key_node, value_node, key))
        return items

    def check_keys(self, items: list[tuple[Node, Node, str]], allowed: Mapping[str, object] | tuple[str, ...],
                   name: str) -> None:
        for key_node, _, key in items:
            if key not in allowed:
                raise self.error(key_node, f"{name}: unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")

    def config(self, root: Node | None) -> QueuesConfig:
        if root is None:
            raise ConfigError(self.path, 1, "empty file: expected a mapping with a 'tenants' key")
        items = self.mapping(root, "top level")
        self.check_keys(items, _ROOT_KEYS, "top level")
        tenants: dict[str, TenantConfig] = {}
        for _, value_node, _ in items:  # only "tenants"
            for _, tenant_node, tenant_id in self.mapping(value_node, "tenants", allow_null=True):
                tenants[tenant_id] = self.tenant(tenant_id, tenant_node)
        if not any(key == "tenants" for _, _, key in items):
            raise self.error(root, "top level: missing key 'tenants'")
        tenants.setdefault(DEFAULT_TENANT, TenantConfig(DEFAULT_TENANT))
        return QueuesConfig(tenants)

    def tenant(self, tenant_id: str, node: Node | None, name: str = "") -> TenantConfig:
        name = name or f"tenants.{tenant_id}"
        if node is None:  # an empty per-tenant file
            return TenantConfig(tenant_id)
        items = self.mapping(node, name, allow_null=True)
        self.check_keys(items, _TENANT_KEYS, name)
        fields = {key: value_node for _, value_node, key in items}
        strict = False
        if "strict" in fields:
            strict_value = self.scalar(fields["strict"])
            if not isinstance(strict_value, bool):
                raise self.error(fields["strict"], f"{name}.strict: expected true or false, "
                                                   f"got {_describe(strict_value)}")
            strict = strict_value
        defaults: dict[str, Any] = {}
        if "defaults" in fields:
            defaults = self.options(fields["defaults"], f"{name}.defaults")
        queues: dict[str, QueueConfig] = {}
        if "queues" in fields:
            for _, queue_node, queue_id in self.mapping(fields["queues"], f"{name}.queues", allow_null=True):
                options = {**defaults, **self.options(queue_node, f"{name}.queues.{queue_id}")}
                queues[queue_id] = QueueConfig(queue_id=queue_id, **options)
        self.check_overflow(queues, name)
        return TenantConfig(tenant_id, strict, queues)

    def check_overflow(self, queues: dict[str, QueueConfig], name: str) -> None:
        """Overflow targets exist, accept the channel, and never lead back to a queue already passed."""
        for queue_id, cfg in queues.items():
            if cfg.overflow is None or not cfg.overflow.queue:
                continue
            line = self.overflow_lines.get(id(cfg.overflow), 1)
            where = f"{name}.queues.{queue_id}.overflow.queue"
            target = queues.get(cfg.overflow.queue)
            if target is None:
                raise ConfigError(self.path, line, f"{where}: unknown queue '{cfg.overflow.queue}'")
            if cfg.channel is not None and target.channel is not None and cfg.channel is not target.channel:
                raise ConfigError(self.path, line, f"{where}: '{cfg.overflow.queue}' takes {target.channel.value} "
                                                   f"contacts, this queue {cfg.channel.value}")
            path = [queue_id]
            current: QueueConfig | None = cfg
            while current is not None and current.overflow is not None and current.overflow.queue:
                nxt = current.overflow.queue
                if nxt in path:
                    cycle = " -> ".join([*path[path.index(nxt):], nxt])
                    raise ConfigError(self.path, line, f"{where}: overflow cycle {cycle}")
                path.append(nxt)
                current = queues.get(nxt)

    def options(self, node: Node, name: str) -> dict[str, Any]:
        items = self.mapping(node, name, allow_null=True)
        self.check_keys(items, _QUEUE_OPTIONS, name)
        return {key: _QUEUE_OPTIONS[key](self, value_node, f"{name}.{key}") for _, value_node, key in items}


class _Composite:
    """Stands for a mapping or sequence where a scalar was expected (for error messages)."""

    def __init__(self, node: Node) -> None:
        self.kind = "sequence" if isinstance(node, SequenceNode) else "mapping"


def _describe(value: object) -> str:
    if isinstance(value, _Composite):
        return f"a {value.kind}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"
