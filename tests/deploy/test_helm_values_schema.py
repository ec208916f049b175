"""The chart's values are checked before anything renders: values.schema.json (types, enums, no
unknown keys in a fixed set) and templates/validate.yaml (replicas against partitions). And the
chart README's values table is what tools/helm_values_doc.py generates."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from services.common import topics
from tests.deploy.chart import CHART, KUBE_VERSIONS, ROOT, VALUES_DIR, HelmError, by_kind, one, render_docs

SCHEMA = CHART / "values.schema.json"
SCENARIOS = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))
BOOTSTRAP = "kafka.bootstrapServers=k:9092"
# What a production install sets: Kafka, and the gRPC certificate and tokens from Secrets.
BASE = (BOOTSTRAP, "grpc.tls.existingSecret=sb-grpc-tls", "grpc.tokens.existingSecret=sb-grpc-tokens")
SCHEMA_ERROR = "values don't meet the specifications of the schema(s)"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("helm_values_doc", ROOT / "tools" / "helm_values_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


doc = _tool()


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())


def _helm(helm: str, *args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args, str(chart)], capture_output=True, text=True, timeout=120)


def _lint(helm: str, *sets: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    args = ["lint", "--strict"]
    for s in sets:
        args += ["--set", s]
    return _helm(helm, *args, chart=chart)


def _refused(helm: str, sets: tuple[str, ...]) -> str:
    """helm template and helm lint both fail; their output (the template's error, then lint's)."""
    with pytest.raises(HelmError) as err:
        render_docs(helm, [], sets=sets)
    lint = _lint(helm, *sets)
    assert lint.returncode != 0, lint.stdout
    return f"{err.value}\n--- helm lint:\n{lint.stdout}"


# --- the scenarios still pass -------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_lints_and_renders_under_the_schema(helm: str, scenario: str) -> None:
    path = VALUES_DIR / f"{scenario}.yaml"
    for kube in KUBE_VERSIONS:
        proc = _helm(helm, "lint", "--strict", "--kube-version", kube, "-f", str(path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert by_kind(render_docs(helm, [path]), "Deployment")


def test_values_yaml_is_valid_draft_07_for_another_validator() -> None:
    """The schema is plain draft-07 (every Helm 3 validates it) and values.yaml meets it."""
    schema = _schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(_values())
    for path in VALUES_DIR.glob("*.yaml"):
        merged = copy.deepcopy(_values())
        _merge(merged, yaml.safe_load(path.read_text()))
        jsonschema.Draft7Validator(schema).validate(merged)


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


# --- what the schema refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "parent", "key"), [
    ("defaults.autoscalng.enabled=false", "/defaults", "autoscalng"),
    ("services.routng.replicas=3", "/services", "routng"),
    ("services.routing.autoscaling.maxReplica=3", "/services/routing/autoscaling", "maxReplica"),
    ("services.survey.probes.readiness.periodSecond=5", "/services/survey/probes/readiness", "periodSecond"),
    ("kafka.sasl.mechansim=PLAIN", "/kafka/sasl", "mechansim"),
    ("kafka.strimzi.storage.sise=1Ti", "/kafka/strimzi/storage", "sise"),
    ("topics.job.replicationFactr=3", "/topics/job", "replicationFactr"),
    ("grpc.tls.existingSecrets=x", "/grpc/tls", "existingSecrets"),
    ("monitoring.serviceMonitor.enable=true", "/monitoring/serviceMonitor", "enable"),
    ("services.routing.configFiles.queues\\.yaml.contents=x", "/services/routing/configFiles/queues.yaml", "contents"),
    ("imageTag=1", "", "imageTag"),
])
def test_a_misspelt_key_fails_lint_and_template_naming_it(helm: str, setting: str, parent: str, key: str) -> None:
    template, lint = _refused(helm, (*BASE, setting)).split("--- helm lint:")
    for message in (template, lint):
        assert SCHEMA_ERROR in message
        assert f"at '{parent}'" in message and f"additional properties '{key}' not allowed" in message, message


@pytest.mark.parametrize(("sets", "expected"), [
    (("defaults.replicas=abc",), "at '/defaults/replicas': got string, want integer"),
    (("services.routing.replicas=two",), "at '/services/routing/replicas': got string, want integer"),
    (("defaults.replicas=-1",), "at '/defaults/replicas': minimum: got -1, want 0"),
    (("defaults.autoscaling.minReplicas=0",), "at '/defaults/autoscaling/minReplicas': minimum: got 0, want 1"),
    (("topics.partitions=-3",), "at '/topics/partitions': minimum: got -3, want 0"),
    # a number would render as the image "switchboard:%!s(int64=20240101)"
    (("image.tag=20240101",), "at '/image/tag': got number, want string"),
    (("networkPolicy.kafkaPorts={9092,70000}",), "at '/networkPolicy/kafkaPorts/1': maximum: got 70,000, want 65,535"),
    (("defaults.tmpSizeLimit=lots",), "at '/defaults/tmpSizeLimit'"),
    (("kafka.exactlyOnce=yes",), "at '/kafka/exactlyOnce': got string, want boolean"),
    (("monitoring.serviceMonitor.interval=15 seconds",), "at '/monitoring/serviceMonitor/interval'"),
    (("services.ingestion.configFiles.tenants\\.yaml.content=x",),
     "at '/services/ingestion/configFiles/tenants.yaml': missing property 'env'"),
])
def test_a_wrong_type_fails(helm: str, sets: tuple[str, ...], expected: str) -> None:
    message = _refused(helm, (*BASE, *sets))
    assert SCHEMA_ERROR in message and expected in message, message


@pytest.mark.parametrize(("key", "value", "choices"), [
    ("kafka.mode", "kraft", "'external', 'strimzi'"),
    ("kafka.securityProtocol", "TLS", "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'"),
    ("kafka.sasl.mechanism", "SCRAM", "'', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'"),
    ("kafka.strimzi.listener", "scram", "'plain', 'tls'"),
    ("kafka.strimzi.storage.type", "jbod", "'persistent-claim', 'ephemeral'"),
    ("topics.provisioner", "operator", "'auto', 'job', 'strimzi', 'none'"),
    ("image.pullPolicy", "always", "'Always', 'IfNotPresent', 'Never'"),
    ("service.type", "ExternalName", "'ClusterIP', 'NodePort', 'LoadBalancer'"),
])
def test_a_value_outside_its_choices_fails(helm: str, key: str, value: str, choices: str) -> None:
    message = _refused(helm, (*BASE, f"{key}={value}"))
    assert f"at '/{key.replace('.', '/')}': value must be one of {choices}" in message, message


def test_a_service_takes_every_key_of_defaults(helm: str) -> None:
    schema = _schema()
    defs = schema["definitions"]
    shared = set(defs["workload"]["properties"])
    own = set(defs["service"]["properties"]) - shared
    assert own == {"enabled", "ports", "grpcPortEnv", "grpcProbe", "imageSuffix"}
    for key in shared:
        assert defs["service"]["properties"][key] == {"$ref": f"#/definitions/workload/properties/{key}"}, key
    assert set(schema["properties"]["services"]["properties"]) == set(_values()["services"])
    # ... and the chart applies one
    docs = render_docs(helm, [], sets=(*BASE, "services.enrichment.autoscaling.enabled=false",
                                       "services.enrichment.replicas=5", "services.enrichment.tmpSizeLimit=3Gi"))
    d = one(docs, "Deployment", "sb-switchboard-enrichment")
    assert d["spec"]["replicas"] == 5
    (tmp,) = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["sizeLimit"] == "3Gi"


# --- replicas against partitions (templates/validate.yaml) -------------------------------------------


@pytest.mark.parametrize(("sets", "message"), [
    (("services.routing.replicas=13",),
     "services.routing.replicas=13: routing would run more consumers than the 12 partitions of "
     "contacts.enriched.v1, which it consumes"),
    (("defaults.autoscaling.maxReplicas=7",),
     "defaults.autoscaling.maxReplicas=7: survey would run more consumers than the 6 partitions of "
     "surveys.responses.v1, which it consumes"),
    (("services.ingestion.autoscaling.maxReplicas=13",),
     "services.ingestion.autoscaling.maxReplicas=13: ingestion would run more consumers than the 12 partitions of "
     "contacts.inbound.v1"),
    (("defaults.autoscaling.enabled=false", "defaults.replicas=8"),
     "defaults.replicas=8: survey would run more consumers than the 6 partitions of surveys.responses.v1"),
    # one count for every topic: the declared ones no longer apply
    (("topics.partitions=4", "defaults.autoscaling.maxReplicas=4", "services.routing.replicas=5"),
     "services.routing.replicas=5: routing would run more consumers than the 4 partitions of contacts.enriched.v1"),
    (("services.survey.autoscaling.minReplicas=5", "services.survey.autoscaling.maxReplicas=4"),
     "services.survey: autoscaling.minReplicas=5 is above autoscaling.maxReplicas=4"),
])
def test_replicas_above_a_topics_partitions_are_refused(helm: str, sets: tuple[str, ...], message: str) -> None:
    template, lint = _refused(helm, (*BASE, *sets)).split("--- helm lint:")
    assert message in template and message in lint, template + lint
    error = template
    assert "topics.partitions" in error or "minReplicas" in message


@pytest.mark.parametrize("sets", [
    ("services.survey.autoscaling.maxReplicas=6", "services.routing.replicas=12"),  # equal is fine
    ("topics.partitions=24", "defaults.autoscaling.maxReplicas=24", "services.routing.replicas=24"),
    ("services.survey.enabled=false", "defaults.autoscaling.maxReplicas=12"),  # survey is not deployed
    ("services.ingestion.replicas=40",),  # autoscaling on: the HPA decides, replicas is not rendered
    ("services.routing.replicas=0",),
])
def test_replicas_within_the_partitions_render(helm: str, sets: tuple[str, ...]) -> None:
    assert by_kind(render_docs(helm, [], sets=(*BASE, *sets)), "Deployment")


def _consumed_by_chart() -> dict[str, list[str]]:
    text = (CHART / "templates" / "validate.yaml").read_text()
    block = re.search(r"\$consumes := dict(.*?)-\}\}", text, re.S)
    assert block, "templates/validate.yaml: no $consumes map"
    return {name: re.findall(r'"([^"]+)"', names)
            for name, names in re.findall(r'"(\w+)" \(list ([^)]*)\)', block.group(1))}


def _stream_loop_topics(service: str) -> list[str]:
    """The topic constants of services/<service>/__main__.py's StreamLoop(settings, [topics], ...):
    a k.topic(topics.X.name) call, a variable assigned one, or a keyword argument given one."""
    tree = ast.parse((ROOT / "services" / service / "__main__.py").read_text())

    def constant(node: ast.AST) -> str | None:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "topic"
                and node.args and isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "name"
                and isinstance(node.args[0].value, ast.Attribute)):
            return node.args[0].value.attr
        return None

    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if (c := constant(node.value)) is not None:
                bound[node.targets[0].id] = c
        elif isinstance(node, ast.keyword) and node.arg and (c := constant(node.value)) is not None:
            bound[node.arg] = c
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "StreamLoop"]
    assert len(loops) == 1, f"services/{service}/__main__.py: expected one StreamLoop(...)"
    listed = loops[0].args[1]
    assert isinstance(listed, ast.List), f"services/{service}/__main__.py: StreamLoop's topics are not a list"
    out = []
    for elt in listed.elts:
        name = constant(elt) or (bound.get(elt.id) if isinstance(elt, ast.Name) else None) or (
            bound.get(elt.attr) if isinstance(elt, ast.Attribute) else None)
        assert name, f"services/{service}/__main__.py: cannot tell which topic {ast.unparse(elt)} is"
        out.append(getattr(topics, name).name)
    return out


def test_validate_yaml_knows_the_topics_each_service_consumes() -> None:
    chart = _consumed_by_chart()
    assert set(chart) == set(_values()["services"])
    declared = {t["name"] for t in _values()["topics"]["declared"]}
    for service, names in chart.items():
        assert names == _stream_loop_topics(service), (
            f"templates/validate.yaml's $consumes for {service} differs from services/{service}/__main__.py")
        assert set(names) <= declared


# --- every key typed and described; the README table ---------------------------------------------------


def test_the_schema_covers_every_key_of_values_yaml() -> None:
    assert doc.uncovered(_values(), _schema()) == [], "add the keys to helm/switchboard/values.schema.json"


def test_a_key_without_a_schema_entry_is_caught(helm: str, tmp_path: Path) -> None:
    values = _values()
    values["topics"]["newKey"] = 1
    values["kafka"]["strimzi"]["newKey"] = "x"
    values["services"]["routing"]["newKey"] = True
    values["defaults"]["env"]["ANY_NAME"] = "1"  # an open map: any key
    assert sorted(doc.uncovered(values, _schema())) == [
        "kafka.strimzi.newKey: not in values.schema.json", "services.routing.newKey: not in values.schema.json",
        "topics.newKey: not in values.schema.json"]
    # helm itself refuses the chart's own values.yaml then
    chart = tmp_path / "switchboard"
    shutil.copytree(CHART, chart, symlinks=False)
    (chart / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    proc = _lint(helm, *BASE, chart=chart)
    assert proc.returncode != 0 and "additional properties 'newKey' not allowed" in proc.stdout, proc.stdout


def test_every_schema_property_has_a_description() -> None:
    assert doc.undescribed(_schema()) == []
    broken = _schema()
    broken["properties"]["kafka"]["properties"]["mode"].pop("description")
    broken["definitions"]["probeTiming"]["properties"]["periodSeconds"].pop("description")
    assert sorted(doc.undescribed(broken)) == [
        "#/definitions/probeTiming/properties/periodSeconds", "#/properties/kafka/properties/mode"]


# The maps of values.yaml that take any key: what goes to Kubernetes or Kafka as it is, env, config
# files by name. Every other object of values.yaml has a fixed set of keys. ([] is a list's items.)
OPEN_MAPS = [
    "kafka.strimzi.resources", "kafka.strimzi.config", "topics.config", "topics.job.resources", "tests.resources",
    "topics.declared[].config", "serviceAccount.annotations", "defaults.env", "defaults.resources",
    "defaults.autoscaling.behavior", "defaults.podSecurityContext", "defaults.securityContext",
    "defaults.podAnnotations", "defaults.podLabels", "defaults.nodeSelector", "defaults.affinity",
    "defaults.configFiles", "services.*.env", "services.*.resources", "services.*.configFiles",
    "service.annotations", "networkPolicy.*[]", "monitoring.*.labels",
]


def test_every_object_with_fixed_keys_refuses_unknown_ones() -> None:
    schema = _schema()
    patterns = [re.compile("".join("[^.]+" if c == "*" else re.escape(c) for c in p)) for p in OPEN_MAPS]
    seen: set[str] = set()

    def walk(path: str, value: Any, frags: list[dict[str, Any]]) -> None:
        if isinstance(value, list):
            items = doc.first(frags, "items")
            for item in value:
                walk(f"{path}[]", item, doc.fragments(schema, items))
            return
        if not isinstance(value, dict):
            return
        matched = [p.pattern for p in patterns if p.fullmatch(path)]
        if matched:
            seen.update(matched)
            assert not doc.closed(frags), f"{path}: a free-form map, yet the schema refuses unknown keys"
            return
        assert doc.closed(frags), f"{path}: keys are fixed, but values.schema.json takes any (additionalProperties)"
        for key, sub in value.items():
            walk(f"{path}.{key}" if path else key, sub, doc.child(schema, frags, key))

    walk("", _values(), [schema])
    assert len(seen) == len(OPEN_MAPS), "an OPEN_MAPS entry matches nothing in values.yaml"


def test_the_readme_values_table_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "helm_values_doc.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    readme = (CHART / "README.md").read_text()
    for row in doc.rows(_values(), _schema()):
        assert f"| `{row.path}` |" in readme


def test_the_readme_table_follows_values_yaml() -> None:
    """A changed default or description changes the table (the check above can fail)."""
    values = _values()
    values["defaults"]["replicas"] = 5
    schema = _schema()
    schema["properties"]["kafka"]["properties"]["mode"]["description"] = "Where Kafka is."
    table = doc.table(values, schema)
    assert "| `defaults.replicas` | integer ≥ 0 | `5` |" in table
    assert "| `kafka.mode` | `external` \\| `strimzi` | `external` | Where Kafka is. |" in table
    assert table != doc.table(_values(), _schema())


# --- helm install refuses too, before it touches the cluster ------------------------------------------


class _FakeApiServer(BaseHTTPRequestHandler):
    """Just enough of a Kubernetes API for helm install to reach its values checks: discovery and
    an empty release history. Anything else is recorded and refused."""

    writes: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        bodies = {"/version": {"major": "1", "minor": KUBE_VERSIONS[-1].split(".")[1],
                               "gitVersion": f"v{KUBE_VERSIONS[-1]}"},
                  "/api": {"kind": "APIVersions", "versions": ["v1"]},
                  "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}}
        body = bodies.get(path)
        if body is None and path.endswith("/secrets"):
            body = {"kind": "SecretList", "apiVersion": "v1", "items": []}
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def _write(self) -> None:
        self.writes.append(f"{self.command} {self.path}")
        self.send_response(403)
        self.end_headers()

    do_POST = do_PUT = do_PATCH = do_DELETE = _write


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApiServer)
    _FakeApiServer.writes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "users": [{"name": "fake", "user": {}}]}))
    yield path
    server.shutdown()
    thread.join()


@pytest.mark.parametrize(("sets", "message"), [
    (("defaults.autoscalng.enabled=false",), "additional properties 'autoscalng' not allowed"),
    (("defaults.replicas=abc",), "at '/defaults/replicas': got string, want integer"),
    (("services.routing.replicas=13",), "services.routing.replicas=13: routing would run more consumers"),
])
def test_helm_install_refuses_before_writing_anything(helm: str, kubeconfig: Path, sets: tuple[str, ...],
                                                      message: str) -> None:
    args = ["install", "sb", "-n", "contact"]
    for s in (*BASE, *sets):
        args += ["--set", s]
    proc = subprocess.run([helm, *args, str(CHART)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    assert proc.returncode != 0
    assert "INSTALLATION FAILED" in proc.stderr and message in proc.stderr, proc.stderr
    assert _FakeApiServer.writes == []
