"""The Helm chart: lint --strict, render over several values files, validate every manifest
offline against the Kubernetes schemas, and check what a platform team relies on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.common import topics
from services.common.config import KafkaSettings, ServiceSettings
from services.ingestion.config import IngestionConfig
from services.routing.queues import load_queues
from tests.deploy.chart import (
    CHART,
    FIXTURES,
    KUBE_VERSIONS,
    ROOT,
    VALUES_DIR,
    HelmError,
    by_kind,
    one,
    render_docs,
)

# Scenarios rendered from the chart as it is; "monitoring" needs rule files and runs on a copy.
SCENARIOS = ["default", "external-sasl-ssl", "strimzi", "strimzi-sandbox", "hpa-off"]
SERVICES = ["ingestion", "enrichment", "routing", "survey"]
# The least a render needs: the broker, and gRPC tokens (the chart makes them and the certificate).
BASE = ("kafka.bootstrapServers=k:9092", "grpc.tokens.generate={acme}")

# Prometheus Operator resources: no Kubernetes schema; checked against the structure below instead.
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {"type": "object", "required": ["name", "namespace"],
         "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 63},
                        "labels": _STR_MAP, "annotations": _STR_MAP}}


def _cr(spec: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {"metadata": _META, "spec": {"type": "object", "required": required or [], **spec}}}


CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _cr({"properties": {
        "selector": {"type": "object"},
        "namespaceSelector": {"type": "object"},
        "endpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["port"],
            "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                           "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                           "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}}}}}},
        ["selector", "endpoints"]),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _cr({"properties": {"groups": {
        "type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "rules"], "properties": {
                "name": {"type": "string"}, "rules": {"type": "array", "items": {
                    "type": "object", "required": ["expr"],
                    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                    "properties": {"expr": {"type": "string"}, "for": {"type": "string"},
                                   "labels": _STR_MAP, "annotations": _STR_MAP}}}}}}}},
        ["groups"]),
}


# The operators' own schemas, strict (tests/deploy/fixtures/crds/README.md): Strimzi 1.2.0 (v1 only)
# and Prometheus Operator v0.93.0.
# Not checked against the metaschema: Prometheus Operator writes Go regexes ('^(?i)(abort|warn)?$')
# that Python's re refuses; kubeconform (Go) checks them (tests/deploy/test_kubeconform.py).
OPERATOR_SCHEMAS = {
    (api, kind): jsonschema.Draft202012Validator(
        json.loads((FIXTURES / "crds" / f"{kind.lower()}_v1.json").read_text()))
    for api, kinds in (("kafka.strimzi.io/v1", ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")),
                       ("monitoring.coreos.com/v1", ("ServiceMonitor", "PrometheusRule")))
    for kind in kinds
}


def validate(doc: dict[str, Any], kube: str) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in OPERATOR_SCHEMAS:
        jsonschema.validate(doc["metadata"], _META)
        OPERATOR_SCHEMAS[key].validate(doc)
        if key in CRD_SCHEMAS:  # what the operator's schema leaves loose (a rule is a record or an alert)
            jsonschema.validate(doc, CRD_SCHEMAS[key])
    elif doc["apiVersion"].startswith("kafka.strimzi.io/"):
        pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {doc['apiVersion']} is not served by Strimzi 1.x "
                    "(v1 only)")
    else:
        kubernetes_validate.validate(doc, kube, strict=True)


def container(deploy: dict[str, Any]) -> dict[str, Any]:
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def plain_env(c: dict[str, Any]) -> dict[str, str]:
    """The container's env as the process would see it (secret references become placeholders)."""
    out = {}
    for name, e in env_of(c).items():
        out[name] = e["value"] if "value" in e else f"<from {next(iter(e['valueFrom']))}>"
    return out


def default_http_ports() -> dict[str, int]:
    ports = {}
    for svc in SERVICES:
        m = re.search(r"default_http_port=(\d+)", (ROOT / "services" / svc / "__main__.py").read_text())
        assert m, f"services/{svc}/__main__.py: no default_http_port"
        ports[svc] = int(m.group(1))
    return ports


# --- lint and schema validation -------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict(helm: str, scenario: str) -> None:
    for kube in KUBE_VERSIONS:
        proc = _run(helm, "lint", "--strict", "--kube-version", kube, "-f", str(VALUES_DIR / f"{scenario}.yaml"))
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_helm_lint_strict_with_monitoring_files(helm: str, chart_with_monitoring_files: Path) -> None:
    proc = _run(helm, "lint", "--strict", "-f", str(VALUES_DIR / "monitoring.yaml"), chart=chart_with_monitoring_files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS + ["monitoring"])
def test_every_manifest_valid_against_kubernetes_schemas(
    render: Any, chart_with_monitoring_files: Path, scenario: str, kube: str
) -> None:
    chart = chart_with_monitoring_files if scenario == "monitoring" else CHART
    docs = render(scenario, chart=chart, kube=kube)
    assert docs
    for doc in docs:
        try:
            validate(doc, kube)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc}")


def test_crd_structures_catch_mistakes() -> None:
    """The operators' schemas, made strict, reject what the operator would reject or silently drop."""
    topic = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic",
             "metadata": {"name": "contacts.inbound.v1", "namespace": "x"},
             "spec": {"topicName": "contacts.inbound.v1", "partitions": 12, "replicas": 3,
                      "config": {"retention.ms": "1"}}}
    validate(topic, KUBE_VERSIONS[-1])
    for broken in ({"partitions": "12"}, {"partition": 3}, {"replicas": 0}):
        bad = yaml.safe_load(yaml.safe_dump(topic))
        bad["spec"].update(broken)
        with pytest.raises(jsonschema.ValidationError):
            validate(bad, KUBE_VERSIONS[-1])
    user = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser", "metadata": {"name": "u", "namespace": "x"},
            "spec": {"authentication": {"type": "scram-sha-512"}, "authorization": {"type": "simple", "acls": [
                {"resource": {"type": "topic", "name": "t", "patternType": "literal"}, "operations": ["Read"]}]}}}
    validate(user, KUBE_VERSIONS[-1])
    user["spec"]["authorization"]["acls"][0]["operation"] = "Read"  # removed from v1: `operations` only
    with pytest.raises(jsonschema.ValidationError):
        validate(user, KUBE_VERSIONS[-1])
    with pytest.raises(pytest.fail.Exception):
        validate({**topic, "apiVersion": "kafka.strimzi.io/v1beta2"}, KUBE_VERSIONS[-1])
    with pytest.raises(kubernetes_validate.ValidationError):
        validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": 1}},
                 KUBE_VERSIONS[-1])


# --- workloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_run_non_root_read_only_with_writable_tmp(render: Any, scenario: str) -> None:
    docs = render(scenario)
    workloads = by_kind(docs, "Deployment") + by_kind(docs, "Job")
    assert workloads
    for w in workloads:
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1
            (vol,) = [v for v in pod["volumes"] if v["name"] == tmp[0]["name"]]
            assert "emptyDir" in vol
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_every_service_deployed_with_its_port_and_entry_point(render: Any) -> None:
    docs = render("default")
    ports = default_http_ports()
    for svc in SERVICES:
        d = one(docs, "Deployment", f"sb-switchboard-{svc}")
        c = container(d)
        assert c["command"] == ["python", "-m", f"services.{svc}"]
        http = {p["name"]: p["containerPort"] for p in c["ports"]}["http"]
        assert http == ports[svc]
        assert env_of(c)["SWITCHBOARD_HTTP_PORT"]["value"] == str(http)
        assert env_of(c)["SWITCHBOARD_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert (ROOT / "services" / svc / "__main__.py").is_file()
        # The env the chart renders is what the service's own config parser accepts.
        settings = ServiceSettings.from_env(svc, 0, env=plain_env(c))
        assert settings.http_port == http
        assert settings.kafka.bootstrap_servers == "kafka-0.kafka.svc:9092,kafka-1.kafka.svc:9092"


def test_probes_grpc_for_routing_http_for_workers(render: Any) -> None:
    # The kubelet's native gRPC probe cannot speak TLS: only plaintext routing gets it.
    tls = render("default")
    assert all(container(d)["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
               for d in by_kind(tls, "Deployment"))
    docs = render("default", sets=("grpc.insecure=true",))
    for svc in SERVICES:
        c = container(one(docs, "Deployment", f"sb-switchboard-{svc}"))
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        if svc == "routing":
            assert c["readinessProbe"]["grpc"] == {"port": ports["grpc"], "service": ""}
            assert "httpGet" not in c["readinessProbe"]
        else:
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # Each service's gRPC port reaches it through the env var its __main__ reads.
    for svc, var, port in (("routing", "ROUTING_GRPC_PORT", 50051), ("ingestion", "INGESTION_GRPC_PORT", 50052),
                           ("survey", "SURVEY_GRPC_PORT", 50053)):
        c = container(one(docs, "Deployment", f"sb-switchboard-{svc}"))
        assert {p["name"]: p["containerPort"] for p in c["ports"]}["grpc"] == port
        assert env_of(c)[var]["value"] == str(port)
        source = _service_source(svc)
        assert re.search(rf'"{var}"[^\n]*, {port}\b', source), f"services/{svc} does not read {var} (default {port})"


def test_services_select_their_pods_and_expose_named_ports(render: Any) -> None:
    docs = render("default")
    for svc in SERVICES:
        d = one(docs, "Deployment", f"sb-switchboard-{svc}")
        s = one(docs, "Service", f"sb-switchboard-{svc}")
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        assert s["spec"]["selector"].items() <= pod_labels.items()
        assert d["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        names = {p["name"] for p in container(d)["ports"]}
        assert {p["targetPort"] for p in s["spec"]["ports"]} == names
    grpc = [p for p in one(docs, "Service", "sb-switchboard-routing")["spec"]["ports"] if p["name"] == "grpc"]
    assert not [p for p in one(docs, "Service", "sb-switchboard-enrichment")["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc == [{"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP",
                     "appProtocol": "kubernetes.io/h2c"}]


def test_routing_queue_config_mounted_from_deploy_config(render: Any) -> None:
    docs = render("default")
    c = container(one(docs, "Deployment", "sb-switchboard-routing"))
    path = Path(env_of(c)["SWITCHBOARD_QUEUES_FILE"]["value"])
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "config"]
    assert path.parent == Path(mount["mountPath"]) and mount["readOnly"] is True
    cm = one(docs, "ConfigMap", "sb-switchboard-routing-config")
    assert cm["data"][path.name].strip() == (ROOT / "deploy" / "config" / "queues.yaml").read_text().strip()
    d = one(docs, "Deployment", "sb-switchboard-routing")
    assert d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


@pytest.mark.parametrize(("svc", "var", "file"), [
    ("routing", "SWITCHBOARD_QUEUES_FILE", "queues.yaml"),
    ("enrichment", "ENRICHMENT_RULES_FILE", "enrichment.yaml"),
    ("survey", "SURVEY_POLICY_FILE", "survey.yaml"),
])
def test_config_files_mounted_from_deploy_config(render: Any, svc: str, var: str, file: str) -> None:
    docs = render("default")
    c = container(one(docs, "Deployment", f"sb-switchboard-{svc}"))
    path = Path(env_of(c)[var]["value"])
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "config"]
    assert path == Path(mount["mountPath"]) / file and mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates (the services reload their files)"
    cm = one(docs, "ConfigMap", f"sb-switchboard-{svc}-config")
    assert cm["data"][file].strip() == (ROOT / "deploy" / "config" / file).read_text().strip()
    source = _service_source(svc)
    assert f'"{var}"' in source, f"services/{svc} does not read {var}"


def test_inline_config_content_is_what_routing_loads(render: Any, tmp_path: Path) -> None:
    docs = render("hpa-off")
    cm = one(docs, "ConfigMap", "sb-switchboard-routing-config")
    (tmp_path / "queues.yaml").write_text(cm["data"]["queues.yaml"])
    config = load_queues(str(tmp_path / "queues.yaml"))
    assert "acme" in config.tenants
    # The default file's checksum differs: changing the config rolls the pods.
    default = one(render("default"), "Deployment", "sb-switchboard-routing")
    mine = one(docs, "Deployment", "sb-switchboard-routing")
    assert (default["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            != mine["spec"]["template"]["metadata"]["annotations"]["checksum/config"])


def test_env_merges_defaults_service_and_extra(render: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render("hpa-off")
    ingestion = container(one(docs, "Deployment", "sb-switchboard-ingestion"))
    env = plain_env(ingestion)
    assert env["SWITCHBOARD_LOG_LEVEL"] == "DEBUG" and env["SWITCHBOARD_BATCH_SIZE"] == "200"
    assert env["SWITCHBOARD_TENANTS"] == "acme,globex" and env["INGESTION_MAX_PAYLOAD_BYTES"] == "131072"
    assert env["SWITCHBOARD_EXACTLY_ONCE"] == "false"
    assert "valueFrom" in env_of(ingestion)["OTEL_SERVICE_NAME"]
    assert len(env_of(ingestion)) == len(ingestion["env"]), "an env var is set twice"
    for name in [n for n in os.environ if n.startswith(("SWITCHBOARD_", "INGESTION_", "KAFKA_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if not value.startswith("<from"):
            monkeypatch.setenv(name, value)
    config = IngestionConfig.from_env()
    assert config.limits.max_payload_bytes == 131072 and config.limits.known_tenants == {"acme", "globex"}
    settings = ServiceSettings.from_env("ingestion", 0, env=env)
    assert settings.batch_size == 200 and settings.kafka.exactly_once is False
    # Only ingestion got the ingestion settings; survey is switched off.
    assert "SWITCHBOARD_TENANTS" not in plain_env(container(one(docs, "Deployment", "sb-switchboard-routing")))
    assert not [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("survey")]


def test_hpa_and_pdb_follow_values(render: Any) -> None:
    docs = render("default")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(docs, "HorizontalPodAutoscaler")}
    # Routing moves tenants' state on every rebalance: fixed replicas unless asked.
    assert set(hpas) == {f"sb-switchboard-{s}" for s in ("ingestion", "enrichment", "survey")}
    for d in by_kind(docs, "Deployment"):
        name = d["metadata"]["name"]
        assert ("replicas" in d["spec"]) == (name not in hpas), name
    for h in hpas.values():
        # More consumers than input partitions would sit idle.
        inputs = (topics.CONTACTS_INBOUND, topics.CONTACTS_NORMALIZED, topics.CONTACTS_LIFECYCLE)
        assert h["spec"]["maxReplicas"] <= min(t.partitions for t in inputs)
        assert h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert len(pdbs) == 4
    for p in pdbs:
        d = one(docs, "Deployment", p["metadata"]["name"])
        assert p["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()

    off = render("hpa-off")
    assert not by_kind(off, "HorizontalPodAutoscaler") and not by_kind(off, "PodDisruptionBudget")
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in by_kind(off, "Deployment")}
    assert replicas == {"sb-switchboard-ingestion": 4, "sb-switchboard-enrichment": 3, "sb-switchboard-routing": 3}
    assert {d["spec"]["template"]["spec"]["serviceAccountName"] for d in by_kind(off, "Deployment")} == {
        "contact-center"}
    assert not by_kind(off, "ServiceAccount") and not by_kind(off, "NetworkPolicy")


def test_network_policies_cover_every_pod(render: Any) -> None:
    docs = render("default")
    policies = by_kind(docs, "NetworkPolicy")
    for d in by_kind(docs, "Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        (np,) = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        ingress_ports = {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]}
        assert ingress_ports == {p["name"] for p in container(d)["ports"]}
        egress_ports = {p["port"] for rule in np["spec"]["egress"] for p in rule["ports"]}
        assert {53, 9092, 9093} <= egress_ports
    strimzi = render("strimzi")
    for np in by_kind(strimzi, "NetworkPolicy"):
        (kafka_rule,) = [r for r in np["spec"]["egress"] if "to" in r]
        assert kafka_rule["to"] == [{"podSelector": {"matchLabels": {
            "strimzi.io/cluster": "sb-kafka", "strimzi.io/kind": "Kafka"}}}]
    sasl = render("external-sasl-ssl")
    for np in by_kind(sasl, "NetworkPolicy"):
        (kafka_rule,) = [r for r in np["spec"]["egress"]
                         if "to" in r and {"port": 9096, "protocol": "TCP"} in r["ports"]]
        assert kafka_rule["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


# --- Kafka: external with secrets, Strimzi ------------------------------------------------------


def test_external_sasl_ssl_credentials_only_by_secret_reference(render: Any) -> None:
    docs = render("external-sasl-ssl")
    assert not by_kind(docs, "Secret"), "the chart never creates Secrets: credentials stay out of values"
    workloads = by_kind(docs, "Deployment") + by_kind(docs, "Job")
    assert len(workloads) == 5
    for w in workloads:
        pod = w["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = env_of(c)
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "switchboard-kafka-credentials", "key": "password"}
        assert env["KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"] == {
            "name": "switchboard-kafka-credentials", "key": "username"}
        for name, e in env.items():
            if re.search("PASSWORD|SECRET|TOKEN", name) and not name.endswith("_FILE"):  # a path is no secret
                assert "value" not in e, f"{name} inlined"
        (tls,) = [v for v in pod["volumes"] if v["name"] == "kafka-tls"]
        assert tls["secret"]["secretName"] == "switchboard-kafka-tls"
        (mount,) = [m for m in c["volumeMounts"] if m["name"] == "kafka-tls"]
        assert mount["readOnly"] is True
        for var, key in (("KAFKA_SSL_CA_LOCATION", "ca.crt"), ("KAFKA_SSL_CERTIFICATE_LOCATION", "tls.crt"),
                         ("KAFKA_SSL_KEY_LOCATION", "tls.key")):
            assert env[var]["value"] == f"{mount['mountPath']}/{key}"
        settings = KafkaSettings.from_env(plain_env(c))
        conf = settings.client_config()
        assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.mechanism"] == "SCRAM-SHA-512"
        assert settings.topic_prefix == "prod."
        assert pod["imagePullSecrets"] == [{"name": "registry-pull"}]
        # Enrichment runs its own image, the one with lingua (`make image` builds both).
        suffix = "-enrichment" if w["metadata"]["name"].endswith("-enrichment") else ""
        assert c["image"] == f"registry.example.com/contact/switchboard{suffix}:0.1.0-rc1"


def test_topics_job_runs_the_cli_before_the_services_or_beside_the_cluster(render: Any) -> None:
    (job,) = by_kind(render("default"), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["switchboard", "topics", "create"] and c["args"] == ["--replication-factor", "1"]
    (job,) = by_kind(render("external-sasl-ssl"), "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "--replication-factor", "3", "--partitions", "24"]
    # With Strimzi the cluster comes with the release: no hook (a post-install hook waits for the
    # pods to be ready, and they wait for the topics: `helm install --wait` deadlocked), one Job per
    # revision (a Job's template is immutable), running beside the cluster until the brokers answer.
    (job,) = by_kind(render("strimzi-sandbox"), "Job")
    assert "annotations" not in job["metadata"] and job["metadata"]["name"].endswith("-topics-r1")
    assert plain_env(job["spec"]["template"]["spec"]["containers"][0])["KAFKA_BOOTSTRAP_SERVERS"] == (
        "sandbox-kafka-bootstrap.contact.svc:9092")
    assert not by_kind(render("strimzi"), "Job")


def test_values_topics_match_topics_py() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    declared = [(t["name"], t["partitions"], t["config"]) for t in values["topics"]["declared"]]
    expected = [(t.name, t.partitions, t.config()) for t in topics.ALL_TOPICS]
    assert declared == expected, (
        "helm/switchboard/values.yaml topics.declared differs from services/common/topics.py: "
        "run python tools/helm_topics.py")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "helm_topics.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def kt_list(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_kind(docs, "KafkaTopic")


def test_strimzi_cluster_kraft_and_topics(render: Any) -> None:
    docs = render("strimzi")
    kafka = one(docs, "Kafka", "sb-kafka")
    assert "annotations" not in kafka["metadata"]  # node-pools and kraft: ignored since Strimzi 0.46
    assert "zookeeper" not in kafka["spec"]
    assert kafka["spec"]["kafka"]["version"].startswith("4.2.")  # 4.3: KAFKA-20734 (decision 0003)
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}
    config = kafka["spec"]["kafka"]["config"]
    assert config["auto.create.topics.enable"] == "false"
    assert config["transaction.state.log.replication.factor"] == "3" and config["min.insync.replicas"] == "2"
    assert config["log.retention.hours"] == "168"
    pool = one(docs, "KafkaNodePool", "sb-kafka-nodes")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "sb-kafka"
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"] and pool["spec"]["replicas"] == 3
    (volume,) = pool["spec"]["storage"]["volumes"]
    assert volume["size"] == "50Gi" and volume["class"] == "fast-ssd"
    user = one(docs, "KafkaUser", "switchboard")
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    acls = user["spec"]["authorization"]["acls"]
    by_topic = {a["resource"]["name"]: a["operations"] for a in acls if a["resource"]["type"] == "topic"}
    assert set(by_topic) == {t.name for t in topics.ALL_TOPICS}  # this scenario has no topic prefix
    assert all(ops == ["Describe", "DescribeConfigs", "Read", "Write"] for ops in by_topic.values())  # no Create
    assert {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]): a["operations"]
            for a in acls if a["resource"]["type"] != "topic"} == {
        ("group", "switchboard-", "prefix"): ["Describe", "Read"],
        ("transactionalId", "switchboard-", "prefix"): ["Describe", "Write"]}
    # Every group and transactional id the services use falls under those prefixes.
    settings = ServiceSettings.from_env("routing", 0, {"KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    assert settings.group_id.startswith("switchboard-")
    ids = [m.group(1) for source in ("services/common/kafka.py", "services/common/reader.py",
                                     "services/routing/state.py")
           for m in re.finditer(r'(?:"group\.id": |self\.transactional_id = \(\s*)f"([^"]*)"',
                                (ROOT / source).read_text())]
    assert len(ids) == 3 and all(re.match(r"\{(settings\.)?kafka\.topic_prefix\}switchboard-", i) for i in ids), ids
    # helm uninstall keeps the topics (and the state in the compacted ones).
    assert all(t["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for t in kt_list(docs))

    kt = {t["spec"]["topicName"]: t for t in by_kind(docs, "KafkaTopic")}
    assert set(kt) == {t.name for t in topics.ALL_TOPICS}
    for t in topics.ALL_TOPICS:
        spec = kt[t.name]["spec"]
        assert kt[t.name]["metadata"]["labels"]["strimzi.io/cluster"] == "sb-kafka"
        assert spec["partitions"] == t.partitions and spec["replicas"] == 3
        assert spec["config"]["cleanup.policy"] == t.config()["cleanup.policy"]
        assert spec["config"]["min.insync.replicas"] == "2"
    # Routing's inputs stay co-partitioned.
    assert kt[topics.CONTACTS_ENRICHED.name]["spec"]["partitions"] == kt[topics.AGENTS_EVENTS.name]["spec"][
        "partitions"]

    for d in by_kind(docs, "Deployment"):
        c = container(d)
        env = env_of(c)
        assert env["KAFKA_BOOTSTRAP_SERVERS"]["value"] == "sb-kafka-kafka-bootstrap.contact.svc:9093"
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "switchboard", "key": "password"}
        (tls,) = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "kafka-tls"]
        assert tls["secret"]["secretName"] == "sb-kafka-cluster-ca-cert"
        assert KafkaSettings.from_env(plain_env(c)).security_protocol == "SASL_SSL"


def test_strimzi_sandbox_one_node(render: Any) -> None:
    docs = render("strimzi-sandbox")
    kafka = one(docs, "Kafka", "sandbox")
    config = kafka["spec"]["kafka"]["config"]
    assert config["offsets.topic.replication.factor"] == "1" and config["min.insync.replicas"] == "1"
    assert one(docs, "KafkaNodePool", "sandbox-nodes")["spec"]["storage"] == {"type": "ephemeral"}
    assert not by_kind(docs, "KafkaTopic") and not by_kind(docs, "KafkaUser")
    for d in by_kind(docs, "Deployment"):
        env = plain_env(container(d))
        assert env["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT" and env["SWITCHBOARD_TOPIC_PREFIX"] == "sandbox_"
        assert d["spec"]["replicas"] == 1


# --- monitoring -----------------------------------------------------------------------------------


def test_monitoring_renders_from_dropped_files(render: Any, chart_with_monitoring_files: Path) -> None:
    docs = render("monitoring", chart=chart_with_monitoring_files)
    sm = one(docs, "ServiceMonitor", "sb-switchboard")
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"
    services = by_kind(docs, "Service")
    assert len(services) == 4
    for s in services:
        labels = s["metadata"]["labels"]
        assert sm["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (expr,) = sm["spec"]["selector"]["matchExpressions"]
        assert labels[expr["key"]] in expr["values"]
        assert "http" in {p["name"] for p in s["spec"]["ports"]}

    rule = one(docs, "PrometheusRule", "sb-switchboard")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == yaml.safe_load((FIXTURES / "rules.yaml").read_text())["groups"]

    (dash,) = [d for d in by_kind(docs, "ConfigMap") if "dashboard" in d["metadata"]["name"]]
    assert dash["metadata"]["name"] == "sb-switchboard-dashboard-fixture-dashboard"
    assert dash["metadata"]["namespace"] == "grafana"
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert yaml.safe_load(dash["data"]["fixture_dashboard.json"]) == yaml.safe_load(
        (FIXTURES / "fixture_dashboard.json").read_text())


def test_monitoring_renders_the_real_rules_and_dashboards(render: Any) -> None:
    """The chart as shipped: the PrometheusRule holds deploy/prometheus/rules.yaml's groups, one
    ConfigMap per dashboard, and the ServiceMonitor keeps our `service` label (honorLabels)."""
    docs = render("monitoring")
    rule = one(docs, "PrometheusRule", "sb-switchboard")
    rules = CHART.parents[1] / "deploy" / "prometheus" / "rules.yaml"
    assert rule["spec"]["groups"] == yaml.safe_load(rules.read_text())["groups"]
    dashboards = [d for d in by_kind(docs, "ConfigMap") if "dashboard" in d["metadata"]["name"]]
    assert sorted(k for d in dashboards for k in d["data"]) == [
        "switchboard-history.json", "switchboard-platform.json", "switchboard-supervisor.json"]
    (endpoint,) = one(docs, "ServiceMonitor", "sb-switchboard")["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
    # the job the alert rules select (up{job="switchboard"}), as in the compose scrape config
    assert endpoint["relabelings"] == [{"targetLabel": "job", "replacement": "switchboard"}]


def test_runbook_links_point_where_the_values_say(render: Any) -> None:
    def links(docs: list[dict[str, Any]]) -> dict[str, str]:
        rule = one(docs, "PrometheusRule", "sb-switchboard")
        return {r["alert"]: r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]
                if "alert" in r}

    shipped = links(render("monitoring"))
    moved = links(render("monitoring", sets=("monitoring.prometheusRule.runbookBaseUrl=https://wiki.example.org/sb/",)))
    assert shipped and set(moved) == set(shipped)
    for alert, url in shipped.items():
        name = url.rsplit("/", 1)[1]
        assert url == f"https://github.com/example/switchboard/blob/main/docs/runbooks/{name}"
        assert moved[alert] == f"https://wiki.example.org/sb/{name}"


def test_prometheus_rule_without_rule_files_fails_clearly(helm: str, tmp_path: Path) -> None:
    chart = tmp_path / "switchboard"
    shutil.copytree(CHART, chart, symlinks=False)
    for f in (chart / "files" / "prometheus").glob("*.yaml"):
        f.unlink()
    with pytest.raises(HelmError, match=re.escape("no files/prometheus/")):
        render_docs(helm, [], chart=chart,
                    sets=(*BASE, "monitoring.prometheusRule.enabled=true"))


def test_monitoring_off_by_default(render: Any) -> None:
    kinds = {d["kind"] for d in render("default")}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}


# --- bad values fail with a clear message -----------------------------------------------------------


@pytest.mark.parametrize(("sets", "message"), [
    ((), "kafka.bootstrapServers is required"),
    ((*BASE, "kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN",
      "kafka.sasl.username=u"), "needs kafka.sasl.existingSecret"),
    ((*BASE, "kafka.securityProtocol=SASL_SSL", "kafka.sasl.existingSecret=s",
      "kafka.sasl.username=u"), "needs kafka.sasl.mechanism"),
    ((*BASE, "kafka.securityProtocol=SSL", "kafka.tls.existingSecret=t",
      "kafka.tls.certKey=tls.crt"), "certKey and kafka.tls.keyKey go together"),
    # Enums are the schema's (values.schema.json): it names the value and the choices.
    ((*BASE, "kafka.securityProtocol=TLS"), "at '/kafka/securityProtocol': value must be one of 'PLAINTEXT', 'SSL'"),
    ((*BASE, "topics.provisioner=strimzi"), "topics.provisioner=strimzi needs"),
    (("kafka.mode=strimzi", "kafka.strimzi.listener=scram", "grpc.insecure=true"),
     "at '/kafka/strimzi/listener': value must be one of 'plain', 'tls'"),
    # gRPC without tokens (or TLS) would leave routing, ingestion and survey exiting 2 in a crash loop.
    (("kafka.bootstrapServers=k:9092",), "gRPC needs per-tenant tokens: set grpc.tokens.generate"),
    ((*BASE, "grpc.tls.generate=false"), "gRPC needs TLS: set grpc.tls.existingSecret"),
])
def test_bad_values_fail_with_a_clear_message(helm: str, sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(HelmError, match=re.escape(message)):
        render_docs(helm, [], sets=sets)


def _run(helm: str, *args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args, str(chart)], capture_output=True, text=True, timeout=120)


def _service_source(svc: str) -> str:
    """The service's own modules (its main, settings and config), where it reads its variables."""
    return "".join(p.read_text() for p in sorted((ROOT / "services" / svc).glob("*.py")))


def test_helm_renders_without_a_kube_version_flag(helm: str) -> None:
    """`make helm` and the docs' commands pass no --kube-version: the pinned helm is built to assume
    a current Kubernetes (a bare `go install` assumes 1.20, which the chart refuses)."""
    proc = subprocess.run([helm, "template", "sb", str(CHART), *[a for s in BASE for a in ("--set", s)]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kind: Deployment" in proc.stdout


def test_the_makefile_builds_helm_as_the_tests_do() -> None:
    from tests.deploy.chart import DEFAULT_KUBE, HELM_VERSION

    makefile = (CHART.parents[1] / "Makefile").read_text()
    assert re.search(rf"^KUBE_VERSION := {re.escape(DEFAULT_KUBE)}$", makefile, re.M)
    assert re.search(rf"^HELM_VERSION := {re.escape(HELM_VERSION)}$", makefile, re.M)
    for var in ("internal/version.version", "chartutil.k8sVersionMinor", "lint/rules.k8sVersionMinor"):
        assert var in makefile


def test_chart_metadata_changelog_and_artifact_hub_agree() -> None:
    """The chart as a product: its version has a changelog entry, Artifact Hub's `changes` list one
    item per entry of it, and the image it advertises is the one it deploys by default."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    log = (CHART / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", log, re.M | re.S)
    assert sections and sections[0][0] == chart["version"], "CHANGELOG.md's first entry is not Chart.yaml's version"
    entries = re.findall(r"^- \*\*(Added|Changed|Deprecated|Removed|Fixed|Security)\*\*", sections[0][1], re.M)
    notes = chart["annotations"]
    changes = yaml.safe_load(notes["artifacthub.io/changes"])
    assert sorted(c["kind"] for c in changes) == sorted(e.lower() for e in entries)
    assert all(c["kind"] in {"added", "changed", "deprecated", "removed", "fixed", "security"} for c in changes)
    images = {i["image"] for i in yaml.safe_load(notes["artifacthub.io/images"])}
    repo = values["image"]["repository"]
    assert images == {f"{repo}:{chart['appVersion']}", f"{repo}-enrichment:{chart['appVersion']}"}
    assert notes["artifacthub.io/prerelease"] == str(chart["version"].startswith("0.")).lower()
    assert (CHART / "README.md").is_file()


def test_tracing_sets_the_otel_env_and_opens_egress_to_the_receiver_only_when_configured(render: Any) -> None:
    for name, docs in (("default", render("default")), ("external-sasl-ssl", render("external-sasl-ssl"))):
        on = name != "default"
        for dep in by_kind(docs, "Deployment"):
            env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert ("OTEL_EXPORTER_OTLP_ENDPOINT" in env) is on, (name, dep["metadata"]["name"])
            if on:
                assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4317"
                assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
                assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.1"
                assert env["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"] == {
                    "name": "otlp-headers", "key": "headers"}
        for np in by_kind(docs, "NetworkPolicy"):
            rules = [r for r in np["spec"].get("egress", []) if {"port": 4317, "protocol": "TCP"} in r.get("ports", [])]
            assert len(rules) == (1 if on else 0), (name, np["metadata"]["name"])
            if on:
                assert rules[0]["to"] == [{"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": "observability"}}}]


def test_a_tracing_endpoint_without_scheme_or_a_bad_ratio_is_refused(helm: str) -> None:
    for bad in ("tracing.otlpEndpoint=otel-collector:4317", "tracing.samplerArg=1.5", "tracing.sampler=sometimes"):
        proc = _run(helm, "template", "x", "--kube-version", KUBE_VERSIONS[-1],
                    "--set", "grpc.insecure=true", "--set", bad)
        assert proc.returncode != 0 and "tracing" in proc.stderr, (bad, proc.stderr[-500:])
