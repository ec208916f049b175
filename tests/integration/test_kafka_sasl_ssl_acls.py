"""The Kafka a team really runs: SASL_SSL (SCRAM-SHA-512) and ACLs exactly as the chart's KafkaUser
grants them (helm/switchboard/templates/strimzi.yaml). A broker of its own (Apache Kafka, KRaft,
one node) with a SASL_SSL listener, a PEM keystore and truststore made here with the `openssl` CLI,
SCRAM users created at format time and the StandardAuthorizer; the topics and ACLs are created by
the admin super user.

- the four real services, as the chart's user, drive a contact from arrival to assignment and
  on to its survey request with nothing dead-lettered, no authorization error in any service log
  and no request of that user denied in the broker's authorizer log (the ACL set is sufficient);
- a user without ACLs, a wrong password, and ingestion without Write on contacts.normalized.v1:
  each service exits with status 2 within 60 s and names what is wrong (kafka_not_authorized with
  the resource, kafka_authentication_failed), instead of waiting or retrying for ever.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from services.common import topics
from services.common.codec import new_envelope
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, survey_pb2
from switchboard_dev.broker import BrokerError, free_port, kafka_libs, new_cluster_id
from tests.helpers import ServiceProcess, contact, start_service, wait_for_profiles, wait_ready

pytestmark = pytest.mark.broker

SERVICES = ("ingestion", "enrichment", "routing", "survey")
PASSWORDS = {"broker": "broker-" + uuid.uuid4().hex, "admin": "admin-" + uuid.uuid4().hex,
             "switchboard": "sb-" + uuid.uuid4().hex, "nobody": "nobody-" + uuid.uuid4().hex,
             "nowrite": "nowrite-" + uuid.uuid4().hex}
QUEUES = """\
tenants:
  acme:
    queues:
      support:
        channel: voice
        skills: {support: 2}
"""


# -- the broker --------------------------------------------------------------------------------

def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _pki(d: Path) -> tuple[Path, Path]:
    """A CA (its certificate is the clients' KAFKA_SSL_CA_LOCATION and the broker's PEM truststore)
    and the broker's PEM keystore: its PKCS#8 key and certificate chain in one file."""
    ca_key, ca = d / "ca.key", d / "ca.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
             "-days", "2", "-subj", "/CN=switchboard-kafka-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key, csr, cert, ext = d / "broker.key", d / "broker.csr", d / "broker.pem", d / "broker.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=broker")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    keystore = d / "broker-keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text() + ca.read_text())
    return ca, keystore


# The broker's log: warnings, and every request the authorizer denies (kafka.authorizer.logger at
# INFO), so a test can say which right was missing.
LOG4J2 = """\
Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.authorizer.logger
        level: INFO
"""


def _jaas(user: str) -> str:
    return (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" '
            f'password="{PASSWORDS[user]}";')


def _properties(port: int, controller_port: int, data: Path, ca: Path, keystore: Path) -> str:
    # The controller listener stays PLAINTEXT on loopback: KRaft controllers cannot authenticate with
    # SCRAM (its credentials live in the metadata they serve), so its ANONYMOUS principal is a super
    # user. Clients only ever see the advertised SASL_SSL listener.
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={_jaas("broker")}
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:broker;User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
log.dirs={data}/kraft
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
"""


@dataclass
class SecureBroker:
    bootstrap: str
    ca: Path
    log_path: Path

    def client(self, user: str, password: str | None = None) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user,
                "sasl.password": PASSWORDS[user] if password is None else password,
                "ssl.ca.location": str(self.ca)}

    def env(self, user: str, prefix: str, password: str | None = None) -> dict[str, str]:
        return dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, SWITCHBOARD_TOPIC_PREFIX=prefix,
                    KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                    KAFKA_SASL_USERNAME=user, KAFKA_SASL_PASSWORD=PASSWORDS[user] if password is None else password,
                    KAFKA_SSL_CA_LOCATION=str(self.ca), SWITCHBOARD_EXACTLY_ONCE="true", PYTHONUNBUFFERED="1")


def start_secure_broker(d: Path) -> tuple[SecureBroker, subprocess.Popen[bytes]]:
    """Formats (SCRAM users included) and starts the broker in `d`; returns once the admin user gets
    an answer."""
    libs = kafka_libs(log=lambda line: print(line, flush=True))
    ca, keystore = _pki(d)
    port, controller_port = free_port(), free_port()
    props = d / "server.properties"
    props.write_text(_properties(port, controller_port, d, ca, keystore))
    (d / "log4j2.yaml").write_text(LOG4J2)
    jvm = [shutil.which("java") or "java", "-Xmx512m", "-Xms128m", "-XX:+UseG1GC",
           f"-Dlog4j2.configurationFile={d / 'log4j2.yaml'}", "-cp", f"{libs}/*"]
    scram = [arg for user, pw in PASSWORDS.items()
             for arg in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={pw}]")]
    fmt = subprocess.run([*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={new_cluster_id()}",
                          "-c", str(props), "--standalone", *scram], capture_output=True, text=True, timeout=120)
    if fmt.returncode != 0:
        raise BrokerError(f"kafka storage format failed: {fmt.stdout[-1500:]}{fmt.stderr[-1500:]}")
    log_path = d / "kafka.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([*jvm, "kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    handle = SecureBroker(f"127.0.0.1:{port}", ca, log_path)
    try:
        admin = AdminClient({**handle.client("admin"), "log_level": 0})
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise BrokerError(f"broker exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
            try:
                if admin.list_topics(timeout=3).brokers:
                    return handle, proc
            except Exception as exc:  # noqa: BLE001 (not up yet)
                if time.monotonic() > deadline:
                    raise BrokerError(f"broker not up in 120 s: {exc}\n{log_path.read_text()[-3000:]}") from exc
            time.sleep(0.5)
    except BaseException:
        stop_broker(proc)
        raise


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed for the broker's certificates")
    handle, proc = start_secure_broker(tmp_path_factory.mktemp("kafka-sasl-ssl"))
    try:
        yield handle
    finally:
        stop_broker(proc)


# -- topics and ACLs ---------------------------------------------------------------------------

def chart_acls(user: str, prefix: str, without: tuple[str, AclOperation] | None = None) -> list[AclBinding]:
    """The KafkaUser's ACLs (helm/switchboard/templates/strimzi.yaml, topics provisioned by the
    operator: no Create): every declared topic Describe, DescribeConfigs, Read, Write; groups and
    transactional ids with the prefix `<prefix>switchboard-`: Describe, Read and Describe, Write.
    `without` leaves one (topic base name, operation) out."""
    principal = f"User:{user}"

    def allow(rtype: ResourceType, name: str, pattern: ResourcePatternType, op: AclOperation) -> AclBinding:
        return AclBinding(rtype, name, pattern, principal, "*", op, AclPermissionType.ALLOW)

    out = [allow(ResourceType.TOPIC, prefix + t.name, ResourcePatternType.LITERAL, op)
           for t in topics.ALL_TOPICS
           for op in (AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.READ, AclOperation.WRITE)
           if (t.name, op) != without]
    out += [allow(ResourceType.GROUP, f"{prefix}switchboard-", ResourcePatternType.PREFIXED, op)
            for op in (AclOperation.DESCRIBE, AclOperation.READ)]
    out += [allow(ResourceType.TRANSACTIONAL_ID, f"{prefix}switchboard-", ResourcePatternType.PREFIXED, op)
            for op in (AclOperation.DESCRIBE, AclOperation.WRITE)]
    return out


@pytest.fixture
def prefix(secure_broker: SecureBroker) -> str:
    """A fresh topic set, provisioned by the admin super user."""
    p = f"s{uuid.uuid4().hex[:8]}."
    topics.provision(AdminClient(secure_broker.client("admin")), prefix=p, partitions=2)
    return p


def grant(broker: SecureBroker, bindings: list[AclBinding]) -> None:
    """Create the ACLs and wait until the broker's authorizer holds them all. CreateAcls answers
    once the controller committed them; the broker applies them when it replays the metadata log,
    which on a busy machine comes later (a service started in between was refused Describe)."""
    admin = AdminClient(broker.client("admin"))
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result(timeout=30)
    principals = {b.principal for b in bindings}
    wanted = set(bindings)
    deadline = time.monotonic() + 60
    while True:
        held: set[AclBinding] = set()
        for principal in principals:
            flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
                                   AclOperation.ANY, AclPermissionType.ANY)
            held |= set(admin.describe_acls(flt, request_timeout=30).result(timeout=30))
        if wanted <= held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(wanted - held)} of {len(wanted)} ACLs not held by the broker after 60 s")
        time.sleep(0.2)


# -- clients of the test (the admin super user) ------------------------------------------------

def send(p: Producer, topic: str, key: str, value: bytes, ctype: str) -> None:
    p.produce(topic, key=key.encode(), value=value, headers=[("content-type", ctype.encode())])
    assert p.flush(30) == 0, "message not acknowledged"


def read(broker: SecureBroker, topic: str, until: Callable[[Message], bool] | None = None,
         timeout: float = 60.0) -> list[Message]:
    """Committed records of `topic` from the beginning: up to the first matching `until` (an error
    if none comes within `timeout`), or, without `until`, everything there now."""
    c = Consumer({**broker.client("admin"), "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False,
                  "isolation.level": "read_committed", "enable.partition.eof": True})
    try:
        parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list[Message] = []
        eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                eof.add(int(msg.partition() or 0))
                if until is None and len(eof) == len(parts):
                    return out
                continue
            out.append(msg)
            if until is not None and until(msg):
                return out
        if until is not None:
            raise AssertionError(f"no matching record on {topic} within {timeout:g} s")
        return out
    finally:
        c.close()


def log_events(svc: ServiceProcess) -> list[dict[str, Any]]:
    out = []
    for line in svc.log().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def agent_event(tenant: str, agent_id: str, **kind: object) -> bytes:
    return agent_pb2.AgentEvent(envelope=new_envelope(tenant, time.time(), "test"), agent_id=agent_id,
                                **kind).SerializeToString()


def stop_all(svcs: list[ServiceProcess]) -> None:
    for svc in svcs:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(10)


# -- the tests ---------------------------------------------------------------------------------

def test_the_four_services_run_a_contact_with_exactly_the_charts_acls(
        secure_broker: SecureBroker, prefix: str, tmp_path: Path) -> None:
    grant(secure_broker, chart_acls("switchboard", prefix))
    queues = tmp_path / "queues.yaml"
    queues.write_text(QUEUES)
    env = secure_broker.env("switchboard", prefix)
    svcs = {name: start_service(name, env, tmp_path, **({"SWITCHBOARD_QUEUES_FILE": str(queues)}
                                                         if name == "routing" else {}))
            for name in SERVICES}
    try:
        wait_ready(list(svcs.values()), timeout=120)
        t, tenant, customer = prefix, "acme", f"cust-{uuid.uuid4().hex[:6]}"
        p = Producer({**secure_broker.client("admin"), "acks": "all", "enable.idempotence": True,
                      "partitioner": "murmur2_random"})
        send(p, t + "customers.profiles.v1", customer, contact_pb2.CustomerProfile(
            customer_id=customer, tenant_id=tenant, has_mobile=True).SerializeToString(), "application/x-protobuf")
        wait_for_profiles(svcs["enrichment"], 1)
        login = agent_pb2.AgentLogin(skills=[agent_pb2.Skill(name="support", level=3)],
                                     capacity=[agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)])
        send(p, t + "agents.events.v1", tenant, agent_event(tenant, "a-1", login=login), "application/x-protobuf")
        send(p, t + "agents.events.v1", tenant, agent_event(tenant, "a-1", ready=agent_pb2.AgentReady()),
             "application/x-protobuf")
        send(p, t + "contacts.inbound.v1", customer, json.dumps(contact(
            tenant, "c-1", customer, "arrived", queue="support", voice={"from_number": "+14155550123"})).encode(),
            "application/json")
        found = read(secure_broker, t + "routing.assignments.v1",
                     lambda m: routing_pb2.Assignment.FromString(m.value()).contact_id == "c-1", timeout=90)
        assert routing_pb2.Assignment.FromString(found[-1].value()).agent_id == "a-1"
        # Answered and ended: survey's transaction (its state and the request) runs too.
        for step, kw in (("answered", {}), ("ended", {"talk_seconds": 30.0})):
            send(p, t + "contacts.inbound.v1", customer, json.dumps(contact(
                tenant, "c-1", customer, step, agent_id="a-1", **kw)).encode(), "application/json")
        read(secure_broker, t + "surveys.requests.v1",
             lambda m: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == "c-1", timeout=90)
        assert read(secure_broker, t + "contacts.dlq.v1") == []
        denied = [line for line in secure_broker.log_path.read_text(errors="replace").splitlines()
                  if "Principal = User:switchboard is Denied" in line]
        assert denied == [], "the broker denied the chart's user:\n" + "\n".join(denied[:10])
        for svc in svcs.values():
            assert svc.proc.poll() is None, f"{svc.name} exited:\n{svc.log()[-3000:]}"
            text = svc.log()
            for bad in ("AUTHORIZATION", "not authorized", "Authentication failed", "kafka_not_authorized"):
                assert bad not in text, f"{svc.name} logged {bad!r}:\n{text[-3000:]}"
        for svc in svcs.values():
            assert svc.terminate(timeout=30) == 0, svc.log()[-2000:]
    finally:
        stop_all(list(svcs.values()))


def _exits_with(svcs: list[ServiceProcess], event: str, within: float) -> dict[str, tuple[float, dict[str, Any]]]:
    """Each service exits 2 within `within` seconds and has logged `event`: what it logged, when."""
    started = time.monotonic()
    out: dict[str, tuple[float, dict[str, Any]]] = {}
    for svc in svcs:
        try:
            code = svc.proc.wait(max(1.0, within - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{svc.name} still running after {within:g} s:\n{svc.log()[-3000:]}") from None
        took = time.monotonic() - started
        assert code == 2, f"{svc.name} exited with {code}:\n{svc.log()[-3000:]}"
        logged = [e for e in log_events(svc) if e.get("event") == event]
        assert logged, f"{svc.name} did not log {event}:\n{svc.log()[-3000:]}"
        out[svc.name] = (took, logged[0])
        print(f"{svc.name}: exit 2 after {took:.1f} s: {logged[0]}")
    return out


def test_a_user_without_acls_is_told_it_is_not_authorized_and_exits(
        secure_broker: SecureBroker, prefix: str, tmp_path: Path) -> None:
    env = secure_broker.env("nobody", prefix)
    svcs = [start_service(name, env, tmp_path) for name in SERVICES]
    try:
        for name, (_, event) in _exits_with(svcs, "kafka_not_authorized", 60).items():
            assert event.get("resource", "").startswith("topic "), (name, event)
            assert prefix in event["resource"], (name, event)
    finally:
        stop_all(svcs)


def test_a_wrong_password_is_an_authentication_failure_and_exits(
        secure_broker: SecureBroker, prefix: str, tmp_path: Path) -> None:
    env = secure_broker.env("switchboard", prefix, password="not-" + PASSWORDS["switchboard"])
    grant(secure_broker, chart_acls("switchboard", prefix))
    svcs = [start_service(name, env, tmp_path) for name in SERVICES]
    try:
        _exits_with(svcs, "kafka_authentication_failed", 60)
    finally:
        stop_all(svcs)


def test_ingestion_without_write_on_its_output_names_the_topic_and_exits(
        secure_broker: SecureBroker, prefix: str, tmp_path: Path) -> None:
    grant(secure_broker, chart_acls("nowrite", prefix, without=("contacts.normalized.v1", AclOperation.WRITE)))
    svc = start_service("ingestion", secure_broker.env("nowrite", prefix), tmp_path)
    try:
        wait_ready([svc], timeout=90)
        p = Producer({**secure_broker.client("admin"), "acks": "all", "partitioner": "murmur2_random"})
        send(p, prefix + "contacts.inbound.v1", "cust-1", json.dumps(contact(
            "acme", "c-1", "cust-1", "arrived", queue="support", voice={"from_number": "+14155550123"})).encode(),
            "application/json")
        (_, event), = _exits_with([svc], "kafka_not_authorized", 60).values()
        assert event.get("resource") == f"topic {prefix}contacts.normalized.v1", event
        assert read(secure_broker, prefix + "contacts.normalized.v1") == []
    finally:
        stop_all([svc])
