"""`switchboard agents|queues`: routing's gRPC queries, plaintext or TLS/mTLS with a bearer token
(against a deployment: --ca-file, --cert-file/--key-file, --token or their env vars)."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.cli.base import DEFAULT_TENANT, err, table

DEFAULT_ROUTING_ADDR = "localhost:50051"
GRPC_DEADLINE = 5.0
AGENT_STATES = ("logged_out", "ready", "not_ready", "reserved", "busy", "wrap_up")


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
        err(str(exc))
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
    table(["AGENT", "STATE", "REASON", "SKILLS", "ACTIVE", "HANDLED"], rows)
    return 0


def cmd_queues(args: argparse.Namespace) -> int:
    from switchboard.v1 import routing_pb2

    request = routing_pb2.GetQueueStatsRequest(tenant_id=args.tenant, queue_id=args.queue or "")
    try:
        response = _grpc_call(args, "GetQueueStats", request)
    except GrpcFailure as exc:
        err(str(exc))
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
    table(["QUEUE", "WAITING", "OLDEST", "OFFERED", "ANSWERED", "ABANDONED", "SL", "ASA",
            "AGENTS(ready/busy)"], rows)
    return 0


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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
