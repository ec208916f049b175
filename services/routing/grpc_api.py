"""Routing's gRPC API (grpc.aio): agent state, queue statistics, contact position; with the
standard health service (reflecting real readiness) and server reflection."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.routing import adapter
from services.routing.engine import RoutingEngine
from switchboard.v1 import agent_pb2, routing_pb2, routing_pb2_grpc

SERVICE_NAME = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name


async def _require(context: grpc.aio.ServicerContext, **fields: str) -> None:
    missing = [name for name, value in fields.items() if not value]
    if missing:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{', '.join(missing)} required")


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, engine: RoutingEngine, lock: threading.Lock, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.lock = lock
        self.clock = clock

    async def GetAgent(self, request: routing_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
                       ) -> routing_pb2.AgentInfo:
        await _require(context, tenant_id=request.tenant_id, agent_id=request.agent_id)
        with self.lock:
            view = self.engine.get_agent(request.tenant_id, request.agent_id)
        if view is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"agent {request.agent_id!r} not known in tenant "
                                f"{request.tenant_id!r}")
        return adapter.agent_view_to_proto(view)

    async def ListAgents(self, request: routing_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
                         ) -> routing_pb2.ListAgentsResponse:
        await _require(context, tenant_id=request.tenant_id)
        state = None
        if request.state != agent_pb2.AGENT_STATE_UNSPECIFIED:
            if request.state not in adapter.STATE_TO_DOMAIN:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown state {request.state}")
            state = adapter.STATE_TO_DOMAIN[request.state]
        with self.lock:
            views = self.engine.list_agents(request.tenant_id, state=state, skill=request.skill or None,
                                            queue_id=request.queue_id or None)
        return routing_pb2.ListAgentsResponse(agents=[adapter.agent_view_to_proto(v) for v in views])

    async def GetQueueStats(self, request: routing_pb2.GetQueueStatsRequest, context: grpc.aio.ServicerContext
                            ) -> routing_pb2.GetQueueStatsResponse:
        await _require(context, tenant_id=request.tenant_id)
        now = self.clock()
        with self.lock:
            queue_ids = [request.queue_id] if request.queue_id else self.engine.list_queues(request.tenant_id)
            stats = [self.engine.queue_stats(request.tenant_id, q, now) for q in queue_ids]
        if request.queue_id and stats[0] is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"queue {request.queue_id!r} not known in tenant "
                                f"{request.tenant_id!r}")
        return routing_pb2.GetQueueStatsResponse(
            queues=[adapter.queue_stats_to_proto(s) for s in stats if s is not None]
        )

    async def GetContactPosition(self, request: routing_pb2.GetContactPositionRequest,
                                 context: grpc.aio.ServicerContext) -> routing_pb2.ContactPosition:
        await _require(context, tenant_id=request.tenant_id, contact_id=request.contact_id)
        with self.lock:
            found = self.engine.contact_position(request.tenant_id, request.contact_id, self.clock())
            queue_id = self.engine.contact_queue(request.tenant_id, request.contact_id) if found else ""
        if found is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"contact {request.contact_id!r} is not waiting")
        position, ewt = found
        return routing_pb2.ContactPosition(tenant_id=request.tenant_id, contact_id=request.contact_id,
                                           queue_id=queue_id, position=position, estimated_wait_seconds=ewt)


def build_server(
    servicer: RoutingServicer, port: int, host: str = "0.0.0.0"
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    server = grpc.aio.server()
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, health_servicer, bound


NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING
