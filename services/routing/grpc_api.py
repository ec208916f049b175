"""Routing's gRPC API (grpc.aio): agent state (get, list, watch, set), queue statistics, contact
position; with the standard health service (reflecting real readiness) and server reflection.

Any replica answers for any tenant (see `EngineViews`): the owner of the tenant's partition from
its live engine, the others from an engine loaded from their copy of routing.state.v1.
SetAgentState does not change the engine directly: it validates the request against the current
state and publishes the agent event on agents.events.v1, like an agent desktop would, so every
change goes through the one ordered stream and the owner's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import NoReturn

import grpc
from confluent_kafka import KafkaError, Message, Producer

from services.common.codec import new_envelope
from services.routing import adapter
from services.routing import domain as d
from services.routing.engine import RoutingEngine
from services.routing.queues import QueuesConfig
from services.routing.state import StateStore
from switchboard.v1 import agent_pb2, routing_pb2, routing_pb2_grpc

SERVICE_NAME = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name
SETTABLE = {agent_pb2.AGENT_STATE_READY, agent_pb2.AGENT_STATE_NOT_READY, agent_pb2.AGENT_STATE_LOGGED_OUT}
MAX_ID_LENGTH = 256
WATCH_QUEUE_LIMIT = 10_000  # changes buffered per watcher before it is cut off (a stuck client)



async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """context.abort, which raises (its stub does not say so)."""
    await context.abort(code, details)
    raise AssertionError("context.abort returned")

class EngineViews:
    """The engine to answer a query about a tenant with, and the lock that goes with it."""

    def __init__(self, live: RoutingEngine, live_lock: threading.Lock, owned: Callable[[str], bool],
                 store: StateStore | None, clock: Callable[[], float], queues: QueuesConfig) -> None:
        self.live = live
        self.live_lock = live_lock
        self.owned = owned
        self.store = store
        self.clock = clock
        self._shadow = RoutingEngine(queues)
        self._shadow_lock = threading.Lock()
        self._loaded: dict[str, int] = {}

    def reload(self, queues: QueuesConfig) -> None:
        with self._shadow_lock:
            self._shadow.reload(queues)
            self._loaded.clear()

    @contextlib.contextmanager
    def engine(self, tenant_id: str) -> Iterator[RoutingEngine]:
        with self.live_lock:
            if self.store is None or self.owned(tenant_id):
                yield self.live
                return
        with self._shadow_lock:
            version = self.store.version(tenant_id)
            if self._loaded.get(tenant_id) != version:
                records = [r for r in self.store.records(tenant_id) if r[0] in ("agent", "contact", "queue", "tenant")]
                self._shadow.load_tenant(tenant_id, records, self.clock())
                self._shadow.drain_changes()
                self._loaded[tenant_id] = version
            yield self._shadow


def _check_id(name: str, value: str, problems: list[str], required: bool = True) -> None:
    if required and not value:
        problems.append(f"{name} is required")
    elif len(value) > MAX_ID_LENGTH:
        problems.append(f"{name} is longer than {MAX_ID_LENGTH} characters")
    elif any(ord(ch) < 32 for ch in value):
        problems.append(f"{name} contains control characters")


async def _validate(context: grpc.aio.ServicerContext, required: tuple[str, ...] = (), **fields: str) -> None:
    problems: list[str] = []
    for name, value in fields.items():
        _check_id(name, value, problems, required=name in required)
    if problems:
        await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, views: EngineViews, producer: Producer | None = None, agents_topic: str = "",
                 publish_timeout: float = 10.0) -> None:
        self.views = views
        self.producer = producer
        self.agents_topic = agents_topic
        self.publish_timeout = publish_timeout
        self._watchers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[tuple[str, str] | None], str]] = set()
        self._watch_lock = threading.Lock()
        if views.store is not None:
            views.store.add_listener(self._on_state_change)

    # -- queries ------------------------------------------------------------------------------

    async def GetAgent(self, request: routing_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
                       ) -> routing_pb2.AgentInfo:
        await _validate(context, ("tenant_id", "agent_id"), tenant_id=request.tenant_id, agent_id=request.agent_id)
        with self.views.engine(request.tenant_id) as engine:
            view = engine.get_agent(request.tenant_id, request.agent_id)
        if view is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"agent {request.agent_id!r} not known in tenant "
                                f"{request.tenant_id!r}")
        return adapter.agent_view_to_proto(view)

    async def _state_filter(self, state: int, context: grpc.aio.ServicerContext) -> d.AgentState | None:
        if state == agent_pb2.AGENT_STATE_UNSPECIFIED:
            return None
        if state not in adapter.STATE_TO_DOMAIN:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"unknown agent state {state}")
        return adapter.STATE_TO_DOMAIN[state]

    async def ListAgents(self, request: routing_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
                         ) -> routing_pb2.ListAgentsResponse:
        await _validate(context, ("tenant_id",), tenant_id=request.tenant_id, skill=request.skill,
                        queue_id=request.queue_id)
        state = await self._state_filter(request.state, context)
        with self.views.engine(request.tenant_id) as engine:
            views = engine.list_agents(request.tenant_id, state=state, skill=request.skill or None,
                                       queue_id=request.queue_id or None)
        return routing_pb2.ListAgentsResponse(agents=[adapter.agent_view_to_proto(v) for v in views])

    async def GetQueueStats(self, request: routing_pb2.GetQueueStatsRequest, context: grpc.aio.ServicerContext
                            ) -> routing_pb2.GetQueueStatsResponse:
        await _validate(context, ("tenant_id",), tenant_id=request.tenant_id, queue_id=request.queue_id)
        now = self.views.clock()
        with self.views.engine(request.tenant_id) as engine:
            queue_ids = [request.queue_id] if request.queue_id else engine.list_queues(request.tenant_id)
            stats = [engine.queue_stats(request.tenant_id, q, now) for q in queue_ids]
        if request.queue_id and stats[0] is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"queue {request.queue_id!r} not known in tenant "
                                f"{request.tenant_id!r}")
        return routing_pb2.GetQueueStatsResponse(
            queues=[adapter.queue_stats_to_proto(s) for s in stats if s is not None]
        )

    async def GetContactPosition(self, request: routing_pb2.GetContactPositionRequest,
                                 context: grpc.aio.ServicerContext) -> routing_pb2.ContactPosition:
        await _validate(context, ("tenant_id", "contact_id"), tenant_id=request.tenant_id,
                        contact_id=request.contact_id)
        with self.views.engine(request.tenant_id) as engine:
            found = engine.contact_position(request.tenant_id, request.contact_id, self.views.clock())
            queue_id = engine.contact_queue(request.tenant_id, request.contact_id) if found else ""
            status = engine.contact_status(request.tenant_id, request.contact_id)
        if found is None:
            if status is None:
                await _abort(context, grpc.StatusCode.NOT_FOUND, f"contact {request.contact_id!r} not known in "
                                    f"tenant {request.tenant_id!r}")
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                                f"contact {request.contact_id!r} is not waiting (status {status})")
        position, ewt = found
        return routing_pb2.ContactPosition(tenant_id=request.tenant_id, contact_id=request.contact_id,
                                           queue_id=queue_id, position=position, estimated_wait_seconds=ewt)

    # -- watch --------------------------------------------------------------------------------

    def _on_state_change(self, tenant: str, kind: str, entity_id: str, _value: bytes | None) -> None:
        """Reader thread: hands agent changes to every watcher of the tenant."""
        if kind != "agent":
            return
        with self._watch_lock:
            watchers = [w for w in self._watchers if w[2] == tenant]
        for loop, queue, _ in watchers:
            loop.call_soon_threadsafe(_offer, queue, (tenant, entity_id))

    async def WatchAgents(self, request: routing_pb2.WatchAgentsRequest, context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[routing_pb2.AgentChange]:
        await _validate(context, ("tenant_id",), tenant_id=request.tenant_id, skill=request.skill)
        state = await self._state_filter(request.state, context)
        if self.views.store is None:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "agent changes need routing.state.v1, not configured")
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        watcher = (asyncio.get_running_loop(), queue, request.tenant_id)
        with self._watch_lock:
            self._watchers.add(watcher)
        try:
            if request.initial:
                with self.views.engine(request.tenant_id) as engine:
                    views = engine.list_agents(request.tenant_id, state=state, skill=request.skill or None)
                for v in views:
                    yield routing_pb2.AgentChange(agent=adapter.agent_view_to_proto(v), initial=True)
            while True:
                item = await queue.get()
                if item is None:
                    await _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        "watcher fell more than 10000 changes behind; watch again")
                    return
                tenant, agent_id = item
                with self.views.engine(tenant) as engine:
                    view = engine.get_agent(tenant, agent_id)
                if view is None or (state is not None and view.state is not state) \
                        or (request.skill and request.skill not in view.skills):
                    continue
                yield routing_pb2.AgentChange(agent=adapter.agent_view_to_proto(view))
        finally:
            with self._watch_lock:
                self._watchers.discard(watcher)

    # -- commands -----------------------------------------------------------------------------

    async def SetAgentState(self, request: routing_pb2.SetAgentStateRequest, context: grpc.aio.ServicerContext
                            ) -> routing_pb2.SetAgentStateResponse:
        await _validate(context, ("tenant_id", "agent_id"), tenant_id=request.tenant_id,
                        agent_id=request.agent_id, reason=request.reason)
        if request.state not in SETTABLE:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                                "state must be AGENT_STATE_READY, AGENT_STATE_NOT_READY or AGENT_STATE_LOGGED_OUT "
                                "(reserved, busy and wrap-up are set by routing)")
        if self.producer is None:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "this replica cannot publish agent events")
        with self.views.engine(request.tenant_id) as engine:
            view = engine.get_agent(request.tenant_id, request.agent_id)
        if view is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"agent {request.agent_id!r} not known in tenant "
                                f"{request.tenant_id!r}")
        if view.state is d.AgentState.LOGGED_OUT:
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                                f"agent {request.agent_id!r} is logged out; a login (with skills) comes from the "
                                "agent desktop on agents.events.v1")
        busy = len(view.active_contacts) > 0
        if request.state == agent_pb2.AGENT_STATE_LOGGED_OUT and busy:
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                                f"agent {request.agent_id!r} holds {len(view.active_contacts)} contact(s); "
                                "end them before logging out")
        env = new_envelope(request.tenant_id, self.views.clock(), "switchboard-routing-grpc")
        ev = agent_pb2.AgentEvent(envelope=env, agent_id=request.agent_id)
        if request.state == agent_pb2.AGENT_STATE_READY:
            ev.ready.SetInParent()
        elif request.state == agent_pb2.AGENT_STATE_NOT_READY:
            ev.not_ready.reason = request.reason or "unspecified"
        else:
            ev.logout.SetInParent()
        await self._publish(ev, context)
        return routing_pb2.SetAgentStateResponse(event_id=env.event_id, previous=adapter.STATE_TO_PROTO[view.state])

    async def _publish(self, ev: agent_pb2.AgentEvent, context: grpc.aio.ServicerContext) -> None:
        assert self.producer is not None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[KafkaError | None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(lambda: None if done.done() else done.set_result(err))

        self.producer.produce(self.agents_topic, key=ev.envelope.tenant_id.encode(), value=ev.SerializeToString(),
                              headers=[("content-type", b"application/x-protobuf")], on_delivery=delivered)
        remaining = context.time_remaining()
        timeout = self.publish_timeout if remaining is None else max(0.0, min(self.publish_timeout, remaining))
        try:
            err = await asyncio.wait_for(_poll_until(self.producer, done), timeout)
        except TimeoutError:
            await _abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "agent event not acknowledged by Kafka in time")
            return
        if err is not None:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, f"agent event not published: {err.str()}")


def _offer(queue: asyncio.Queue[tuple[str, str] | None], item: tuple[str, str]) -> None:
    if queue.qsize() >= WATCH_QUEUE_LIMIT:
        queue.put_nowait(None)
    else:
        queue.put_nowait(item)


async def _poll_until(producer: Producer, done: asyncio.Future[KafkaError | None]) -> KafkaError | None:
    while not done.done():
        await asyncio.to_thread(producer.poll, 0.05)
    return done.result()




