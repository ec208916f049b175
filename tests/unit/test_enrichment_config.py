"""The rules file: every mistake is reported with its file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.reload import signature
from services.enrichment.config import RulesError, load_rules

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_rules_load() -> None:
    rules = load_rules(str(ROOT / "deploy/config/enrichment.yaml"))
    acme = rules.for_tenant("acme")
    assert acme.languages == ("en", "es", "fr", "de") and acme.vip_queue == "vip"
    assert [c.intent for c in acme.classification][:2] == ["billing_dispute", "cancel_service"]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("  acme:\n    vip: {priority: 10, queu: x}\n", 4, "unknown key 'queu'"),
        ("  acme:\n    languages: [en, spanish]\n", 4, "ISO 639-1"),
        ("  acme:\n    repeat:\n      contacts: 1\n", 5, "repeat.contacts must be between 2"),
        ("  acme:\n    repeat:\n      days: many\n", 5, "repeat.days must be float"),
        ("  acme:\n    classification:\n      - intent: x\n        department: hr\n        keywords: [a]\n", 6,
         "department 'hr'"),
        ("  acme:\n    classification:\n      - intent: x\n        regex: ['(unclosed']\n", 6,
         "not a valid regular expression"),
        ("  acme:\n    classification:\n      - intent: x\n", 5, "needs keywords or regex"),
        ("  acme:\n    classification:\n      - intent: x\n        keywords: [a]\n        channels: [fax]\n", 7,
         "unknown channel 'fax'"),
        ("  acme:\n    classification:\n      - intent: x\n        keywords: [a]\n        skills: {billing: 9}\n", 7,
         "level 1-5"),
        ("  acme:\n    chronic:\n      - id: c\n        ivr: [nine]\n", 6, "'menu:choice'"),
        ("  acme:\n    sites:\n      - name: m\n        timezone: Mars/Olympus\n", 6, "IANA time zone"),
        ("  acme:\n    sites:\n      - name: m\n        timezone: UTC\n        hours: {mon: '9-5'}\n", 7,
         "HH:MM-HH:MM"),
        ("  acme:\n    sites:\n      - name: m\n        timezone: UTC\n        hours: {funday: '09:00-17:00'}\n", 7,
         "unknown key 'funday'"),
        ("  acme:\n    sla_seconds:\n      gold: {voice: 10}\n", 5, "unknown key 'gold'"),
        ("  acme:\n    history: {days: 3}\n", 4, "at least repeat.days"),
        ("  acme:\n    queues: {default: 'has space'}\n", 4, "must be 1-128"),
        ("  acme: [1\n", 4, "not valid YAML"),
    ],
)
def test_errors_name_file_line_and_reason(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = tmp_path / "enrichment.yaml"
    path.write_text("# rules\ntenants:\n" + body)
    with pytest.raises(RulesError) as exc:
        load_rules(str(path))
    assert (exc.value.path, exc.value.line) == (str(path), line), str(exc.value)
    assert words in exc.value.reason
    assert str(exc.value).startswith(f"{path}:{line}: ")


def test_one_file_per_tenant_directory(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text("vip: {queue: vip}\n")
    (tmp_path / "default.yaml").write_text("languages: [en, es]\n")
    rules = load_rules(str(tmp_path))
    assert rules.for_tenant("acme").vip_queue == "vip" and rules.for_tenant("other").languages == ("en", "es")
    before = signature(str(tmp_path))
    (tmp_path / "globex.yaml").write_text("repeat: {contacts: 0}\n")
    assert signature(str(tmp_path)) != before
    with pytest.raises(RulesError) as exc:
        load_rules(str(tmp_path))
    assert exc.value.path.endswith("globex.yaml") and exc.value.line == 1
