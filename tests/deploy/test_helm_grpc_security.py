"""The chart's gRPC security values: the TLS and token Secrets are mounted read-only where the env
vars the services read (services/common/grpc_security.py) point, only into the gRPC services; with
TLS the readiness probe is HTTP (the kubelet's gRPC probe cannot speak TLS)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.common import grpc_security as gs
from tests.deploy.chart import CHART, HelmError, by_kind, one, render_docs
from tests.deploy.test_helm_chart import container, env_of, plain_env

GRPC_SERVICES = {"routing", "ingestion", "survey"}
SECURE = ("grpc.tls.existingSecret=sb-grpc-tls", "grpc.tls.clientCaKey=ca.crt",
          "grpc.tokens.existingSecret=sb-grpc-tokens")


def _pod(docs: list[dict[str, Any]], svc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    deploy = one(docs, "Deployment", f"sb-switchboard-{svc}")
    return deploy["spec"]["template"]["spec"], container(deploy)


def test_tls_and_tokens_from_secrets_mounted_where_the_env_points(render: Any) -> None:
    docs = render("default", sets=SECURE)
    for svc in GRPC_SERVICES:
        pod, c = _pod(docs, svc)
        env = plain_env(c)
        assert env[gs.ENV_INSECURE] == "false"
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["grpc-tls"]["secret"]["secretName"] == "sb-grpc-tls"
        assert volumes["grpc-tokens"]["secret"]["secretName"] == "sb-grpc-tokens"
        for vol, var, key in (("grpc-tls", gs.ENV_CERT, "tls.crt"), ("grpc-tls", gs.ENV_KEY, "tls.key"),
                              ("grpc-tls", gs.ENV_CLIENT_CA, "ca.crt"), ("grpc-tokens", gs.ENV_TOKENS_FILE, "tokens")):
            assert mounts[vol]["readOnly"] is True
            assert env[var] == f"{mounts[vol]['mountPath']}/{key}", (svc, var)
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    pod, c = _pod(docs, "enrichment")
    assert not any(v["name"].startswith("grpc-") for v in pod["volumes"])
    assert not any(name.startswith("SWITCHBOARD_GRPC_") for name in env_of(c))


def test_default_is_secure_with_the_charts_certificate_and_tokens(render: Any, helm: str) -> None:
    """The least values (tests/deploy/values/default.yaml: grpc.tokens.generate) give TLS and tokens
    made by the chart, mounted where the services read them; the dev opt-out is explicit."""
    docs = render("default")
    tls, tokens = one(docs, "Secret", "sb-switchboard-grpc-tls"), one(docs, "Secret", "sb-switchboard-grpc-tokens")
    assert tls["type"] == "kubernetes.io/tls" and set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert base64.b64decode(tokens["data"]["tokens"]).decode().startswith("acme=")
    for svc in GRPC_SERVICES:
        pod, c = _pod(docs, svc)
        env = plain_env(c)
        assert env[gs.ENV_INSECURE] == "false"
        volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert volumes == {"grpc-tls": "sb-switchboard-grpc-tls", "grpc-tokens": "sb-switchboard-grpc-tokens"}
        assert env[gs.ENV_CERT] == "/etc/switchboard/grpc-tls/tls.crt"
        assert env[gs.ENV_TOKENS_FILE] == "/etc/switchboard/grpc-tokens/tokens"
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}  # TLS: no kubelet gRPC probe
    dev = render("default", sets=("grpc.insecure=true",))
    assert all(plain_env(_pod(dev, s)[1])[gs.ENV_INSECURE] == "true" for s in GRPC_SERVICES)
    assert "grpc" in _pod(dev, "routing")[1]["readinessProbe"]  # plaintext: the native gRPC probe works
    assert not [s for s in by_kind(dev, "Secret") if s["metadata"]["name"].endswith("-grpc-tls")]
    # Secrets of your own: the chart makes none.
    own = render("default", sets=SECURE)
    assert not by_kind(own, "Secret")


def test_the_generated_certificate_names_every_grpc_service(render: Any) -> None:
    docs = render("default")
    pem = base64.b64decode(one(docs, "Secret", "sb-switchboard-grpc-tls")["data"]["tls.crt"])
    out = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=pem, capture_output=True,
                         check=True, timeout=30).stdout.decode()
    names = set(re.findall(r"DNS:([^,\s]+)", out))
    for svc in GRPC_SERVICES:
        assert {f"sb-switchboard-{svc}", f"sb-switchboard-{svc}.contact.svc",
                f"sb-switchboard-{svc}.contact.svc.cluster.local"} <= names, svc
    assert not any("enrichment" in n for n in names)


def test_mtls_without_the_tls_secret_fails_clearly(helm: str) -> None:
    with pytest.raises(HelmError, match="grpc.tls.clientCaKey"):
        render_docs(helm, [], sets=("kafka.bootstrapServers=k:9092", "grpc.tls.clientCaKey=ca.crt"))


def _notes(helm: str, tmp_path: Path, sets: tuple[str, ...]) -> str:
    """NOTES.txt as `helm install` prints it (helm template does not render it): rendered through
    tpl from a copy of the chart."""
    chart = tmp_path / "switchboard"
    shutil.copytree(CHART, chart, symlinks=False)
    (chart / "notes.tpl").write_text((chart / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "notes-as-configmap.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes, namespace: contact}\n'
        'data:\n  notes: {{ tpl (.Files.Get "notes.tpl") . | toJson }}\n')
    docs = render_docs(helm, [], chart=chart, sets=sets)
    return str(one(docs, "ConfigMap", "notes")["data"]["notes"])


def test_notes_say_how_to_get_the_generated_ca_and_tokens_or_warn(helm: str, tmp_path: Path) -> None:
    notes = _notes(helm, tmp_path / "a", ("kafka.bootstrapServers=k:9092", "grpc.tokens.generate={acme,globex}"))
    assert "get secret sb-switchboard-grpc-tls -o jsonpath='{.data.ca\\.crt}'" in notes
    assert "one per tenant: acme, globex" in notes
    assert "get secret sb-switchboard-grpc-tokens -o jsonpath='{.data.tokens}'" in notes
    assert "WARNING" not in notes
    dev = _notes(helm, tmp_path / "b", ("kafka.bootstrapServers=k:9092", "grpc.insecure=true"))
    assert "WARNING: grpc.insecure=true: the gRPC APIs are plaintext and unauthenticated" in dev
    assert "grpc-tls" not in dev


def _test_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (pod,) = [d for d in by_kind(docs, "Pod") if d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    return pod


def test_helm_test_checks_every_service_ready_and_grpc_serving(render: Any) -> None:
    """`helm test` runs `switchboard check` (tests/integration/test_grpc_security.py runs the same
    command against a real routing with the chart's certificate)."""
    docs = render("default")
    pod = _test_pod(docs)
    (c,) = pod["spec"]["containers"]
    assert c["command"] == ["switchboard"] and c["args"][0] == "check"
    args = c["args"]
    pairs = list(zip(args[1::2], args[2::2], strict=True))
    assert {v for k, v in pairs if k == "--ready"} == {
        f"http://sb-switchboard-{svc}:{port}" for svc, port in
        (("ingestion", 9101), ("enrichment", 9102), ("routing", 9103), ("survey", 9104))}
    assert {v for k, v in pairs if k == "--grpc"} == {
        "sb-switchboard-routing:50051", "sb-switchboard-ingestion:50052", "sb-switchboard-survey:50053"}
    assert ("--ca", "/etc/switchboard/grpc-tls/ca.crt") in pairs
    (tls,) = [v for v in pod["spec"]["volumes"] if v["name"] == "grpc-tls"]
    assert tls["secret"]["secretName"] == "sb-switchboard-grpc-tls"
    assert tls["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]  # the CA only, not the key
    # The NetworkPolicies let the test Pod ask /readyz (metrics are otherwise for the monitoring namespace).
    test_labels = pod["metadata"]["labels"]
    for np in by_kind(docs, "NetworkPolicy"):
        peers = [p for rule in np["spec"]["ingress"] if rule["ports"] == [{"port": "http", "protocol": "TCP"}]
                 for p in rule.get("from", [])]
        assert any(set(p.get("podSelector", {}).get("matchLabels", {}).items()) <= set(test_labels.items())
                   and p.get("podSelector", {}).get("matchLabels") for p in peers), np["metadata"]["name"]


def test_helm_test_with_mtls_checks_readiness_only_and_can_be_off(render: Any) -> None:
    args = _test_pod(render("default", sets=SECURE))["spec"]["containers"][0]["args"]
    assert "--grpc" not in args and "--ca" not in args and args.count("--ready") == 4
    assert not [d for d in by_kind(render("default", sets=("tests.enabled=false",)), "Pod")]
