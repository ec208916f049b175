"""gRPC security settings: token sources, their errors (file, line, reason; never the token), the
secure-by-default rules and the tenant check of the interceptor (with a recording context)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common.config import ConfigError
from services.common.grpc_security import (
    GrpcSecurity,
    TenantAuthInterceptor,
    TokenStore,
    bearer_token,
    load_tokens_file,
    parse_tokens_env,
)
from switchboard.v1 import ingest_pb2, routing_pb2

TOKEN_A = "a" * 20
TOKEN_B = "b-token-0123456789"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class Aborted(Exception):
    pass


class Ctx:
    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self.metadata = metadata
        self.aborts: list[tuple[grpc.StatusCode, str]] = []

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.metadata

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborts.append((code, details))
        raise Aborted


def check(request: Any, metadata: list[tuple[str, str]], required: bool = True) -> tuple[str | None, Ctx]:
    ctx = Ctx(metadata)
    interceptor = TenantAuthInterceptor(TokenStore.of([("acme", TOKEN_A), ("globex", TOKEN_B)]), required)
    try:
        return asyncio.run(interceptor.check(request, ctx)), ctx  # type: ignore[arg-type]
    except Aborted:
        return None, ctx


def test_token_store_maps_each_token_to_its_tenant_and_nothing_else() -> None:
    store = TokenStore.of([("acme", TOKEN_A), ("globex", TOKEN_B), ("acme", "a-rotated-token-9999")])
    assert store.tenant_for(TOKEN_A) == "acme" and store.tenant_for("a-rotated-token-9999") == "acme"
    assert store.tenant_for(TOKEN_B) == "globex"
    for wrong in ("", TOKEN_A[:-1], TOKEN_A + "a", TOKEN_B.upper(), " " + TOKEN_A):
        assert store.tenant_for(wrong) is None
    assert store.tenants == {"acme", "globex"} and len(store) == 3
    with pytest.raises(ConfigError, match="same token is configured for tenants 'acme' and 'globex'"):
        TokenStore.of([("acme", TOKEN_A), ("globex", TOKEN_A)])


def test_bearer_token_from_metadata() -> None:
    assert bearer_token([("x", "1"), ("Authorization", "Bearer abc ")]) == "abc"
    assert bearer_token([("authorization", "bearer abc")]) == "abc"
    assert bearer_token([("authorization", "Basic abc")]) == "" and bearer_token(None) == ""


def test_tokens_file_errors_name_file_and_line_not_the_token(tmp_path: Path) -> None:
    good = tmp_path / "tokens"
    good.write_text(f"# comment\n\nacme = {TOKEN_A}\nglobex={TOKEN_B}\n")
    assert load_tokens_file(str(good)) == [("acme", TOKEN_A), ("globex", TOKEN_B)]
    cases = {
        "acme\n": "tokens:1: expected tenant=token",
        f"\nbad tenant!={TOKEN_A}\n": "tokens:2: tenant id 'bad tenant!' must be",
        "acme=short\n": "tokens:1: the token of tenant 'acme' is shorter than 16",
        "acme=has space in the token 123\n": "tokens:1: the token of tenant 'acme' contains whitespace",
    }
    for text, message in cases.items():
        good.write_text(text)
        with pytest.raises(ConfigError, match=message) as err:
            load_tokens_file(str(good))
        assert "short" not in str(err.value).split(":", 1)[0]
        assert "has space in the token" not in str(err.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_tokens_file(str(tmp_path / "missing"))
    good.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_tokens_file(str(good))


def test_tokens_env() -> None:
    assert parse_tokens_env(f"acme={TOKEN_A}, globex={TOKEN_B},") == [("acme", TOKEN_A), ("globex", TOKEN_B)]
    with pytest.raises(ConfigError, match="entry 2 is not tenant=token"):
        parse_tokens_env(f"acme={TOKEN_A},{TOKEN_B}")
    with pytest.raises(ConfigError, match="SWITCHBOARD_GRPC_TOKENS entry 1: the token of tenant 'acme' is shorter"):
        parse_tokens_env("acme=abc")


def test_secure_by_default_and_the_dev_opt_out(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text(PEM)
    key.write_text(PEM.replace("CERTIFICATE", "PRIVATE KEY"))
    tls = {"SWITCHBOARD_GRPC_TLS_CERT_FILE": str(cert), "SWITCHBOARD_GRPC_TLS_KEY_FILE": str(key)}
    tokens = {"SWITCHBOARD_GRPC_TOKENS": f"acme={TOKEN_A}"}
    with pytest.raises(ConfigError, match="gRPC needs TLS"):
        GrpcSecurity.from_env(tokens)
    with pytest.raises(ConfigError, match="gRPC needs per-tenant tokens"):
        GrpcSecurity.from_env(tls)
    sec = GrpcSecurity.from_env({**tls, **tokens})
    assert sec.tls and sec.auth and not sec.insecure and sec.warnings() == []
    assert sec.describe() == {"tls": True, "mtls": False, "auth": True, "tenants_with_tokens": 1,
                              "insecure_opt_out": False}
    # Tokens from a service's own source (ingestion's tenants file) count too.
    assert GrpcSecurity.from_env(tls, extra_tokens=[("globex", TOKEN_B)]).tokens.tenant_for(TOKEN_B) == "globex"
    dev = GrpcSecurity.from_env({"SWITCHBOARD_GRPC_INSECURE": "true"})
    assert not dev.tls and not dev.auth and len(dev.warnings()) == 2
    dev_tokens = GrpcSecurity.from_env({"SWITCHBOARD_GRPC_INSECURE": "true", **tokens})
    assert dev_tokens.auth and len(dev_tokens.warnings()) == 1  # tokens configured: still enforced


def test_tls_file_errors(tmp_path: Path) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("not a certificate")
    env = {"SWITCHBOARD_GRPC_TOKENS": f"acme={TOKEN_A}"}
    with pytest.raises(ConfigError, match="go together"):
        GrpcSecurity.from_env({**env, "SWITCHBOARD_GRPC_TLS_CERT_FILE": str(cert)})
    with pytest.raises(ConfigError, match="needs SWITCHBOARD_GRPC_TLS_CERT_FILE"):
        GrpcSecurity.from_env({**env, "SWITCHBOARD_GRPC_TLS_CLIENT_CA_FILE": str(cert)})
    with pytest.raises(ConfigError, match=r"_CERT_FILE=.*tls.crt: the certificate chain is not PEM"):
        GrpcSecurity.from_env({**env, "SWITCHBOARD_GRPC_TLS_CERT_FILE": str(cert),
                               "SWITCHBOARD_GRPC_TLS_KEY_FILE": str(cert)})
    with pytest.raises(ConfigError, match="cannot read the private key"):
        cert.write_text(PEM)
        GrpcSecurity.from_env({**env, "SWITCHBOARD_GRPC_TLS_CERT_FILE": str(cert),
                               "SWITCHBOARD_GRPC_TLS_KEY_FILE": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="SWITCHBOARD_GRPC_INSECURE='maybe' is not a boolean"):
        GrpcSecurity.from_env({"SWITCHBOARD_GRPC_INSECURE": "maybe"})


def test_interceptor_check_codes() -> None:
    auth = [("authorization", f"Bearer {TOKEN_A}")]
    tenant, ctx = check(routing_pb2.ListAgentsRequest(tenant_id="acme"), auth)
    assert tenant == "acme" and ctx.aborts == []
    _, ctx = check(routing_pb2.ListAgentsRequest(tenant_id="globex"), auth)
    assert [c for c, _ in ctx.aborts] == [grpc.StatusCode.PERMISSION_DENIED]
    _, ctx = check(routing_pb2.WatchAgentsRequest(tenant_id="globex"), auth)
    assert [c for c, _ in ctx.aborts] == [grpc.StatusCode.PERMISSION_DENIED]
    for md in ([], [("authorization", f"Bearer {TOKEN_A}x")], [("authorization", TOKEN_A)]):
        _, ctx = check(routing_pb2.ListAgentsRequest(tenant_id="acme"), md)
        assert [c for c, _ in ctx.aborts] == [grpc.StatusCode.UNAUTHENTICATED]
        assert TOKEN_A not in ctx.aborts[0][1]
    # A request without a tenant_id field (IngestService: each event carries its tenant) only
    # needs a valid token; the servicer compares each event's tenant with caller_tenant().
    tenant, ctx = check(ingest_pb2.PublishRequest(), auth)
    assert tenant == "acme" and ctx.aborts == []
    # Dev opt-out without tokens: no check, no tenant.
    assert check(routing_pb2.ListAgentsRequest(tenant_id="globex"), [], required=False)[0] is None
