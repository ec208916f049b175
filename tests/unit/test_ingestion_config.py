from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.ingestion.config import IngestionConfig
from services.ingestion.dedupe import Deduplicator
from services.ingestion.grpc_api import bearer_token
from services.ingestion.tenants import load_tenants_file, parse_tokens

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_tenants_file_loads_and_reads_tokens_from_the_named_env_var() -> None:
    t = load_tenants_file(str(ROOT / "deploy/config/tenants.yaml"), env={"ACME_INGEST_TOKEN": "s3cret-acme-token-123"})
    assert t.known == {"acme", "globex"}
    assert t.tokens == {"acme": "s3cret-acme-token-123"}
    assert t.tenant_for_token("s3cret-acme-token-123") == "acme"
    assert t.tenant_for_token("wrong") is None and t.tenant_for_token("") is None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("tenants:\n  acme:\n    token: x\n", 3, "unknown key 'token'"),
        ("tenants:\n  acme: {}\n  'bad id': {}\n", 3, "tenant id"),
        ("tenantz:\n  acme: {}\n", 1, "unknown key 'tenantz'"),
        ("tenants:\n  acme: [1\n", 3, "not valid YAML"),
        ("tenants:\n  acme:\n    ingest_token_env: lower-case\n", 3, "env var name"),
        ("tenants: {}\n", 1, "at least one tenant"),
    ],
)
def test_tenants_file_errors_name_file_line_and_reason(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_tenants_file(str(path), env={})
    assert str(exc.value).startswith(f"{path}:{line}: ")
    assert words in str(exc.value)


def test_tokens_env_and_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert parse_tokens("acme=aaaaaaaaaaaaaaaa, globex=bbbbbbbbbbbbbbbb") == {
        "acme": "a" * 16, "globex": "b" * 16}
    with pytest.raises(ConfigError, match="at least 16"):
        parse_tokens("acme=short")
    path = tmp_path / "t.yaml"
    path.write_text("tenants:\n  acme: {}\n")
    monkeypatch.setenv("SWITCHBOARD_TENANTS_FILE", str(path))
    monkeypatch.setenv("SWITCHBOARD_TENANTS", "initech")
    monkeypatch.setenv("INGESTION_API_TOKENS", "acme=" + "x" * 20)
    cfg = IngestionConfig.from_env()
    assert cfg.limits.known_tenants == {"acme", "initech"}
    assert cfg.tenants.tenant_for_token("x" * 20) == "acme"
    monkeypatch.setenv("INGESTION_API_TOKENS", "umbrella=" + "x" * 20)
    with pytest.raises(ConfigError, match="not configured"):
        IngestionConfig.from_env()
    monkeypatch.setenv("INGESTION_API_TOKENS", "")
    monkeypatch.setenv("INGESTION_DEDUPE_WINDOW_SECONDS", str(8 * 86400))
    with pytest.raises(ConfigError, match="INGESTION_DEDUPE_WINDOW_SECONDS"):
        IngestionConfig.from_env()


def test_bearer_token_from_metadata() -> None:
    assert bearer_token((("x-other", "1"), ("authorization", "Bearer abc "))) == "abc"
    assert bearer_token((("authorization", "Basic abc"),)) == ""
    assert bearer_token(None) == ""


def test_dedupe_reload_keeps_only_the_window_and_peek_remembers_nothing() -> None:
    d = Deduplicator(window_seconds=100)
    held = d.load([("acme/e-1", 950.0), ("acme/e-old", 850.0), ("acme/e-2", 990.0)], now=1000.0)
    assert held == 2
    assert d.peek("acme/e-1", 1000.0) and not d.peek("acme/e-old", 1000.0)
    assert not d.peek("acme/e-3", 1000.0) and not d.seen("acme/e-3", 1000.0)  # peek did not remember it
    assert d.seen("acme/e-1", 1001.0)  # restored ids are duplicates
    assert not d.seen("acme/e-1", 1051.0)  # ...until the window since they were first seen passes
    bounded = Deduplicator(window_seconds=100, max_entries=2)
    bounded.load([("a", 960.0), ("b", 950.0), ("c", 970.0)], now=1000.0)
    assert len(bounded) == 2 and not bounded.peek("b", 1000.0)  # the oldest went first
