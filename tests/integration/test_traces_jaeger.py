"""Traces against a real receiver: the four services export OTLP/gRPC to Jaeger (v1.76.0, built
from the Go module proxy into .cache/bin), and Jaeger's query API finds one trace per contact
spanning ingestion, enrichment, routing (with the wait's queue and length) and survey, every span's
parent in the trace. One contact comes with a channel's traceparent (its trace continues), the
other without (its trace id derives from tenant and contact id)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.codec import new_envelope
from services.common.tracing import contact_ids, parse_traceparent
from switchboard.v1 import agent_pb2, contact_pb2, routing_pb2, survey_pb2
from switchboard_dev.broker import free_port
from tests.helpers import (
    consume_until,
    contact,
    producer,
    send,
    send_json,
    start_service,
    wait_for_profiles,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
JAEGER = ("github.com/jaegertracing/jaeger", "v1.76.0", "./cmd/all-in-one")
TENANT = "acme"
PB = "application/x-protobuf"
QUEUES = """\
tenants:
  acme:
    queues:
      support: {channel: voice}
"""
SERVICES = ("ingestion", "enrichment", "routing", "survey")


def jaeger_binary() -> Path:
    """Jaeger's all-in-one, built once (its go.mod has replace directives, so `go install m@v`
    refuses: built with `go build` inside the downloaded module). A stamp file holds the version."""
    module, version, pkg = JAEGER
    path = Path(os.environ.get("SWITCHBOARD_CACHE_DIR", ROOT / ".cache")) / "bin" / "jaeger-all-in-one"
    stamp = path.with_name(path.name + ".version")
    if path.is_file() and stamp.is_file() and stamp.read_text().strip() == f"{module}@{version}":
        return path
    if shutil.which("go") is None:
        pytest.fail(f"Go is not on PATH to build {module}@{version}")
    dl = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True,
                        timeout=1200)
    if dl.returncode != 0:
        pytest.fail(f"go mod download {module}@{version} failed:\n{dl.stdout[-2000:]}{dl.stderr[-2000:]}")
    src = json.loads(dl.stdout)["Dir"]
    path.parent.mkdir(parents=True, exist_ok=True)
    build = subprocess.run(["go", "build", "-trimpath", "-o", str(path), pkg], cwd=src, capture_output=True,
                           text=True, timeout=1800, env={**os.environ, "GOFLAGS": "-mod=mod"})
    if build.returncode != 0:
        pytest.fail(f"go build {module}@{version} {pkg} failed:\n{build.stderr[-3000:]}")
    stamp.write_text(f"{module}@{version}\n")
    return path


class Jaeger:
    def __init__(self, tmp: Path) -> None:
        self.otlp, self.query, self.admin = free_port(), free_port(), free_port()
        ports = {"collector.otlp.grpc.host-port": self.otlp, "collector.otlp.http.host-port": free_port(),
                 "query.http-server.host-port": self.query, "query.grpc-server.host-port": free_port(),
                 "admin.http.host-port": self.admin, "collector.grpc-server.host-port": free_port(),
                 "collector.http-server.host-port": free_port(), "collector.zipkin.host-port": free_port()}
        self.log_path = tmp / "jaeger.log"
        self.proc = subprocess.Popen(
            [str(jaeger_binary()), *(f"--{k}=127.0.0.1:{v}" for k, v in ports.items())],
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "SPAN_STORAGE_TYPE": "memory"})
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"jaeger exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jaeger not healthy within 60 s:\n{self.log()}")
            time.sleep(0.3)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.query}{path}", timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return {"data": []}
            raise

    def trace(self, trace_id: int) -> dict[str, Any] | None:
        data = self.get(f"/api/traces/{trace_id:032x}")["data"]
        return data[0] if data else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    j = Jaeger(tmp_path)
    yield j
    j.stop()


def spans_by(trace: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(service, operation, tags, span) of every span."""
    procs = {k: v["serviceName"] for k, v in trace["processes"].items()}
    return [(procs[s["processID"]], s["operationName"], {t["key"]: t["value"] for t in s["tags"]}, s)
            for s in trace["spans"]]


def test_one_trace_per_contact_across_the_four_services(jaeger: Jaeger, service_env: dict[str, str],
                                                        topic_prefix: str, tmp_path: Path) -> None:
    (tmp_path / "queues.yaml").write_text(QUEUES)
    env = {**service_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{jaeger.otlp}",
           "OTEL_BSP_SCHEDULE_DELAY": "200"}
    svcs = {name: start_service(name, env, tmp_path, **({"SWITCHBOARD_QUEUES_FILE": str(tmp_path / "queues.yaml")}
                                                         if name == "routing" else {}))
            for name in SERVICES}
    try:
        wait_ready(list(svcs.values()), timeout=120)
        for svc in svcs.values():
            assert '"event":"tracing_enabled"' in svc.log(), svc.log()[-2000:]
        t = topic_prefix
        p = producer(service_env["KAFKA_BOOTSTRAP_SERVERS"])
        customers = {cid: f"cust-{uuid.uuid4().hex[:6]}" for cid in ("c-traced", "c-untraced")}
        for customer in customers.values():
            send(p, t + "customers.profiles.v1", customer, contact_pb2.CustomerProfile(
                customer_id=customer, tenant_id=TENANT, has_mobile=True).SerializeToString(), PB)
        wait_for_profiles(svcs["enrichment"], 2)
        login = agent_pb2.AgentLogin(capacity=[agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)])
        for kind in ({"login": login}, {"ready": agent_pb2.AgentReady()}):
            ev = agent_pb2.AgentEvent(envelope=new_envelope(TENANT, time.time(), "test"), agent_id="a-1", **kind)
            send(p, t + "agents.events.v1", TENANT, ev.SerializeToString(), PB)

        channel_trace, channel_span = uuid.uuid4().int, uuid.uuid4().int & (2**64 - 1) or 1
        channel_tp = f"00-{channel_trace:032x}-{channel_span:016x}-01"
        for cid, customer in customers.items():
            extra = {"traceparent": channel_tp} if cid == "c-traced" else {}
            send_json(p, t + "contacts.inbound.v1", contact(TENANT, cid, customer, "arrived", queue="support",
                                                            voice={"from_number": "+14155550123"}, **extra))
            msg = consume_until(service_env["KAFKA_BOOTSTRAP_SERVERS"], t + "routing.assignments.v1",
                                lambda m, cid=cid: routing_pb2.Assignment.FromString(m.value()).contact_id == cid,
                                timeout=90)
            assignment = routing_pb2.Assignment.FromString(msg.value())
            for step, kw in (("answered", {}), ("ended", {"talk_seconds": 30.0})):
                send_json(p, t + "contacts.inbound.v1", contact(TENANT, cid, customer, step,
                                                                agent_id=assignment.agent_id, **kw, **extra))
            req_msg = consume_until(service_env["KAFKA_BOOTSTRAP_SERVERS"], t + "surveys.requests.v1",
                                    lambda m, cid=cid: survey_pb2.SurveyRequest.FromString(m.value()).contact_id == cid,
                                    timeout=90)
            req = survey_pb2.SurveyRequest.FromString(req_msg.value())
            parsed = parse_traceparent(req.envelope.trace.traceparent)
            expected_trace = channel_trace if cid == "c-traced" else contact_ids(TENANT, cid)[0]
            assert parsed is not None and parsed[0] == expected_trace, req.envelope.trace.traceparent
            parsed_a = parse_traceparent(assignment.envelope.trace.traceparent)
            assert parsed_a is not None and parsed_a[0] == expected_trace

        def complete(trace_id: int) -> dict[str, Any] | None:
            trace = jaeger.trace(trace_id)
            if trace is None:
                return None
            names = {(svc, op) for svc, op, _, _ in spans_by(trace)}
            want = {("switchboard-ingestion", "ingest"), ("switchboard-enrichment", "enrich"),
                    ("switchboard-routing", "route"), ("switchboard-routing", "wait"),
                    ("switchboard-survey", "survey")}
            return trace if want <= names else None

        for cid in customers:
            expected_trace = channel_trace if cid == "c-traced" else contact_ids(TENANT, cid)[0]
            trace = wait_until(lambda tid=expected_trace: complete(tid), f"the whole trace of {cid}", timeout=60)
            spans = spans_by(trace)
            ids = {s["spanID"] for _, _, _, s in spans}
            # three inbound events, each through ingestion, enrichment and routing; one wait; one survey
            ops = sorted(op for _, op, _, _ in spans)
            assert ops.count("ingest") == 3 and ops.count("enrich") == 3 and ops.count("route") == 3, ops
            assert ops.count("wait") == 1 and ops.count("survey") == 1, ops
            for service, op, tags, s in spans:
                assert tags["switchboard.contact_id"] == cid and tags["switchboard.tenant"] == TENANT
                parents = [r["spanID"] for r in s.get("references", []) if r["refType"] == "CHILD_OF"]
                if cid == "c-traced" and op == "ingest":
                    assert parents == [f"{channel_span:016x}"], (op, s.get("references"))
                elif op == "ingest" and tags["switchboard.step"] == "arrived":
                    assert parents == [], s.get("references")  # the contact's root span
                else:
                    assert len(parents) == 1 and parents[0] in ids, (service, op, s.get("references"))
            wait = next(tags for _, op, tags, _ in spans if op == "wait")
            assert wait["switchboard.queue"] == "support" and wait["switchboard.outcome"] == "assigned"
            assert wait["switchboard.agent_id"] == "a-1" and wait["switchboard.wait_seconds"] >= 0
            survey = next(tags for _, op, tags, _ in spans if op == "survey")
            assert survey["switchboard.outcome"] == "requested" and survey["switchboard.lifecycle"] == "ended"
            # survey's span is a child of routing's span of the contact's end, itself of the chain
            by_id = {s["spanID"]: (op, tags) for _, op, tags, s in spans}
            survey_span = next(s for _, op, _, s in spans if op == "survey")
            parent_op, parent_tags = by_id[survey_span["references"][0]["spanID"]]
            assert parent_op == "route" and parent_tags["switchboard.step"] == "ended"
            # Jaeger's search by contact finds exactly this one trace
            found = jaeger.get("/api/traces?service=switchboard-routing&limit=20&tags="
                               + urllib.parse.quote(json.dumps({"switchboard.contact_id": cid})))["data"]
            assert [tr["traceID"] for tr in found] == [f"{expected_trace:032x}"]
        for svc in svcs.values():
            assert svc.proc.poll() is None, f"{svc.name} exited:\n{svc.log()[-3000:]}"
            assert svc.terminate(timeout=30) == 0, svc.log()[-2000:]
    finally:
        for svc in svcs.values():
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait(10)
