"""Fuzzing the gRPC request validation of routing, survey and ingestion (hypothesis): every servicer
method is called with generated requests (odd ids, control characters, huge strings, unknown enum
values, other tenants) and a context that records aborts. Each call either answers with its response
type or aborts once with a non-OK status code and a message; nothing else escapes. CI: 3,900 calls
in all (and 600 more to check what they reach); FUZZ_EXAMPLES=<n> raises each fuzz test's count."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import grpc
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import grpc_security
from services.ingestion.config import IngestionConfig
from services.ingestion.dedupe import Deduplicator
from services.ingestion.grpc_api import IngestServicer
from services.ingestion.parse import Limits
from services.routing import domain as d
from services.routing.engine import RoutingEngine
from services.routing.grpc_api import EngineViews, RoutingServicer
from services.routing.queues import QueuesConfig
from services.survey.grpc_api import SurveyServicer
from services.survey.scores import ScoreWindow
from switchboard.v1 import agent_pb2, ingest_pb2, routing_pb2, survey_pb2

N = int(os.environ.get("FUZZ_EXAMPLES", "0"))
NOW = time.time()


def budget(ci: int) -> Any:
    return settings(max_examples=max(ci, N), deadline=None, derandomize=N == 0,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Aborted(Exception):
    pass


class Context:
    """Records what grpc.aio's ServicerContext.abort would send; abort raises like the real one."""

    def __init__(self) -> None:
        self.aborts: list[tuple[grpc.StatusCode, str]] = []

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self.aborts.append((code, details))
        raise Aborted

    def time_remaining(self) -> float | None:
        return None

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return []


def call(method: Any, request: Any, response_type: type, stream: bool = False, seen: set[str] | None = None
         ) -> None:
    """Calls `method` and checks the outcome; adds the status code name (or "OK") to `seen`."""
    ctx = Context()
    seen = set() if seen is None else seen

    async def run() -> Any:
        if stream:
            gen = method(request, ctx)
            try:
                return await asyncio.wait_for(gen.__anext__(), 0.05)
            except (StopAsyncIteration, TimeoutError):
                return None
            finally:
                await gen.aclose()
        return await method(request, ctx)

    try:
        result = asyncio.run(run())
    except Aborted:
        assert len(ctx.aborts) == 1
        code, message = ctx.aborts[0]
        assert isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK
        assert message.strip(), code
        seen.add(code.name)
        return
    assert ctx.aborts == []
    seen.add("OK")
    assert result is None or isinstance(result, response_type), type(result)


# -- routing -----------------------------------------------------------------------------------

def _routing() -> RoutingServicer:
    engine = RoutingEngine(QueuesConfig.default())
    engine.handle(d.AgentLogin("acme", "ann", skills={"support": 3}, capacity={d.Channel.VOICE: 1}), NOW)
    engine.handle(d.AgentReady("acme", "ann"), NOW)
    engine.handle(d.AgentLogin("acme", "bob", skills={"support": 1}, capacity={d.Channel.CHAT: 2}), NOW)
    engine.handle(d.ContactArrived("acme", "c-1", "cust-1", d.Channel.CHAT, "support"), NOW)
    views = EngineViews(engine, threading.Lock(), lambda tenant: True, None, lambda: NOW, QueuesConfig.default())
    return RoutingServicer(views, producer=None)


ROUTING = _routing()
ids = st.one_of(st.sampled_from(["", "acme", "ann", "bob", "c-1", "support", "globex"]), st.text(max_size=30),
                st.text(min_size=250, max_size=300), st.text(alphabet="\x00\x01\n\t\x7f", max_size=5))
states = st.one_of(st.sampled_from(list(agent_pb2.AgentState.values())), st.integers(-3, 40))


routing_methods = st.sampled_from(["GetAgent", "ListAgents", "GetQueueStats", "GetContactPosition",
                                   "SetAgentState", "WatchAgents"])


def routing_request(method: str, tenant: str, a: str, b: str, state: int, flag: bool,
                    seen: set[str] | None = None) -> None:
    servicer = ROUTING
    if method == "GetAgent":
        call(servicer.GetAgent, routing_pb2.GetAgentRequest(tenant_id=tenant, agent_id=a), routing_pb2.AgentInfo,
             seen=seen)
    elif method == "ListAgents":
        call(servicer.ListAgents, routing_pb2.ListAgentsRequest(tenant_id=tenant, skill=a, queue_id=b, state=state),
             routing_pb2.ListAgentsResponse, seen=seen)
    elif method == "GetQueueStats":
        call(servicer.GetQueueStats, routing_pb2.GetQueueStatsRequest(tenant_id=tenant, queue_id=a),
             routing_pb2.GetQueueStatsResponse, seen=seen)
    elif method == "GetContactPosition":
        call(servicer.GetContactPosition, routing_pb2.GetContactPositionRequest(tenant_id=tenant, contact_id=a),
             routing_pb2.ContactPosition, seen=seen)
    elif method == "SetAgentState":
        call(servicer.SetAgentState, routing_pb2.SetAgentStateRequest(tenant_id=tenant, agent_id=a, state=state,
                                                                      reason=b), routing_pb2.SetAgentStateResponse,
             seen=seen)
    else:
        call(servicer.WatchAgents, routing_pb2.WatchAgentsRequest(tenant_id=tenant, skill=a, state=state,
                                                                  initial=flag), routing_pb2.AgentChange, stream=True,
             seen=seen)


routing_args = (routing_methods, ids, ids, ids, states, st.booleans())


@budget(1200)
@given(*routing_args)
def test_routing_requests(method: str, tenant: str, a: str, b: str, state: int, flag: bool) -> None:
    routing_request(method, tenant, a, b, state, flag)


# -- survey ------------------------------------------------------------------------------------

SURVEY_READY = SurveyServicer(ScoreWindow(), ready=lambda: True, clock=lambda: NOW)
SURVEY_LOADING = SurveyServicer(ScoreWindow(), ready=lambda: False, clock=lambda: NOW)


def survey_request(tenant: str, queue: str, agent: str, group: int, window: int, channel: int, ready: bool,
                   seen: set[str] | None = None) -> None:
    request = survey_pb2.GetScoresRequest(tenant_id=tenant, queue_id=queue, agent_id=agent, group_by=group,
                                          window_seconds=window, channel=channel)
    call((SURVEY_READY if ready else SURVEY_LOADING).GetScores, request, survey_pb2.GetScoresResponse, seen=seen)


survey_args = (ids, ids, ids, st.integers(-3, 10), st.integers(0, 2**32 - 1), st.integers(-3, 12), st.booleans())


@budget(1200)
@given(*survey_args)
def test_survey_requests(tenant: str, queue: str, agent: str, group: int, window: int, channel: int,
                         ready: bool) -> None:
    survey_request(tenant, queue, agent, group, window, channel, ready)


# -- ingestion ---------------------------------------------------------------------------------

LIMITS = Limits(known_tenants=frozenset({"acme", "globex"}))
# A real producer with no reachable broker and no wait: accepted events come back "unavailable".
PRODUCER = Producer({"bootstrap.servers": "127.0.0.1:9", "log_level": 0, "message.timeout.ms": 1000})
INGEST = IngestServicer(IngestionConfig(limits=LIMITS, dedupe_window_seconds=60, dedupe_max_entries=1000,
                                        grpc_max_batch=20),
                        Deduplicator(60, 1000), threading.Lock(), PRODUCER, "inbound", clock=lambda: NOW,
                        publish_timeout=0.0)


def _event(tenant: str, phone: str) -> str:
    return json.dumps({"event_id": f"e-{phone}", "tenant_id": tenant, "occurred_at": NOW - 1, "contact_id": "c-1",
                       "customer_id": "cust-1", "channel": "voice", "step": "arrived",
                       "voice": {"from_number": phone}})


items = st.one_of(
    st.builds(lambda t, p: ingest_pb2.IngestEvent(json=_event(t, p)), st.sampled_from(["acme", "globex", "x"]),
              st.one_of(st.just("+14155550123"), st.text(max_size=16))),
    st.builds(lambda s: ingest_pb2.IngestEvent(json=s), st.text(max_size=60)),
    st.just(ingest_pb2.IngestEvent()),
)


@budget(1500)
@given(st.lists(items, max_size=25), st.sampled_from(["acme", "globex", None]))
def test_ingest_requests(events: list[ingest_pb2.IngestEvent], tenant: str | None) -> None:
    grpc_security._caller.set(tenant)  # what the interceptor sets for a valid token
    ctx = Context()
    try:
        reply = asyncio.run(INGEST.Publish(ingest_pb2.PublishRequest(events=events), ctx))  # type: ignore[arg-type]
    except Aborted:
        code, message = ctx.aborts[0]
        assert code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT) and message
        assert tenant is None or len(events) > 20
        return
    assert tenant is not None and len(reply.results) == len(events)
    assert reply.accepted + reply.rejected == len(events)
    for res in reply.results:
        assert res.accepted or (res.reason and res.detail), res


SEEN_EXAMPLES = 300  # calls per servicer: the same ones every run (derandomized, no database)


def _fuzz_into(seen: set[str], request: Any, args: tuple[st.SearchStrategy[Any], ...]) -> None:
    @settings(max_examples=SEEN_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.tuples(*args))
    def fuzz(case: tuple[Any, ...]) -> None:
        request(*case, seen=seen)

    fuzz()


def test_the_fuzzing_reaches_answers_and_each_kind_of_rejection() -> None:
    """The routing and survey generators above get answers and each kind of rejection. The test
    runs them itself (a fixed budget and seed), so it holds alone and in any test order."""
    seen: set[str] = set()
    _fuzz_into(seen, routing_request, routing_args)
    _fuzz_into(seen, survey_request, survey_args)
    wanted = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE"}
    assert wanted <= seen, f"the fuzzing never reached {sorted(wanted - seen)} (reached {sorted(seen)})"
