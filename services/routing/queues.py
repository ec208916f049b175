"""Queue configuration: the dataclasses the engine reads and a validating YAML loader.

File layout (see deploy/config/queues.yaml for a documented example)::

    tenants:
      <tenant_id>:
        strict: false          # true: contacts for a queue not listed here are rejected
        defaults: {<option>: <value>, ...}   # applied to every queue of the tenant
        queues:
          <queue_id>: {<option>: <value>, ...}

A tenant missing from the file uses the "default" tenant's queues (an empty one is added when the
file has none). Every error names the file and the 1-based line of the offending YAML node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .domain import AgentSelection, Channel

DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class QueueConfig:
    queue_id: str
    channel: Channel | None = None  # None: any channel
    skills: dict[str, int] = field(default_factory=dict)  # required skill -> minimum level (1-5)
    language: str = ""  # required language ("" = none)
    priority: int = 0  # added to each contact's own priority
    service_level_seconds: float = 20.0
    short_abandon_seconds: float = 5.0
    max_wait_seconds: float | None = None  # then the contact leaves to voicemail
    max_length: int | None = None  # arrivals beyond it are rejected ("queue_full")
    wrap_up_seconds: float = 0.0
    offer_timeout_seconds: float = 0.0  # 0: assign directly, no offer
    agent_selection: AgentSelection = AgentSelection.LONGEST_IDLE
    aging_boost_per_minute: float = 1.0  # priority gained per minute waited
    sla_boost_window_seconds: float = 300.0  # boost starts this long before the contact's SLA deadline
    sla_boost_priority: float = 10.0  # size of that boost
    default_handle_seconds: float = 180.0  # handle time assumed until the queue has observed some


@dataclass(frozen=True, slots=True)
class TenantConfig:
    tenant_id: str
    strict: bool = False
    queues: dict[str, QueueConfig] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueuesConfig:
    tenants: dict[str, TenantConfig] = field(default_factory=dict)

    @classmethod
    def default(cls) -> QueuesConfig:
        """A "default" tenant with no queues: every queue is implicit."""
        return cls({DEFAULT_TENANT: TenantConfig(DEFAULT_TENANT)})

    def tenant(self, tenant_id: str) -> TenantConfig:
        """The tenant's configuration, else the "default" tenant's."""
        found = self.tenants.get(tenant_id) or self.tenants.get(DEFAULT_TENANT)
        return found if found is not None else TenantConfig(DEFAULT_TENANT)


class ConfigError(Exception):
    """Invalid queue configuration; str() is "{path}:{line}: {reason}" with a 1-based line."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


def load_queues(path: str | Path) -> QueuesConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), 1, f"cannot read file: {exc}") from None
    return parse_queues(text, str(path))


def parse_queues(text: str, path: str = "<string>") -> QueuesConfig:
    """Parses and validates queue configuration text (path is only used in error messages)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(path, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, 1, f"invalid YAML: {exc}") from None
    return _Parser(path).config(root)


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
}

_TENANT_KEYS = ("strict", "defaults", "queues")
_ROOT_KEYS = ("tenants",)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self._constructor = SafeConstructor()

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

    def tenant(self, tenant_id: str, node: Node) -> TenantConfig:
        name = f"tenants.{tenant_id}"
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
        return TenantConfig(tenant_id, strict, queues)

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
