"""gRPC security of the real services on the real broker: TLS with certificates from files (a CA and
server/client certificates generated here with the openssl CLI), per-tenant bearer tokens, tenant
isolation on every routing RPC (including the WatchAgents stream), survey and ingestion, mTLS, and
the failures a wrong certificate or a missing token must give."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.codec import CONTENT_TYPE_PROTOBUF, new_envelope
from switchboard.v1 import (
    agent_pb2,
    contact_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    routing_pb2,
    routing_pb2_grpc,
    survey_pb2,
    survey_pb2_grpc,
)
from switchboard_dev.broker import BrokerHandle
from tests.deploy.conftest import helm  # noqa: F401 (the pinned helm, for the chart's generated Secrets)
from tests.helpers import (
    ROOT,
    ServiceProcess,
    contact,
    eventually,
    http_get,
    metric_value,
    producer,
    read_all,
    start_service,
    wait_ready,
)

pytestmark = pytest.mark.broker

ACME = "acme-" + uuid.uuid4().hex  # tokens: 37 random-looking characters each
GLOBEX = "globex-" + uuid.uuid4().hex
PB = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]


# -- certificates ------------------------------------------------------------------------------

@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_client_cert: Path
    rogue_client_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def _leaf(d: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    key, csr, cert, extfile = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
    extfile.write_text(ext)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(extfile))
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, rogue = _ca(d, "switchboard-test-ca"), _ca(d, "rogue-ca")
    server = _leaf(d, "server", ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    client = _leaf(d, "client", ca, "extendedKeyUsage=clientAuth\n")
    rogue_client = _leaf(d, "rogue-client", rogue, "extendedKeyUsage=clientAuth\n")
    return Pki(ca[0], server[0], server[1], client[0], client[1], rogue[0], rogue_client[0], rogue_client[1])


def secure_env(pki: Pki, tmp_path: Path, mtls: bool = False) -> dict[str, str]:
    tokens = tmp_path / "grpc-tokens"
    tokens.write_text(f"# tenant=token\nacme={ACME}\n\nglobex={GLOBEX}\n")
    env = {"SWITCHBOARD_GRPC_INSECURE": "false", "SWITCHBOARD_GRPC_TLS_CERT_FILE": str(pki.server_cert),
           "SWITCHBOARD_GRPC_TLS_KEY_FILE": str(pki.server_key), "SWITCHBOARD_GRPC_TOKENS_FILE": str(tokens)}
    if mtls:
        env["SWITCHBOARD_GRPC_TLS_CLIENT_CA_FILE"] = str(pki.ca)
    return env


def tls_channel(port: int, ca: Path, client: tuple[Path, Path] | None = None) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client[1].read_bytes() if client else None,
        certificate_chain=client[0].read_bytes() if client else None,
    )
    return grpc.secure_channel(f"127.0.0.1:{port}", creds)


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__next__"):  # a server stream: the status comes with the first message
            next(result)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK



def started(name: str, env: dict[str, str], tmp_path: Path, **extra: str) -> ServiceProcess:
    log_dir = tmp_path / name
    log_dir.mkdir()
    svc = start_service(name, env, log_dir, **extra)
    wait_ready([svc])
    return svc


# -- routing -----------------------------------------------------------------------------------

def _agent_event(tenant: str, agent_id: str, **kind: Any) -> bytes:
    return agent_pb2.AgentEvent(envelope=new_envelope(tenant, time.time(), "test"), agent_id=agent_id,
                                **kind).SerializeToString()


def test_routing_token_of_one_tenant_cannot_read_or_change_another(
        broker: BrokerHandle, topic_prefix: str, service_env: dict[str, str], tmp_path: Path, pki: Pki) -> None:
    svc = started("routing", service_env, tmp_path, **secure_env(pki, tmp_path))
    agents_topic = f"{topic_prefix}agents.events.v1"
    p = producer(broker.bootstrap)
    for tenant, agent in (("acme", "ann"), ("globex", "bob")):
        p.produce(agents_topic, key=tenant.encode(), headers=PB, value=_agent_event(
            tenant, agent, login=agent_pb2.AgentLogin(
                skills=[agent_pb2.Skill(name="support", level=3)],
                capacity=[agent_pb2.ChannelCapacity(channel=contact_pb2.CHANNEL_VOICE, max=1)])))
        p.produce(agents_topic, key=tenant.encode(), headers=PB, value=_agent_event(tenant, agent,
                                                                                    ready=agent_pb2.AgentReady()))
    p.produce(f"{topic_prefix}contacts.enriched.v1", key=b"globex", headers=PB, value=contact_pb2.EnrichedContact(
        contact=contact_pb2.ContactEvent(envelope=new_envelope("globex", time.time(), "test"), contact_id="g-c1",
                                         customer_id="g-cust", channel=contact_pb2.CHANNEL_CHAT,
                                         step=contact_pb2.CONTACT_STEP_ARRIVED),
        routing=contact_pb2.RoutingHints(queue_id="support")).SerializeToString())
    assert p.flush(10) == 0

    with tls_channel(svc.grpc_port, pki.ca) as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)

        def ready_agents() -> None:
            for tenant, token, agent in (("acme", ACME, "ann"), ("globex", GLOBEX, "bob")):
                listed = stub.ListAgents(routing_pb2.ListAgentsRequest(tenant_id=tenant), timeout=5,
                                         metadata=bearer(token))
                assert [a.agent_id for a in listed.agents] == [agent]
            bob = stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id="globex", agent_id="bob"), timeout=5,
                                metadata=bearer(GLOBEX))
            assert list(bob.active_contacts) == ["g-c1"]  # globex's contact went to globex's agent
            return bob

        bob_before = eventually(ready_agents)

        # Health over TLS needs no token (Kubernetes probes); it is SERVING.
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING

        # Every RPC of globex with acme's token: PERMISSION_DENIED, including the server stream.
        g = "globex"
        foreign: dict[str, Callable[[list[tuple[str, str]]], Any]] = {
            "GetAgent": lambda md: stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id=g, agent_id="bob"),
                                                 timeout=5, metadata=md),
            "ListAgents": lambda md: stub.ListAgents(routing_pb2.ListAgentsRequest(tenant_id=g), timeout=5,
                                                     metadata=md),
            "GetQueueStats": lambda md: stub.GetQueueStats(routing_pb2.GetQueueStatsRequest(tenant_id=g),
                                                           timeout=5, metadata=md),
            "GetContactPosition": lambda md: stub.GetContactPosition(
                routing_pb2.GetContactPositionRequest(tenant_id=g, contact_id="g-c1"), timeout=5, metadata=md),
            "SetAgentState": lambda md: stub.SetAgentState(routing_pb2.SetAgentStateRequest(
                tenant_id=g, agent_id="bob", state=agent_pb2.AGENT_STATE_LOGGED_OUT), timeout=5, metadata=md),
            "WatchAgents": lambda md: stub.WatchAgents(routing_pb2.WatchAgentsRequest(tenant_id=g, initial=True),
                                                       timeout=5, metadata=md),
        }
        assert {name: code_of(lambda f=f: f(bearer(ACME))) for name, f in foreign.items()} == \
            dict.fromkeys(foreign, grpc.StatusCode.PERMISSION_DENIED)
        # No token, an unknown token, a token without "Bearer", another tenant's token with a
        # character changed: UNAUTHENTICATED on every RPC.
        for md in ([], bearer("not-a-configured-token-123456"), [("authorization", GLOBEX)],
                   bearer(GLOBEX[:-1] + ("0" if GLOBEX[-1] != "0" else "1"))):
            assert {name: code_of(lambda f=f, md=md: f(md)) for name, f in foreign.items()} == \
                dict.fromkeys(foreign, grpc.StatusCode.UNAUTHENTICATED), md
        # globex's own token reads everything, and its watch stream opens with bob.
        watch = stub.WatchAgents(routing_pb2.WatchAgentsRequest(tenant_id=g, initial=True), timeout=5,
                                 metadata=bearer(GLOBEX))
        first = next(watch)
        watch.cancel()
        assert first.initial and first.agent.agent_id == "bob"
        # acme's token changes acme's agent.
        stub.SetAgentState(routing_pb2.SetAgentStateRequest(
            tenant_id="acme", agent_id="ann", state=agent_pb2.AGENT_STATE_NOT_READY, reason="break"),
            timeout=10, metadata=bearer(ACME))

        def ann_not_ready() -> None:
            info = stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id="acme", agent_id="ann"), timeout=5,
                                 metadata=bearer(ACME))
            assert info.state == agent_pb2.AGENT_STATE_NOT_READY

        eventually(ann_not_ready)
        # ...and nothing was published for globex by the refused SetAgentState: bob is as he was.
        bob = stub.GetAgent(routing_pb2.GetAgentRequest(tenant_id=g, agent_id="bob"), timeout=5,
                            metadata=bearer(GLOBEX))
        assert (bob.state, list(bob.active_contacts)) == (bob_before.state, ["g-c1"])
    # The operator's command line speaks TLS with a token too; without the token it says what is missing.
    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "agents", "--target", f"127.0.0.1:{svc.grpc_port}",
                               "--tenant", "acme", "--ca-file", str(pki.ca), *extra],
                              capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_GRPC")})
    ok = cli("--json", "--token", ACME)
    assert ok.returncode == 0, ok.stderr
    assert [a["agent_id"] for a in json.loads(ok.stdout)] == ["ann"]
    refused = cli()
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr and "--token" in refused.stderr
    denied = cli("--token", GLOBEX)
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr
    assert ACME not in ok.stderr + refused.stderr

    events = [agent_pb2.AgentEvent.FromString(m.value()) for m in read_all(broker.bootstrap, agents_topic)]
    assert sorted((e.envelope.tenant_id, e.WhichOneof("kind")) for e in events) == [
        ("acme", "login"), ("acme", "not_ready"), ("acme", "ready"), ("globex", "login"), ("globex", "ready")]

    # Transport: plaintext to the TLS port, or a client that trusts another CA, gets nowhere.
    with grpc.insecure_channel(f"127.0.0.1:{svc.grpc_port}") as plain:
        assert code_of(lambda: routing_pb2_grpc.RoutingServiceStub(plain).ListAgents(
            routing_pb2.ListAgentsRequest(tenant_id="acme"), timeout=5, metadata=bearer(ACME))) == \
            grpc.StatusCode.UNAVAILABLE
    with tls_channel(svc.grpc_port, pki.rogue_ca) as wrong_ca:
        assert code_of(lambda: routing_pb2_grpc.RoutingServiceStub(wrong_ca).ListAgents(
            routing_pb2.ListAgentsRequest(tenant_id="acme"), timeout=5, metadata=bearer(ACME))) == \
            grpc.StatusCode.UNAVAILABLE
    status, metrics = http_get(svc.metrics_url)
    assert status == 200
    # Refusals are counted by RPC and code (6 foreign calls with acme's token; 4 bad credentials x 6
    # RPCs; 2 from the CLI): a spike shows on a dashboard, never with a token in a label.
    denied_total = metric_value(metrics, "switchboard_grpc_auth_failures_total", code="PERMISSION_DENIED")
    assert denied_total == 6 + 1  # + the CLI with globex's token on acme
    assert metric_value(metrics, "switchboard_grpc_auth_failures_total", code="PERMISSION_DENIED",
                        method="WatchAgents", tenant="acme") == 1
    assert metric_value(metrics, "switchboard_grpc_auth_failures_total", code="UNAUTHENTICATED") == 4 * 6 + 1
    assert ACME not in metrics and GLOBEX not in metrics
    log = svc.log()
    assert ACME not in log and GLOBEX not in log  # tokens are never logged
    assert '"tls":true' in log and '"auth":true' in log
    assert svc.terminate() == 0


# -- survey ------------------------------------------------------------------------------------

def test_survey_scores_only_for_the_tokens_tenant(
        broker: BrokerHandle, service_env: dict[str, str], tmp_path: Path, pki: Pki) -> None:
    svc = started("survey", service_env, tmp_path, **secure_env(pki, tmp_path))
    with tls_channel(svc.grpc_port, pki.ca) as channel:
        stub = survey_pb2_grpc.SurveyServiceStub(channel)

        def scores(tenant: str, md: list[tuple[str, str]]) -> Any:
            return stub.GetScores(survey_pb2.GetScoresRequest(tenant_id=tenant), timeout=5, metadata=md)

        own = eventually(lambda: scores("acme", bearer(ACME)))
        assert own.tenant_id == "acme"
        assert code_of(lambda: scores("globex", bearer(ACME))) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: scores("acme", bearer(GLOBEX))) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: scores("acme", [])) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(lambda: scores("acme", bearer("x" * 40))) == grpc.StatusCode.UNAUTHENTICATED
        # An empty tenant_id is not a way around the check: the servicer's validation answers.
        assert code_of(lambda: scores("", bearer(ACME))) == grpc.StatusCode.INVALID_ARGUMENT
    assert svc.terminate() == 0


# -- ingestion: tokens from its tenants file and the shared file, over mutual TLS ---------------

def test_ingestion_over_mutual_tls_with_unified_tokens(
        broker: BrokerHandle, service_env: dict[str, str], tmp_path: Path, pki: Pki) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("tenants:\n  acme:\n    ingest_token_env: ACME_INGEST_TOKEN\n  globex: {}\n  initech: {}\n")
    initech = "initech-" + uuid.uuid4().hex
    env = secure_env(pki, tmp_path, mtls=True)
    # acme's token only in the tenants file's env var, globex's only in the shared tokens file.
    (tmp_path / "grpc-tokens").write_text(f"globex={GLOBEX}\n")
    svc = started("ingestion", service_env, tmp_path, SWITCHBOARD_TENANTS_FILE=str(tenants),
                  ACME_INGEST_TOKEN=ACME, SWITCHBOARD_GRPC_TOKENS=f"initech={initech}", **env)

    def event(tenant: str) -> ingest_pb2.IngestEvent:
        return ingest_pb2.IngestEvent(json=json.dumps(contact(tenant, f"c-{uuid.uuid4().hex[:6]}", "cust-1",
                                                              "arrived", voice={"from_number": "+14155550123"})))

    client = (pki.client_cert, pki.client_key)
    with tls_channel(svc.grpc_port, pki.ca, client) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        for tenant, token in (("acme", ACME), ("globex", GLOBEX), ("initech", initech)):
            reply = stub.Publish(ingest_pb2.PublishRequest(events=[event(tenant)]), timeout=30,
                                 metadata=bearer(token))
            assert (reply.accepted, reply.rejected) == (1, 0), tenant
        # acme's token cannot publish globex's contacts.
        reply = stub.Publish(ingest_pb2.PublishRequest(events=[event("globex")]), timeout=30, metadata=bearer(ACME))
        assert [(r.accepted, r.reason) for r in reply.results] == [(False, "tenant_mismatch")]
        assert code_of(lambda: stub.Publish(ingest_pb2.PublishRequest(events=[event("acme")]), timeout=10)) == \
            grpc.StatusCode.UNAUTHENTICATED
    # Mutual TLS: no client certificate, or one from another CA, is refused in the handshake.
    for cert in (None, (pki.rogue_client_cert, pki.rogue_client_key)):
        with tls_channel(svc.grpc_port, pki.ca, cert) as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            assert code_of(lambda stub=stub: stub.Publish(ingest_pb2.PublishRequest(events=[event("acme")]),
                                                          timeout=10, metadata=bearer(ACME))) == \
                grpc.StatusCode.UNAVAILABLE
    log = svc.log()
    assert '"mtls":true' in log and '"tenants_with_tokens":3' in log
    assert ACME not in log and GLOBEX not in log and initech not in log
    assert svc.terminate() == 0


def test_a_deployed_service_without_tls_or_tokens_does_not_start(
        service_env: dict[str, str], tmp_path: Path, pki: Pki) -> None:
    # Secure by default: without the dev opt-out, missing TLS or missing tokens is a config error.
    no_tls = start_service("survey", service_env, tmp_path, SWITCHBOARD_GRPC_INSECURE="false")
    assert no_tls.proc.wait(60) == 2
    assert "SWITCHBOARD_GRPC_TLS_CERT_FILE" in no_tls.log()
    (tmp_path / "b").mkdir()
    env = secure_env(pki, tmp_path)
    env.pop("SWITCHBOARD_GRPC_TOKENS_FILE")
    no_tokens = start_service("routing", service_env, tmp_path / "b", **env)
    assert no_tokens.proc.wait(60) == 2
    assert "SWITCHBOARD_GRPC_TOKENS_FILE" in no_tokens.log()


# -- the chart's generated certificate and tokens ----------------------------------------------

def test_the_charts_generated_certificate_and_tokens_serve_routing(
        helm: str, service_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    """What a first `helm install --set grpc.tokens.generate={acme}` mounts into routing: the chart's
    CA and certificate (helm genCA/genSignedCert) and one token per tenant, used by the real service;
    the certificate is valid for the Service's cluster DNS names."""
    import base64

    from tests.deploy.chart import one, render_docs

    docs = render_docs(helm, [], sets=("kafka.bootstrapServers=k:9092", "grpc.tokens.generate={acme,globex}"))
    tls = one(docs, "Secret", "sb-switchboard-grpc-tls")["data"]
    tokens = base64.b64decode(one(docs, "Secret", "sb-switchboard-grpc-tokens")["data"]["tokens"]).decode()
    files = {}
    for key, value in (*tls.items(), ("tokens", base64.b64encode(tokens.encode()).decode())):
        files[key] = tmp_path / key
        files[key].write_bytes(base64.b64decode(value))
    acme = dict(line.split("=", 1) for line in tokens.splitlines())["acme"]
    assert len(acme) == 40
    env = {"SWITCHBOARD_GRPC_INSECURE": "false", "SWITCHBOARD_GRPC_TLS_CERT_FILE": str(files["tls.crt"]),
           "SWITCHBOARD_GRPC_TLS_KEY_FILE": str(files["tls.key"]), "SWITCHBOARD_GRPC_TOKENS_FILE": str(files["tokens"])}
    svc = started("routing", service_env, tmp_path, **env)
    try:
        for name in ("sb-switchboard-routing.contact.svc", "sb-switchboard-routing.contact.svc.cluster.local",
                     "localhost"):
            creds = grpc.ssl_channel_credentials(root_certificates=files["ca.crt"].read_bytes())
            with grpc.secure_channel(f"127.0.0.1:{svc.grpc_port}", creds,
                                     options=[("grpc.ssl_target_name_override", name)]) as channel:
                stub = routing_pb2_grpc.RoutingServiceStub(channel)
                listed = stub.ListAgents(routing_pb2.ListAgentsRequest(tenant_id="acme"), timeout=10,
                                         metadata=bearer(acme))
                assert list(listed.agents) == [], name
                assert code_of(lambda s=stub: s.ListAgents(routing_pb2.ListAgentsRequest(tenant_id="acme"),
                                                           timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
        # `helm test` runs `switchboard check` with the same CA: ready over HTTP and SERVING over TLS.
        check = subprocess.run(
            [sys.executable, "-m", "services.cli", "check", "--ready", f"http://127.0.0.1:{svc.http_port}",
             "--grpc", f"127.0.0.1:{svc.grpc_port}", "--ca", str(files["ca.crt"]),
             "--server-name", "sb-switchboard-routing"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.splitlines() == [f"ok    http  http://127.0.0.1:{svc.http_port}  ready",
                                             f"ok    grpc  127.0.0.1:{svc.grpc_port}  SERVING"]
        wrong = subprocess.run(
            [sys.executable, "-m", "services.cli", "check", "--grpc", f"127.0.0.1:{svc.grpc_port}", "--ca",
             str(files["ca.crt"]), "--server-name", "example.com", "--timeout", "3"],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert wrong.returncode == 1 and wrong.stdout.startswith("FAIL  grpc"), wrong.stdout + wrong.stderr
        # A name the certificate is not for is refused by the client.
        creds = grpc.ssl_channel_credentials(root_certificates=files["ca.crt"].read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{svc.grpc_port}", creds,
                                 options=[("grpc.ssl_target_name_override", "example.com")]) as channel:
            assert code_of(lambda: routing_pb2_grpc.RoutingServiceStub(channel).ListAgents(
                routing_pb2.ListAgentsRequest(tenant_id="acme"), timeout=5,
                metadata=bearer(acme))) == grpc.StatusCode.UNAVAILABLE
    finally:
        assert svc.terminate() == 0
