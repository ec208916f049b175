"""The chart's gRPC security values: the TLS and token Secrets are mounted read-only where the env
vars the services read (services/common/grpc_security.py) point, only into the gRPC services; with
TLS the readiness probe is HTTP (the kubelet's gRPC probe cannot speak TLS)."""

from __future__ import annotations

from typing import Any

import pytest

from services.common import grpc_security as gs
from tests.deploy.chart import HelmError, one, render_docs
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


def test_default_is_secure_and_the_dev_opt_out_is_explicit(render: Any, helm: str) -> None:
    docs = render("default")
    for svc in GRPC_SERVICES:
        _, c = _pod(docs, svc)
        assert plain_env(c)[gs.ENV_INSECURE] == "false"  # the service refuses to start without TLS + tokens
        assert gs.ENV_CERT not in env_of(c)
    dev = render("default", sets=("grpc.insecure=true",))
    assert all(plain_env(_pod(dev, s)[1])[gs.ENV_INSECURE] == "true" for s in GRPC_SERVICES)
    assert "grpc" in _pod(dev, "routing")[1]["readinessProbe"]  # plaintext: the native gRPC probe works


def test_mtls_without_the_tls_secret_fails_clearly(helm: str) -> None:
    with pytest.raises(HelmError, match="grpc.tls.clientCaKey"):
        render_docs(helm, [], sets=("kafka.bootstrapServers=k:9092", "grpc.tls.clientCaKey=ca.crt"))
