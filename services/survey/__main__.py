"""python -m services.survey — wires config, the state, the stream loop, HTTP and the gRPC API."""

from __future__ import annotations

import time

import grpc

from services.common import grpc_server, topics
from services.common.config import ConfigError
from services.common.diskmap import DiskMap
from services.common.grpc_security import GrpcSecurity
from services.common.kafka import StreamLoop
from services.common.reload import ReloadWatch
from services.common.runtime import Runtime
from services.common.table import CompactedTable
from services.survey.grpc_api import SERVICE_NAME, SurveyServicer
from services.survey.handler import SurveyHandler, Topics
from services.survey.policy import PolicyError, QueuePolicy, SurveyPolicy, load_policy
from services.survey.scores import ResultsTail, ScoreWindow
from services.survey.settings import SurveySettings
from services.survey.state import SurveyStore, load_records, state_key
from switchboard.v1 import survey_pb2, survey_pb2_grpc


def main() -> int:
    rt = Runtime("survey", default_http_port=9104)
    try:
        settings = SurveySettings.from_env()
        base = QueuePolicy(expiry_seconds=settings.expiry_seconds, survey_abandoned=settings.survey_abandoned)
        policy_file = settings.policy_file
        policy = load_policy(policy_file, base) if policy_file else SurveyPolicy(tenants={}, base=base)
        grpc_port, per_agent = settings.grpc_port, settings.metrics_per_agent
        grace, expired_retention = settings.response_grace_seconds, settings.expired_retention_seconds
        offset, reload_interval = settings.clock_offset_seconds, settings.policy_reload_seconds
        security = GrpcSecurity.from_env()
    except PolicyError as exc:
        rt.fail_config(exc)
    except ConfigError as exc:
        rt.fail_config(exc)
    if per_agent:
        rt.log.warning("per_agent_metrics_on", detail="one series per agent x question x band: watch cardinality")
    if offset:
        rt.log.warning("clock_offset", seconds=offset, detail="testing/demo only: survey's now is shifted")

    def clock() -> float:
        return time.time() + offset

    k = rt.settings.kafka
    names = Topics(
        lifecycle=k.topic(topics.CONTACTS_LIFECYCLE.name), responses=k.topic(topics.SURVEYS_RESPONSES.name),
        requests=k.topic(topics.SURVEYS_REQUESTS.name), results=k.topic(topics.SURVEYS_RESULTS.name),
        inbound=k.topic(topics.CONTACTS_INBOUND.name), state=k.topic(topics.SURVEYS_STATE.name),
        erasures=k.topic(topics.CUSTOMERS_ERASURES.name), preferences=k.topic(topics.SURVEYS_PREFERENCES.name),
    )
    rt.wait_for_topics([k.topic(t.name) for t in topics.USED_BY["survey"]])
    client_id = f"survey-{rt.settings.instance_id}"
    # Both tables hold serialized values and decode on get(): a decoded protobuf costs several times
    # its bytes, and each is read at most once per contact or response.
    prefs = CompactedTable(k, k.topic(topics.SURVEYS_PREFERENCES.name), survey_pb2.SurveyPreference.FromString,
                           rt.log, f"{client_id}-prefs", raw=True).start()
    # Open surveys another replica wrote after our last load (responses are keyed by customer); only
    # the open/ records (pending and customer records are never looked up here).
    # On local disk: like the store's own open surveys, they grow with the rate x the 72 h expiry.
    live_state = CompactedTable(k, names.state, survey_pb2.SurveyState.FromString, rt.log, f"{client_id}-state",
                                raw=True, keep=lambda key: key.split(b"/", 2)[1:2] == [b"open"],
                                store=DiskMap("survey-live")).start()

    def open_fallback(tenant: str, survey_id: str) -> survey_pb2.OpenSurvey | None:
        rec = live_state.get(state_key(tenant, "open", survey_id))
        return rec.open if rec is not None and rec.HasField("open") else None

    def preference(tenant: str, customer: str) -> survey_pb2.SurveyPreference | None:
        return prefs.get(f"{tenant}/{customer}".encode())

    store = SurveyStore(names.state)
    handler = SurveyHandler(
        policy, names, store, rt.log, preference=preference, open_fallback=open_fallback,
        loader=lambda: load_records(k, names.state, rt.log, client_id), clock=clock,
        per_agent_metrics=per_agent, response_grace_seconds=grace, open_retention_seconds=expired_retention,
    )
    loop = StreamLoop(rt.settings, [names.lifecycle, names.responses, names.erasures], handler, rt.log,
                      dlq_topic=k.topic(topics.CONTACTS_DLQ.name), tick=handler.tick, tick_interval=0.5,
                      on_assign=handler.on_assign, on_revoke=handler.on_revoke, clock=clock)
    scores = ScoreWindow()
    tail = ResultsTail(k, names.results, scores, rt.log, client_id, clock).start()

    rt.probe_loop(loop, lambda: handler.loaded and prefs.caught_up.is_set() and tail.caught_up.is_set())
    watch = ReloadWatch(policy_file, reload_interval)

    def reload_policy() -> None:
        """A changed policy file applies to the next lifecycle event; a bad one is logged with its
        line and the running policy stays."""
        try:
            fresh = load_policy(policy_file, base)
        except PolicyError as exc:
            rt.log.error("policy_reload_failed", file=exc.path, line=exc.line, reason=exc.reason)
            return
        except OSError as exc:
            rt.log.error("policy_reload_failed", file=policy_file, line=0, reason=exc.strerror or str(exc))
            return
        handler.policy = fresh  # one attribute swap: the loop thread sees the old or the new policy
        rt.log.info("policy_reloaded", file=policy_file, tenants=len(fresh.tenants))

    def register(server: grpc.aio.Server) -> None:
        servicer = SurveyServicer(scores, tail.caught_up.is_set, clock)
        survey_pb2_grpc.add_SurveyServiceServicer_to_server(servicer, server)

    failure = grpc_server.serve(rt, loop.run, register, SERVICE_NAME, grpc_port, security, ready=rt.is_ready,
                                periodic=[(watch.due, reload_policy)])
    for t in (prefs, live_state, tail):
        t.stop()
    return rt.finish(failure)


if __name__ == "__main__":
    raise SystemExit(main())
