"""Demo traffic for a running Switchboard: agents log in, customers arrive, agents answer.

Two parts:

- `Simulator`, the pure part: a state machine over virtual time (no I/O, no clock). It decides
  what to publish next given the time and the assignments routing made: Poisson arrivals over
  voice, chat, email and SMS; `answered` shortly after an assignment, `ended` after an
  exponential handle time, a `wrap_up_done` agent event a little later; `abandoned` when a
  caller's exponential patience runs out before any assignment. Everything about a contact
  (customer, channel, queue, patience, handle time, texts) is drawn from the seeded generator
  when it arrives, so a seed gives the same traffic whatever the timing of assignments.
- `run_simulation`, the Kafka I/O around it: publishes the contact events as JSON on
  contacts.inbound.v1 and agent events as protobuf on agents.events.v1, and reads
  routing.assignments.v1 from its end at start to learn which agent got which contact.

Customers' phone numbers are in the fictional 555-01xx range and addresses are @example.com.
Nothing personal is logged or printed: the progress line shows counts only.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import signal
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, TextIO

from services.cli.base import number
from services.common.codec import HeaderList
from services.common.config import KafkaSettings
from switchboard.v1 import contact_pb2

DEFAULT_TENANT = "acme"
SOURCE = "simulator"
CHANNEL_MIX: tuple[tuple[str, float], ...] = (("voice", 0.40), ("chat", 0.35), ("email", 0.15), ("sms", 0.10))
# Who waits for an agent in real time (and so may hang up); email and SMS wait in the queue.
IMPATIENT = frozenset({"voice", "chat"})
GENERIC_CUSTOMERS = 5000


# ---------------------------------------------------------------------------------------------
# Demo customers (their profiles are loaded by `switchboard run`, the simulator uses their ids)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoCustomer:
    customer_id: str
    tier: Literal["standard", "vip"] = "standard"
    language: str = "en"
    segments: tuple[str, ...] = ()
    lifetime_value: float = 0.0
    display_name: str = ""


VIP_CUSTOMERS = (
    DemoCustomer("cust-vip-001", "vip", "en", ("at_risk",), 48_200.0, "Avery Vip"),
    DemoCustomer("cust-vip-002", "vip", "en", (), 31_950.0, "Blake Vip"),
    DemoCustomer("cust-vip-003", "vip", "es", (), 27_400.0, "Carmen Vip"),
)
SPANISH_CUSTOMERS = (
    DemoCustomer("cust-es-001", language="es", lifetime_value=1_250.0, display_name="Diego Ejemplo"),
    DemoCustomer("cust-es-002", language="es", lifetime_value=830.0, display_name="Elena Ejemplo"),
    DemoCustomer("cust-es-003", language="es", segments=("new",), lifetime_value=95.0,
                 display_name="Fabio Ejemplo"),
    DemoCustomer("cust-es-004", language="es", lifetime_value=2_040.0, display_name="Gloria Ejemplo"),
)
OTHER_CUSTOMERS = (
    DemoCustomer("cust-legacy-001", segments=("legacy_product",), lifetime_value=5_600.0,
                 display_name="Harper Legacy"),
    DemoCustomer("cust-risk-001", segments=("at_risk", "recent_complainer"), lifetime_value=3_100.0,
                 display_name="Indy Risk"),
)
DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = VIP_CUSTOMERS + SPANISH_CUSTOMERS + OTHER_CUSTOMERS


def demo_profiles(tenant: str, now: float) -> list[contact_pb2.CustomerProfile]:
    """CustomerProfile messages for customers.profiles.v1 (key: customer_id)."""
    from services.common.codec import ts_from_seconds

    profiles = []
    for c in DEMO_CUSTOMERS:
        p = contact_pb2.CustomerProfile(
            customer_id=c.customer_id, tenant_id=tenant,
            tier=contact_pb2.CUSTOMER_TIER_VIP if c.tier == "vip" else contact_pb2.CUSTOMER_TIER_STANDARD,
            segments=list(c.segments), preferred_language=c.language, lifetime_value=c.lifetime_value,
            display_name=c.display_name, has_mobile=True, has_email=True,
        )
        p.updated_at.CopyFrom(ts_from_seconds(now))
        profiles.append(p)
    return profiles


# ---------------------------------------------------------------------------------------------
# Agents
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentTemplate:
    role: str
    skills: dict[str, tuple[int, int]]  # skill -> (lowest, highest) level drawn
    languages: tuple[str, ...]
    capacity: dict[str, int]  # an explicit 0 closes the channel


# Cycled over the agent numbers, so any N gets a mix (12 → 3 support, 2 billing, 2 sales,
# 2 spanish, 2 senior, 1 blended).
AGENT_TEMPLATES: tuple[AgentTemplate, ...] = (
    AgentTemplate("support", {"support": (2, 4), "billing": (1, 2)}, ("en",),
                  {"voice": 1, "chat": 0, "email": 2, "sms": 0}),
    AgentTemplate("sales", {"sales": (2, 4)}, ("en",), {"voice": 0, "chat": 3, "email": 0, "sms": 0}),
    AgentTemplate("billing", {"billing": (2, 5)}, ("en",), {"voice": 1, "chat": 0, "email": 4, "sms": 3}),
    AgentTemplate("spanish", {"support": (2, 3), "sales": (1, 2), "billing": (1, 2)}, ("es", "en"),
                  {"voice": 1, "chat": 3, "email": 0, "sms": 0}),
    AgentTemplate("senior", {"support": (4, 5), "billing": (2, 3), "legacy_systems": (2, 4)}, ("en",),
                  {"voice": 1, "chat": 0, "email": 2, "sms": 0}),
    AgentTemplate("support", {"support": (2, 4), "billing": (1, 2)}, ("en",),
                  {"voice": 1, "chat": 0, "email": 2, "sms": 0}),
    AgentTemplate("sales", {"sales": (2, 4)}, ("en",), {"voice": 0, "chat": 3, "email": 0, "sms": 0}),
    AgentTemplate("billing", {"billing": (2, 5)}, ("en",), {"voice": 1, "chat": 0, "email": 4, "sms": 3}),
    AgentTemplate("spanish", {"support": (2, 3), "sales": (1, 2), "billing": (1, 2)}, ("es", "en"),
                  {"voice": 1, "chat": 3, "email": 0, "sms": 0}),
    AgentTemplate("senior", {"support": (4, 5), "billing": (2, 3), "legacy_systems": (2, 4)}, ("en",),
                  {"voice": 1, "chat": 0, "email": 2, "sms": 0}),
    AgentTemplate("support", {"support": (2, 4), "billing": (1, 2)}, ("en",),
                  {"voice": 1, "chat": 0, "email": 2, "sms": 0}),
    AgentTemplate("blended", {"support": (2, 3), "sales": (2, 3), "billing": (1, 3)}, ("en",),
                  {"voice": 1, "chat": 2, "email": 3, "sms": 2}),
)


# ---------------------------------------------------------------------------------------------
# The pure state machine
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimConfig:
    tenant: str = DEFAULT_TENANT
    rate: float = 1.0  # contacts per second (Poisson); 0 = agents only
    agents: int = 12
    mean_handle: float = 20.0  # seconds, exponential
    mean_patience: float = 60.0  # seconds, exponential (voice and chat)
    answer_delay: float = 1.0  # seconds from assignment to answered
    wrap_delay: float = 3.0  # seconds from ended to the agent's wrap_up_done
    seed: int | None = None
    run_id: str = "run"  # makes contact and event ids unique per run (same seed, same traffic)

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate must be >= 0")
        if self.agents < 0:
            raise ValueError("agents must be >= 0")
        for name in ("mean_handle", "mean_patience"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.answer_delay < 0 or self.wrap_delay < 0:
            raise ValueError("answer_delay and wrap_delay must be >= 0")


@dataclass(frozen=True)
class Emit:
    """One event to publish: a contact event (wire JSON, key customer_id) or an agent event
    (the JSON line form of switchboard_dev.agent_json, key tenant_id)."""

    at: float
    kind: Literal["contact", "agent"]
    key: str
    event: dict[str, Any]


class Status(Enum):
    WAITING = "waiting"
    ASSIGNED = "assigned"
    ANSWERED = "answered"
    ENDED = "ended"
    ABANDONED = "abandoned"


@dataclass
class Contact:
    contact_id: str
    customer_id: str
    channel: str
    queue: str
    arrived_at: float
    patience: float | None  # None: waits as long as it takes
    handle_seconds: float
    status: Status = Status.WAITING
    agent_id: str = ""
    token: int = 0  # bumps on every (re)assignment; older timers are ignored
    answered_at: float = 0.0


@dataclass
class Stats:
    arrived: int = 0
    assigned: int = 0
    answered: int = 0
    ended: int = 0
    abandoned: int = 0
    waiting: int = 0
    reassigned: int = 0
    late_assignments: int = 0  # for contacts already abandoned or unknown to this run

    def line(self, elapsed: float) -> str:
        return (f"elapsed {format_duration(elapsed)} | arrived {self.arrived} | assigned {self.assigned} | "
                f"answered {self.answered} | ended {self.ended} | abandoned {self.abandoned} | "
                f"waiting {self.waiting}")


def format_duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(at * 1000) % 1000:03d}Z"


_ARRIVE, _ABANDON, _ANSWER, _END, _WRAP = range(5)


class Simulator:
    """The contact/agent state machine. Feed it time (`advance`) and assignments
    (`on_assignment`); it returns the events to publish, each stamped with the virtual time it
    happens at. `next_due()` says when it next has something to do."""

    def __init__(self, config: SimConfig, start: float) -> None:
        self.config = config
        self.start_at = start
        seed = config.seed if config.seed is not None else random.SystemRandom().getrandbits(64)
        self._rng = random.Random(seed)  # arrivals and everything drawn per contact
        self._agent_rng = random.Random(f"{seed}/agents")
        self._timers: list[tuple[float, int, int, str, int]] = []
        self._seq = 0
        self._n = 0
        self.contacts: dict[str, Contact] = {}
        self.stats = Stats()
        self.agent_ids = [f"a-{i + 1}" for i in range(config.agents)]
        if config.rate > 0:
            self._push(start + self._rng.expovariate(config.rate), _ARRIVE, "", 0)

    # -- public API ------------------------------------------------------------------------------

    def login_agents(self) -> list[Emit]:
        """Every agent logs in with its skills, then says ready."""
        out = []
        for i, agent_id in enumerate(self.agent_ids):
            t = AGENT_TEMPLATES[i % len(AGENT_TEMPLATES)]
            skills = {name: self._agent_rng.randint(lo, hi) for name, (lo, hi) in sorted(t.skills.items())}
            out.append(self._agent(self.start_at, "login", agent_id, skills=skills,
                                   languages=list(t.languages), capacity=dict(t.capacity), queues=[]))
        out.extend(self._agent(self.start_at, "ready", agent_id) for agent_id in self.agent_ids)
        return out

    def next_due(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def on_assignment(self, contact_id: str, agent_id: str, now: float) -> bool:
        """Routing assigned (or offered) the contact to the agent: the agent answers after
        `answer_delay`. Returns False when the assignment is not for a live contact of this run."""
        c = self.contacts.get(contact_id)
        if c is None or c.status in (Status.ABANDONED, Status.ENDED):
            self.stats.late_assignments += 1
            return False
        if c.status is Status.ANSWERED:
            return c.agent_id == agent_id  # a repeat of the assignment we acted on
        if c.status is Status.ASSIGNED:
            if c.agent_id == agent_id:
                return True  # a repeat: the answer is already scheduled
            self.stats.reassigned += 1  # an offer moved to another agent
        else:
            self.stats.assigned += 1
            self.stats.waiting -= 1
        c.status, c.agent_id = Status.ASSIGNED, agent_id
        c.token += 1
        self._push(now + self.config.answer_delay, _ANSWER, contact_id, c.token)
        return True

    def advance(self, now: float) -> list[Emit]:
        """Everything due up to `now`, in time order."""
        out: list[Emit] = []
        while self._timers and self._timers[0][0] <= now:
            at, _, kind, contact_id, token = heapq.heappop(self._timers)
            if kind == _ARRIVE:
                out.append(self._arrive(at))
                self._push(at + self._rng.expovariate(self.config.rate), _ARRIVE, "", 0)
                continue
            c = self.contacts.get(contact_id)
            if c is None:  # finished and forgotten (e.g. the patience timer of an answered contact)
                continue
            if kind == _ABANDON:
                if c.status is Status.WAITING:
                    c.status = Status.ABANDONED
                    self.stats.abandoned += 1
                    self.stats.waiting -= 1
                    out.append(self._contact(at, c, "abandoned"))
                    self._forget(c)
            elif kind == _ANSWER:
                if c.status is Status.ASSIGNED and c.token == token:
                    c.status, c.answered_at = Status.ANSWERED, at
                    self.stats.answered += 1
                    out.append(self._contact(at, c, "answered", agent_id=c.agent_id))
                    self._push(at + c.handle_seconds, _END, contact_id, c.token)
            elif kind == _END:
                if c.status is Status.ANSWERED and c.token == token:
                    c.status = Status.ENDED
                    self.stats.ended += 1
                    out.append(self._contact(at, c, "ended", agent_id=c.agent_id,
                                             talk_seconds=round(c.handle_seconds, 1), hold_seconds=0.0))
                    self._push(at + self.config.wrap_delay, _WRAP, contact_id, c.token)
            elif kind == _WRAP:
                out.append(self._agent(at, "wrap_up_done", c.agent_id, contact=c.contact_id))
                self._forget(c)
        return out

    def stop(self, now: float) -> list[Emit]:
        """Closes what is open, so routing is left with no stuck contact: waiting and
        not-yet-answered contacts abandon, conversations end, and every agent goes not ready
        (taking effect once its contacts are done). `logout_agents` follows once routing has
        seen the contacts end (they travel through ingestion and enrichment, agent events do not)."""
        out: list[Emit] = []
        for c in list(self.contacts.values()):
            if c.status in (Status.WAITING, Status.ASSIGNED):
                if c.status is Status.WAITING:
                    self.stats.waiting -= 1
                c.status = Status.ABANDONED
                self.stats.abandoned += 1
                out.append(self._contact(now, c, "abandoned"))
            elif c.status is Status.ANSWERED:
                c.status = Status.ENDED
                self.stats.ended += 1
                talk = round(max(0.0, now - c.answered_at), 1)
                out.append(self._contact(now, c, "ended", agent_id=c.agent_id, talk_seconds=talk,
                                         hold_seconds=0.0))
        self.contacts.clear()
        self._timers.clear()
        out.extend(self._agent(now, "not_ready", agent_id, reason="simulator_stopped")
                   for agent_id in self.agent_ids)
        return out

    def logout_agents(self, now: float) -> list[Emit]:
        return [self._agent(now, "logout", agent_id) for agent_id in self.agent_ids]

    # -- internals -------------------------------------------------------------------------------

    def _push(self, at: float, kind: int, contact_id: str, token: int) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (at, self._seq, kind, contact_id, token))

    def _forget(self, c: Contact) -> None:
        self.contacts.pop(c.contact_id, None)

    def _event_id(self, *parts: str) -> str:
        name = "/".join(("switchboard-simulator", self.config.run_id, *parts))
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))

    def _agent(self, at: float, kind: str, agent_id: str, contact: str = "", **fields: Any) -> Emit:
        self._seq += 1
        event = {"agent_event": kind, "tenant_id": self.config.tenant, "agent_id": agent_id,
                 "event_id": self._event_id("agent", agent_id, kind, contact or str(self._seq)),
                 "occurred_at": rfc3339(at), "source": SOURCE, **fields}
        return Emit(at, "agent", self.config.tenant, event)

    def _contact(self, at: float, c: Contact, step: str, **fields: Any) -> Emit:
        event: dict[str, Any] = {
            "event_id": self._event_id(c.contact_id, step), "tenant_id": self.config.tenant,
            "occurred_at": rfc3339(at), "source": SOURCE, "contact_id": c.contact_id,
            "customer_id": c.customer_id, "channel": c.channel, "step": step,
        }
        event.update(fields)
        return Emit(at, "contact", c.customer_id, event)

    def _arrive(self, at: float) -> Emit:
        rng = self._rng
        self._n += 1
        contact_id = f"c-{self.config.run_id}-{self._n:06d}"
        customer = _pick_customer(rng)
        channel = _pick_channel(rng)
        queue, detail = _contact_detail(rng, customer, channel)
        patience = rng.expovariate(1.0 / self.config.mean_patience)
        handle = rng.expovariate(1.0 / self.config.mean_handle)
        c = Contact(contact_id, customer.customer_id, channel, queue, at,
                    patience if channel in IMPATIENT else None, handle)
        self.contacts[contact_id] = c
        self.stats.arrived += 1
        self.stats.waiting += 1
        if c.patience is not None:
            self._push(at + c.patience, _ABANDON, contact_id, 0)
        return self._contact(at, c, "arrived", queue=queue, **{channel: detail})


# ---------------------------------------------------------------------------------------------
# Fake but realistic contact content (fictional numbers 555-0100..0199, @example.com)
# ---------------------------------------------------------------------------------------------

AREA_CODES = ("212", "303", "312", "404", "415", "512", "617", "206")
FIRST_NAMES = ("alex", "sam", "jordan", "taylor", "morgan", "casey", "riley", "jamie", "drew", "quinn")
LAST_NAMES = ("smith", "garcia", "chen", "johnson", "lopez", "nguyen", "brown", "martin", "silva", "kim")
CONTACT_CENTER_NUMBER = "+18005550100"
CHAT_OPENERS = {
    "sales": ("Hi, I'd like to upgrade my plan.", "Do you have a discount for annual billing?",
              "Can I add a second line to my account?", "What's the difference between Basic and Pro?"),
    "spanish": ("Hola, quiero cambiar mi plan.", "Tengo una pregunta sobre mi factura.",
                "¿Pueden ayudarme con mi pedido?"),
}
EMAIL_SUBJECTS = (("Question about my invoice", "I was charged twice this month, can you check?"),
                  ("Refund request", "I returned the device last week and would like a refund."),
                  ("Update payment method", "Please help me change the card on file."))
SMS_TEXTS = ("Why is my bill higher this month?", "Can I pay my bill late?", "Need a copy of my last invoice")


@dataclass(frozen=True)
class _Customer:
    customer_id: str
    vip: bool
    language: str


def _pick_customer(rng: random.Random) -> _Customer:
    r = rng.random()
    if r < 0.06:
        demo = rng.choice(VIP_CUSTOMERS)
    elif r < 0.16:
        demo = rng.choice(SPANISH_CUSTOMERS)
    elif r < 0.19:
        demo = rng.choice(OTHER_CUSTOMERS)
    else:
        return _Customer(f"cust-{rng.randint(1, GENERIC_CUSTOMERS):05d}", False, "en")
    return _Customer(demo.customer_id, demo.tier == "vip", demo.language)


def _pick_channel(rng: random.Random) -> str:
    r = rng.random()
    for channel, share in CHANNEL_MIX:
        if r < share:
            return channel
        r -= share
    return CHANNEL_MIX[-1][0]


def phone_number(customer_id: str) -> str:
    """A stable fictional E.164 number per customer: +1 <area> 555 01xx."""
    h = zlib.crc32(customer_id.encode())
    return f"+1{AREA_CODES[h % len(AREA_CODES)]}55501{(h >> 8) % 100:02d}"


def email_address(customer_id: str) -> str:
    h = zlib.crc32(customer_id.encode())
    return f"{FIRST_NAMES[h % 10]}.{LAST_NAMES[(h >> 4) % 10]}{(h >> 8) % 1000}@example.com"


def _contact_detail(rng: random.Random, customer: _Customer, channel: str) -> tuple[str, dict[str, Any]]:
    """The queue the channel asks for and the channel's detail block."""
    cid = customer.customer_id
    if channel == "voice":
        if customer.vip:
            queue, choice = "vip", "0"
        else:
            queue, choice = ("support", "1") if rng.random() < 0.7 else ("billing", "2")
        path = [{"menu": "language", "choice": customer.language}] if customer.language != "en" else []
        path.append({"menu": "main", "choice": choice})
        return queue, {"from_number": phone_number(cid), "to_number": CONTACT_CENTER_NUMBER, "ivr_path": path,
                       "ivr_seconds": round(rng.uniform(4.0, 30.0), 1), "ivr_language": customer.language}
    if channel == "chat":
        queue = "spanish" if customer.language == "es" else "sales"
        return queue, {"session_id": f"s-{rng.getrandbits(48):012x}",
                       "first_message": rng.choice(CHAT_OPENERS[queue]), "bot_transcript": ""}
    if channel == "email":
        subject, body = rng.choice(EMAIL_SUBJECTS)
        return "billing", {"from_address": email_address(cid), "subject": subject, "body": body}
    return "billing", {"from_number": phone_number(cid), "text": rng.choice(SMS_TEXTS)}


# ---------------------------------------------------------------------------------------------
# Progress display
# ---------------------------------------------------------------------------------------------


class Progress:
    """A status line: rewritten in place about once a second on a terminal, a plain line every
    5 s otherwise (logs, pipes)."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = 1.0 if self.tty else 5.0
        self._last = float("-inf")
        self._width = 0

    def update(self, stats: Stats, elapsed: float, force: bool = False) -> None:
        if not force and elapsed - self._last < self.interval:
            return
        self._last = elapsed
        text = stats.line(elapsed)
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self, stats: Stats, elapsed: float) -> None:
        self.update(stats, elapsed, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------------------------
# Kafka I/O
# ---------------------------------------------------------------------------------------------


class SimulationError(RuntimeError):
    """Something the user must fix (missing topics, broker unreachable)."""


def run_simulation(
    settings: KafkaSettings,
    config: SimConfig,
    stop: threading.Event,
    duration: float = 0.0,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    logout_delay: float = 3.0,
) -> Stats:
    """Runs the simulator against Kafka until `stop` is set or `duration` (> 0) seconds passed."""
    from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

    from services.cli.base import kafka_error_text, quiet_producer
    from services.common import topics
    from services.common.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF, DecodeFailure, decode
    from services.common.kafka import Output, produce_all
    from switchboard.v1 import routing_pb2
    from switchboard_dev.agent_json import agent_event_from_json

    progress = progress or Progress()
    contacts_topic = settings.topic(topics.CONTACTS_INBOUND.name)
    agents_topic = settings.topic(topics.AGENTS_EVENTS.name)
    assignments_topic = settings.topic(topics.ROUTING_ASSIGNMENTS.name)
    json_headers: HeaderList = [("content-type", CONTENT_TYPE_JSON.encode())]
    pb_headers: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]

    consumer = Consumer({
        **settings.client_config(),
        # Its own group per run, never committed: it reads every partition from the end at start.
        "group.id": f"{settings.topic_prefix}switchboard-simulator-{config.run_id}",
        "client.id": "switchboard-simulator",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "latest",
        "log_level": 2,
    })
    producer = quiet_producer(settings, "switchboard-simulator")
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err.str()}")

    def publish(emits: list[Emit]) -> None:
        outputs = []
        for e in emits:
            if e.kind == "contact":
                value = json.dumps(e.event, ensure_ascii=False).encode()
                outputs.append(Output(contacts_topic, e.key.encode(), value, json_headers))
            else:
                ev = agent_event_from_json(e.event)
                outputs.append(Output(agents_topic, e.key.encode(), ev.SerializeToString(), pb_headers))
        produce_all(producer, outputs, on_delivery)

    try:
        try:
            md = consumer.list_topics(timeout=10)
        except Exception as exc:
            raise SimulationError(f"cannot reach the broker at {settings.bootstrap_servers} "
                                  f"({kafka_error_text(exc)})") from None
        missing = [t for t in (contacts_topic, agents_topic, assignments_topic) if t not in md.topics]
        if missing:
            raise SimulationError(f"topic(s) {', '.join(missing)} do not exist: "
                                  "run `switchboard topics create`")
        parts = []
        for p in sorted(md.topics[assignments_topic].partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(assignments_topic, p), timeout=10)
            parts.append(TopicPartition(assignments_topic, p, high))
        consumer.assign(parts)

        started = clock()
        sim = Simulator(config, started)
        publish(sim.login_agents())
        reported = 0
        while not stop.is_set():
            now = clock()
            if duration > 0 and now - started >= duration:
                break
            due = sim.next_due()
            wait = 0.2 if due is None else min(0.2, max(0.0, due - now))
            for msg in consumer.consume(200, timeout=wait):
                err = msg.error()
                if err is not None:
                    if err.fatal():
                        raise SimulationError(f"consumer failed: {err.str()}")
                    continue
                try:
                    a = decode(routing_pb2.Assignment, msg.value())
                except DecodeFailure:
                    continue
                if a.envelope.tenant_id == config.tenant:
                    sim.on_assignment(a.contact_id, a.agent_id, clock())
            publish(sim.advance(clock()))
            producer.poll(0)
            if len(failures) > reported:
                print(f"\nwarning: {len(failures) - reported} event(s) not delivered, e.g. {failures[-1]}",
                      file=sys.stderr)
                reported = len(failures)
            progress.update(sim.stats, clock() - started)
        publish(sim.stop(clock()))
        producer.flush(15)
        progress.finish(sim.stats, clock() - started)
        # Logging out is refused while an agent holds a contact: give the closing contact events
        # time to reach routing through ingestion and enrichment first.
        time.sleep(logout_delay)
        publish(sim.logout_agents(clock()))
        left = producer.flush(15)
        if left or len(failures) > reported:
            print(f"warning: {left + len(failures) - reported} event(s) not delivered at stop",
                  file=sys.stderr)
        return sim.stats
    finally:
        producer.flush(5)
        consumer.close()


# ---------------------------------------------------------------------------------------------
# Command line (`switchboard simulate`)
# ---------------------------------------------------------------------------------------------


_positive = number(0, inclusive=False)
_non_negative = number(0, inclusive=True)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def add_arguments(parser: argparse.ArgumentParser, *, tenant: bool = True) -> None:
    if tenant:
        parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant id (default: %(default)s)")
    parser.add_argument("--rate", type=_non_negative, default=1.0,
                        help="contacts per second, Poisson arrivals (default: %(default)s; 0 = agents only)")
    parser.add_argument("--agents", type=_count, default=12, help="agents to log in (default: %(default)s)")
    parser.add_argument("--duration", type=_non_negative, default=0.0,
                        help="seconds to run (default: 0 = until Ctrl-C)")
    parser.add_argument("--mean-handle", type=_positive, default=20.0,
                        help="mean handle (talk) time in seconds, exponential (default: %(default)s)")
    parser.add_argument("--mean-patience", type=_positive, default=60.0,
                        help="mean patience of callers and chatters in seconds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed: the same seed gives the same traffic (ids stay unique per run)")


def config_from_args(args: argparse.Namespace, tenant: str | None = None) -> SimConfig:
    return SimConfig(tenant=tenant or args.tenant, rate=args.rate, agents=args.agents,
                     mean_handle=args.mean_handle, mean_patience=args.mean_patience, seed=args.seed,
                     run_id=new_run_id())


def new_run_id() -> str:
    """Short, unique per run (base 36 of the start time in tenths of a second)."""
    n = int(time.time() * 10)
    digits = ""
    while n:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    return digits


def main(args: argparse.Namespace) -> int:
    """`switchboard simulate`: the exit code."""
    from services.common.config import ConfigError

    try:
        settings = KafkaSettings.from_env()
    except ConfigError as exc:
        print(f"error: {exc} (start one with `switchboard broker`)", file=sys.stderr)
        return 2
    config = config_from_args(args)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
    print(f"simulating tenant {config.tenant!r} on {settings.bootstrap_servers}: {config.agents} agents, "
          f"{config.rate:g} contacts/s, run {config.run_id}, {until}", flush=True)
    try:
        stats = run_simulation(settings, config, stop, duration=args.duration)
    except SimulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"stopped: {stats.arrived} arrived, {stats.answered} answered, {stats.abandoned} abandoned",
          flush=True)
    return 0

