"""The one gRPC bootstrap (services/common/grpc_server.py) with a real server and a real client:
health follows readiness both ways, periodic jobs run, SIGTERM (the stop event) ends it with the
loop stopped, and a failing loop ends it with its error."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import grpc_server
from services.common.grpc_security import GrpcSecurity
from services.common.logging import JsonLogger
from switchboard_dev.broker import free_port
from tests.helpers import wait_until

SERVICE = "switchboard.v1.TestService"


def _status(port: int, service: str = "") -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def _start(run_loop: Any, ready: Any, periodic: Any = ()) -> tuple[Any, int, threading.Thread, list[Any]]:
    rt = SimpleNamespace(stop=threading.Event(), log=JsonLogger("test", "WARNING"))
    port = free_port()
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(grpc_server.serve(
        rt, run_loop, lambda server: None, SERVICE, port, GrpcSecurity(insecure=True), ready=ready,
        periodic=periodic, grace=1.0)), daemon=True)
    thread.start()
    return rt, port, thread, result


def test_health_follows_readiness_and_a_stop_ends_the_loop_and_the_server() -> None:
    ready = threading.Event()
    loop_saw_stop = threading.Event()
    jobs: list[float] = []

    def run_loop(stop: threading.Event) -> None:
        stop.wait()
        loop_saw_stop.set()

    rt, port, thread, result = _start(run_loop, ready.is_set, periodic=[(lambda: not jobs, lambda: jobs.append(1))])
    assert wait_until(lambda: _status(port) == health_pb2.HealthCheckResponse.NOT_SERVING, "server up, not ready")
    assert _status(port, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    ready.set()
    wait_until(lambda: _status(port) == health_pb2.HealthCheckResponse.SERVING, "SERVING once ready")
    assert _status(port, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    ready.clear()  # e.g. partitions lost: the health service says so again
    wait_until(lambda: _status(port, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING, "NOT_SERVING again")
    assert jobs == [1]  # the periodic job ran once it was due, and not again
    rt.stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and result == [None]
    assert loop_saw_stop.is_set()
    try:
        _status(port)
    except grpc.RpcError as exc:
        assert exc.code() is grpc.StatusCode.UNAVAILABLE
    else:
        raise AssertionError("the server still answers after the stop")


def test_a_failing_loop_ends_the_service_with_its_error() -> None:
    def run_loop(stop: threading.Event) -> None:
        time.sleep(0.5)
        raise RuntimeError("broker gone for good")

    rt, port, thread, result = _start(run_loop, lambda: True)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(result[0], RuntimeError) and str(result[0]) == "broker gone for good"
    assert rt.stop.is_set()
