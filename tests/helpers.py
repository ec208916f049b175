"""Test helpers around a real broker and real service processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, Producer, TopicPartition

from switchboard_dev.broker import free_port

ROOT = Path(__file__).resolve().parents[1]


def producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                     "partitioner": "murmur2_random"})


def send(p: Producer, topic: str, key: str | None, value: bytes | None, ctype: str | None = None) -> None:
    headers = [("content-type", ctype.encode())] if ctype else None
    p.produce(topic, key=key.encode() if key else None, value=value, headers=headers)
    assert p.flush(30) == 0, "message not acknowledged"


def send_json(p: Producer, topic: str, obj: dict[str, Any]) -> None:
    send(p, topic, obj.get("customer_id") or obj.get("contact_id"), json.dumps(obj).encode(), "application/json")


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def contact(tenant: str, contact_id: str, customer_id: str, step: str, channel: str = "voice", **kw: Any) -> dict:
    ev: dict[str, Any] = {"event_id": str(uuid.uuid4()), "tenant_id": tenant, "occurred_at": now_rfc3339(),
                          "source": "test", "contact_id": contact_id, "customer_id": customer_id,
                          "channel": channel, "step": step}
    ev.update(kw)
    return ev


def partitions_of(client: Any, topic: str, timeout: float = 90.0) -> list[int]:
    """The topic's partitions, asked again while the broker does not answer in time or does not
    know the topic yet (a broker just back from a restart, or starved of CPU, answered a metadata
    request after its 10 s: one try failed a reliability test that had nothing wrong)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            md = client.list_topics(topic, timeout=10)
            meta = md.topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                return sorted(meta.partitions)
            problem = f"no partitions known ({meta.error if meta is not None else 'not in the metadata'})"
        except KafkaException as exc:
            problem = str(exc.args[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"metadata of {topic}: {problem} for {timeout:g}s")
        time.sleep(0.5)


def consume_until(bootstrap: str, topic: str, predicate: Callable[[Message], bool], timeout: float = 60.0
                  ) -> Message:
    """Read `topic` from the beginning (committed data only) until a message matches."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions_of(c, topic)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None or msg.error():
                continue
            if predicate(msg):
                return msg
        raise AssertionError(f"no matching message on {topic} within {timeout}s")
    finally:
        c.close()


def read_all(bootstrap: str, topic: str, settle: float = 2.0) -> list[Message]:
    """Every committed message currently on `topic`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": True})
    out: list[Message] = []
    try:
        parts = partitions_of(c, topic)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        eof: set[int] = set()
        deadline = time.monotonic() + 30
        while len(eof) < len(parts) and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                eof.add(msg.partition())
                continue
            out.append(msg)
    finally:
        c.close()
    return out


def header(msg: Message, name: str) -> str | None:
    for k, v in msg.headers() or []:
        if k == name and v is not None:
            return v.decode()
    return None


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        sample, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            total += float(value)
            found = True
    if not found:
        raise AssertionError(f"metric {name} {labels} not exported")
    return total


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen[bytes]
    http_port: int
    log_path: Path
    grpc_port: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/metrics"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM") from None


# Every service process started, in order: tests/conftest.py attaches the logs of those a failing
# test started to its report (a flaky end-to-end failure is otherwise undiagnosable in CI).
STARTED: list[ServiceProcess] = []

GRPC_PORT_VARS = {"routing": "ROUTING_GRPC_PORT", "ingestion": "INGESTION_GRPC_PORT", "survey": "SURVEY_GRPC_PORT"}


def start_service(name: str, env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    http_port = free_port()
    # A fixed SWITCHBOARD_INSTANCE_ID (in extra_env) restarts "the same pod": same transactional id.
    penv = dict(env, SWITCHBOARD_HTTP_PORT=str(http_port))
    penv.setdefault("SWITCHBOARD_INSTANCE_ID", f"{name}-{uuid.uuid4().hex[:6]}")
    # gRPC is secure by default (TLS + tokens, services/common/grpc_security.py); tests that are not
    # about it run plaintext without tokens. tests/integration/test_grpc_security.py overrides this.
    penv.setdefault("SWITCHBOARD_GRPC_INSECURE", "true")
    penv.update(extra_env)
    # Every gRPC-serving service gets a free port unless the test names one: the defaults
    # (50051-50053) would collide with a process still shutting down or another run.
    grpc_port = None
    port_var = GRPC_PORT_VARS.get(name)
    if port_var is not None:
        grpc_port = int(extra_env.get(port_var) or free_port())
        penv[port_var] = str(grpc_port)
    log_path = log_dir / f"{name}.log"
    out = open(log_path, "ab")  # noqa: SIM115 (kept open for the process' life)
    proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=penv, cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT)
    svc = ServiceProcess(name, proc, http_port, log_path, grpc_port)
    STARTED.append(svc)
    return svc


def wait_ready(services: list[ServiceProcess], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending and time.monotonic() < deadline:
        for svc in list(pending):
            if svc.proc.poll() is not None:
                raise AssertionError(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.log()[-3000:]}")
            try:
                status, _ = http_get(f"http://127.0.0.1:{svc.http_port}/readyz", 1.0)
            except OSError:
                continue
            if status == 200:
                pending.remove(svc)
        time.sleep(0.2)
    if pending:
        raise AssertionError("not ready: " + ", ".join(f"{s.name}:\n{s.log()[-2000:]}" for s in pending))


def wait_for_profiles(enrichment: ServiceProcess, count: int, timeout: float = 60.0) -> None:
    """Profiles reach enrichment's table asynchronously (a compacted-topic reader, like a global
    table): a contact that overtakes its customer's profile is enriched as unknown, and then gets
    no survey channel. A channel publishing both at once races the same way; the test waits."""
    def loaded() -> bool:
        status, body = http_get(enrichment.metrics_url)
        return status == 200 and metric_value(body, "switchboard_enrichment_profiles") >= count

    wait_until(loaded, f"enrichment to load {count} profile(s)", timeout, interval=0.2)


def committed_lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Committed records on `topics` after `group`'s committed offsets (0 = everything committed).
    Counts records, not offsets: transaction markers occupy offsets but are not records."""
    offsets = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        starts: list[TopicPartition] = []
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in partitions_of(offsets, topic)]
            for tp in offsets.committed(tps, timeout=10):
                starts.append(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
    finally:
        offsets.close()
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                       "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": True})
    try:
        reader.assign(starts)
        eof: set[tuple[str, int]] = set()
        count = 0
        deadline = time.monotonic() + 30
        while len(eof) < len(starts) and time.monotonic() < deadline:
            msg = reader.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                eof.add((msg.topic(), msg.partition()))
            else:
                count += 1
        return count
    finally:
        reader.close()


def env_without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


def eventually(fn: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3, what: str = "") -> Any:
    """fn()'s result once it stops raising AssertionError or a gRPC error, retried every `interval`.
    After `timeout` an AssertionError saying what was awaited (`what`, else fn's name), for how long,
    and fn's last error. The deadline loop of the tests: one place that cannot time out silently."""
    import grpc

    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (AssertionError, grpc.RpcError) as exc:
            if time.monotonic() > deadline:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                awaited = what or getattr(fn, "__qualname__", repr(fn))
                raise AssertionError(f"timed out after {timeout:g}s waiting for {awaited}; last: {last}") from exc
            time.sleep(interval)


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60.0, interval: float = 0.5) -> Any:
    """check()'s first truthy result, polled every `interval`; an AssertionError or gRPC error from
    check() counts as not yet. After `timeout` an AssertionError naming `what` (see eventually)."""

    def met() -> Any:
        result = check()
        assert result, f"still {result!r}"
        return result

    return eventually(met, timeout, interval, what)


class Record:
    """What the handlers read of a consumed record, for handler tests without a broker."""

    def __init__(self, topic: str, value: bytes | None, key: bytes | None = None, partition: int = 0) -> None:
        self._topic, self._value, self._key, self._partition = topic, value, key, partition

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def partition(self) -> int:
        return self._partition
