"""The developer subcommands of `switchboard`: a local stack (`run`), a local broker (`broker`), demo
traffic (`simulate`) and events from JSON lines (`publish`). Registered through the entry point
group "switchboard.commands" (pyproject.toml), so services/cli never imports this package; the
image has neither (deploy/Dockerfile).

    switchboard run                      # broker + topics + the four services + demo traffic
    switchboard broker                   # just a local broker (prints the export line)
    switchboard broker --nodes 3         # a local three-node KRaft cluster (RF 3) instead
    switchboard publish events.jsonl     # JSON lines: contact events and agent events
    switchboard simulate                 # demo traffic against a running stack
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from services.cli.base import UsageError, err, kafka_settings, quiet_producer, require_topics
from services.cli.topics import topic_partitions
from services.common.codec import HeaderList
from switchboard_dev import simulate


def cmd_broker(args: argparse.Namespace) -> int:
    from confluent_kafka.admin import AdminClient

    from services.common.topics import provision
    from switchboard_dev.broker import ensure_broker
    from switchboard_dev.supervisor import StopSignals

    partitions = topic_partitions(local=True)  # check SWITCHBOARD_TOPIC_PARTITIONS before starting
    prefix = os.environ.get("SWITCHBOARD_TOPIC_PREFIX", "").strip()

    def say(line: str) -> None:
        print(line, flush=True)

    signals = StopSignals(say).install()
    if args.nodes > 1:
        return _cluster(args, signals, prefix, say)
    signals.critical = True
    try:
        handle = ensure_broker(log=say, data_dir=Path(args.data_dir).resolve() if args.data_dir else None)
    finally:
        signals.critical = False
    try:
        if signals.stopped:
            return 130
        partitions = topic_partitions(local=handle.kind != "external")
        admin = AdminClient({"bootstrap.servers": handle.bootstrap, "log_level": 2})
        created = provision(admin, prefix=prefix, partitions=partitions)
        each = f"{partitions} partitions each" if partitions else "declared partition counts"
        say(f"topics: {len(created)} created ({each}{', prefix ' + repr(prefix) if prefix else ''})")
        if handle.kind == "external":
            say("KAFKA_BOOTSTRAP_SERVERS is set: nothing to start (unset it to start a local broker)")
            return 0
        say("")
        say(f"export KAFKA_BOOTSTRAP_SERVERS={handle.bootstrap}")
        if not handle.supports_transactions:
            say("export SWITCHBOARD_EXACTLY_ONCE=false   # this broker has no working transactions")
        say("")
        say("the broker runs until Ctrl-C")
        while not signals.event.wait(0.5):
            if handle.process is not None and handle.process.poll() is not None:
                err(f"the broker exited with code {handle.process.returncode}"
                     + (f" (log: {handle.log_path})" if handle.log_path else ""))
                return 1
        return 0
    finally:
        if handle.kind != "external":
            say(f"stopping the broker ({handle.kind}) ...")
            handle.cleanup()
            say("stopped.")


def _cluster(args: argparse.Namespace, signals: Any, prefix: str, say: Callable[[str], None]) -> int:
    """`switchboard broker --nodes N`: a local KRaft cluster of N nodes as production runs it
    (replication factor 3, min.insync.replicas 2), for trying broker rolls by hand."""
    from confluent_kafka.admin import AdminClient

    from services.common.topics import provision
    from switchboard_dev.broker import start_local_cluster

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        err("--nodes starts a local cluster: unset KAFKA_BOOTSTRAP_SERVERS")
        return 2
    signals.critical = True
    try:
        cluster = start_local_cluster(args.nodes, root=Path(args.data_dir).resolve() if args.data_dir else None,
                                      log=say)
    finally:
        signals.critical = False
    try:
        say(f"broker: started {cluster.describe()}")
        partitions = topic_partitions(local=True)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 2})
        created = provision(admin, prefix=prefix, partitions=partitions, replication_factor=min(3, args.nodes))
        say(f"topics: {len(created)} created (replication factor {min(3, args.nodes)})")
        say("")
        say(f"export KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap}")
        say("")
        say("the cluster runs until Ctrl-C; node data and logs: " + str(cluster.root))
        while not signals.event.wait(0.5):
            for node in cluster.nodes:
                if node.process is not None and node.process.poll() is not None:
                    err(f"node {node.node_id} exited with code {node.process.returncode} "
                         f"(log: {node.data_dir / 'kafka.log'})")
                    return 1
        return 0
    finally:
        say("stopping the cluster ...")
        if args.data_dir:
            cluster.stop()
        else:
            cluster.cleanup()
        say("stopped.")



def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _prepare_contact(obj: dict[str, Any], tenant: str | None) -> tuple[str, bytes]:
    """Fills in what may be missing; returns (key, value). ValueError on a line that cannot be sent."""
    if tenant and not obj.get("tenant_id"):
        obj["tenant_id"] = tenant
    if not obj.get("tenant_id"):
        raise ValueError("tenant_id is missing (add it or pass --tenant)")
    key = obj.get("customer_id") or obj.get("contact_id")
    if not isinstance(key, str) or not key:
        raise ValueError("a contact event needs customer_id (or contact_id) as its key")
    obj.setdefault("event_id", str(uuid.uuid4()))
    obj.setdefault("occurred_at", _now_rfc3339())
    return key, json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def cmd_publish(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaError, Message

    from services.common import topics
    from services.common.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF
    from services.common.kafka import Output, produce_all
    from switchboard_dev.agent_json import agent_event_from_json

    if args.file == "-":
        stream: TextIO = sys.stdin
    else:
        try:
            stream = open(args.file, encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    settings = kafka_settings()
    contacts_topic = settings.topic(topics.CONTACTS_INBOUND.name)
    agents_topic = settings.topic(topics.AGENTS_EVENTS.name)
    require_topics(settings, contacts_topic, agents_topic)

    producer = quiet_producer(settings, "switchboard-cli")
    json_headers: HeaderList = [("content-type", CONTENT_TYPE_JSON.encode())]
    pb_headers: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
    failures: list[str] = []

    def on_delivery(error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            failures.append(f"{msg.topic()}: {error.str()}")

    contacts = agents = bad = 0
    try:
        for number, line in enumerate(stream, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(obj, dict):
                    raise ValueError("a line must be a JSON object")
                if "agent_event" in obj:
                    if args.tenant and not obj.get("tenant_id"):
                        obj["tenant_id"] = args.tenant
                    ev = agent_event_from_json(obj)
                    key_bytes = ev.envelope.tenant_id.encode()
                    out = Output(agents_topic, key_bytes, ev.SerializeToString(), pb_headers)
                    agents += 1
                else:
                    key, value = _prepare_contact(obj, args.tenant)
                    out = Output(contacts_topic, key.encode(), value, json_headers)
                    contacts += 1
            except ValueError as exc:
                bad += 1
                print(f"line {number}: {exc}", file=sys.stderr)
                continue
            produce_all(producer, [out], on_delivery)
    except UnicodeDecodeError:
        raise UsageError(f"{args.file} is not UTF-8 text") from None
    finally:
        if stream is not sys.stdin:
            stream.close()
        left = producer.flush(30)
    if left or failures:
        err(f"{left + len(failures)} event(s) not delivered"
            + (f", e.g. {failures[0]}" if failures else " within 30 s"))
        return 1
    print(f"published {contacts} contact events, {agents} agent events"
          + (f"; {bad} bad line(s) skipped" if bad else ""))
    return 1 if bad else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    return simulate.main(args)


def cmd_run(args: argparse.Namespace) -> int:
    from switchboard_dev import supervisor

    return supervisor.main(args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds run, broker, publish and simulate to the `switchboard` parser (services/cli)."""
    p = sub.add_parser(
        "run", help="start a broker, the topics, the four services and demo traffic (make run)",
        description="Start a broker (KAFKA_BOOTSTRAP_SERVERS, testcontainers, local Apache Kafka or tansu), "
                    "create the topics, load demo customer profiles, start ingestion, enrichment, routing "
                    "and survey (logs in .run/logs/) and run the simulator until Ctrl-C, then stop "
                    "everything.")
    simulate.add_arguments(p)
    p.add_argument("--no-simulate", action="store_true", help="start everything but send no demo traffic")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("broker", help="start a local Kafka broker with the topics until Ctrl-C",
                       description="Find or start a broker in the documented order, create the topics and "
                                   "print the KAFKA_BOOTSTRAP_SERVERS to export; Ctrl-C stops it.")
    p.add_argument("--data-dir", metavar="DIR",
                   help="keep the local broker's data here (reused on the next start; default: a temp dir)")
    p.add_argument("--nodes", type=int, default=1, choices=range(1, 6), metavar="N",
                   help="start a local Apache Kafka cluster of N KRaft nodes instead (3: replication factor 3, "
                        "min.insync.replicas 2, as in production)")
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser(
        "publish", help="publish contact and agent events from a JSON-lines file",
        description="Each line is a JSON object. A line with \"agent_event\" is an agent event (sent as "
                    "protobuf to agents.events.v1); any other line is a contact event (sent as JSON to "
                    "contacts.inbound.v1, keyed by customer_id). Missing event_id and occurred_at are filled "
                    "in. Blank lines and lines starting with # are skipped. A bad line is reported with its "
                    "number and skipped; the exit code is then 1.")
    p.add_argument("file", metavar="FILE", help="JSON-lines file, or - for stdin")
    p.add_argument("--tenant", help="tenant_id for lines that have none")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("simulate", help="demo traffic (agents and Poisson contacts) against a running stack",
                       description="Log agents in and send contacts over voice, chat, email and SMS; answer, "
                                   "end and abandon them as routing assigns them. Needs the services running "
                                   "(see `switchboard run`).")
    simulate.add_arguments(p)
    p.set_defaults(func=cmd_simulate)
