"""Shared parts of the broker stages (ceiling, ingestion, enrichment): one real local broker for
the whole `make bench` run (switchboard_dev/broker.py ensure_broker, as the tests), a fresh topic
set per stage (unique prefix, provisioned like tests/conftest.py), realistic events built from
schemas/examples/, a pre-loaded backlog, and the measurements.

Throughput is read from the output topic: (records - 1) / (last timestamp - first timestamp), the
timestamps being the producer's CreateTime of each output record. The ceiling and the services are
measured the same way, so their ratio compares like with like.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from services.common.topics import provision
from switchboard_dev.broker import BrokerHandle, ensure_broker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
EXAMPLES = ROOT / "schemas" / "examples"

TENANTS = ("acme", "globex", "initech", "umbrella")
CUSTOMERS = 5_000
CLK_TCK = os.sysconf("SC_CLK_TCK")

_broker: BrokerHandle | None = None


def events_count() -> int:
    return int(os.environ.get("BENCH_EVENTS", "20000"))


def partitions() -> int:
    return int(os.environ.get("BENCH_PARTITIONS", "2"))  # as tests/conftest.py


def batch_size() -> int:
    return int(os.environ.get("SWITCHBOARD_BATCH_SIZE", "500"))  # StreamLoop's default


def broker() -> BrokerHandle:
    global _broker
    if _broker is None:
        _broker = ensure_broker(log=lambda line: print(line, flush=True))
        atexit.register(_broker.cleanup)
        print(f"bench uses broker: {_broker.describe()}", flush=True)
    return _broker


def new_prefix() -> str:
    prefix = f"b{uuid.uuid4().hex[:8]}."
    provision(AdminClient({"bootstrap.servers": broker().bootstrap}), prefix=prefix, partitions=partitions())
    return prefix


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count()}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_events(n: int, seed: int = 11) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: the schema examples (every channel and step) with fresh ids, tenants,
    customers and timestamps, keyed by customer_id as upstream channels do (tests/helpers.send_json)."""
    rng = random.Random(seed)
    examples = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
    now = time.time()
    out: list[tuple[bytes, bytes]] = []
    for i in range(n):
        ev = dict(examples[i % len(examples)])
        customer = f"cust-{rng.randrange(CUSTOMERS)}"
        ev.update({"event_id": str(uuid.UUID(int=rng.getrandbits(128))), "tenant_id": rng.choice(TENANTS),
                   "occurred_at": _rfc3339(now - rng.uniform(0, 60)), "contact_id": f"c-{i}",
                   "customer_id": customer})
        if "callback" in ev:  # a callback is requested for later than the event
            ev["callback"] = dict(ev["callback"], requested_for=_rfc3339(now + 3600))
        out.append((customer.encode(), json.dumps(ev).encode()))
    return out


def protobuf_events(n: int) -> list[tuple[bytes, bytes]]:
    """The same JSON events, parsed by ingestion's own parser into canonical ContactEvents."""
    from services.ingestion.parse import Limits, parse

    limits, now = Limits(), time.time()
    out = []
    for _key, value in json_events(n):
        ev = parse(value, "application/json", now, limits)
        out.append((ev.customer_id.encode(), ev.SerializeToString()))
    return out


def preload(topic: str, records: list[tuple[bytes, bytes]], content_type: str) -> dict[int, int]:
    """Produce the backlog; returns the high watermark of each partition afterwards."""
    p = Producer({"bootstrap.servers": broker().bootstrap, "acks": "all", "enable.idempotence": True,
                  "partitioner": "murmur2_random", "linger.ms": 20, "compression.type": "lz4"})
    headers = [("content-type", content_type.encode())]
    for key, value in records:
        while True:
            try:
                p.produce(topic, key=key, value=value, headers=headers)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    if p.flush(120) != 0:
        raise RuntimeError(f"backlog on {topic} not acknowledged")
    return high_watermarks(topic)


def high_watermarks(topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": broker().bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = md.topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


def wait_committed(group: str, topic: str, ends: dict[int, int], timeout: float, alive: Any = None) -> float:
    """Wait until `group` has committed every input offset up to `ends`; returns when it saw it."""
    c = Consumer({"bootstrap.servers": broker().bootstrap, "group.id": group, "enable.auto.commit": False})
    deadline = time.monotonic() + timeout
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        while time.monotonic() < deadline:
            committed = c.committed(tps, timeout=10)
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in committed):
                return time.time()
            if alive is not None:
                alive()
            time.sleep(0.5)
    finally:
        c.close()
    raise RuntimeError(f"group {group} did not commit {topic} to {ends} within {timeout:.0f}s")


def output_span(*topics: str) -> dict[str, Any]:
    """Count, first and last CreateTime (ms) of the committed records on `topics` (together), their
    mean size, and the count per topic."""
    c = Consumer({"bootstrap.servers": broker().bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": True})
    count, first, last, size = 0, None, None, 0
    counts = dict.fromkeys(topics, 0)
    try:
        tps = []
        for topic in topics:
            md = c.list_topics(topic, timeout=10)
            tps += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.topics[topic].partitions]
        c.assign(tps)
        eof: set[tuple[str, int]] = set()
        deadline = time.monotonic() + 120
        while len(eof) < len(tps) and time.monotonic() < deadline:
            for msg in c.consume(1000, 0.5):
                if msg.error():
                    eof.add((msg.topic(), msg.partition()))
                    continue
                ts = msg.timestamp()[1]
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
                count += 1
                counts[msg.topic()] += 1
                size += len(msg.value() or b"")
    finally:
        c.close()
    seconds = (last - first) / 1000 if count > 1 and first is not None and last is not None else 0.0
    return {"records": count, "first_ms": first, "last_ms": last, "seconds": seconds,
            "per_second": (count - 1) / seconds if seconds > 0 else 0.0,
            "mean_value_bytes": size / count if count else 0, "counts": counts}


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ceiling_result() -> dict[str, Any] | None:
    path = RESULTS / "ceiling.json"
    return json.loads(path.read_text()) if path.exists() else None


# -- backlogs for routing and survey alone ---------------------------------------------------------

# (channel, queue, required skill): the mix the demo traffic has (switchboard_dev/simulate.py CHANNEL_MIX)
_ROUTED = (("voice", "support", "support"), ("voice", "billing", "billing"), ("chat", "sales", "sales"),
           ("chat", "sales", "sales"), ("email", "billing", "billing"), ("sms", "billing", "billing"))
AGENTS_PER_TENANT = 250
END_LAG = 40  # a tenant's contact ends this many of its contacts after it arrived (< its agents' capacity)


def agent_login_events(tenants: tuple[str, ...] = TENANTS, per_tenant: int = AGENTS_PER_TENANT
                       ) -> list[tuple[bytes, bytes]]:
    """Login then ready for every agent of every tenant (key tenant_id, as agent desktops publish):
    each agent holds support, billing and sales, voice 1 / chat 3 / email 3 / sms 3."""
    from services.common.codec import new_envelope
    from switchboard.v1 import agent_pb2, contact_pb2

    now = time.time()
    caps = [agent_pb2.ChannelCapacity(channel=ch, max=m) for ch, m in (
        (contact_pb2.CHANNEL_VOICE, 1), (contact_pb2.CHANNEL_CHAT, 3), (contact_pb2.CHANNEL_EMAIL, 3),
        (contact_pb2.CHANNEL_SMS, 3))]
    skills = [agent_pb2.Skill(name=s, level=3) for s in ("support", "billing", "sales")]
    out: list[tuple[bytes, bytes]] = []
    for tenant in tenants:
        for i in range(per_tenant):
            agent = f"a-{i}"
            login = agent_pb2.AgentEvent(envelope=new_envelope(tenant, now, "bench"), agent_id=agent,
                                         login=agent_pb2.AgentLogin(skills=skills, languages=["en"], capacity=caps))
            ready = agent_pb2.AgentEvent(envelope=new_envelope(tenant, now, "bench"), agent_id=agent,
                                         ready=agent_pb2.AgentReady())
            out += [(tenant.encode(), login.SerializeToString()), (tenant.encode(), ready.SerializeToString())]
    return out


def enriched_contact_events(n: int, seed: int = 13) -> list[tuple[bytes, bytes]]:
    """n EnrichedContacts as enrichment writes them (key tenant_id): n/2 contacts, each ARRIVED and,
    END_LAG contacts of its tenant later, ENDED (routing assigns it first when an agent has room)."""
    from services.common.codec import new_envelope, ts_from_seconds
    from switchboard.v1 import contact_pb2

    rng = random.Random(seed)
    now = time.time()
    from services.common.channels import CHANNELS
    open_by_tenant: dict[str, list[contact_pb2.EnrichedContact]] = {t: [] for t in TENANTS}
    out: list[tuple[bytes, bytes]] = []

    def ended(arrived: contact_pb2.EnrichedContact) -> None:
        ev = contact_pb2.EnrichedContact()
        ev.CopyFrom(arrived)
        ev.contact.envelope.event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        ev.contact.step = contact_pb2.CONTACT_STEP_ENDED
        ev.contact.handle.talk_seconds = round(rng.uniform(30, 600), 1)
        out.append((ev.contact.envelope.tenant_id.encode(), ev.SerializeToString()))

    for i in range(n // 2):
        tenant = rng.choice(TENANTS)
        channel, queue, skill = rng.choice(_ROUTED)
        ev = contact_pb2.EnrichedContact()
        c = ev.contact
        c.envelope.CopyFrom(new_envelope(tenant, now, "bench", event_id=str(uuid.UUID(int=rng.getrandbits(128)))))
        c.contact_id, c.customer_id = f"c-{i}", f"cust-{rng.randrange(CUSTOMERS)}"
        c.channel, c.step, c.queue_hint = CHANNELS[channel], contact_pb2.CONTACT_STEP_ARRIVED, queue
        if channel == "voice":
            c.voice.ivr_seconds = round(rng.uniform(4, 30), 1)
        else:
            getattr(c, channel).SetInParent()
        ev.profile.customer_id, ev.profile.tenant_id = c.customer_id, tenant
        ev.profile.has_mobile = ev.profile.has_email = True
        ev.known_customer = True
        ev.routing.queue_id, ev.routing.language = queue, "en"
        ev.routing.skills.add(skill=skill, min_level=2)
        ev.routing.sla_deadline.CopyFrom(ts_from_seconds(now + 3600))
        out.append((tenant.encode(), ev.SerializeToString()))
        waiting = open_by_tenant[tenant]
        waiting.append(ev)
        if len(waiting) > END_LAG:
            ended(waiting.pop(0))
    for waiting in open_by_tenant.values():
        for ev in waiting:
            ended(ev)
    return out


def lifecycle_events(n: int, seed: int = 17) -> list[tuple[bytes, bytes]]:
    """n LifecycleEvents as routing writes them (key tenant_id): per contact QUEUED, ASSIGNED,
    ANSWERED, ENDED (answered), so a quarter are the ends survey acts on."""
    from services.common.codec import new_envelope
    from switchboard.v1 import contact_pb2, routing_pb2

    rng = random.Random(seed)
    now = time.time()
    channels = (contact_pb2.CHANNEL_VOICE, contact_pb2.CHANNEL_CHAT, contact_pb2.CHANNEL_EMAIL,
                contact_pb2.CHANNEL_SMS)
    kinds = (routing_pb2.LIFECYCLE_KIND_QUEUED, routing_pb2.LIFECYCLE_KIND_ASSIGNED,
             routing_pb2.LIFECYCLE_KIND_ANSWERED, routing_pb2.LIFECYCLE_KIND_ENDED)
    out: list[tuple[bytes, bytes]] = []
    for i in range(n // 4):
        tenant = rng.choice(TENANTS)
        base = {"contact_id": f"c-{i}", "customer_id": f"cust-{i}", "queue_id": rng.choice(("support", "billing")),
                "channel": rng.choice(channels), "customer_has_mobile": True, "customer_has_email": True}
        agent = f"a-{rng.randrange(AGENTS_PER_TENANT)}"
        for kind in kinds:
            ev = routing_pb2.LifecycleEvent(
                envelope=new_envelope(tenant, now, "switchboard-routing", str(uuid.UUID(int=rng.getrandbits(128)))),
                kind=kind, **base)
            if kind != routing_pb2.LIFECYCLE_KIND_QUEUED:
                ev.agent_id = agent
                ev.wait_seconds = round(rng.uniform(0, 60), 1)
            if kind == routing_pb2.LIFECYCLE_KIND_QUEUED:
                ev.position = 1
            if kind in (routing_pb2.LIFECYCLE_KIND_ANSWERED, routing_pb2.LIFECYCLE_KIND_ENDED):
                ev.answered = True
            if kind == routing_pb2.LIFECYCLE_KIND_ENDED:
                ev.talk_seconds = round(rng.uniform(30, 600), 1)
            out.append((tenant.encode(), ev.SerializeToString()))
    return out
