"""The four services running together as real processes on the real broker, driven by
bench/loadgen.py at a fixed offered rate; shared by the pipeline and memory stages.

One run (`run_pipeline`): a fresh topic set; the demo CRM profiles; ingestion, enrichment, routing
and survey started as `python -m services.<name>` with the example configuration of `make run`
(deploy/config: tenants, enrichment rules, queues) except the survey policy (bench/config/survey.yaml:
every answered contact surveyed at once, so a completed contact is visible on surveys.requests.v1);
agents logged in (login + ready) and read by routing before any contact arrives; then the load
generator offers contacts for `duration` seconds. A monitor samples every service's RSS, CPU and
consumer lag (its input topics' high watermarks minus its committed offsets: offsets, which include
transaction markers) every `sample_every` seconds. After the offer the services get up to `drain`
seconds to finish what was offered, then stop, and the topics are read back:

- arrival→assignment latency: CreateTime of the contact's `arrived` record on contacts.inbound.v1
  (set by the load generator's producer) to the CreateTime of its first record on
  routing.assignments.v1 (set by routing's producer inside the transaction that commits it; a reader
  sees it after the commit, so the load generator also reports the visible latency, read_committed);
- completed contacts: answered contacts whose ENDED lifecycle record routing wrote, and survey
  requests, counted by CreateTime in the steady window (the offer minus its first `warmup` seconds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench import streams
from services.common.codec import CONTENT_TYPE_PROTOBUF
from services.common.kafka import Output, produce_all
from switchboard.v1 import contact_pb2, routing_pb2
from switchboard_dev.agent_json import agent_event_from_json
from switchboard_dev.broker import free_port
from switchboard_dev.simulate import SimConfig, Simulator, demo_profiles

CONFIG = streams.ROOT / "deploy" / "config"
BENCH_CONFIG = Path(__file__).resolve().parent / "config"
TENANT = "acme"
SERVICES = ("ingestion", "enrichment", "routing", "survey")
INPUTS = {  # what each service's consumer group reads
    "ingestion": ("contacts.inbound.v1",),
    "enrichment": ("contacts.normalized.v1",),
    "routing": ("contacts.enriched.v1", "agents.events.v1"),
    "survey": ("contacts.lifecycle.v1", "surveys.responses.v1"),
}
GRPC_PORT_VARS = {"routing": "ROUTING_GRPC_PORT", "ingestion": "INGESTION_GRPC_PORT", "survey": "SURVEY_GRPC_PORT"}
CONFIG_FILES = {
    "ingestion": {"SWITCHBOARD_TENANTS_FILE": CONFIG / "tenants.yaml"},
    "enrichment": {"ENRICHMENT_RULES_FILE": CONFIG / "enrichment.yaml"},
    "routing": {"SWITCHBOARD_QUEUES_FILE": CONFIG / "queues.yaml"},
    "survey": {"SURVEY_POLICY_FILE": BENCH_CONFIG / "survey.yaml"},
}
# The simulated contacts: answered 0.2 s after the assignment, talk exponential with mean 1 s,
# wrap-up done 0.2 s after routing's ENDED record; callers and chatters wait 120 s on average before hanging up.
ANSWER_DELAY, MEAN_HANDLE, WRAP_DELAY, MEAN_PATIENCE = 0.2, 1.0, 0.2, 120.0


def agents_for(rate: float) -> int:
    """Enough agents that staffing never limits the run: each contact holds an agent for its answer
    delay + talk + wrap-up + two trips through ingestion and enrichment; 4 s of arrivals, rounded
    up to the 12 demo agent templates, capped at 20,000."""
    return min(20_000, max(24, int(rate * 4) // 12 * 12 + 12))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    http_port: int
    log: Path


@dataclass
class Monitor:
    procs: dict[str, Proc]
    prefix: str
    every: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Monitor:
        self._consumers = {name: Consumer({"bootstrap.servers": streams.broker().bootstrap,
                                           "group.id": f"{self.prefix}switchboard-{name}",
                                           "enable.auto.commit": False}) for name in SERVICES}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def sample(self) -> dict[str, Any]:
        at = time.time()
        row: dict[str, Any] = {"t": at, "rss_mib": {}, "cpu_seconds": {}, "lag": {}}
        for name, p in self.procs.items():
            if p.popen.poll() is None:
                pid = service_pid(p)
                row["rss_mib"][name] = rss_mib(pid)
                row["cpu_seconds"][name] = streams.proc_cpu_seconds(pid)
            row["lag"][name] = self._lag(name)
        return row

    def _lag(self, name: str) -> int | None:
        c = self._consumers[name]
        try:
            tps = [TopicPartition(self.prefix + base, p) for base in INPUTS[name] for p in range(streams.partitions())]
            lag = 0
            for tp in c.committed(tps, timeout=10):
                high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)[1]
                lag += high - max(tp.offset, 0)
            return lag
        except Exception:  # noqa: BLE001 (a sample missed under load is reported as None)
            return None

    def _run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(self.sample())
            self.stop.wait(self.every)

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(30)
        for c in self._consumers.values():
            c.close()


def batch_metrics(port: int) -> dict[str, float]:
    """The service's batch counters: batches (with their processing + commit seconds), transactions."""
    out = {"batches": 0.0, "batch_seconds": 0.0, "transactions": 0.0, "consumed": 0.0}
    names = {"switchboard_batch_processing_seconds_count": "batches",
             "switchboard_batch_processing_seconds_sum": "batch_seconds",
             "switchboard_kafka_transactions_total": "transactions", "switchboard_events_consumed_total": "consumed"}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            out[names[name]] += float(line.rsplit(" ", 1)[1])
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def start_services(prefix: str, log_dir: Path, profile: dict[str, Path] | None = None,
                   skeleton: bool = False) -> dict[str, Proc]:
    """The four services (or, with `skeleton`, bench/skeleton.py standing in for each)."""
    eos = streams.broker().supports_transactions
    procs: dict[str, Proc] = {}
    for name in SERVICES:
        port = free_port()
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=streams.broker().bootstrap, SWITCHBOARD_TOPIC_PREFIX=prefix,
                   SWITCHBOARD_EXACTLY_ONCE="true" if eos else "false", PYTHONUNBUFFERED="1",
                   SWITCHBOARD_HTTP_PORT=str(port), SWITCHBOARD_INSTANCE_ID=f"{name}-bench-{uuid.uuid4().hex[:6]}",
                   SWITCHBOARD_LOG_LEVEL="WARNING", SWITCHBOARD_GRPC_INSECURE="true",  # local ports only
                   ACME_INGEST_TOKEN=uuid.uuid4().hex, GLOBEX_INGEST_TOKEN=uuid.uuid4().hex)
        if name in GRPC_PORT_VARS:
            env[GRPC_PORT_VARS[name]] = str(free_port())
        env.update({var: str(path) for var, path in CONFIG_FILES[name].items()})
        module = "bench.skeleton" if skeleton else f"services.{name}"
        argv = [sys.executable, "-m", module, name] if skeleton else [sys.executable, "-m", module]
        if profile and name in profile:
            # py-spy starts the service as its child (ptrace allowed), samples 100/s, writes on exit
            argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "--format", "raw",
                    "-r", "100", "-o", str(profile[name]), "--", *argv]
        log = log_dir / f"{name}.log"
        with open(log, "ab") as out:
            # BENCH_CODE_ROOT: the services from another tree (before/after a change, as bench/compare.py)
            code_root = (None if skeleton else os.environ.get("BENCH_CODE_ROOT")) or str(streams.ROOT)
            procs[name] = Proc(name, subprocess.Popen(argv, env=dict(env, PYTHONPATH=code_root), cwd=code_root,
                                                      stdout=out, stderr=subprocess.STDOUT), port, log)
    deadline = time.monotonic() + 180
    pending = set(SERVICES)
    while pending:
        for name in list(pending):
            p = procs[name]
            if p.popen.poll() is not None:
                stop_services(procs)
                raise RuntimeError(f"{name} exited with {p.popen.returncode}: {p.log.read_text()[-2000:]}")
            if _ready(p.http_port):
                pending.discard(name)
        if time.monotonic() > deadline:
            stop_services(procs)
            raise RuntimeError(f"not ready in 180 s: {sorted(pending)} (logs in {log_dir})")
        time.sleep(0.2)
    return procs


def service_pid(p: Proc) -> int:
    """The service's own pid (under py-spy it is py-spy's child)."""
    if Path(p.popen.args[0]).name != "py-spy":  # type: ignore[index]
        return p.popen.pid
    children = Path(f"/proc/{p.popen.pid}/task/{p.popen.pid}/children").read_text().split()
    return int(children[0]) if children else p.popen.pid


def stop_services(procs: dict[str, Proc]) -> None:
    for p in procs.values():
        if p.popen.poll() is None:  # the service itself (py-spy writes its profile when its child exits)
            os.kill(service_pid(p), signal.SIGTERM)
    for p in procs.values():
        try:
            p.popen.wait(60)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(10)


def _producer() -> Producer:
    return Producer({"bootstrap.servers": streams.broker().bootstrap, "acks": "all", "enable.idempotence": True,
                     "partitioner": "murmur2_random", "linger.ms": 20, "compression.type": "lz4"})


def publish_profiles(prefix: str) -> None:
    p = _producer()
    headers = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
    produce_all(p, [Output(prefix + "customers.profiles.v1", pr.customer_id.encode(), pr.SerializeToString(), headers)
                    for pr in demo_profiles(TENANT, time.time())])
    if p.flush(60):
        raise RuntimeError("profiles not acknowledged")


def login_agents(prefix: str, sim_cfg: SimConfig) -> None:
    """Login + ready of every agent the load generator's simulator will use; returns when routing
    has committed them."""
    topic = prefix + "agents.events.v1"
    p = _producer()
    headers = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
    emits = Simulator(sim_cfg, time.time()).login_agents()
    produce_all(p, [Output(topic, e.key.encode(), agent_event_from_json(e.event).SerializeToString(), headers)
                    for e in emits])
    if p.flush(60):
        raise RuntimeError("agent logins not acknowledged")
    streams.wait_committed(f"{prefix}switchboard-routing", topic, streams.high_watermarks(topic), 300)


def read_topic(topic: str) -> list[tuple[int, bytes]]:
    """(CreateTime ms, value) of every committed record."""
    c = Consumer({"bootstrap.servers": streams.broker().bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": True})
    out: list[tuple[int, bytes]] = []
    try:
        md = c.list_topics(topic, timeout=10)
        parts = list(md.topics[topic].partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        eof: set[int] = set()
        deadline = time.monotonic() + 300
        while len(eof) < len(parts) and time.monotonic() < deadline:
            for msg in c.consume(5000, 0.5):
                if msg.error():
                    eof.add(msg.partition())
                else:
                    out.append((msg.timestamp()[1], msg.value() or b""))
    finally:
        c.close()
    return out


def hop_latencies(prefix: str, arrivals: dict[str, int], assigned: dict[str, int], contacts: list[str]
                  ) -> dict[str, dict[str, float | None]]:
    """Where arrival→assignment goes, per hop: the CreateTime of each contact's arrival on each topic
    (its first record there) minus that on the topic before. A hop is the previous service's commit
    becoming visible plus this service's wait, processing and produce."""
    first: dict[str, dict[str, int]] = {"normalized": {}, "enriched": {}}
    for ts, value in read_topic(prefix + "contacts.normalized.v1"):
        ev = contact_pb2.ContactEvent.FromString(value) if value[:1] != b"{" else None
        cid = ev.contact_id if ev is not None else json.loads(value).get("contact_id", "")
        first["normalized"].setdefault(cid, ts)
    for ts, value in read_topic(prefix + "contacts.enriched.v1"):
        if value[:1] == b"{":
            cid = json.loads(value).get("contact_id", "")
        else:
            cid = contact_pb2.EnrichedContact.FromString(value).contact.contact_id
        first["enriched"].setdefault(cid, ts)
    chain = [("ingestion", arrivals, first["normalized"]), ("enrichment", first["normalized"], first["enriched"]),
             ("routing", first["enriched"], assigned)]
    out: dict[str, dict[str, float | None]] = {}
    for name, before, after in chain:
        values = [(after[c] - before[c]) / 1000 for c in contacts if c in before and c in after]
        out[name] = {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99)}
    return out


def topic_records(prefix: str) -> dict[str, int]:
    """Committed records on every topic of the run (the base names)."""
    c = Consumer({"bootstrap.servers": streams.broker().bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        names = sorted(t for t in c.list_topics(timeout=10).topics if t.startswith(prefix))
    finally:
        c.close()
    return {name[len(prefix):]: len(read_topic(name)) for name in names}


# what each service writes, per input it reads (INPUTS); the skeleton writes the same (bench/skeleton.py)
OUTPUTS = {
    "ingestion": ("contacts.normalized.v1", "ingestion.dedupe.v1"),
    "enrichment": ("contacts.enriched.v1", "enrichment.history.v1"),
    "routing": ("routing.assignments.v1", "contacts.lifecycle.v1", "routing.state.v1"),
    "survey": ("surveys.requests.v1", "surveys.state.v1"),
}


# every topic each service reads (INPUTS lists those whose lag decides "caught up")
READS = {**INPUTS, "enrichment": ("contacts.normalized.v1", "contacts.lifecycle.v1")}


def records_per_input(records: dict[str, int]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in SERVICES:
        inputs = sum(records.get(t, 0) for t in READS[name])
        out[name] = {t: round(records.get(t, 0) / inputs, 3) if inputs else 0.0 for t in OUTPUTS[name]}
        out[name]["inputs"] = inputs
    return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def analyse(prefix: str, start: float, offer_end: float, warmup: float) -> dict[str, Any]:
    arrivals: dict[str, int] = {}
    for ts, value in read_topic(prefix + "contacts.inbound.v1"):
        ev = json.loads(value)
        if ev.get("step") == "arrived":
            arrivals[ev["contact_id"]] = ts
    assigned: dict[str, int] = {}
    for ts, value in read_topic(prefix + "routing.assignments.v1"):
        a = routing_pb2.Assignment.FromString(value)
        if a.contact_id not in assigned:
            assigned[a.contact_id] = ts
    steady_from, end_ms = (start + warmup) * 1000, offer_end * 1000
    ended = 0
    kinds: dict[str, int] = {}
    for ts, value in read_topic(prefix + "contacts.lifecycle.v1"):
        lc = routing_pb2.LifecycleEvent.FromString(value)
        kind = routing_pb2.LifecycleKind.Name(lc.kind).removeprefix("LIFECYCLE_KIND_").lower()
        kinds[kind] = kinds.get(kind, 0) + 1
        if lc.kind == routing_pb2.LIFECYCLE_KIND_ENDED and lc.answered and steady_from <= ts <= end_ms:
            ended += 1
    surveys = sum(1 for ts, _ in read_topic(prefix + "surveys.requests.v1") if steady_from <= ts <= end_ms)
    in_window = [cid for cid, ts in arrivals.items() if start * 1000 <= ts <= end_ms]
    records = topic_records(prefix)
    hops = hop_latencies(prefix, arrivals, assigned, in_window)
    latencies = [(assigned[cid] - arrivals[cid]) / 1000 for cid in in_window if cid in assigned]
    steady = max(1e-9, offer_end - start - warmup)
    return {
        "arrivals": len(arrivals), "arrivals_in_offer": len(in_window), "assigned_of_those": len(latencies),
        "unassigned_of_those": len(in_window) - len(latencies),
        "steady_window_seconds": steady,
        "completed_per_second": ended / steady, "surveys_per_second": surveys / steady,
        "latency_seconds": {"p50": percentile(latencies, 0.50), "p90": percentile(latencies, 0.90),
                            "p99": percentile(latencies, 0.99), "max": max(latencies) if latencies else None},
        "lifecycle_kinds": kinds,
        "records": records, "records_per_input": records_per_input(records), "hops_seconds": hops,
    }


def run_pipeline(rate: float, duration: float, *, drain: float = 30.0, sample_every: float = 2.0,
                 profile: dict[str, Path] | None = None, skeleton: bool = False) -> dict[str, Any]:
    prefix = streams.new_prefix()
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{'skeleton' if skeleton else 'pipeline'}-{int(rate)}-"))
    publish_profiles(prefix)
    # the simulator's own wrap-up timer never fires in the run: the load generator sends wrap_up_done
    # WRAP_DELAY after routing's ENDED (bench/loadgen.py)
    sim = {"tenant": TENANT, "rate": rate, "agents": agents_for(rate), "mean_handle": MEAN_HANDLE,
           "mean_patience": MEAN_PATIENCE, "answer_delay": ANSWER_DELAY, "wrap_delay": 1e6,
           "seed": 7, "run_id": prefix.strip(".")}
    for attempt in range(3):  # a free port taken by another process meanwhile: start again on new ports
        try:
            procs = start_services(prefix, log_dir, profile, skeleton=skeleton)
            break
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    monitor: Monitor | None = None
    try:
        t0 = time.time()
        login_agents(prefix, SimConfig(**sim))
        login_seconds = time.time() - t0
        pids = {name: service_pid(p) for name, p in procs.items()}
        cpu0 = {name: streams.proc_cpu_seconds(pid) for name, pid in pids.items()}
        batches0 = {name: batch_metrics(p.http_port) for name, p in procs.items()}
        monitor = Monitor(procs, prefix, sample_every).start()
        cfg = {"bootstrap": streams.broker().bootstrap, "prefix": prefix, "duration": duration, "sim": sim,
               "wrap_delay": WRAP_DELAY}
        gen = subprocess.run([sys.executable, "-m", "bench.loadgen", json.dumps(cfg)], cwd=streams.ROOT,
                             capture_output=True, timeout=duration + 300)
        if gen.returncode != 0:
            raise RuntimeError(f"load generator failed: {gen.stderr.decode()[-2000:]}")
        loadgen = json.loads(gen.stdout.decode().strip().splitlines()[-1])
        cpu_offer = {name: streams.proc_cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        batches = {}
        for name, p in procs.items():
            now = batch_metrics(p.http_port)
            delta = {k: now[k] - batches0[name][k] for k in now}
            n = max(delta["batches"], 1.0)
            batches[name] = {"batches": delta["batches"], "mean_batch_events": delta["consumed"] / n,
                             "mean_batch_seconds": delta["batch_seconds"] / n,
                             "busy_share": delta["batch_seconds"] / max(1e-9, time.time() - loadgen["started_at"])}
        at_offer_end = monitor.sample()
        deadline = time.monotonic() + drain
        quiet = 0  # consecutive samples with ingestion, enrichment and routing caught up (3 in a row)
        while time.monotonic() < deadline and quiet < 3:
            lags = monitor.sample()["lag"]
            ok = all(lags.get(n) is not None and lags[n] <= 2 * streams.partitions()
                     for n in ("ingestion", "enrichment", "routing"))
            quiet = quiet + 1 if ok else 0
            time.sleep(1)
        drained = time.time() - loadgen["offer_end_at"]
        monitor.finish()
        peak = {name: streams.proc_peak_rss_mib(pid) for name, pid in pids.items()}
    finally:
        if monitor is not None and not monitor.stop.is_set():
            monitor.finish()
        stop_services(procs)
    warmup = min(10.0, duration / 4)
    result = analyse(prefix, loadgen["started_at"], loadgen["offer_end_at"], warmup)
    offer = loadgen["duration"]
    result.update({
        "offered_rate": rate, "offered_per_second": loadgen["offered_per_second"], "duration_seconds": offer,
        "agents": sim["agents"], "login_seconds": login_seconds, "drain_seconds": drained,
        "loadgen": loadgen, "cpu_seconds_during_offer": cpu_offer,
        "cpu_share_during_offer": {n: v / offer for n, v in cpu_offer.items()},
        "lag_at_offer_end": at_offer_end["lag"], "batches_during_offer": batches, "peak_rss_mib": peak,
        "samples": [{"t": round(s["t"] - loadgen["started_at"], 1), **{k: s[k] for k in ("rss_mib", "lag")}}
                    for s in monitor.samples],
        "logs": str(log_dir),
    })
    # Sustained: what was offered completed (answered contacts ended) at >= 90 % of the offered rate
    # in the steady window, and no service was left with more than 2 s of its input unread.
    per_contact = {"ingestion": 3, "enrichment": 3, "routing": 4, "survey": 5}
    backlog_ok = all((lag or 0) <= 2 * result["offered_per_second"] * per_contact[n]
                     for n, lag in result["lag_at_offer_end"].items())
    result["sustained"] = bool(result["completed_per_second"] >= 0.9 * result["offered_per_second"] and backlog_ok)
    return result
