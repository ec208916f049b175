"""The `switchboard` command: run a local stack, manage topics, publish events, query routing.

    switchboard run                      # broker + topics + the four services + demo traffic
    switchboard broker                   # just a local broker (prints the export line)
    switchboard broker --nodes 3         # a local three-node KRaft cluster (RF 3) instead
    switchboard topics create|list       # on KAFKA_BOOTSTRAP_SERVERS (+ SWITCHBOARD_TOPIC_PREFIX)
    switchboard publish events.jsonl     # JSON lines: contact events and agent events
    switchboard simulate                 # demo traffic against a running stack
    switchboard agents|queues            # routing's gRPC API
    switchboard erlang --calls 100 --interval 1800 --aht 180 --agents 14   # staffing figures

Exit codes: 0 ok, 1 an operation failed (broker, gRPC, undelivered events, bad lines), 2 a usage
or configuration error (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from services.common.codec import HeaderList
from services.common.config import KafkaSettings

DEFAULT_TENANT = "acme"
DEFAULT_ROUTING_ADDR = "localhost:50051"
GRPC_DEADLINE = 5.0
AGENT_STATES = ("logged_out", "ready", "not_ready", "reserved", "busy", "wrap_up")


class UsageError(Exception):
    """A problem the user can fix: printed as `error: <message>`, exit code 2."""


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def _kafka_settings() -> KafkaSettings:
    from services.common.config import ConfigError

    try:
        return KafkaSettings.from_env()
    except ConfigError as exc:
        hint = " (start a broker with `switchboard broker`)" if "KAFKA_BOOTSTRAP_SERVERS" in str(exc) else ""
        raise UsageError(f"{exc}{hint}") from None


def _admin(settings: KafkaSettings) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({**settings.client_config(), "log_level": 2})


def quiet_producer(settings: KafkaSettings, client_id: str) -> Any:
    """The services' idempotent, acks=all producer, without librdkafka's log lines on the terminal
    (a fresh broker's transient warnings, one connection error every 50 ms when it is down): the
    commands check reachability and delivery themselves and say what is wrong in one line."""
    from confluent_kafka import Producer

    from services.common.kafka import producer_config

    return Producer({**producer_config(settings, client_id), "log_level": 2})


def kafka_error_text(exc: BaseException) -> str:
    """`Local: Broker transport failure` rather than `KafkaError{code=_TRANSPORT,val=-195,...}`."""
    from confluent_kafka import KafkaError

    if exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc)


def _list_topics(admin: Any, settings: KafkaSettings) -> Any:
    try:
        return admin.list_topics(timeout=10)
    except Exception as exc:
        raise UsageError(f"cannot reach the broker at {settings.bootstrap_servers} "
                         f"({kafka_error_text(exc)})") from None


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


# ---------------------------------------------------------------------------------------------
# broker
# ---------------------------------------------------------------------------------------------


def cmd_broker(args: argparse.Namespace) -> int:
    from confluent_kafka.admin import AdminClient

    from services.common.broker import ensure_broker
    from services.common.topics import provision
    from services.supervisor import StopSignals, topic_partitions

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
                _err(f"the broker exited with code {handle.process.returncode}"
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

    from services.common.broker import start_local_cluster
    from services.common.topics import provision
    from services.supervisor import topic_partitions

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        _err("--nodes starts a local cluster: unset KAFKA_BOOTSTRAP_SERVERS")
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
                    _err(f"node {node.node_id} exited with code {node.process.returncode} "
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


# ---------------------------------------------------------------------------------------------
# topics
# ---------------------------------------------------------------------------------------------


def _replication_factor(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError("must be -1 (broker default) or at least 1")
    return value


def cmd_topics_create(args: argparse.Namespace) -> int:
    from services.common.topics import ALL_TOPICS, provision
    from services.supervisor import topic_partitions

    settings = _kafka_settings()
    partitions = args.partitions or topic_partitions(local=False)
    admin = _admin(settings)
    _list_topics(admin, settings)
    try:
        created = provision(admin, prefix=settings.topic_prefix, partitions=partitions,
                            replication_factor=args.replication_factor)
    except Exception as exc:
        _err(f"creating topics failed: {exc}")
        return 1
    for name in created:
        print(f"created {name}")
    if not created:
        print(f"all {len(ALL_TOPICS)} declared topics already exist")
        return 0
    each = f"{partitions} partitions each" if partitions else "declared partition counts"
    print(f"{len(created)} created ({each}), {len(ALL_TOPICS) - len(created)} already existed")
    return 0


def cmd_topics_list(args: argparse.Namespace) -> int:
    from confluent_kafka.admin import ConfigResource, ResourceType

    from services.common.topics import ALL_TOPICS

    settings = _kafka_settings()
    admin = _admin(settings)
    md = _list_topics(admin, settings)
    names = [settings.topic(t.name) for t in ALL_TOPICS]
    present = [n for n in names if n in md.topics]
    policies: dict[str, str] = {}
    if present:
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in present])
        for resource, future in futures.items():
            try:
                entry = future.result(timeout=10).get("cleanup.policy")
                policies[resource.name] = entry.value if entry is not None else "?"
            except Exception:
                policies[resource.name] = "?"
    rows = []
    missing = 0
    for topic, name in zip(ALL_TOPICS, names, strict=True):
        declared = "yes" if topic.compacted else "no"
        if name not in md.topics:
            missing += 1
            rows.append([name, "-", declared, "MISSING"])
            continue
        policy = policies.get(name, "?")
        compacted = "?" if policy == "?" else ("yes" if "compact" in policy else "no")
        status = "ok" if compacted in ("?", declared) else f"declared compacted={declared}"
        rows.append([name, str(len(md.topics[name].partitions)), compacted, status])
    _table(["TOPIC", "PARTITIONS", "COMPACTED", "STATUS"], rows)
    if missing:
        print(f"{missing} declared topic(s) missing: run `switchboard topics create`")
    return 0


# ---------------------------------------------------------------------------------------------
# publish
# ---------------------------------------------------------------------------------------------


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
    from services.common.agent_json import agent_event_from_json
    from services.common.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF
    from services.common.kafka import Output, produce_all

    if args.file == "-":
        stream: TextIO = sys.stdin
    else:
        try:
            stream = open(args.file, encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    settings = _kafka_settings()
    contacts_topic = settings.topic(topics.CONTACTS_INBOUND.name)
    agents_topic = settings.topic(topics.AGENTS_EVENTS.name)
    md = _list_topics(_admin(settings), settings)
    missing = [t for t in (contacts_topic, agents_topic) if t not in md.topics]
    if missing:
        raise UsageError(f"topic(s) {', '.join(missing)} do not exist: run `switchboard topics create`")

    producer = quiet_producer(settings, "switchboard-cli")
    json_headers: HeaderList = [("content-type", CONTENT_TYPE_JSON.encode())]
    pb_headers: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err.str()}")

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
        _err(f"{left + len(failures)} event(s) not delivered"
             + (f", e.g. {failures[0]}" if failures else " within 30 s"))
        return 1
    print(f"published {contacts} contact events, {agents} agent events"
          + (f"; {bad} bad line(s) skipped" if bad else ""))
    return 1 if bad else 0


def cmd_erase(args: argparse.Namespace) -> int:
    """A customer's erasure request: the profile tombstone and the CustomerErasure event."""
    import time

    from services.common import topics
    from services.common.codec import CONTENT_TYPE_PROTOBUF, new_envelope
    from services.common.erasure import customer_hash
    from switchboard.v1 import contact_pb2

    if not args.tenant.strip() or not args.customer.strip():
        raise UsageError("--tenant and --customer must not be empty")
    settings = _kafka_settings()
    profiles = settings.topic(topics.CUSTOMERS_PROFILES.name)
    erasures = settings.topic(topics.CUSTOMERS_ERASURES.name)
    md = _list_topics(_admin(settings), settings)
    missing = [t for t in (profiles, erasures) if t not in md.topics]
    if missing:
        raise UsageError(f"topic(s) {', '.join(missing)} do not exist: run `switchboard topics create`")
    request_id = args.request_id or str(uuid.uuid4())
    erasure = contact_pb2.CustomerErasure(envelope=new_envelope(args.tenant, time.time(), "switchboard-cli",
                                                                event_id=request_id),
                                          customer_id=args.customer, reason=args.reason)
    producer = quiet_producer(settings, "switchboard-cli")
    failures: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err.str()}")

    producer.produce(profiles, key=args.customer.encode(), value=None, on_delivery=on_delivery)
    producer.produce(erasures, key=args.tenant.encode(), value=erasure.SerializeToString(),
                     headers=[("content-type", CONTENT_TYPE_PROTOBUF.encode())], on_delivery=on_delivery)
    left = producer.flush(30)
    if left or failures:
        _err(f"erasure request not delivered: {failures[0] if failures else 'timed out after 30 s'}")
        return 1
    print(f"erasure requested: request_id={request_id} customer_hash={customer_hash(args.customer)} "
          f"(confirm with switchboard_erasures_total{{service}} and the services' customer_erased log lines)")
    return 0


# ---------------------------------------------------------------------------------------------
# agents / queues (gRPC)
# ---------------------------------------------------------------------------------------------


class GrpcFailure(Exception):
    pass


def _channel(args: argparse.Namespace) -> Any:
    """Plaintext, or TLS when a CA file is given (mTLS with a client certificate and key)."""
    import grpc

    if not args.ca_file:
        if args.cert_file or args.key_file:
            raise GrpcFailure("CONFIG: --cert-file/--key-file need --ca-file (TLS)")
        return grpc.insecure_channel(args.target)
    if bool(args.cert_file) != bool(args.key_file):
        raise GrpcFailure("CONFIG: give both --cert-file and --key-file for mTLS, or neither")
    try:
        creds = grpc.ssl_channel_credentials(
            root_certificates=Path(args.ca_file).read_bytes(),
            private_key=Path(args.key_file).read_bytes() if args.key_file else None,
            certificate_chain=Path(args.cert_file).read_bytes() if args.cert_file else None)
    except OSError as exc:
        raise GrpcFailure(f"CONFIG: cannot read {exc.filename}: {exc.strerror}") from None
    return grpc.secure_channel(args.target, creds)


def _grpc_call(args: argparse.Namespace, method: str, request: Any) -> Any:
    """One unary call to routing with a deadline; GrpcFailure("<CODE>: <details>") on error."""
    import grpc

    from switchboard.v1 import routing_pb2_grpc

    target = args.target
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None
    try:
        with _channel(args) as channel:
            stub = routing_pb2_grpc.RoutingServiceStub(channel)
            return getattr(stub, method)(request, timeout=GRPC_DEADLINE, metadata=metadata)
    except grpc.RpcError as exc:
        code = exc.code().name if exc.code() is not None else "UNKNOWN"
        details = exc.details() or ""
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            details = f"routing at {target} is not reachable ({details})"
        elif exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            details = f"no answer from routing at {target} within {GRPC_DEADLINE:g} s"
        elif exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            details += " (give --token or $SWITCHBOARD_GRPC_TOKEN)"
        raise GrpcFailure(f"{code}: {details}") from None


def _print_json(messages: Sequence[Any]) -> None:
    from google.protobuf.json_format import MessageToDict

    print(json.dumps([MessageToDict(m, preserving_proto_field_name=True) for m in messages], indent=2))


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    """a-2 before a-10."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]


def cmd_agents(args: argparse.Namespace) -> int:
    from switchboard.v1 import agent_pb2, routing_pb2

    state = agent_pb2.AGENT_STATE_UNSPECIFIED
    if args.state:
        state = agent_pb2.AgentState.Value(f"AGENT_STATE_{args.state.upper()}")
    request = routing_pb2.ListAgentsRequest(tenant_id=args.tenant, state=state, skill=args.skill or "",
                                            queue_id=args.queue or "")
    try:
        response = _grpc_call(args, "ListAgents", request)
    except GrpcFailure as exc:
        _err(str(exc))
        return 1
    agents = list(response.agents)
    if args.json:
        _print_json(agents)
        return 0
    if not agents:
        print(f"no agents in tenant {args.tenant!r}" + (" matching the filters" if (
            args.state or args.skill or args.queue) else ""))
        return 0
    rows = []
    for a in sorted(agents, key=lambda a: _natural_key(a.agent_id)):
        state_name = agent_pb2.AgentState.Name(a.state).removeprefix("AGENT_STATE_").lower()
        rows.append([a.agent_id, state_name, a.reason or "-",
                     ",".join(f"{s.name}:{s.level}" for s in a.skills) or "-",
                     str(len(a.active_contacts)), str(a.handled)])
    _table(["AGENT", "STATE", "REASON", "SKILLS", "ACTIVE", "HANDLED"], rows)
    return 0


def cmd_queues(args: argparse.Namespace) -> int:
    from switchboard.v1 import routing_pb2

    request = routing_pb2.GetQueueStatsRequest(tenant_id=args.tenant, queue_id=args.queue or "")
    try:
        response = _grpc_call(args, "GetQueueStats", request)
    except GrpcFailure as exc:
        _err(str(exc))
        return 1
    queues = list(response.queues)
    if args.json:
        _print_json(queues)
        return 0
    if not queues:
        print(f"no queues in tenant {args.tenant!r}")
        return 0
    rows = []
    for q in queues:
        sl = f"{q.service_level * 100:.1f}%" if q.HasField("service_level") else "-"
        asa = f"{q.asa_seconds:.1f}s" if q.HasField("asa_seconds") else "-"
        agents = f"{q.agents_by_state.get('ready', 0)}/{q.agents_by_state.get('busy', 0)}"
        rows.append([q.queue_id, str(q.waiting), f"{q.oldest_wait_seconds:.0f}s", str(q.offered),
                     str(q.answered), str(q.abandoned), sl, asa, agents])
    _table(["QUEUE", "WAITING", "OLDEST", "OFFERED", "ANSWERED", "ABANDONED", "SL", "ASA",
            "AGENTS(ready/busy)"], rows)
    return 0


# ---------------------------------------------------------------------------------------------
# erlang
# ---------------------------------------------------------------------------------------------


def _figures_dict(figures: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {key: value for key, value in asdict(figures).items() if key != "arrival_rate"}


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def cmd_erlang(args: argparse.Namespace) -> int:
    from services.routing import erlang

    rate = erlang.arrival_rate(args.calls, args.interval)
    if rate <= 0:
        raise UsageError("--calls must be > 0 (no traffic, nothing to compute)")
    traffic = erlang.traffic_erlangs(rate, args.aht)
    if args.agents is not None and args.agents > erlang.MAX_AGENTS:
        raise UsageError(f"--agents must be at most {erlang.MAX_AGENTS}")
    try:
        agents = args.agents
        if agents is None:
            agents = erlang.agents_for_service_level(rate, args.aht, args.threshold, args.target_sl, args.patience)
        c_figures = erlang.erlang_c_figures(rate, args.aht, agents, args.threshold) if agents > traffic else None
        a_figures = (erlang.erlang_a_figures(rate, args.aht, agents, args.threshold, args.patience)
                     if args.patience is not None else None)
    except ValueError as exc:  # out-of-range combinations (e.g. a target needing absurd staffing)
        raise UsageError(str(exc)) from None
    if c_figures is None and a_figures is None:
        needed = erlang.agents_for_service_level(rate, args.aht, args.threshold, 0.8)
        raise UsageError(
            f"unstable: {agents} agent(s) for {traffic:.4g} erlangs of offered traffic; Erlang C needs more "
            f"agents than erlangs (80% within {args.threshold:g} s needs {needed}), or give --patience SECONDS "
            "for Erlang A, where callers abandon")
    model = "erlang_a" if a_figures is not None else "erlang_c"
    main_figures = a_figures if a_figures is not None else c_figures
    result: dict[str, Any] = {
        "model": model, "calls": args.calls, "interval_seconds": args.interval,
        "arrival_rate_per_second": rate, **_figures_dict(main_figures),
    }
    if args.target_sl is not None:
        result["target_service_level"] = args.target_sl
        result["agents_needed"] = agents
    if a_figures is not None:
        result["erlang_c"] = _figures_dict(c_figures) if c_figures is not None else None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    what = f"{args.calls:g} contacts in {args.interval:g} s, AHT {args.aht:g} s, threshold {args.threshold:g} s"
    if args.target_sl is not None:
        print(f"{what}: {agents} agent(s) needed for a service level of {_percent(args.target_sl)}"
              f" ({'Erlang A, patience ' + format(args.patience, 'g') + ' s' if a_figures else 'Erlang C'})")
    else:
        print(f"{what}, {agents} agent(s)")
    headers = ["FIGURE", "ERLANG C"]
    if a_figures is not None:
        headers.append(f"ERLANG A (patience {args.patience:g} s)")
    unstable = "unstable (N <= A)"
    rows = [
        ["traffic", f"{traffic:.3f} erlangs"],
        ["occupancy", _percent(c_figures.occupancy) if c_figures else unstable],
        ["probability of waiting", _percent(c_figures.probability_wait) if c_figures else "-"],
        ["ASA", f"{c_figures.asa_seconds:.2f} s" if c_figures else "-"],
        [f"service level ({args.threshold:g} s)", _percent(c_figures.service_level) if c_figures else "-"],
    ]
    if a_figures is not None:
        rows[0].append(rows[0][1])
        rows[1].append(_percent(a_figures.occupancy))
        rows[2].append(_percent(a_figures.probability_wait))
        rows[3].append(f"{a_figures.asa_seconds:.2f} s")
        rows[4].append(_percent(a_figures.service_level))
        rows.append(["probability of abandoning", "0.00%", _percent(a_figures.probability_abandon)])
        rows.append(["mean wait (all contacts)", f"{c_figures.asa_seconds:.2f} s" if c_figures else "-",
                     f"{a_figures.mean_wait_seconds:.2f} s"])
    _table(headers, rows)
    return 0


# ---------------------------------------------------------------------------------------------
# simulate / run
# ---------------------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    from services import simulate

    return simulate.main(args)


def cmd_run(args: argparse.Namespace) -> int:
    from services import supervisor

    return supervisor.main(args)


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _number(minimum: float, *, inclusive: bool) -> Any:
    """argparse type: a finite number >= (or >) minimum."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < minimum or (not inclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} must be {'>=' if inclusive else '>'} {minimum:g}")
        return value

    return parse


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a share between 0 and 1, e.g. 0.8 for 80%")
    return value


def _routing_target(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("SWITCHBOARD_ROUTING_ADDR", "").strip() or DEFAULT_ROUTING_ADDR
    parser.add_argument("--target", default=default, metavar="HOST:PORT",
                        help="routing's gRPC address (default: $SWITCHBOARD_ROUTING_ADDR or %(default)s)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant id (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    env = os.environ.get
    parser.add_argument("--token", default=env("SWITCHBOARD_GRPC_TOKEN", ""), metavar="TOKEN",
                        help="the tenant's bearer token (default: $SWITCHBOARD_GRPC_TOKEN)")
    parser.add_argument("--ca-file", default=env("SWITCHBOARD_GRPC_CA_FILE", ""), metavar="PEM",
                        help="TLS: the CA that signed routing's certificate (default: $SWITCHBOARD_GRPC_CA_FILE; "
                             "none = plaintext)")
    parser.add_argument("--cert-file", default=env("SWITCHBOARD_GRPC_CLIENT_CERT_FILE", ""), metavar="PEM",
                        help="mTLS client certificate (default: $SWITCHBOARD_GRPC_CLIENT_CERT_FILE)")
    parser.add_argument("--key-file", default=env("SWITCHBOARD_GRPC_CLIENT_KEY_FILE", ""), metavar="PEM",
                        help="mTLS client key (default: $SWITCHBOARD_GRPC_CLIENT_KEY_FILE)")


def build_parser() -> argparse.ArgumentParser:
    from services import simulate

    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Switchboard: run a local contact center, manage its topics, publish events, "
                    "ask routing about agents and queues.",
        epilog="Kafka settings come from the environment: KAFKA_BOOTSTRAP_SERVERS, SWITCHBOARD_TOPIC_PREFIX, "
               "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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

    p = sub.add_parser("topics", help="create or list the declared topics on KAFKA_BOOTSTRAP_SERVERS")
    tsub = p.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    tc = tsub.add_parser("create", help="create every declared topic that does not exist")
    tc.add_argument("--partitions", type=_positive_int,
                    help="one partition count for every topic (default: $SWITCHBOARD_TOPIC_PARTITIONS or "
                         "the declared counts)")
    tc.add_argument("--replication-factor", type=_replication_factor, default=1, metavar="N",
                    help="replicas per partition (default 1; 3 on a production cluster; -1 = the broker's "
                         "default.replication.factor). min.insync.replicas becomes 2 from 3 replicas on")
    tc.set_defaults(func=cmd_topics_create)
    tl = tsub.add_parser("list", help="the declared topics: partitions, compaction, missing ones")
    tl.set_defaults(func=cmd_topics_list)

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

    p = sub.add_parser(
        "erase", help="request a customer's erasure (right to be forgotten) from every service",
        description="Publishes a tombstone for the customer on customers.profiles.v1 and a CustomerErasure on "
                    "customers.erasures.v1. Enrichment, routing and survey remove the customer from their state "
                    "and tombstone their state records; each counts it in switchboard_erasures_total{service}.")
    p.add_argument("--tenant", required=True, help="the customer's tenant_id")
    p.add_argument("--customer", required=True, help="the customer_id to erase")
    p.add_argument("--reason", default="", help="free text kept in the request (never logged)")
    p.add_argument("--request-id", default="", help="idempotency key of the request (default: a new UUID)")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("simulate", help="demo traffic (agents and Poisson contacts) against a running stack",
                       description="Log agents in and send contacts over voice, chat, email and SMS; answer, "
                                   "end and abandon them as routing assigns them. Needs the services running "
                                   "(see `switchboard run`).")
    simulate.add_arguments(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("agents", help="agents of a tenant with state and skills (routing gRPC ListAgents)")
    _routing_target(p)
    p.add_argument("--state", choices=AGENT_STATES, help="only agents in this state")
    p.add_argument("--skill", help="only agents with this skill")
    p.add_argument("--queue", help="only agents serving this queue")
    p.set_defaults(func=cmd_agents)

    p = sub.add_parser("queues", help="queue statistics of a tenant (routing gRPC GetQueueStats)")
    _routing_target(p)
    p.add_argument("--queue", help="only this queue")
    p.set_defaults(func=cmd_queues)

    p = sub.add_parser(
        "erlang", help="staffing figures: Erlang C (and Erlang A with --patience), or the agents needed",
        description="Offered traffic, occupancy, probability of waiting, ASA and service level for a number of "
                    "agents (Erlang C; with --patience also Erlang A, where callers abandon after an "
                    "exponentially distributed patience), or with --target-sl the fewest agents that reach "
                    "that service level. Example: switchboard erlang --calls 100 --interval 1800 --aht 180 "
                    "--agents 14 --threshold 20")
    positive = _number(0, inclusive=False)
    p.add_argument("--calls", type=_number(0, inclusive=True), required=True, metavar="C",
                   help="contacts offered in the interval")
    p.add_argument("--interval", type=positive, required=True, metavar="SECONDS", help="length of the interval")
    p.add_argument("--aht", type=positive, required=True, metavar="SECONDS", help="average handle time")
    p.add_argument("--threshold", type=_number(0, inclusive=True), default=20.0, metavar="SECONDS",
                   help="service-level threshold (default: %(default)g)")
    p.add_argument("--patience", type=positive, metavar="SECONDS",
                   help="mean patience of waiting callers: adds the Erlang A figures (abandonment)")
    staffing = p.add_mutually_exclusive_group(required=True)
    staffing.add_argument("--agents", type=_positive_int, metavar="N", help="agents handling the traffic")
    staffing.add_argument("--target-sl", type=_share, metavar="SHARE",
                          help="instead of --agents: print the fewest agents reaching this service level (0.8)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_erlang)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    from services.common.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
    except (UsageError, ConfigError) as exc:
        _err(str(exc))
        code = 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # e.g. `switchboard agents | head`
        code = 0
    sys.stdout.flush()
    raise SystemExit(code)

if __name__ == "__main__":
    main()
