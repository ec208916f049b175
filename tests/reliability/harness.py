"""Accounting harness for the fault tests: simulated traffic through the four real services on a
real broker, then an audit of every output topic.

What it checks (`Ledger.violations`), from the committed records only (read_committed):

- every contact published (an `arrived` event on contacts.inbound.v1) ends in exactly one terminal
  lifecycle state (ENDED, ABANDONED, VOICEMAIL, REJECTED, OFFLINE_MESSAGE, OVERFLOWED to a site);
- no record on routing.assignments.v1 / contacts.lifecycle.v1 / surveys.requests.v1 repeats an event
  id (a duplicate would need consumers to drop it by that idempotency key), and no contact is
  assigned again while it is still held by an agent;
- replaying the lifecycle stream agent by agent, no agent ever holds more contacts of a channel than
  the capacity it logged in with, nor anything next to a voice/callback conversation;
- every survey due (the survey policy's own `decide` over each ENDED event) is requested exactly once,
  and no survey is requested for anything else;
- nothing is dead-lettered except routing's `invalid_for_state` (an agent desktop or caller event
  that arrived after the contact was already finished: expected with real-time traffic).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from services.common import topics as T
from services.common.config import KafkaSettings
from services.routing.adapter import CHANNEL_TO_DOMAIN
from services.routing.domain import BLOCKING_CHANNELS, DEFAULT_CAPACITY, Channel
from services.survey.policy import CustomerFacts, QueuePolicy, decide
from switchboard.v1 import agent_pb2, routing_pb2, survey_pb2
from switchboard_dev.simulate import Progress, SimConfig, Stats, run_simulation
from tests.helpers import ServiceProcess, committed_lag, http_get, partitions_of, start_service, wait_ready

SERVICES = ("ingestion", "enrichment", "routing", "survey")
INPUTS = {
    "ingestion": [T.CONTACTS_INBOUND.name],
    "enrichment": [T.CONTACTS_NORMALIZED.name, T.CONTACTS_LIFECYCLE.name],
    "routing": [T.CONTACTS_ENRICHED.name, T.AGENTS_EVENTS.name],
    "survey": [T.CONTACTS_LIFECYCLE.name, T.SURVEYS_RESPONSES.name],
}
L = routing_pb2
TERMINAL = {L.LIFECYCLE_KIND_ENDED, L.LIFECYCLE_KIND_ABANDONED, L.LIFECYCLE_KIND_VOICEMAIL,
            L.LIFECYCLE_KIND_REJECTED, L.LIFECYCLE_KIND_OFFLINE_MESSAGE}
RELEASE = TERMINAL | {L.LIFECYCLE_KIND_REQUEUED, L.LIFECYCLE_KIND_OVERFLOWED, L.LIFECYCLE_KIND_CALLBACK_SCHEDULED}
HOLD = {L.LIFECYCLE_KIND_OFFERED, L.LIFECYCLE_KIND_ASSIGNED}
EXPECTED_DLQ = {("routing", "invalid_for_state")}

# Queues for the simulator's traffic: short max waits so some voice contacts go to voicemail and some
# billing callers become callbacks keeping their place.
_TENANT_QUEUES = """\
  {tenant}:
    defaults: {{wrap_up_seconds: 1, short_abandon_seconds: 2}}
    queues:
      support: {{channel: voice, skills: {{support: 2}}, max_wait_seconds: 10, max_wait_action: voicemail}}
      billing: {{skills: {{billing: 1}}, max_wait_seconds: 12, max_wait_action: callback}}
      vip: {{channel: voice, priority: 10}}
      sales: {{channel: chat, language: en}}
      spanish: {{channel: chat, language: es}}
"""


# On two partitions per topic these land on different partitions (murmur2), so two replicas of
# routing own one tenant each and a kill moves a whole tenant.
TENANTS = ["acme", "globex"]


def queues_yaml(tenants: list[str]) -> str:
    return "tenants:\n" + "".join(_TENANT_QUEUES.format(tenant=t) for t in tenants)


def scale() -> float:
    """RELIABILITY_SCALE (default 1) multiplies the traffic of every fault test: 10 for a long run."""
    return float(os.environ.get("RELIABILITY_SCALE", "1") or 1)


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """The four services as processes; replicas of a service share its consumer group and differ in
    SWITCHBOARD_INSTANCE_ID (hence client and transactional ids). A restart reuses the instance id
    (the same pod coming back), so the dead process' open transaction is fenced at once."""

    env: dict[str, str]
    workdir: Path
    queues_file: Path
    procs: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)

    def extra(self, name: str) -> dict[str, str]:
        return {"SWITCHBOARD_QUEUES_FILE": str(self.queues_file)} if name == "routing" else {}

    def start(self, name: str, replica: int = 0) -> ServiceProcess:
        ids = self.ids.setdefault(name, [])
        while len(ids) <= replica:
            ids.append(f"{name}-{len(ids)}-{uuid.uuid4().hex[:4]}")
        log_dir = self.workdir / f"{name}-{replica}"
        log_dir.mkdir(parents=True, exist_ok=True)
        svc = start_service(name, self.env, log_dir, SWITCHBOARD_INSTANCE_ID=ids[replica], **self.extra(name))
        procs = self.procs.setdefault(name, [])
        if replica < len(procs):
            procs[replica] = svc
        else:
            procs.append(svc)
        return svc

    def start_all(self, replicas: int = 1) -> None:
        for name in SERVICES:
            for r in range(replicas):
                self.start(name, r)
        wait_ready(self.all())

    def all(self) -> list[ServiceProcess]:
        return [p for ps in self.procs.values() for p in ps]

    def kill(self, name: str, replica: int = 0) -> None:
        svc = self.procs[name][replica]
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)

    def restart(self, name: str, replica: int = 0) -> float:
        """Start the replica again and return the seconds until it reports ready."""
        started = time.monotonic()
        svc = self.start(name, replica)
        wait_ready([svc], timeout=120)
        return time.monotonic() - started

    def supervise(self) -> threading.Event:
        """Restart any process that exits, like Kubernetes' restartPolicy: Always (counted in
        `self.restarts`). Set the returned event to stop supervising."""
        done = threading.Event()

        def loop() -> None:
            while not done.wait(1.0):
                for name, procs in list(self.procs.items()):
                    for i, svc in enumerate(list(procs)):
                        if svc.proc.poll() is not None:
                            self.restarts.append(f"{name}-{i} exit {svc.proc.returncode}")
                            self.start(name, i)

        threading.Thread(target=loop, name="supervisor", daemon=True).start()
        return done

    def alive(self) -> list[str]:
        return [p.name for p in self.all() if p.proc.poll() is None]

    def stop_all(self) -> None:
        for svc in self.all():
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)

    def logs(self, tail: int = 1500) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path.parent.name}) ---\n{p.log()[-tail:]}" for p in self.all())


def peak_rss_bytes(pid: int) -> int:
    """The process' peak resident set (VmHWM) from /proc: what the kernel saw, not a sample."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------------------------------------
# Traffic
# ---------------------------------------------------------------------------------------------


class Traffic:
    """The real simulator (`switchboard simulate`), one thread per tenant, for `duration` seconds; at
    the end it closes every open contact (abandon/end) and logs the agents out."""

    def __init__(self, bootstrap: str, prefix: str, tenants: list[str], duration: float, rate: float = 3.0,
                 agents: int = 6, seed: int = 7) -> None:
        self.settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
        self.stop = threading.Event()
        self.stats: dict[str, Stats] = {}
        self.errors: list[BaseException] = []
        run = uuid.uuid4().hex[:6]
        self.configs = [SimConfig(tenant=t, rate=rate, agents=agents, mean_handle=4.0, mean_patience=25.0,
                                  answer_delay=0.5, wrap_delay=1.5, seed=seed + i, run_id=f"{run}{i}")
                        for i, t in enumerate(tenants)]
        self.duration = duration
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in self.configs]
        self.started = 0.0

    def _run(self, config: SimConfig) -> None:
        try:
            with open(os.devnull, "w") as quiet:
                self.stats[config.tenant] = run_simulation(self.settings, config, self.stop, duration=self.duration,
                                                           progress=Progress(quiet, tty=False))
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    def start(self) -> Traffic:
        self.started = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sleep_until(self, at: float) -> None:
        time.sleep(max(0.0, at - self.elapsed()))

    def join(self, timeout: float = 120.0) -> None:
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "simulator did not stop"
        assert not self.errors, f"simulator failed: {self.errors[0]!r}"

    @property
    def arrived(self) -> int:
        return sum(s.arrived for s in self.stats.values())


# ---------------------------------------------------------------------------------------------
# Reading topics
# ---------------------------------------------------------------------------------------------


class Tail:
    """Accumulates every committed record of some topics from the beginning."""

    def __init__(self, bootstrap: str, topic_names: list[str]) -> None:
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"audit-{uuid.uuid4().hex}",
                           "enable.auto.commit": False, "isolation.level": "read_committed",
                           "enable.partition.eof": True, "log_level": 0})
        parts = []
        for name in topic_names:
            parts += [TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions_of(self.c, name)]
        self.c.assign(parts)
        self.n_parts = len(parts)
        self.msgs: dict[str, list[Message]] = defaultdict(list)

    def poll(self, seconds: float) -> None:
        """Read what is there (at least `seconds` long, until every partition is at its end)."""
        deadline = time.monotonic() + seconds
        eof: set[tuple[str, int]] = set()
        while time.monotonic() < deadline or len(eof) < self.n_parts:
            if time.monotonic() > deadline + 30:
                break
            for m in self.c.consume(500, 0.2):
                if m.error():
                    eof.add((m.topic(), m.partition()))
                else:
                    eof.discard((m.topic(), m.partition()))
                    self.msgs[m.topic()].append(m)

    def close(self) -> None:
        self.c.close()


def wait_lag_zero(bootstrap: str, prefix: str, timeout: float = 120.0, services: tuple[str, ...] = SERVICES
                  ) -> None:
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            try:
                lag = committed_lag(bootstrap, f"{prefix}switchboard-{name}", [prefix + t for t in INPUTS[name]])
            except KafkaException:  # UNSTABLE_OFFSET_COMMIT: a dead member's transaction is still open
                continue
            if lag == 0:
                pending.remove(name)
        if pending:
            time.sleep(1.0)
    assert not pending, f"consumer groups still lagging after {timeout:.0f}s: {pending}"


# ---------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    published: set[tuple[str, str]] = field(default_factory=set)  # (tenant, contact) arrived on inbound
    terminal: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    dup_event_ids: Counter[str] = field(default_factory=Counter)  # topic -> repeated event ids
    double_assignments: list[str] = field(default_factory=list)
    capacity_breaches: list[str] = field(default_factory=list)
    peak_held: int = 0
    surveys_due: set[str] = field(default_factory=set)
    surveys_sent: Counter[str] = field(default_factory=Counter)
    dlq: Counter[tuple[str, str]] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    ignored_inbound: int = 0

    # -- building --------------------------------------------------------------------------------

    @classmethod
    def read(cls, bootstrap: str, prefix: str, tenants: set[str],
             is_poison: Callable[[Message], bool] = lambda m: False) -> Ledger:
        names = [T.CONTACTS_INBOUND, T.AGENTS_EVENTS, T.ROUTING_ASSIGNMENTS, T.CONTACTS_LIFECYCLE,
                 T.SURVEYS_REQUESTS, T.CONTACTS_DLQ]
        tail = Tail(bootstrap, [prefix + t.name for t in names])
        try:
            tail.poll(2.0)
            return cls.build(prefix, tenants, tail.msgs, is_poison)
        finally:
            tail.close()

    @classmethod
    def build(cls, prefix: str, tenants: set[str], msgs: dict[str, list[Message]],
              is_poison: Callable[[Message], bool]) -> Ledger:
        led = cls()
        for topic, ms in msgs.items():
            led.records[topic.removeprefix(prefix)] = len(ms)
        for m in msgs[prefix + T.CONTACTS_INBOUND.name]:
            if is_poison(m):
                continue
            try:
                ev = json.loads(m.value())
            except ValueError:  # a protobuf follow-up from survey, or not ours
                led.ignored_inbound += 1
                continue
            if ev.get("tenant_id") in tenants and ev.get("step") == "arrived":
                led.published.add((ev["tenant_id"], ev["contact_id"]))
        capacity: dict[tuple[str, str], dict[Channel, int]] = {}
        for m in msgs[prefix + T.AGENTS_EVENTS.name]:
            if is_poison(m):
                continue
            a = agent_pb2.AgentEvent.FromString(m.value())
            if a.WhichOneof("kind") == "login":
                cap = dict(DEFAULT_CAPACITY)
                for c in a.login.capacity:
                    cap[CHANNEL_TO_DOMAIN[c.channel]] = c.max
                capacity[(a.envelope.tenant_id, a.agent_id)] = cap
        seen: dict[str, set[str]] = defaultdict(set)

        def unique(topic: str, event_id: str) -> None:
            if event_id in seen[topic]:
                led.dup_event_ids[topic] += 1
            seen[topic].add(event_id)

        for m in msgs[prefix + T.ROUTING_ASSIGNMENTS.name]:
            a = routing_pb2.Assignment.FromString(m.value())
            unique("routing.assignments.v1", a.envelope.event_id)
        # Lifecycle: one tenant's events are on one partition, in order: replay per partition.
        holder: dict[tuple[str, str], tuple[str, Channel]] = {}
        held: dict[tuple[str, str], Counter[Channel]] = defaultdict(Counter)
        policy = QueuePolicy()
        for m in sorted(msgs[prefix + T.CONTACTS_LIFECYCLE.name], key=lambda m: (m.partition(), m.offset())):
            if is_poison(m):
                continue
            ev = routing_pb2.LifecycleEvent.FromString(m.value())
            tenant = ev.envelope.tenant_id
            unique("contacts.lifecycle.v1", ev.envelope.event_id)
            key = (tenant, ev.contact_id)
            name = routing_pb2.LifecycleKind.Name(ev.kind).removeprefix("LIFECYCLE_KIND_").lower()
            is_terminal = ev.kind in TERMINAL or (ev.kind == L.LIFECYCLE_KIND_OVERFLOWED
                                                  and ev.reason.startswith("site:"))
            if is_terminal:
                led.terminal[key].append(name)
                led.outcomes[name + ("_answered" if ev.kind == L.LIFECYCLE_KIND_ENDED and ev.answered else "")] += 1
            if ev.kind == L.LIFECYCLE_KIND_ENDED:
                d = decide(ev, time.time(), policy, CustomerFacts())
                if d.request is not None:
                    led.surveys_due.add(f"{tenant}/{ev.contact_id}")
            if ev.kind in HOLD:
                channel = CHANNEL_TO_DOMAIN[ev.channel]
                agent = (tenant, ev.agent_id)
                prev = holder.get(key)
                if prev is not None and prev[0] != ev.agent_id:
                    led.double_assignments.append(f"{tenant}/{ev.contact_id}: {prev[0]} then {ev.agent_id}")
                if prev is None:
                    holder[key] = (ev.agent_id, channel)
                    held[agent][channel] += 1
                    led.peak_held = max(led.peak_held, sum(held[agent].values()))
                    cap = capacity.get(agent, DEFAULT_CAPACITY)
                    h = held[agent]
                    if h[channel] > cap.get(channel, 0):
                        led.capacity_breaches.append(f"{agent[0]}/{agent[1]} holds {h[channel]} {channel.value}")
                    blocking = sum(h[c] for c in BLOCKING_CHANNELS)
                    if blocking and sum(h.values()) > 1:
                        led.capacity_breaches.append(f"{agent[0]}/{agent[1]} holds {dict(h)} next to a live call")
            elif ev.kind in RELEASE or is_terminal:
                prev = holder.pop(key, None)
                if prev is not None:
                    held[(tenant, prev[0])][prev[1]] -= 1
        for m in msgs[prefix + T.SURVEYS_REQUESTS.name]:
            r = survey_pb2.SurveyRequest.FromString(m.value())
            unique("surveys.requests.v1", r.envelope.event_id)
            led.surveys_sent[f"{r.envelope.tenant_id}/{r.contact_id}"] += 1
        for m in msgs[prefix + T.CONTACTS_DLQ.name]:
            if is_poison(m):  # the poison test accounts for its own
                continue
            hdr = {k: (v or b"").decode(errors="replace") for k, v in m.headers() or []}
            led.dlq[(hdr.get("dlq.service", "?"), hdr.get("dlq.reason", "?"))] += 1
        return led

    # -- verdict ---------------------------------------------------------------------------------

    def unfinished(self) -> list[tuple[str, str]]:
        return sorted(k for k in self.published if not self.terminal.get(k))

    def violations(self, expected_dlq: set[tuple[str, str]] | None = None) -> list[str]:
        allowed = EXPECTED_DLQ if expected_dlq is None else expected_dlq
        out = []
        missing = self.unfinished()
        if missing:
            out.append(f"{len(missing)} contacts without a terminal state, e.g. {missing[:5]}")
        multi = {k: v for k, v in self.terminal.items() if len(v) > 1}
        if multi:
            out.append(f"{len(multi)} contacts with several terminal states, e.g. {list(multi.items())[:3]}")
        stray = set(self.terminal) - self.published
        if stray:
            out.append(f"{len(stray)} terminal contacts never published, e.g. {sorted(stray)[:3]}")
        if self.dup_event_ids:
            out.append(f"duplicate event ids: {dict(self.dup_event_ids)}")
        if self.double_assignments:
            out.append(f"contacts assigned while held: {self.double_assignments[:5]}")
        if self.capacity_breaches:
            out.append(f"capacity exceeded: {self.capacity_breaches[:5]}")
        missing_s = sorted(self.surveys_due - set(self.surveys_sent))
        if missing_s:
            out.append(f"{len(missing_s)} surveys due but not sent, e.g. {missing_s[:3]}")
        twice = {k: n for k, n in self.surveys_sent.items() if n > 1}
        if twice:
            out.append(f"surveys sent more than once: {list(twice.items())[:3]}")
        extra = sorted(set(self.surveys_sent) - self.surveys_due)
        if extra:
            out.append(f"{len(extra)} surveys sent that were not due, e.g. {extra[:3]}")
        bad = {k: n for k, n in self.dlq.items() if k not in allowed}
        if bad:
            out.append(f"unexpected dead letters: {bad}")
        return out

    def figures(self) -> dict[str, Any]:
        accounted = sum(1 for k in self.published if len(self.terminal.get(k, ())) == 1)
        return {
            "contacts_published": len(self.published),
            "contacts_accounted": accounted,
            "outcomes": dict(sorted(self.outcomes.items())),
            "records": dict(sorted(self.records.items())),
            "duplicate_records": sum(self.dup_event_ids.values()),
            "double_assignments": len(self.double_assignments),
            "capacity_breaches": len(self.capacity_breaches),
            "surveys_due": len(self.surveys_due),
            "surveys_sent": sum(self.surveys_sent.values()),
            "dead_letters": {f"{s}/{r}": n for (s, r), n in sorted(self.dlq.items())},
        }


def settle(bootstrap: str, prefix: str, tenants: set[str], timeout: float = 150.0,
           is_poison: Callable[[Message], bool] = lambda m: False) -> Ledger:
    """Wait until every published contact has a terminal state (or `timeout`) and every consumer
    group has committed everything, then read the final ledger."""
    deadline = time.monotonic() + timeout
    while True:
        led = Ledger.read(bootstrap, prefix, tenants, is_poison)
        if (led.published and not led.unfinished()) or time.monotonic() > deadline:
            break
        time.sleep(3.0)
    wait_lag_zero(bootstrap, prefix, timeout=max(30.0, deadline - time.monotonic()))
    return Ledger.read(bootstrap, prefix, tenants, is_poison)


def assignment_latencies(bootstrap: str, prefix: str, since_ms: float = 0, until_ms: float = float("inf"),
                         routed: bool = False) -> list[float]:
    """Seconds from each contact's `arrived` (its CreateTime on contacts.inbound.v1) to its first
    assignment (CreateTime on routing.assignments.v1), for contacts that arrived in the window. With
    `routed`, to routing's first lifecycle record of the contact instead (QUEUED, or an immediate
    outcome): the pipeline's own latency, without the wait for a free agent."""
    out_topic = prefix + (T.CONTACTS_LIFECYCLE.name if routed else T.ROUTING_ASSIGNMENTS.name)
    decode = routing_pb2.LifecycleEvent.FromString if routed else routing_pb2.Assignment.FromString
    tail = Tail(bootstrap, [prefix + T.CONTACTS_INBOUND.name, out_topic])
    try:
        tail.poll(2.0)
        arrived: dict[str, int] = {}
        for m in tail.msgs[prefix + T.CONTACTS_INBOUND.name]:
            try:
                ev = json.loads(m.value() or b"")
            except ValueError:
                continue
            ts = m.timestamp()[1]
            if isinstance(ev, dict) and ev.get("step") == "arrived" and since_ms <= ts <= until_ms:
                arrived.setdefault(str(ev.get("contact_id")), ts)
        first: dict[str, int] = {}
        for m in tail.msgs[out_topic]:
            first.setdefault(decode(m.value() or b"").contact_id, m.timestamp()[1])
    finally:
        tail.close()
    return sorted((first[c] - ts) / 1000 for c, ts in arrived.items() if c in first)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BusyCore:
    """Another process keeping one core of the machine busy for the duration of a test (a shared
    CI machine): `with BusyCore(): ...`."""

    def __enter__(self) -> BusyCore:
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(10)


# ---------------------------------------------------------------------------------------------
# Figures for RELIABILITY.md
# ---------------------------------------------------------------------------------------------

FIGURES = Path(os.environ.get("RELIABILITY_FIGURES", Path(__file__).resolve().parents[2] / ".run"
                              / "reliability-figures.json"))


def record(test: str, figures: dict[str, Any]) -> None:
    """Merge one test's figures into the JSON file RELIABILITY.md is written from."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[test] = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    FIGURES.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def metrics_text(svc: ServiceProcess) -> str:
    status, body = http_get(svc.metrics_url)
    return body if status == 200 else ""
