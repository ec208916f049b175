"""The independent check: every rendered manifest through kubeconform (Go, its own JSON Schema
validator), offline and strict, against the Kubernetes schemas kubernetes-validate ships and the
vendored Strimzi and Prometheus Operator CRD schemas (tests/deploy/fixtures/crds/README.md).

kubeconform is pinned and built with `go install` into .cache/bin, as helm is (`make tools`).
kubernetes-validate's schemas refer to one shared `/api/_definitions.json`; kubeconform needs each
schema whole, so the kinds rendered are written out with those definitions inlined."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import CHART, FIXTURES, KUBE_VERSIONS, go_tool
from tests.deploy.test_helm_chart import SCENARIOS

KUBECONFORM_VERSION = "v0.8.0"
K8S_SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
_REF = '"/api/_definitions.json#/$defs/'


@pytest.fixture(scope="session")
def kubeconform() -> str:
    return go_tool("kubeconform", "github.com/yannh/kubeconform/cmd/kubeconform", KUBECONFORM_VERSION)


def _schema_file(doc: dict[str, Any]) -> str:
    """kubeconform's name for a Kubernetes kind's schema: {kind}{-group}-{version}.json."""
    group, _, version = doc["apiVersion"].rpartition("/")
    suffix = f"-{group.split('.')[0]}" if group else ""
    return f"{doc['kind'].lower()}{suffix}-{version}.json"


def _standalone(docs: list[dict[str, Any]], kube: str, out: Path) -> Path:
    """The schemas of the core kinds in `docs`, each with the shared definitions inlined."""
    src = K8S_SCHEMAS / f"v{kube}-local-strict"
    dest = out / f"v{kube}-local-strict"
    dest.mkdir(parents=True, exist_ok=True)
    defs = json.loads((src / "_definitions.json").read_text().replace(_REF, '"#/$defs/'))["$defs"]
    for doc in docs:
        name = _schema_file(doc)
        if (src / name).is_file() and not (dest / name).exists():
            schema = json.loads((src / name).read_text().replace(_REF, '"#/$defs/'))
            schema["$defs"] = defs
            (dest / name).write_text(json.dumps(schema))
    return out


def run_kubeconform(kubeconform: str, docs: list[dict[str, Any]], kube: str, tmp: Path) -> tuple[int, str]:
    schemas = _standalone(docs, kube, tmp / "schemas")
    manifest = tmp / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    proc = subprocess.run(
        [kubeconform, "-strict", "-summary", "-output", "text", "-kubernetes-version", kube,
         "-schema-location", f"{schemas}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}/"
                             "{{ .ResourceKind }}{{ .KindSuffix }}.json",
         "-schema-location", f"{FIXTURES / 'crds'}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
         str(manifest)],
        capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS + ["monitoring"])
def test_kubeconform_accepts_every_rendered_manifest(render: Any, chart_with_monitoring_files: Path,
                                                     kubeconform: str, scenario: str, kube: str,
                                                     tmp_path: Path) -> None:
    chart = chart_with_monitoring_files if scenario == "monitoring" else CHART
    docs = render(scenario, chart=chart, kube=kube)
    code, out = run_kubeconform(kubeconform, docs, kube, tmp_path)
    assert code == 0, out
    assert re.search(rf"Summary: {len(docs)} resources? found in 1 file - Valid: {len(docs)}, Invalid: 0, "
                     r"Errors: 0, Skipped: 0", out), out


def test_kubeconform_refuses_a_misspelt_field_in_a_core_kind_and_a_crd(render: Any, kubeconform: str,
                                                                       tmp_path: Path) -> None:
    docs = json.loads(json.dumps(render("strimzi")))
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    topic = next(d for d in docs if d["kind"] == "KafkaTopic")
    topic["spec"]["partition"] = 3
    user = next(d for d in docs if d["kind"] == "KafkaUser")
    user["spec"]["authorization"]["acls"][0]["operation"] = "Read"  # v1beta2's, gone from v1
    code, out = run_kubeconform(kubeconform, docs, KUBE_VERSIONS[-1], tmp_path)
    assert code != 0
    assert "Invalid: 3," in out, out
    for name in (deploy["metadata"]["name"], topic["metadata"]["name"], user["metadata"]["name"]):
        assert f" {name} is invalid" in out or f"{name} failed validation" in out, out
