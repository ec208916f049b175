"""Enrichment rules: one YAML section (or file) per tenant, validated at start with file, line and reason.

ENRICHMENT_RULES_FILE is either one file with `tenants: {<tenant_id>: {...}}`, or a directory with
one `<tenant_id>.yaml` per tenant holding that tenant's section directly. The tenant `default`
applies to tenants that have no section of their own. See deploy/config/enrichment.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from services.common.channels import CHANNELS
from services.common.configfile import ConfigFileError, read_text, yaml_error
from services.common.hours import Hours

DEPARTMENTS = ("sales", "marketing", "product", "billing", "technical_support", "customer_service")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_LANG = re.compile(r"^[a-z]{2}$")
_HOURS = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


RulesError = ConfigFileError  # the name enrichment's callers use


@dataclass(frozen=True)
class ClassRule:
    intent: str
    department: str = ""
    keywords: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    skills: tuple[tuple[str, int], ...] = ()
    priority: int = 0
    queue: str = ""
    channels: frozenset[int] = frozenset()  # empty = every text channel


@dataclass(frozen=True)
class ChronicRule:
    id: str
    ivr: tuple[tuple[str, str], ...] = ()  # (menu, choice); menu "*" = any menu
    keywords: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    queue: str = ""
    priority: int = 0
    intent: str = ""


@dataclass(frozen=True)
class Site:
    name: str
    timezone: ZoneInfo
    hours: dict[int, tuple[tuple[int, int], ...]]  # weekday (0 = Monday) -> [(start, end) minutes]
    holidays: frozenset[date] = frozenset()
    queues: dict[str, str] = field(default_factory=dict)  # queue -> the site's queue

    @property
    def opening_hours(self) -> Hours:
        """The site's week and holidays as the business hours routing's queues use."""
        return Hours(self.timezone.key, self.hours, self.holidays)


@dataclass(frozen=True)
class TenantRules:
    languages: tuple[str, ...] = ()       # detection picks among these (2+ needed to detect)
    default_language: str = ""
    default_queue: str = "support"
    queue_by_channel: dict[int, str] = field(default_factory=dict)
    after_hours_queue: str = ""           # when sites are configured and none is open
    vip_priority: int = 10
    vip_queue: str = ""
    high_value_min: float | None = None   # lifetime_value at or above = high value
    high_value_priority: int = 5
    high_value_queue: str = ""
    legacy_segment: str = "legacy_product"
    legacy_skill: str = "legacy_systems"
    legacy_level: int = 1
    repeat_contacts: int = 3              # this many contacts within repeat_days (this one included)
    repeat_days: float = 7.0
    repeat_priority: int = 5
    repeat_level_step: int = 1            # same issue again: required skill levels go up by this
    repeat_escalation_skill: str = ""     # ...or, without skills, this skill at level 1 + step
    history_days: float = 30.0
    history_max: int = 20
    chronic: tuple[ChronicRule, ...] = ()
    classification: tuple[ClassRule, ...] = ()
    sla_seconds: dict[tuple[str, int], float] = field(default_factory=lambda: {
        **{("vip", CHANNELS[c]): s for c, s in
           {"voice": 20, "callback": 20, "chat": 60, "sms": 60, "email": 3600, "voicemail": 3600}.items()},
        **{("standard", CHANNELS[c]): s for c, s in
           {"voice": 60, "callback": 60, "chat": 300, "sms": 300, "email": 86400, "voicemail": 14400}.items()},
    })
    sites: tuple[Site, ...] = ()


@dataclass(frozen=True)
class RulesConfig:
    tenants: dict[str, TenantRules] = field(default_factory=dict)
    source: str = ""

    def for_tenant(self, tenant: str) -> TenantRules:
        found = self.tenants.get(tenant) or self.tenants.get("default")
        return found if found is not None else DEFAULT_RULES


DEFAULT_RULES = TenantRules()


# -- YAML with line numbers ------------------------------------------------------------------------
class _LDict(dict[str, Any]):
    line: int = 1
    lines: dict[str, int]


class _LList(list[Any]):
    line: int = 1
    lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LDict:
    out = _LDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for k, v in node.value:
        key = loader.construct_object(k, deep=True)
        out[str(key)] = loader.construct_object(v, deep=True)
        out.lines[str(key)] = k.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _LList:
    out = _LList(loader.construct_object(v, deep=True) for v in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [v.start_mark.line + 1 for v in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


class _Ctx:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int, reason: str) -> RulesError:
        return RulesError(self.path, line, reason)

    def mapping(self, value: Any, line: int, where: str, allowed: set[str]) -> _LDict:
        if value is None:
            value = _LDict()
            value.line, value.lines = line, {}
        if not isinstance(value, _LDict):
            raise self.fail(line, f"{where} must be a mapping")
        for key in value:
            if key not in allowed:
                names = ", ".join(sorted(allowed))
                raise self.fail(value.lines[key], f"{where}: unknown key {key!r} (allowed: {names})")
        return value

    def get(self, m: _LDict, key: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(m.lines[key], f"{where}.{key} must be {'/'.join(k.__name__ for k in kinds)}")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            raise self.fail(m.lines[key], f"{where}.{key} must be {'/'.join(k.__name__ for k in kinds)}")
        return value

    def number(self, m: _LDict, key: str, where: str, default: float, lo: float, hi: float) -> float:
        value = self.get(m, key, float, where, default)
        if not lo <= value <= hi:
            raise self.fail(m.lines[key], f"{where}.{key} must be between {lo:g} and {hi:g}")
        return float(value)

    def integer(self, m: _LDict, key: str, where: str, default: int, lo: int, hi: int) -> int:
        value = self.get(m, key, int, where, default)
        if not lo <= value <= hi:
            raise self.fail(m.lines[key], f"{where}.{key} must be between {lo} and {hi}")
        return int(value)

    def ident(self, m: _LDict, key: str, where: str, default: str = "") -> str:
        value = self.get(m, key, str, where, default)
        if value and not _ID.match(value):
            raise self.fail(m.lines[key], f"{where}.{key} {value!r} must be 1-128 letters, digits or ._:@-")
        return str(value)

    def strings(self, m: _LDict, key: str, where: str) -> tuple[str, ...]:
        value = self.get(m, key, list, where, [])
        for i, item in enumerate(value):
            if not isinstance(item, str | int) or isinstance(item, bool) or str(item) == "":
                raise self.fail(value.lines[i], f"{where}.{key}[{i}] must be a non-empty string")
        return tuple(str(v) for v in value)

    def patterns(self, m: _LDict, key: str, where: str) -> tuple[re.Pattern[str], ...]:
        out = []
        for i, text in enumerate(self.strings(m, key, where)):
            try:
                out.append(re.compile(text, re.IGNORECASE))
            except re.error as exc:
                raise self.fail(m[key].lines[i],
                                f"{where}.{key}[{i}] is not a valid regular expression: {exc}") from None
        return tuple(out)

    def channel(self, name: Any, line: int, where: str) -> int:
        if name not in CHANNELS:
            raise self.fail(line, f"{where}: unknown channel {name!r} (one of {', '.join(CHANNELS)})")
        return CHANNELS[name]

    def skills(self, m: _LDict, key: str, where: str) -> tuple[tuple[str, int], ...]:
        value = self.mapping(m.get(key), m.lines.get(key, m.line), f"{where}.{key}", set(m.get(key) or {}))
        out = []
        for skill, level in value.items():
            if not _ID.match(skill):
                raise self.fail(value.lines[skill], f"{where}.{key}: skill {skill!r} is not a valid id")
            if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
                raise self.fail(value.lines[skill], f"{where}.{key}.{skill} must be a level 1-5")
            out.append((skill, level))
        return tuple(out)


_TENANT_KEYS = {"languages", "default_language", "queues", "vip", "high_value", "legacy", "repeat", "history",
                "sla_seconds", "chronic", "classification", "sites"}


def _tenant(ctx: _Ctx, raw: Any, line: int, tenant: str) -> TenantRules:
    w = f"tenants.{tenant}"
    m = ctx.mapping(raw, line, w, _TENANT_KEYS)
    kw: dict[str, Any] = {}
    langs = ctx.strings(m, "languages", w)
    for i, lang in enumerate(langs):
        if not _LANG.match(lang):
            raise ctx.fail(m["languages"].lines[i], f"{w}.languages[{i}] {lang!r} must be an ISO 639-1 code like 'es'")
    if len(langs) >= 2:
        from services.enrichment.language import supported

        for i, lang in enumerate(langs):
            if not supported(lang):
                raise ctx.fail(m["languages"].lines[i], f"{w}.languages[{i}] {lang!r} cannot be detected")
    kw["languages"] = langs
    default_language = ctx.get(m, "default_language", str, w, "")
    if default_language and not _LANG.match(default_language):
        raise ctx.fail(m.lines["default_language"], f"{w}.default_language must be an ISO 639-1 code like 'en'")
    kw["default_language"] = default_language

    q = ctx.mapping(m.get("queues"), m.lines.get("queues", m.line), f"{w}.queues",
                    {"default", "by_channel", "after_hours"})
    kw["default_queue"] = ctx.ident(q, "default", f"{w}.queues", "support") or "support"
    kw["after_hours_queue"] = ctx.ident(q, "after_hours", f"{w}.queues")
    by_channel = ctx.mapping(q.get("by_channel"), q.lines.get("by_channel", q.line), f"{w}.queues.by_channel",
                             set(CHANNELS))
    kw["queue_by_channel"] = {CHANNELS[c]: ctx.ident(by_channel, c, f"{w}.queues.by_channel") for c in by_channel}

    v = ctx.mapping(m.get("vip"), m.lines.get("vip", m.line), f"{w}.vip", {"priority", "queue"})
    kw["vip_priority"] = ctx.integer(v, "priority", f"{w}.vip", 10, 0, 1000)
    kw["vip_queue"] = ctx.ident(v, "queue", f"{w}.vip")
    h = ctx.mapping(m.get("high_value"), m.lines.get("high_value", m.line), f"{w}.high_value",
                    {"min_lifetime_value", "priority", "queue"})
    if "min_lifetime_value" in h:
        kw["high_value_min"] = ctx.number(h, "min_lifetime_value", f"{w}.high_value", 0, 0, 1e15)
    kw["high_value_priority"] = ctx.integer(h, "priority", f"{w}.high_value", 5, 0, 1000)
    kw["high_value_queue"] = ctx.ident(h, "queue", f"{w}.high_value")
    lg = ctx.mapping(m.get("legacy"), m.lines.get("legacy", m.line), f"{w}.legacy", {"segment", "skill", "level"})
    kw["legacy_segment"] = ctx.ident(lg, "segment", f"{w}.legacy", "legacy_product")
    kw["legacy_skill"] = ctx.ident(lg, "skill", f"{w}.legacy", "legacy_systems")
    kw["legacy_level"] = ctx.integer(lg, "level", f"{w}.legacy", 1, 1, 5)
    r = ctx.mapping(m.get("repeat"), m.lines.get("repeat", m.line), f"{w}.repeat",
                    {"contacts", "days", "priority", "same_issue_level_step", "escalation_skill"})
    kw["repeat_contacts"] = ctx.integer(r, "contacts", f"{w}.repeat", 3, 2, 1000)
    kw["repeat_days"] = ctx.number(r, "days", f"{w}.repeat", 7, 0.001, 365)
    kw["repeat_priority"] = ctx.integer(r, "priority", f"{w}.repeat", 5, 0, 1000)
    kw["repeat_level_step"] = ctx.integer(r, "same_issue_level_step", f"{w}.repeat", 1, 0, 4)
    kw["repeat_escalation_skill"] = ctx.ident(r, "escalation_skill", f"{w}.repeat")
    hi = ctx.mapping(m.get("history"), m.lines.get("history", m.line), f"{w}.history", {"days", "max_contacts"})
    kw["history_days"] = ctx.number(hi, "days", f"{w}.history", 30, 0.001, 365)
    kw["history_max"] = ctx.integer(hi, "max_contacts", f"{w}.history", 20, 1, 500)
    if kw["history_days"] < kw["repeat_days"]:
        raise ctx.fail(hi.line, f"{w}.history.days must be at least repeat.days ({kw['repeat_days']:g})")

    if "sla_seconds" in m:
        sla = ctx.mapping(m["sla_seconds"], m.lines["sla_seconds"], f"{w}.sla_seconds", {"vip", "standard"})
        table = dict(DEFAULT_RULES.sla_seconds)
        for tier in sla:
            per = ctx.mapping(sla[tier], sla.lines[tier], f"{w}.sla_seconds.{tier}", set(CHANNELS))
            for ch in per:
                table[(tier, CHANNELS[ch])] = ctx.number(per, ch, f"{w}.sla_seconds.{tier}", 0, 1, 30 * 86400)
        kw["sla_seconds"] = table

    chronic = []
    for i, item in enumerate(ctx.get(m, "chronic", list, w, [])):
        cw = f"{w}.chronic[{i}]"
        c = ctx.mapping(item, m["chronic"].lines[i], cw,
                        {"id", "ivr", "keywords", "regex", "queue", "priority", "intent"})
        if not c.get("id"):
            raise ctx.fail(c.line, f"{cw}: id is required")
        ivr = []
        for j, sel in enumerate(ctx.strings(c, "ivr", cw)):
            menu, sep, choice = sel.partition(":")
            if not sep or not menu or not choice:
                raise ctx.fail(c["ivr"].lines[j], f"{cw}.ivr[{j}] must be 'menu:choice' (menu '*' = any)")
            ivr.append((menu, choice))
        rule = ChronicRule(id=ctx.ident(c, "id", cw), ivr=tuple(ivr),
                           keywords=tuple(k.lower() for k in ctx.strings(c, "keywords", cw)),
                           patterns=ctx.patterns(c, "regex", cw), queue=ctx.ident(c, "queue", cw),
                           priority=ctx.integer(c, "priority", cw, 0, -1000, 1000), intent=ctx.ident(c, "intent", cw))
        if not (rule.ivr or rule.keywords or rule.patterns):
            raise ctx.fail(c.line, f"{cw}: needs ivr, keywords or regex to match on")
        chronic.append(rule)
    kw["chronic"] = tuple(chronic)

    classes = []
    for i, item in enumerate(ctx.get(m, "classification", list, w, [])):
        cw = f"{w}.classification[{i}]"
        c = ctx.mapping(item, m["classification"].lines[i], cw,
                        {"intent", "department", "keywords", "regex", "skills", "priority", "queue", "channels"})
        if not c.get("intent"):
            raise ctx.fail(c.line, f"{cw}: intent is required")
        department = ctx.get(c, "department", str, cw, "")
        if department and department not in DEPARTMENTS:
            raise ctx.fail(c.lines["department"],
                           f"{cw}.department {department!r} must be one of {', '.join(DEPARTMENTS)}")
        channels = frozenset(ctx.channel(ch, c["channels"].lines[j], f"{cw}.channels")
                             for j, ch in enumerate(ctx.strings(c, "channels", cw)))
        rule2 = ClassRule(intent=ctx.ident(c, "intent", cw), department=department,
                          keywords=tuple(k.lower() for k in ctx.strings(c, "keywords", cw)),
                          patterns=ctx.patterns(c, "regex", cw), skills=ctx.skills(c, "skills", cw),
                          priority=ctx.integer(c, "priority", cw, 0, -1000, 1000), queue=ctx.ident(c, "queue", cw),
                          channels=channels)
        if not (rule2.keywords or rule2.patterns):
            raise ctx.fail(c.line, f"{cw}: needs keywords or regex to match on")
        classes.append(rule2)
    kw["classification"] = tuple(classes)

    sites = []
    for i, item in enumerate(ctx.get(m, "sites", list, w, [])):
        sw = f"{w}.sites[{i}]"
        s = ctx.mapping(item, m["sites"].lines[i], sw, {"name", "timezone", "hours", "holidays", "queues"})
        name = ctx.ident(s, "name", sw)
        if not name:
            raise ctx.fail(s.line, f"{sw}: name is required")
        tz_name = ctx.get(s, "timezone", str, sw, "")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ctx.fail(s.lines.get("timezone", s.line),
                           f"{sw}.timezone {tz_name!r} is not an IANA time zone") from None
        hours_m = ctx.mapping(s.get("hours"), s.lines.get("hours", s.line), f"{sw}.hours", set(DAYS))
        hours: dict[int, tuple[tuple[int, int], ...]] = {}
        for day in hours_m:
            spans = hours_m[day] if isinstance(hours_m[day], list) else [hours_m[day]]
            parsed = []
            for span in spans:
                mt = _HOURS.match(str(span)) if isinstance(span, str) else None
                if mt is None:
                    raise ctx.fail(hours_m.lines[day], f"{sw}.hours.{day}: {span!r} must be 'HH:MM-HH:MM'")
                start, end = int(mt[1]) * 60 + int(mt[2]), int(mt[3]) * 60 + int(mt[4])
                if not start < end <= 24 * 60:
                    raise ctx.fail(hours_m.lines[day], f"{sw}.hours.{day}: {span!r} must end after it starts")
                parsed.append((start, end))
            hours[DAYS.index(day)] = tuple(parsed)
        holidays = []
        for j, text in enumerate(ctx.strings(s, "holidays", sw)):
            try:
                holidays.append(date.fromisoformat(str(text)))
            except ValueError:
                raise ctx.fail(s["holidays"].lines[j], f"{sw}.holidays[{j}] must be a date YYYY-MM-DD") from None
        qmap = ctx.mapping(s.get("queues"), s.lines.get("queues", s.line), f"{sw}.queues", set(s.get("queues") or {}))
        sites.append(Site(name, tz, hours, frozenset(holidays),
                          {str(k): ctx.ident(qmap, k, f"{sw}.queues") for k in qmap}))
    kw["sites"] = tuple(sites)
    return TenantRules(**kw)


def _read(path: Path) -> Any:
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise yaml_error(str(path), exc) from None


def load_rules(location: str) -> RulesConfig:
    """Read and validate the rules file or directory; raises RulesError (file, line, reason)."""
    p = Path(location)
    tenants: dict[str, TenantRules] = {}
    if p.is_dir():
        files = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml"))
        if not files:
            raise RulesError(location, 1, "the directory holds no <tenant>.yaml file")
        for f in files:
            if not _ID.match(f.stem):
                raise RulesError(str(f), 1, f"file name {f.stem!r} is not a tenant id")
            tenants[f.stem] = _tenant(_Ctx(str(f)), _read(f), 1, f.stem)
        return RulesConfig(tenants, location)
    ctx = _Ctx(location)
    root = ctx.mapping(_read(p), 1, "the file", {"tenants"})
    section = ctx.mapping(root.get("tenants"), root.lines.get("tenants", 1), "tenants", set(root.get("tenants") or {}))
    if not section:
        raise ctx.fail(root.lines.get("tenants", 1), "tenants: map at least one tenant id (or 'default') to its rules")
    for tenant in section:
        if not _ID.match(tenant):
            raise ctx.fail(section.lines[tenant], f"tenant id {tenant!r} must be 1-128 letters, digits or ._:@-")
        tenants[tenant] = _tenant(ctx, section[tenant], section.lines[tenant], tenant)
    return RulesConfig(tenants, location)
