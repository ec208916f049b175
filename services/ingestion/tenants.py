"""The tenants ingestion accepts, and each tenant's IngestService token (from the tenants file
and env vars). Errors name the file, the line and the reason."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from services.common.config import ConfigError
from services.common.configfile import ConfigFileError, compose, node_error, read_text

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class Tenants:
    known: frozenset[str] = frozenset()  # empty: any tenant is accepted
    tokens: Mapping[str, str] = field(default_factory=dict)  # tenant -> IngestService bearer token

    def tenant_for_token(self, token: str) -> str | None:
        import hmac

        found = None
        for tenant, expected in self.tokens.items():
            if hmac.compare_digest(expected.encode(), token.encode()):
                found = tenant
        return found


def _error(path: str, node: yaml.Node | None, reason: str) -> ConfigFileError:
    return node_error(path, node, reason)


def load_tenants_file(path: str, env: Mapping[str, str] | None = None) -> Tenants:
    """tenants:
         <tenant_id>:
           ingest_token_env: ACME_INGEST_TOKEN   # optional: env var holding the IngestService token
    """
    env = os.environ if env is None else env
    root = compose(read_text(path), path)
    if not isinstance(root, yaml.MappingNode):
        raise _error(path, root, "the file must be a mapping with a 'tenants' key")
    tenants_node = None
    for k, v in root.value:
        if k.value != "tenants":
            raise _error(path, k, f"unknown key {k.value!r} (expected 'tenants')")
        tenants_node = v
    if not isinstance(tenants_node, yaml.MappingNode) or not tenants_node.value:
        raise _error(path, tenants_node or root, "'tenants' must map at least one tenant id to its settings")
    known: set[str] = set()
    tokens: dict[str, str] = {}
    for k, v in tenants_node.value:
        tenant = k.value
        if not _TENANT.match(str(tenant)):
            raise _error(path, k, f"tenant id {tenant!r} must be 1-128 letters, digits or ._:@-")
        known.add(tenant)
        if isinstance(v, yaml.ScalarNode) and v.value in ("", "null", "~"):
            continue
        if not isinstance(v, yaml.MappingNode):
            raise _error(path, v, f"tenant {tenant!r}: settings must be a mapping")
        for sk, sv in v.value:
            if sk.value != "ingest_token_env":
                raise _error(path, sk, f"tenant {tenant!r}: unknown key {sk.value!r} (expected ingest_token_env)")
            name: Any = sv.value
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise _error(path, sv, f"tenant {tenant!r}: ingest_token_env must be an env var name")
            token = env.get(name, "").strip()
            if token:
                tokens[tenant] = token
    return Tenants(frozenset(known), tokens)


def parse_tokens(value: str, name: str = "INGESTION_API_TOKENS") -> dict[str, str]:
    """`tenant=token,tenant2=token2` → {tenant: token}."""
    out: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        tenant, sep, token = item.partition("=")
        if not sep or not _TENANT.match(tenant.strip()) or len(token.strip()) < 16:
            raise ConfigError(f"{name}: entries are tenant=token with a token of at least 16 characters")
        out[tenant.strip()] = token.strip()
    return out
