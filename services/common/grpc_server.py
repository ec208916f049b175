"""The one gRPC bootstrap of the services with an API (routing, ingestion, survey): the server with
its security, the health service, reflection, the Kafka loop on a thread beside it, periodic jobs
(config reloads) and the order of a graceful stop.

Health follows readiness both ways (NOT_SERVING until the service is ready, and again whenever it
stops being ready). On SIGTERM: health goes NOT_SERVING first (load balancers stop sending), then
the server finishes the RPCs in flight (up to `grace` seconds) while the loop commits or gives up
its open transaction, side by side; the caller then flushes its producers and stops its readers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.grpc_security import GrpcSecurity
from services.common.runtime import Runtime, freeze_startup_objects

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING

Register = Callable[[grpc.aio.Server], None]  # adds the service's servicer to the server


def build_server(register: Register, service_name: str, port: int, host: str = "0.0.0.0",
                 security: GrpcSecurity | None = None) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """The server with the service, health and reflection, bound (port 0: any free port).
    `security` None: plaintext without authentication (tests of the servicer logic only)."""
    security = security or GrpcSecurity(insecure=True)
    server = security.server()
    register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (service_name, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    bound = security.add_port(server, f"{host}:{port}")
    return server, health_servicer, bound


def serve(rt: Runtime, run_loop: Callable[[threading.Event], None], register: Register, service_name: str,
          port: int, security: GrpcSecurity, ready: Callable[[], bool],
          periodic: Sequence[tuple[Callable[[], bool], Callable[[], None]]] = (), grace: float = 5.0,
          join_seconds: float = 30.0) -> BaseException | None:
    """Runs the gRPC API and `run_loop(rt.stop)` (on a thread) until SIGTERM or until the loop
    fails; returns the loop's failure, if any. `periodic`: (due, job) pairs checked every 0.1 s,
    the job run on a worker thread when due() says so."""
    failure: list[BaseException] = []

    def loop_thread() -> None:
        try:
            run_loop(rt.stop)
        except BaseException as exc:  # reported by the caller; the process exits non-zero
            failure.append(exc)
            rt.stop.set()

    async def main() -> None:
        server, health_servicer, bound = build_server(register, service_name, port, security=security)
        await server.start()
        rt.log.info("grpc_listening", port=bound, services=[service_name, "grpc.health.v1.Health"],
                    **security.describe())
        for warning in security.warnings():
            rt.log.warning("grpc_insecure", detail=warning)

        async def set_health(status: int) -> None:
            for name in ("", service_name):
                await health_servicer.set(name, status)

        await set_health(NOT_SERVING)
        freeze_startup_objects()
        thread = threading.Thread(target=loop_thread, name="kafka-loop", daemon=True)
        thread.start()
        serving = False
        while not rt.stop.is_set():
            if ready() != serving:
                serving = not serving
                await set_health(SERVING if serving else NOT_SERVING)
            for due, job in periodic:
                if due():
                    await asyncio.to_thread(job)
            await asyncio.sleep(0.1)
        await set_health(NOT_SERVING)
        await asyncio.gather(server.stop(grace=grace), asyncio.to_thread(thread.join, join_seconds))

    asyncio.run(main())
    return failure[0] if failure else None
