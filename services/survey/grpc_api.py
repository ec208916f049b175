"""Survey's gRPC API (grpc.aio): scores over the last day by queue, agent or channel, with the
standard health service (reflecting real readiness) and server reflection."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from services.common.codec import ts_from_seconds
from services.survey.scores import WINDOW, ScoreWindow
from switchboard.v1 import survey_pb2, survey_pb2_grpc

SERVICE_NAME = survey_pb2.DESCRIPTOR.services_by_name["SurveyService"].full_name
MAX_ID_LENGTH = 256


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


