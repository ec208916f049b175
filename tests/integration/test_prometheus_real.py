"""A real Prometheus (Debian's package) scrapes the four running services under simulated traffic,
with our rule files loaded; every dashboard query, every variable query and every rule expression
is evaluated through the HTTP API and must parse and return data. Alert expressions that are
legitimately empty (nothing is wrong) are taken apart: each operand, without its threshold
comparison, must return data. The recording rules must have produced series. And every
service's real /metrics passes `promtool check metrics`."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer

from services.common.codec import new_envelope
from services.common.config import KafkaSettings
from switchboard.v1 import survey_pb2
from switchboard_dev.broker import BrokerHandle, free_port
from switchboard_dev.simulate import Progress, SimConfig, run_simulation
from tests.helpers import ServiceProcess, http_get, producer, send, start_service, wait_ready

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
CONFIG = ROOT / "deploy" / "config"
TENANT = "acme"
# What Grafana would put in the queries: one tenant, all queues (the variables' allValue), all services.
VARIABLES = {"$tenant": TENANT, "$queue": ".*", "$service": ".*", "$__rate_interval": "10s", "$__range": "10m",
             "$__interval": "5s"}


def binary(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} not found: `make monitoring-tools` installs Debian's prometheus package")
    return path


def substitute(expr: str) -> str:
    for var, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


# -- taking an alert expression apart -------------------------------------------------------------

def _top_level_split(expr: str, pattern: str) -> list[str]:
    """Split `expr` at matches of `pattern` outside parentheses."""
    parts, depth, start, i = [], 0, 0, 0
    rx = re.compile(pattern)
    while i < len(expr):
        c = expr[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = rx.match(expr, i)
            if m:
                parts.append(expr[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts]


def _unwrap(expr: str) -> str:
    """`(x)` -> `x` while the first parenthesis closes at the very end."""
    while expr.startswith("(") and expr.endswith(")"):
        depth, closes_at = 0, -1
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0:
                closes_at = i
                break
        if closes_at != len(expr) - 1:
            break
        expr = expr[1:-1].strip()
    return expr


def operands(expr: str) -> list[str]:
    """The data-bearing sub-expressions of an alert: split at and/or/unless, then at comparisons;
    numeric literals dropped."""
    out = []
    for part in _top_level_split(" ".join(expr.split()), r"\s(?:and|or|unless)(?:\s+on\s*\([^)]*\))?\s"):
        for side in _top_level_split(_unwrap(part), r"\s*(?:==|!=|>=|<=|>|<)\s*"):
            side = _unwrap(side)
            if not re.fullmatch(r"[0-9.eE+-]+", side):
                out.append(side)
    return out


def test_operands_take_alerts_apart() -> None:
    assert operands("a:b:c < 0.8 and on (tenant, queue) x:y:z >= 10") == ["a:b:c", "x:y:z"]
    assert operands("max by (q) (open) == 1 unless on (q) (sum by (q) (agents) > 0)") == [
        "max by (q) (open)", "sum by (q) (agents)"]
    assert operands("increase(d[5m]) > 10 and on (s) r5 > 3 * r1") == ["increase(d[5m])", "r5", "3 * r1"]


# -- the running system ----------------------------------------------------------------------------

@pytest.fixture
def services(service_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    env = dict(service_env, SWITCHBOARD_LAG_POLL_SECONDS="1")
    svcs = {
        "ingestion": start_service("ingestion", env, tmp_path),
        "enrichment": start_service("enrichment", env, tmp_path, ENRICHMENT_RULES_FILE=str(CONFIG / "enrichment.yaml")),
        "routing": start_service("routing", env, tmp_path, SWITCHBOARD_QUEUES_FILE=str(CONFIG / "queues.yaml"),
                                 ROUTING_METRICS_PER_AGENT="true"),
        # The built-in survey policy: every ended contact surveyed at once (no delay, no quiet hours).
        "survey": start_service("survey", env, tmp_path, SURVEY_METRICS_PER_AGENT="true"),
    }
    try:
        wait_ready(list(svcs.values()), timeout=180)
        yield svcs
    finally:
        for svc in svcs.values():
            svc.terminate(60)


@pytest.fixture
def prometheus(services: dict[str, ServiceProcess], tmp_path: Path) -> Iterator[str]:
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    # The rules as they are, except each group's own `interval` (30s/1m): the global 1 s applies,
    # so the recording rules produce series within the test's minutes.
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        group.pop("interval", None)
    (prom_dir / "rules.yaml").write_text(yaml.safe_dump(doc))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(prom_dir / "rules.yaml")],
        "scrape_configs": [{
            "job_name": "switchboard",
            "static_configs": [{"targets": [f"127.0.0.1:{svc.http_port}"], "labels": {"service_name": name}}
                               for name, svc in services.items()],
        }],
    }
    (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run([binary("promtool"), "check", "config", str(prom_dir / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = open(prom_dir / "prometheus.log", "wb")  # noqa: SIM115 (kept open for the process' life)
    proc = subprocess.Popen([binary("prometheus"), f"--config.file={prom_dir / 'prometheus.yml'}",
                             f"--storage.tsdb.path={prom_dir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=prom_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (prom_dir / "prometheus.log").read_text()[-3000:]
            try:
                if http_get(f"{url}/-/ready", 1.0)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready within 60 s"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def api(url: str, path: str, **params: str | list[str]) -> dict:
    status, body = http_get(f"{url}{path}?{urllib.parse.urlencode(params, doseq=True)}", 30.0)
    payload = json.loads(body)
    assert status == 200 and payload["status"] == "success", f"{path} {params}: {status} {body[:500]}"
    return payload["data"]


def query(url: str, expr: str) -> list:
    return api(url, "/api/v1/query", query=expr)["result"]


def respond_to_surveys(bootstrap: str, prefix: str, stop: threading.Event) -> None:
    """The customers: every survey request gets an answer to each scored question (seeded scores)."""
    rng = random.Random(11)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest"})
    p = producer(bootstrap)
    try:
        consumer.subscribe([prefix + "surveys.requests.v1"])
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            req = survey_pb2.SurveyRequest.FromString(msg.value())
            answers = []
            for q in req.questions:
                if q.kind == survey_pb2.QUESTION_KIND_CSAT:
                    answers.append(survey_pb2.Answer(question_id=q.question_id, score=rng.choice([2, 3, 4, 5, 5])))
                elif q.kind == survey_pb2.QUESTION_KIND_NPS:
                    answers.append(survey_pb2.Answer(question_id=q.question_id, score=rng.choice([3, 7, 9, 10])))
                elif q.kind == survey_pb2.QUESTION_KIND_CES:
                    answers.append(survey_pb2.Answer(question_id=q.question_id, score=rng.randint(1, 7)))
            resp = survey_pb2.SurveyResponse(envelope=new_envelope(req.envelope.tenant_id, time.time(), "test"),
                                             survey_id=req.survey_id, answers=answers)
            send(p, prefix + "surveys.responses.v1", req.customer_id, resp.SerializeToString(),
                 "application/x-protobuf")
    finally:
        consumer.close()


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target and every rule."""
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel.get("targets", []):
                out.append((f"{path.stem} / {panel['title']} / {t['refId']}", substitute(t["expr"])))
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                out.append((f"record {rule['record']}", rule["expr"]))
                out.append((f"series {rule['record']}", rule["record"]))
            else:
                out.append((f"alert {rule['alert']}", rule["expr"]))
    return out


def test_prometheus_evaluates_every_panel_and_rule_with_data(
    broker: BrokerHandle, topic_prefix: str, services: dict[str, ServiceProcess], prometheus: str,
) -> None:
    # Real /metrics of each service: promtool check metrics passes.
    for name, svc in services.items():
        status, text = http_get(svc.metrics_url, 10.0)
        assert status == 200
        res = subprocess.run([binary("promtool"), "check", "metrics"], input=text.encode(), capture_output=True,
                             timeout=60)
        assert res.returncode == 0, f"{name}: {(res.stdout + res.stderr).decode()}"

    rules = api(prometheus, "/api/v1/rules")["groups"]
    assert {g["name"] for g in rules} == {g["name"] for g in yaml.safe_load(RULES.read_text())["groups"]}
    assert all(r["health"] != "err" for g in rules for r in g["rules"]), rules

    stop = threading.Event()
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_prefix=topic_prefix)
    # Busy enough to queue and to abandon (short and after the threshold), quick handling, surveys answered.
    sim = SimConfig(tenant=TENANT, rate=3.0, agents=6, mean_handle=4.0, mean_patience=6.0, answer_delay=0.3,
                    wrap_delay=0.5, seed=5, run_id=uuid.uuid4().hex[:8])
    threads = [
        threading.Thread(target=run_simulation, name="simulator", daemon=True,
                         args=(settings, sim, stop), kwargs={"progress": Progress(io.StringIO(), tty=False)}),
        threading.Thread(target=respond_to_surveys, name="customers", daemon=True,
                         args=(broker.bootstrap, topic_prefix, stop)),
    ]
    for t in threads:
        t.start()
    p = producer(broker.bootstrap)
    pending: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 300
        while True:
            # A few malformed events: dead letters have a reason to show.
            send(p, topic_prefix + "contacts.inbound.v1", "cust-x", b'{"tenant_id": "acme", "channel": ',
                 "application/json")
            pending = {}
            for where, expr in expressions():
                result = query(prometheus, expr)  # a parse error fails here, at once
                if not result:
                    pending[where] = expr
            for where, expr in list(pending.items()):
                if where.startswith("alert "):  # nothing wrong is fine: each operand must have data
                    empty = [op for op in operands(expr) if not query(prometheus, op)]
                    if not empty:
                        del pending[where]
                    else:
                        pending[where] = f"operands without data: {empty}"
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    if not broker.supports_transactions:  # at-least-once mode: no transactions to count
        pending = {w: e for w, e in pending.items() if "transactions" not in e}
    assert not pending, "no data:\n" + "\n".join(f"  {w}: {e}" for w, e in pending.items())

    # Variable queries (label_values) answer with the tenant and the simulator's queues.
    tenants = api(prometheus, "/api/v1/label/tenant/values", **{"match[]": "switchboard_queue_waiting_contacts"})
    assert TENANT in tenants
    queues = api(prometheus, "/api/v1/label/queue/values",
                 **{"match[]": f'switchboard_queue_waiting_contacts{{tenant=~"{TENANT}"}}'})
    assert {"support", "billing", "sales"} <= set(queues)
    service_values = api(prometheus, "/api/v1/label/service/values", **{"match[]": "switchboard_events_consumed_total"})
    assert set(service_values) == {"ingestion", "enrichment", "routing", "survey"}

    # Consumer lag is reported per service, topic and partition the service consumes.
    lag = query(prometheus, "switchboard_kafka_consumer_lag_messages")
    assert {(s["metric"]["service"], s["metric"]["topic"]) for s in lag} >= {
        ("ingestion", topic_prefix + "contacts.inbound.v1"), ("enrichment", topic_prefix + "contacts.normalized.v1"),
        ("routing", topic_prefix + "contacts.enriched.v1"), ("survey", topic_prefix + "surveys.responses.v1")}
