"""`switchboard dlq list|replay` on the real broker against the real ingestion service: an event
dead-lettered for unknown_tenant, listed without its payload, a dry run that sends nothing, a
replay while the cause is still there (dead-lettered again, carrying the replay marker), the tenant
added and ingestion restarted, a replay that normalizes the event, the looped copy refused without
--force, and a forced replay of it dropped by ingestion's dedupe."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.cli.dlq import REPLAYED_FROM
from switchboard.v1 import contact_pb2
from switchboard_dev.broker import BrokerHandle
from tests.helpers import (
    ROOT,
    ServiceProcess,
    contact,
    header,
    http_get,
    metric_value,
    read_all,
    send,
    start_service,
    wait_ready,
    wait_until,
)
from tests.helpers import producer as make_producer

pytestmark = pytest.mark.broker

PHONE = "+14155550199"
CUSTOMER = "cust-dlq-secret-7"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "services.cli", "dlq", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    print(f"switchboard dlq {' '.join(args)}: exit {out.returncode} in {time.monotonic() - started:.1f}s")
    return out


def ingestion(env: dict[str, str], tmp_path: Path, tenants: str) -> ServiceProcess:
    (tmp_path / "tenants.yaml").write_text(tenants)
    svc = start_service("ingestion", env, tmp_path, SWITCHBOARD_TENANTS_FILE=str(tmp_path / "tenants.yaml"))
    wait_ready([svc])
    return svc


def _duplicates(svc: ServiceProcess) -> float:
    status, body = http_get(svc.metrics_url)
    assert status == 200
    try:
        return metric_value(body, "switchboard_ingestion_duplicates_total", tenant="globex")
    except AssertionError:
        return 0.0


def test_dead_letter_listed_without_payload_then_replayed_once_the_tenant_exists(
    broker: BrokerHandle, topic_prefix: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    b, t = broker.bootstrap, topic_prefix
    inbound, normalized, dlq = t + "contacts.inbound.v1", t + "contacts.normalized.v1", t + "contacts.dlq.v1"
    svc = ingestion(service_env, tmp_path, "tenants:\n  acme: {}\n")
    try:
        ev = contact("globex", "c-dlq-1", CUSTOMER, "arrived", voice={"from_number": PHONE})
        send(make_producer(b), inbound, CUSTOMER, json.dumps(ev).encode(), "application/json")
        wait_until(lambda: len(read_all(b, dlq)) == 1, "the unknown tenant's event on the DLQ")

        # list: one line, sizes, never the key or the payload without --show-payload.
        out = cli(service_env, "list")
        assert out.returncode == 0, out.stderr
        assert "unknown_tenant" in out.stdout and "ingestion" in out.stdout and inbound in out.stdout
        assert CUSTOMER not in out.stdout + out.stderr and PHONE not in out.stdout + out.stderr
        assert "1 dead letter(s) selected of 1 read; by reason: unknown_tenant 1" in out.stdout
        shown = cli(service_env, "list", "--show-payload")
        assert CUSTOMER in shown.stdout and PHONE in shown.stdout
        js = json.loads(cli(service_env, "list", "--json", "--reason", "unknown_tenant").stdout)
        assert js["selected"] == 1 and js["by_reason"] == {"unknown_tenant": 1}
        assert js["records"][0]["source_topic"] == inbound and "key_base64" not in js["records"][0]
        assert CUSTOMER not in json.dumps(js) and PHONE not in json.dumps(js)
        recent = cli(service_env, "list", "--since", "1h")
        assert recent.returncode == 0 and "1 dead letter(s) selected of 1 read" in recent.stdout, recent.stderr
        later = cli(service_env, "list", "--since", "2099-01-01T00:00:00Z")
        assert later.returncode == 0 and "0 dead letter(s) selected of 0 read" in later.stdout, later.stderr
        none = cli(service_env, "list", "--reason", "no_such_reason")
        assert none.returncode == 0 and "0 dead letter(s) selected of 1 read" in none.stdout

        # Bad input: a selection is required, a bad --since and an unknown --to are errors.
        bad = cli(service_env, "replay")
        assert bad.returncode == 2 and "--all" in bad.stderr
        bad = cli(service_env, "list", "--since", "yesterday")
        assert bad.returncode == 2 and "--since" in bad.stderr
        bad = cli(service_env, "replay", "--all", "--to", "no.such.topic")
        assert bad.returncode == 2 and t + "no.such.topic" in bad.stderr

        # Dry run: says what it would send, sends nothing.
        dry = cli(service_env, "replay", "--reason", "unknown_tenant", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would replay 0:" in dry.stdout or "would replay 1:" in dry.stdout
        assert CUSTOMER not in dry.stdout and PHONE not in dry.stdout
        time.sleep(2)
        assert len(read_all(b, inbound)) == 1

        # Replayed while the tenant is still unknown: dead-lettered again, with the marker.
        first = cli(service_env, "replay", "--reason", "unknown_tenant")
        assert first.returncode == 0, first.stderr
        wait_until(lambda: len(read_all(b, dlq)) == 2, "the replay dead-lettered again")
        looped = [m for m in read_all(b, dlq) if header(m, REPLAYED_FROM)]
        assert len(looped) == 1 and header(looped[0], "dlq.reason") == "unknown_tenant"
        original = [m for m in read_all(b, dlq) if not header(m, REPLAYED_FROM)][0]
        assert header(looped[0], REPLAYED_FROM) == f"{dlq}/{original.partition()}/{original.offset()}"
        assert read_all(b, normalized) == []
    finally:
        assert svc.terminate() == 0

    # The tenant is added: ingestion reads its tenants file at start.
    svc = ingestion(service_env, tmp_path, "tenants:\n  acme: {}\n  globex: {}\n")
    try:
        second = cli(service_env, "replay", "--reason", "unknown_tenant")
        # The original is replayed; the looped copy is refused (exit 1 says something was not replayed).
        assert second.returncode == 1, second.stderr
        assert f"refused {looped[0].partition()}:{looped[0].offset()}" in second.stderr
        assert "1 of 2 selected dead letter(s) replayed; 1 refused" in second.stdout

        def normalized_events() -> list[contact_pb2.ContactEvent]:
            return [contact_pb2.ContactEvent.FromString(m.value()) for m in read_all(b, normalized)]

        events = wait_until(normalized_events, "the replayed event normalized")
        assert [(e.envelope.tenant_id, e.envelope.event_id) for e in events] == [("globex", ev["event_id"])]

        # Forced, the looped copy goes too: the same event id, dropped by ingestion's dedupe.
        forced = cli(service_env, "replay", "--force", "--record", f"{looped[0].partition()}:{looped[0].offset()}")
        assert forced.returncode == 0, forced.stderr
        inbound_count = 4  # the original, two replays of it, the forced one
        wait_until(lambda: len(read_all(b, inbound)) == inbound_count, "the forced replay on the inbound topic")
        wait_until(lambda: _duplicates(svc) == 1, "ingestion to drop the forced replay as a duplicate")
        assert len(normalized_events()) == 1
        assert len(read_all(b, dlq)) == 2
    finally:
        assert svc.terminate() == 0
