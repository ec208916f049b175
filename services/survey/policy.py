"""Pure survey policy: whether, when and how to survey a finished contact (no I/O, no clock).

The policy is per tenant and queue (YAML, see deploy/config/survey.yaml and `load_policy`):
sampling (deterministic by contact id, so a replay decides the same), a suppression window per
customer, opt-outs, quiet hours in the customer's time zone (the request waits for the morning),
a delay after the end, the questions, an incentive code, the expiry and the follow-up queue.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from services.common.codec import derived_event_id, new_envelope
from services.common.configfile import ConfigFileError, compose, read_text
from switchboard.v1 import contact_pb2, routing_pb2, survey_pb2

DEFAULT_TENANT = "default"
DAY = 86400.0

QUESTION_BANK: dict[str, survey_pb2.Question] = {
    "csat": survey_pb2.Question(question_id="csat", kind=survey_pb2.QUESTION_KIND_CSAT,
                                text="How satisfied were you with your contact today? (1-5)"),
    "nps": survey_pb2.Question(question_id="nps", kind=survey_pb2.QUESTION_KIND_NPS,
                               text="How likely are you to recommend us to a friend? (0-10)"),
    "ces": survey_pb2.Question(question_id="ces", kind=survey_pb2.QUESTION_KIND_CES,
                               text="How easy was it to get your issue resolved? (1-7)"),
    "comment": survey_pb2.Question(question_id="comment", kind=survey_pb2.QUESTION_KIND_COMMENT,
                                   text="Anything you would like to tell us?"),
}


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # wraps midnight, e.g. 21:00-08:00


@dataclass(frozen=True)
class QueuePolicy:
    enabled: bool = True
    sample_rate: float = 1.0
    delay_seconds: float = 0.0
    suppression_days: float = 0.0          # 0 = no suppression window
    survey_abandoned: bool = False
    time_zone: str = "UTC"
    quiet_hours: QuietHours | None = None
    expiry_seconds: float = 72 * 3600
    questions: tuple[str, ...] = ("csat", "nps", "comment")
    incentive_code: str = ""
    followup_queue: str | None = None      # detractors → a follow-up contact on this queue


@dataclass(frozen=True)
class TenantPolicy:
    defaults: QueuePolicy = field(default_factory=QueuePolicy)
    queues: Mapping[str, QueuePolicy] = field(default_factory=dict)

    def for_queue(self, queue_id: str) -> QueuePolicy:
        return self.queues.get(queue_id, self.defaults)


@dataclass(frozen=True)
class SurveyPolicy:
    tenants: Mapping[str, TenantPolicy] = field(default_factory=dict)
    base: QueuePolicy = field(default_factory=QueuePolicy)

    def for_contact(self, tenant_id: str, queue_id: str) -> QueuePolicy:
        tenant = self.tenants.get(tenant_id) or self.tenants.get(DEFAULT_TENANT)
        return tenant.for_queue(queue_id) if tenant else self.base

    def followup_queues(self, tenant_id: str) -> set[str]:
        tenant = self.tenants.get(tenant_id) or self.tenants.get(DEFAULT_TENANT)
        if tenant is None:
            return {self.base.followup_queue} if self.base.followup_queue else set()
        policies = [tenant.defaults, *tenant.queues.values()]
        return {p.followup_queue for p in policies if p.followup_queue}

    def max_suppression_seconds(self) -> float:
        days = [self.base.suppression_days]
        for t in self.tenants.values():
            days += [t.defaults.suppression_days, *(q.suppression_days for q in t.queues.values())]
        return max(days) * DAY


# -- decisions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerFacts:
    """What the service knows about the customer at decision time (from its state and topics)."""

    opted_out: bool = False
    time_zone: str = ""                  # from the customer's preference; "" = the policy's
    last_surveyed_at: float | None = None
    has_pending: bool = False


@dataclass(frozen=True)
class Decision:
    skip: str | None = None              # reason code when not surveyed
    request: survey_pb2.SurveyRequest | None = None
    due_at: float = 0.0
    wait: str = ""                       # "", "delay" or "quiet_hours"
    expiry_seconds: float = 0.0

    @property
    def immediate(self) -> bool:
        return self.request is not None and self.wait == ""


def sampled(tenant_id: str, contact_id: str, rate: float) -> bool:
    """Deterministic by contact: the same contact gets the same answer on every replay and replica."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{tenant_id}/{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def survey_channel(ev: routing_pb2.LifecycleEvent) -> int | None:
    """In-chat for chat; SMS for phone channels when a mobile is known; email otherwise."""
    if ev.channel == contact_pb2.CHANNEL_CHAT:
        return survey_pb2.SURVEY_CHANNEL_IN_CHAT
    if ev.channel == contact_pb2.CHANNEL_EMAIL:
        return survey_pb2.SURVEY_CHANNEL_EMAIL  # we can always reply to the email it came from
    if ev.customer_has_mobile or ev.channel == contact_pb2.CHANNEL_SMS:
        return survey_pb2.SURVEY_CHANNEL_SMS
    if ev.customer_has_email:
        return survey_pb2.SURVEY_CHANNEL_EMAIL
    return None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def after_quiet_hours(at: float, time_zone: str, quiet: QuietHours | None) -> float:
    """`at` itself when outside quiet hours in `time_zone`, else the end of those quiet hours."""
    if quiet is None:
        return at
    tz = zone(time_zone)
    local = datetime.fromtimestamp(at, tz)
    if not quiet.contains(local.time().replace(microsecond=0)):
        return at
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day = day + timedelta(days=1)  # evening part of a window that ends tomorrow morning
    end = datetime.combine(day, quiet.end, tzinfo=tz)
    return max(at, end.timestamp())


def survey_id_for(ev: routing_pb2.LifecycleEvent) -> str:
    # Deterministic: a replayed lifecycle event yields the same survey, which consumers dedupe.
    return derived_event_id(f"{ev.envelope.tenant_id}/{ev.contact_id}", "survey")


def decide(ev: routing_pb2.LifecycleEvent, now: float, policy: QueuePolicy, facts: CustomerFacts,
           followup_queues: set[str] | None = None) -> Decision:
    """Whether, when and how to survey the contact a lifecycle event is about."""
    if ev.kind not in (routing_pb2.LIFECYCLE_KIND_ENDED, routing_pb2.LIFECYCLE_KIND_ABANDONED):
        return Decision(skip="not_ended")
    answered = ev.answered and ev.kind == routing_pb2.LIFECYCLE_KIND_ENDED
    if not answered and not policy.survey_abandoned:
        return Decision(skip="not_answered")
    if followup_queues and ev.queue_id in followup_queues:
        return Decision(skip="followup_contact")  # a supervisor's follow-up is not surveyed
    if not policy.enabled:
        return Decision(skip="disabled")
    if facts.opted_out:
        return Decision(skip="opted_out")
    channel = survey_channel(ev)
    if channel is None:
        return Decision(skip="no_channel")
    if not sampled(ev.envelope.tenant_id, ev.contact_id, policy.sample_rate):
        return Decision(skip="not_sampled")
    if facts.has_pending:
        return Decision(skip="suppressed")
    if policy.suppression_days > 0 and facts.last_surveyed_at is not None \
            and now < facts.last_surveyed_at + policy.suppression_days * DAY:
        return Decision(skip="suppressed")
    due = now + policy.delay_seconds
    wait = "delay" if policy.delay_seconds > 0 else ""
    later = after_quiet_hours(due, facts.time_zone or policy.time_zone, policy.quiet_hours)
    if later > due:
        due, wait = later, "quiet_hours"
    survey_id = survey_id_for(ev)
    req = survey_pb2.SurveyRequest(
        envelope=new_envelope(ev.envelope.tenant_id, now, "switchboard-survey", event_id=survey_id,
                              parent=ev.envelope),
        survey_id=survey_id,
        contact_id=ev.contact_id,
        customer_id=ev.customer_id,
        channel=channel,
        contact_channel=ev.channel,
        queue_id=ev.queue_id,
        agent_id=ev.agent_id,
        questions=[QUESTION_BANK[q] for q in policy.questions],
        incentive_code=policy.incentive_code,
    )
    return Decision(request=req, due_at=due, wait=wait, expiry_seconds=policy.expiry_seconds)


def still_wanted(policy: QueuePolicy, facts: CustomerFacts, now: float) -> str | None:
    """Checked again when a waiting survey falls due: opt-outs are honoured at once."""
    if facts.opted_out:
        return "opted_out"
    if policy.suppression_days > 0 and facts.last_surveyed_at is not None \
            and now < facts.last_surveyed_at + policy.suppression_days * DAY:
        return "suppressed"
    return None


# -- the YAML file ---------------------------------------------------------------------------

PolicyError = ConfigFileError  # the name survey's callers use


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, node: Node, reason: str) -> PolicyError:
        return PolicyError(self.path, node.start_mark.line + 1, reason)

    def scalar(self, node: Node, name: str) -> Any:
        if not isinstance(node, ScalarNode):
            raise self.error(node, f"{name} must be a single value")
        return yaml.safe_load(yaml.serialize(node))

    def mapping(self, node: Node, name: str) -> list[tuple[str, Node, Node]]:
        if isinstance(node, ScalarNode) and node.value in ("", "null", "~"):
            return []
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{name} must be a mapping")
        out, seen = [], set()
        for k, v in node.value:
            key = self.scalar(k, f"a key of {name}")
            if not isinstance(key, str):
                raise self.error(k, f"keys of {name} must be strings")
            if key in seen:
                raise self.error(k, f"{name}.{key} is given twice")
            seen.add(key)
            out.append((key, k, v))
        return out

    def policy(self, node: Node, name: str, base: QueuePolicy) -> QueuePolicy:
        changes: dict[str, Any] = {}
        for key, knode, value in self.mapping(node, name):
            where = f"{name}.{key}"
            check = _OPTIONS.get(key)
            if check is None:
                raise self.error(knode, f"unknown option {where} (known: {', '.join(sorted(_OPTIONS))})")
            attr, parsed = check(self, value, where)
            changes[attr] = parsed
        return replace(base, **changes)

    def document(self, root: Node | None, base: QueuePolicy) -> SurveyPolicy:
        if root is None:
            return SurveyPolicy(tenants={}, base=base)
        items = self.mapping(root, "the file")
        tenants: dict[str, TenantPolicy] = {}
        for key, knode, value in items:
            if key != "tenants":
                raise self.error(knode, f"unknown top-level key {key!r} (expected 'tenants')")
            for tenant_id, tnode, tvalue in self.mapping(value, "tenants"):
                if not _ID.match(tenant_id):
                    raise self.error(tnode, f"tenant id {tenant_id!r} is not a valid id")
                tenants[tenant_id] = self.tenant(tvalue, f"tenants.{tenant_id}", base)
        return SurveyPolicy(tenants=tenants, base=base)

    def tenant(self, node: Node, name: str, base: QueuePolicy) -> TenantPolicy:
        fields = {key: (knode, value) for key, knode, value in self.mapping(node, name)}
        for key, (knode, _) in fields.items():
            if key not in ("defaults", "queues"):
                raise self.error(knode, f"unknown key {name}.{key} (expected defaults, queues)")
        defaults = self.policy(fields["defaults"][1], f"{name}.defaults", base) if "defaults" in fields else base
        queues: dict[str, QueuePolicy] = {}
        if "queues" in fields:
            for queue_id, qnode, qvalue in self.mapping(fields["queues"][1], f"{name}.queues"):
                if not _ID.match(queue_id):
                    raise self.error(qnode, f"queue id {queue_id!r} is not a valid id")
                queues[queue_id] = self.policy(qvalue, f"{name}.queues.{queue_id}", defaults)
        return TenantPolicy(defaults=defaults, queues=queues)


def _bool(attr: str):  # type: ignore[no-untyped-def]
    def check(p: _Parser, node: Node, name: str) -> tuple[str, Any]:
        value = p.scalar(node, name)
        if not isinstance(value, bool):
            raise p.error(node, f"{name} must be true or false, not {value!r}")
        return attr, value
    return check


def _number(attr: str, minimum: float, maximum: float | None = None, scale: float = 1.0,
            inclusive: bool = True):  # type: ignore[no-untyped-def]
    def check(p: _Parser, node: Node, name: str) -> tuple[str, Any]:
        value = p.scalar(node, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise p.error(node, f"{name} must be a number, not {value!r}")
        if value < minimum or (not inclusive and value == minimum):
            raise p.error(node, f"{name} must be {'at least' if inclusive else 'more than'} {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise p.error(node, f"{name} must be at most {maximum}, not {value}")
        return attr, float(value) * scale
    return check


def _time_zone(p: _Parser, node: Node, name: str) -> tuple[str, Any]:
    value = p.scalar(node, name)
    if not isinstance(value, str) or not value:
        raise p.error(node, f"{name} must be an IANA time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise p.error(node, f"{name}: unknown time zone {value!r}") from None
    return "time_zone", value


def _clock(p: _Parser, node: Node, name: str) -> time:
    value = p.scalar(node, name)
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 reads 21:00 as sexagesimal
        value = f"{value // 60:02d}:{value % 60:02d}"
    m = _HHMM.match(str(value)) if isinstance(value, str | int) else None
    if not m:
        raise p.error(node, f"{name} must be a time of day HH:MM or HH:MM:SS, not {value!r}")
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def _quiet_hours(p: _Parser, node: Node, name: str) -> tuple[str, Any]:
    if isinstance(node, ScalarNode) and p.scalar(node, name) is None:
        return "quiet_hours", None
    fields = {key: (knode, value) for key, knode, value in p.mapping(node, name)}
    for key, (knode, _) in fields.items():
        if key not in ("start", "end"):
            raise p.error(knode, f"unknown key {name}.{key} (expected start, end)")
    for key in ("start", "end"):
        if key not in fields:
            raise p.error(node, f"{name} needs {key}")
    start = _clock(p, fields["start"][1], f"{name}.start")
    end = _clock(p, fields["end"][1], f"{name}.end")
    if start == end:
        raise p.error(node, f"{name}: start and end are the same time")
    return "quiet_hours", QuietHours(start, end)


def _questions(p: _Parser, node: Node, name: str) -> tuple[str, Any]:
    if not isinstance(node, SequenceNode) or not node.value:
        raise p.error(node, f"{name} must be a non-empty list of {', '.join(QUESTION_BANK)}")
    out: list[str] = []
    for item in node.value:
        q = p.scalar(item, f"an item of {name}")
        if q not in QUESTION_BANK:
            raise p.error(item, f"{name}: unknown question {q!r} (known: {', '.join(QUESTION_BANK)})")
        if q in out:
            raise p.error(item, f"{name}: {q!r} is listed twice")
        out.append(q)
    return "questions", tuple(out)


def _incentive(p: _Parser, node: Node, name: str) -> tuple[str, Any]:
    value = p.scalar(node, name)
    if value is None:
        return "incentive_code", ""
    if not isinstance(value, str) or len(value) > 64:
        raise p.error(node, f"{name} must be a string of at most 64 characters")
    return "incentive_code", value


def _followup(p: _Parser, node: Node, name: str) -> tuple[str, Any]:
    value = p.scalar(node, name)
    if value is None:
        return "followup_queue", None
    if not isinstance(value, str) or not _ID.match(value):
        raise p.error(node, f"{name} must be a queue id (letters, digits and ._:@-) or null")
    return "followup_queue", value


_OPTIONS: dict[str, Any] = {
    "enabled": _bool("enabled"),
    "sample_rate": _number("sample_rate", 0.0, 1.0),
    "delay_seconds": _number("delay_seconds", 0.0, 7 * DAY),
    "suppression_days": _number("suppression_days", 0.0, 3650),
    "survey_abandoned": _bool("survey_abandoned"),
    "time_zone": _time_zone,
    "quiet_hours": _quiet_hours,
    "expiry_hours": _number("expiry_seconds", 0.0, 90 * 24, scale=3600.0, inclusive=False),
    "questions": _questions,
    "incentive_code": _incentive,
    "followup_queue": _followup,
}


def parse_policy(text: str, path: str = "<string>", base: QueuePolicy | None = None) -> SurveyPolicy:
    base = base or QueuePolicy()
    return _Parser(path).document(compose(text, path), base)


def load_policy(path: str | Path, base: QueuePolicy | None = None) -> SurveyPolicy:
    return parse_policy(read_text(path), str(path), base)
