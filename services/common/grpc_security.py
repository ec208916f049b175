"""gRPC transport security and per-tenant bearer tokens, shared by routing, ingestion and survey.

- TLS: `SWITCHBOARD_GRPC_TLS_CERT_FILE` + `SWITCHBOARD_GRPC_TLS_KEY_FILE` (PEM, e.g. a Kubernetes TLS
  Secret mounted read-only); with `SWITCHBOARD_GRPC_TLS_CLIENT_CA_FILE` clients must present a
  certificate signed by that CA (mTLS).
- Tokens: `SWITCHBOARD_GRPC_TOKENS_FILE` (one `tenant=token` per line, `#` comments; several lines
  per tenant allow rotation) and/or `SWITCHBOARD_GRPC_TOKENS` (`tenant=token,tenant2=token2`).
  Callers send metadata `authorization: Bearer <token>`; the token names the caller's tenant.
- Every RPC except the standard health and reflection services needs a known token
  (UNAUTHENTICATED otherwise); a request carrying a `tenant_id` of another tenant gets
  PERMISSION_DENIED. Handlers read the caller's tenant with `caller_tenant()`.
- Secure by default: a service without TLS, or without any token, does not start unless
  `SWITCHBOARD_GRPC_INSECURE=true` (local development: plaintext; and when no token is configured
  at all, no authentication). Tokens are compared with `hmac.compare_digest` and never logged.
"""

from __future__ import annotations

import contextvars
import hmac
import inspect
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client import Counter

from services.common.config import ConfigError, env_bool

ENV_CERT = "SWITCHBOARD_GRPC_TLS_CERT_FILE"
ENV_KEY = "SWITCHBOARD_GRPC_TLS_KEY_FILE"
ENV_CLIENT_CA = "SWITCHBOARD_GRPC_TLS_CLIENT_CA_FILE"
ENV_TOKENS_FILE = "SWITCHBOARD_GRPC_TOKENS_FILE"
ENV_TOKENS = "SWITCHBOARD_GRPC_TOKENS"
ENV_INSECURE = "SWITCHBOARD_GRPC_INSECURE"

MIN_TOKEN_CHARS = 16
# RPCs that need no token: health (Kubernetes' gRPC probes and grpc-health-probe cannot send one) and
# reflection (the schema only, the same as protos/ in the repository; grpcurl discovers methods by it).
PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")

_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("switchboard_grpc_tenant", default=None)


def caller_tenant() -> str | None:
    """The tenant of the current call's token; None when authentication is off (dev opt-out)."""
    return _caller.get()


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The token of `authorization: Bearer <token>` in call metadata ('' when absent)."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            return value[7:].strip()
    return ""


@dataclass(frozen=True)
class TokenStore:
    """tenant <- token. Lookup compares against every token in constant time per token."""

    entries: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> TokenStore:
        seen: dict[bytes, str] = {}
        out: list[tuple[str, bytes]] = []
        for tenant, token in pairs:
            raw = token.encode()
            if raw in seen and seen[raw] != tenant:
                raise ConfigError(f"the same token is configured for tenants {seen[raw]!r} and {tenant!r}")
            if raw not in seen:
                seen[raw] = tenant
                out.append((tenant, raw))
        return cls(tuple(out))

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def tenants(self) -> frozenset[str]:
        return frozenset(t for t, _ in self.entries)

    def tenant_for(self, token: str) -> str | None:
        if not token:
            return None
        given = token.encode()
        found = None
        for tenant, expected in self.entries:  # no early exit: time does not tell which entry matched
            if hmac.compare_digest(expected, given):
                found = tenant
        return found


def _check_pair(tenant: str, token: str, where: str) -> tuple[str, str]:
    if not _TENANT.match(tenant):
        raise ConfigError(f"{where}: tenant id {tenant!r} must be 1-128 letters, digits or ._:@-")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{where}: the token of tenant {tenant!r} is shorter than {MIN_TOKEN_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in token):
        raise ConfigError(f"{where}: the token of tenant {tenant!r} contains whitespace or control characters")
    return tenant, token


def parse_tokens_env(value: str, name: str = ENV_TOKENS) -> list[tuple[str, str]]:
    """`tenant=token,tenant2=token2` (the error never repeats a token)."""
    out: list[tuple[str, str]] = []
    for i, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        tenant, sep, token = item.partition("=")
        if not sep:
            raise ConfigError(f"{name}: entry {i} is not tenant=token")
        out.append(_check_pair(tenant.strip(), token.strip(), f"{name} entry {i}"))
    return out


def load_tokens_file(path: str) -> list[tuple[str, str]]:
    """One `tenant=token` per line; blank lines and `#` comments ignored. Errors name file and line."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    out: list[tuple[str, str]] = []
    for no, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tenant, sep, token = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{no}: expected tenant=token")
        out.append(_check_pair(tenant.strip(), token.strip(), f"{path}:{no}"))
    return out


def _read(path: str, what: str, var: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"{var}={path}: cannot read the {what}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{var}={path}: the {what} is not PEM (no -----BEGIN line)")
    return data


@dataclass(frozen=True)
class GrpcSecurity:
    cert_chain: bytes | None = None
    private_key: bytes | None = None
    client_ca: bytes | None = None
    tokens: TokenStore = field(default_factory=TokenStore)
    insecure: bool = False

    @property
    def tls(self) -> bool:
        return self.cert_chain is not None

    @property
    def auth(self) -> bool:
        """Tokens are required (always, unless the dev opt-out is on and no token is configured)."""
        return len(self.tokens) > 0 or not self.insecure

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 extra_tokens: Iterable[tuple[str, str]] = ()) -> GrpcSecurity:
        """`extra_tokens`: a service's own token sources (ingestion's tenants file), merged in."""
        env = os.environ if env is None else env
        get = lambda name: (env.get(name) or "").strip()  # noqa: E731
        insecure = env_bool(ENV_INSECURE, False, env=env)
        cert_path, key_path, ca_path = get(ENV_CERT), get(ENV_KEY), get(ENV_CLIENT_CA)
        if bool(cert_path) != bool(key_path):
            raise ConfigError(f"{ENV_CERT} and {ENV_KEY} go together (certificate chain and its private key)")
        if ca_path and not cert_path:
            raise ConfigError(f"{ENV_CLIENT_CA} (mTLS) needs {ENV_CERT} and {ENV_KEY}")
        cert = _read(cert_path, "certificate chain", ENV_CERT) if cert_path else None
        key = _read(key_path, "private key", ENV_KEY) if key_path else None
        ca = _read(ca_path, "client CA", ENV_CLIENT_CA) if ca_path else None
        pairs: list[tuple[str, str]] = list(extra_tokens)
        if get(ENV_TOKENS_FILE):
            pairs += load_tokens_file(get(ENV_TOKENS_FILE))
        if get(ENV_TOKENS):
            pairs += parse_tokens_env(get(ENV_TOKENS))
        tokens = TokenStore.of(pairs)
        if not insecure:
            if cert is None:
                raise ConfigError(f"gRPC needs TLS: set {ENV_CERT} and {ENV_KEY} (PEM files, e.g. a mounted "
                                  f"Kubernetes TLS Secret), or {ENV_INSECURE}=true for local development only")
            if not tokens:
                raise ConfigError(f"gRPC needs per-tenant tokens: set {ENV_TOKENS_FILE} or {ENV_TOKENS} "
                                  f"(tenant=token), or {ENV_INSECURE}=true for local development only")
        return cls(cert, key, ca, tokens, insecure)

    def describe(self) -> dict[str, Any]:
        """For the start-up log: what is on, never a token."""
        return {"tls": self.tls, "mtls": self.client_ca is not None, "auth": self.auth,
                "tenants_with_tokens": len(self.tokens.tenants), "insecure_opt_out": self.insecure}

    def warnings(self) -> list[str]:
        out = []
        if not self.tls:
            out.append(f"gRPC is plaintext ({ENV_INSECURE}=true): local development only")
        if not self.auth:
            out.append(f"gRPC has no authentication ({ENV_INSECURE}=true, no tokens): any caller reads "
                       "and changes any tenant")
        return out

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        return [TenantAuthInterceptor(self.tokens, required=self.auth)]

    def add_port(self, server: grpc.aio.Server, address: str) -> int:
        if self.cert_chain is None:
            return server.add_insecure_port(address)
        creds = grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)], root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )
        return server.add_secure_port(address, creds)

    def server(self, **kwargs: Any) -> grpc.aio.Server:
        return grpc.aio.server(interceptors=self.interceptors(), **kwargs)


def _request_tenant(request: Any) -> str | None:
    """The request's tenant_id field, if its message has one (None: the message has no such field)."""
    descriptor = getattr(request, "DESCRIPTOR", None)
    if descriptor is None or "tenant_id" not in descriptor.fields_by_name:
        return None
    value = request.tenant_id
    return value if isinstance(value, str) else None


Check = Callable[[Any, grpc.aio.ServicerContext], Awaitable[str | None]]


AUTH_FAILURES = Counter(
    "switchboard_grpc_auth_failures_total",
    "gRPC calls refused by the token check: code UNAUTHENTICATED (no or unknown token; tenant empty) or "
    "PERMISSION_DENIED (a valid token of `tenant` asked for another tenant's data)",
    ["method", "code", "tenant"],
)


class TenantAuthInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler (except health) with the token check and the tenant check.

    The check runs inside the handler's own task, so `caller_tenant()` works in the servicer, and
    it sees the request, so the tenant_id of every unary request (and of the request that opens a
    server stream, e.g. WatchAgents) is compared with the token's tenant before the servicer runs.
    """

    def __init__(self, tokens: TokenStore, required: bool = True) -> None:
        self.tokens = tokens
        self.required = required

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_SERVICES):
            return handler
        method = details.method.rsplit("/", 1)[-1] or "unknown"  # GetAgent: a fixed set, safe as a label

        async def check(request: Any, context: grpc.aio.ServicerContext) -> str | None:
            return await self.check(request, context, method)

        return _wrap(handler, check)

    async def check(self, request: Any, context: grpc.aio.ServicerContext, method: str = "unknown") -> str | None:
        if not self.required:
            return None
        tenant = self.tokens.tenant_for(bearer_token(context.invocation_metadata()))
        if tenant is None:
            AUTH_FAILURES.labels(method, "UNAUTHENTICATED", "").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or unknown bearer token (metadata authorization: Bearer <token>)")
        wanted = _request_tenant(request) if request is not None else None
        if wanted and wanted != tenant:
            AUTH_FAILURES.labels(method, "PERMISSION_DENIED", tenant or "").inc()
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                "the token does not grant access to the tenant_id of this request")
        return tenant


def _wrap(handler: Any, check: Check) -> Any:
    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            _caller.set(await check(request, context))
            return await _maybe_await(inner_uu(request, context))

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kw)
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            _caller.set(await check(request, context))
            async for item in _iterate(inner_us(request, context)):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, **kw)
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            _caller.set(await check(None, context))
            return await _maybe_await(inner_su(requests, context))

        return grpc.stream_unary_rpc_method_handler(stream_unary, **kw)
    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        _caller.set(await check(None, context))
        async for item in _iterate(inner_ss(requests, context)):
            yield item

    return grpc.stream_stream_rpc_method_handler(stream_stream, **kw)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _iterate(result: Any) -> AsyncIterator[Any]:
    """A streaming behavior is an async generator, a sync iterator, or a coroutine using context.write."""
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    elif inspect.isawaitable(result):
        await result
    elif result is not None:
        for item in result:
            yield item
