"""`switchboard check`: are the services up? Each service's HTTP `/readyz` and the standard gRPC
health service of the gRPC ones, one line per target, exit 0 only when every one answers ready.

    switchboard check --ready http://sb-switchboard-enrichment:9102 \\
        --grpc sb-switchboard-routing:50051 --ca /etc/switchboard/grpc-tls/ca.crt

The chart's `helm test` runs it against every enabled service. gRPC health needs no token (it is
what probes call); with `--ca` the channel is TLS and the server's certificate must chain to it and
name the host (or `--server-name`).
"""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from services.cli.base import UsageError, number


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="check the services' readiness (HTTP /readyz, gRPC health)",
                       description="Ask each service whether it is ready: HTTP /readyz (--ready URL) and the "
                                   "standard grpc.health.v1 service (--grpc HOST:PORT). Exit 0 when all are "
                                   "ready, 1 when one is not or cannot be reached.")
    p.add_argument("--ready", action="append", default=[], metavar="URL",
                   help="a service's HTTP base URL (http://host:port); /readyz is asked")
    p.add_argument("--grpc", action="append", default=[], metavar="HOST:PORT", help="a gRPC service's address")
    p.add_argument("--ca", type=Path, help="PEM CA the gRPC servers' certificates chain to (TLS); none: plaintext")
    p.add_argument("--server-name", default="", help="the name to expect in the servers' certificates "
                                                      "(default: each address's host)")
    p.add_argument("--timeout", type=number(0, inclusive=False), default=5.0, help="seconds per target (5)")
    p.set_defaults(func=run)


def ready(url: str, timeout: float) -> tuple[bool, str]:
    target = url.rstrip("/") + "/readyz"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:  # noqa: S310 (an operator's URL)
            return True, resp.read().decode(errors="replace").strip() or "ready"
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code}: {exc.read().decode(errors='replace').strip()}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"unreachable ({reason})"


def grpc_health(address: str, ca: bytes | None, server_name: str, timeout: float) -> tuple[bool, str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    options = [("grpc.ssl_target_name_override", server_name)] if (ca is not None and server_name) else []
    channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca), options=options)
               if ca is not None else grpc.insecure_channel(address))
    with channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    return resp.status == health_pb2.HealthCheckResponse.SERVING, status


def run(args: argparse.Namespace) -> int:
    if not args.ready and not args.grpc:
        raise UsageError("nothing to check: give --ready URL and/or --grpc HOST:PORT")
    for url in args.ready:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--ready {url!r}: expected http://host:port")
    for address in args.grpc:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"--grpc {address!r}: expected HOST:PORT")
    ca = None
    if args.ca is not None:
        try:
            ca = args.ca.read_bytes()
        except OSError as exc:
            raise UsageError(f"--ca {args.ca}: cannot read it ({exc.strerror})") from None
        if b"-----BEGIN CERTIFICATE-----" not in ca:
            raise UsageError(f"--ca {args.ca}: not a PEM certificate")
    failed = 0
    results = [("http", url, *ready(url, args.timeout)) for url in args.ready]
    results += [("grpc", a, *grpc_health(a, ca, args.server_name, args.timeout)) for a in args.grpc]
    for kind, target, ok, detail in results:
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {kind:4}  {target}  {detail}", flush=True)
    return 1 if failed else 0
