"""The Prometheus rules and the compose scrape config through promtool: `check rules`, `test rules`
green (and able to fail), `check config`. The files' other checks need no tool: see
tests/unit/test_monitoring_files.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules_test.yaml"


def test_promtool_check_rules(promtool: str) -> None:
    res = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_test_rules_alerts_fire_and_stay_quiet(promtool: str) -> None:
    res = subprocess.run([promtool, "test", "rules", str(RULES_TEST)], capture_output=True, text=True, timeout=120,
                         cwd=RULES_TEST.parent)
    assert res.returncode == 0, res.stdout + res.stderr


def test_rule_tests_catch_short_abandons_counted_as_abandons(promtool: str, tmp_path: Path) -> None:
    """The rule tests can fail: with short abandons counted in the abandonment rate, they do."""
    doc = yaml.safe_load(RULES.read_text())
    changed = 0
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("record", "").startswith("tenant_queue_channel:switchboard_contacts_abandoned:increase"):
                window = rule["record"].rsplit("increase", 1)[1]
                rule["expr"] = (f"sum by (tenant, queue, channel) "
                                f"(increase(switchboard_contacts_abandoned_total[{window}]))")
                changed += 1
    assert changed == 2
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(doc))
    shutil.copy(RULES_TEST, tmp_path / "rules_test.yaml")
    res = subprocess.run([promtool, "test", "rules", "rules_test.yaml"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert res.returncode != 0
    assert "SwitchboardAbandonmentHigh" in res.stdout + res.stderr


def test_promtool_check_config_of_the_compose_prometheus(promtool: str) -> None:
    config = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    res = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
