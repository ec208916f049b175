"""Survey's gRPC API (grpc.aio): scores over the last day by queue, agent or channel, with the
standard health service (reflecting real readiness) and server reflection."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.codec import ts_from_seconds
from services.common.grpc_security import GrpcSecurity
from services.survey.scores import WINDOW, ScoreWindow
from switchboard.v1 import survey_pb2, survey_pb2_grpc

SERVICE_NAME = survey_pb2.DESCRIPTOR.services_by_name["SurveyService"].full_name
MAX_ID_LENGTH = 256
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


class SurveyServicer(survey_pb2_grpc.SurveyServiceServicer):
    def __init__(self, scores: ScoreWindow, ready: Callable[[], bool], clock: Callable[[], float]) -> None:
        self.scores = scores
        self.ready = ready
        self.clock = clock

    async def GetScores(  # noqa: N802 (gRPC method name)
        self, request: survey_pb2.GetScoresRequest, context: grpc.aio.ServicerContext
    ) -> survey_pb2.GetScoresResponse:
        if not request.tenant_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tenant_id is required")
        for name in ("tenant_id", "queue_id", "agent_id"):
            if len(getattr(request, name)) > MAX_ID_LENGTH:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name} is longer than {MAX_ID_LENGTH}")
        if request.group_by not in survey_pb2.ScoreGrouping.values():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown group_by {request.group_by}")
        if request.window_seconds > WINDOW:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"window_seconds must be at most {int(WINDOW)} (the last day)")
        if not self.ready():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scores are still loading; retry shortly")
        window = float(request.window_seconds or WINDOW)
        now = self.clock()
        groups, total = self.scores.query(request.tenant_id, now, window, request.group_by,
                                          request.queue_id, request.agent_id, request.channel)
        resp = survey_pb2.GetScoresResponse(tenant_id=request.tenant_id, groups=groups, total=total)
        resp.window_start.CopyFrom(ts_from_seconds(now - window))
        resp.window_end.CopyFrom(ts_from_seconds(now))
        return resp


def build_server(
    servicer: SurveyServicer, port: int, host: str = "0.0.0.0", security: GrpcSecurity | None = None
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """`security` None: plaintext without authentication (tests of the servicer logic only)."""
    security = security or GrpcSecurity(insecure=True)
    server = security.server()
    survey_pb2_grpc.add_SurveyServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    bound = security.add_port(server, f"{host}:{port}")
    return server, health_servicer, bound
