"""Writes Switchboard's Grafana dashboards and links the Helm chart to them and to the Prometheus rules.

    python deploy/grafana/generate.py          # or: make monitoring

Sources: the panel definitions below (written to deploy/grafana/dashboards/*.json) and the hand-written
deploy/prometheus/rules.yaml. The chart's files/dashboards/*.json and files/prometheus/rules.yaml are
relative symlinks to them, never copies (docs/decisions/0004-one-source-per-artifact.md): helm reads
through them and `helm package` stores their content. tests/unit/test_monitoring_files.py fails when a
dashboard differs from what this script would write; tests/deploy/test_one_source.py when a chart entry
is a copy or a link that goes anywhere but its source.

Every panel queries `${datasource}` and filters by the `tenant` and `queue` variables. Ratios are
computed from summed counts (the recorded increases of rules.yaml), never by averaging ratios.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
CHART_FILES = ROOT / "helm" / "switchboard" / "files"

DS = {"type": "prometheus", "uid": "${datasource}"}
TQ = 'tenant=~"$tenant",queue=~"$queue"'
T = 'tenant=~"$tenant"'
TQ_ANSWERED = TQ + ',outcome="answered"'
CSAT = ',question="csat"'
CSAT_SATISFIED = ',question="csat",band="satisfied"'
NPS = ',question="nps"'
NPS_PROMOTER = ',question="nps",band="promoter"'
NPS_DETRACTOR = ',question="nps",band="detractor"'


def inc(metric: str, sel: str = TQ, window: str = "$__range") -> str:
    return f"increase({metric}{{{sel}}}[{window}])"


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "time_series") -> dict:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref,
                         "range": not instant, "instant": instant, "format": fmt}
    return t


class Board:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_h = 0

    def add(self, kind: str, title: str, targets: list[dict], w: int = 8, h: int = 8, unit: str = "short",
            description: str = "", options: dict | None = None, interval: str = "",
            overrides: list | None = None, thresholds: list | None = None, decimals: int | None = None) -> None:
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        defaults: dict[str, Any] = {"unit": unit}
        if thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
        if decimals is not None:
            defaults["decimals"] = decimals
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1, "type": kind, "title": title, "description": description,
            "datasource": DS, "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
        }
        if interval:
            panel["interval"] = interval
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str) -> None:
        self.x, self.y = 0, self.y + self.row_h
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.y += 1
        self.row_h = 0


def variable_datasource() -> dict:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}


def variable_query(name: str, label: str, query: str, multi: bool = True) -> dict:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "definition": query, "query": {"query": query, "refId": f"{name}-values"},
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "options": [],
            "regex": ""}


TENANT_VAR = variable_query("tenant", "Tenant", "label_values(switchboard_queue_waiting_contacts, tenant)")
QUEUE_VAR = variable_query("queue", "Queue",
                           'label_values(switchboard_queue_waiting_contacts{tenant=~"$tenant"}, queue)')
SERVICE_VAR = variable_query("service", "Service", "label_values(switchboard_events_consumed_total, service)")

PERCENT_RED_GREEN = [{"color": "red", "value": None}, {"color": "orange", "value": 0.7},
                     {"color": "green", "value": 0.8}]
ABANDON_STEPS = [{"color": "green", "value": None}, {"color": "orange", "value": 0.05},
                 {"color": "red", "value": 0.1}]


def dashboard(uid: str, title: str, description: str, board: Board, variables: list[dict], time_from: str,
              refresh: str) -> dict:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["switchboard"],
        "schemaVersion": 39, "version": 1, "editable": False, "graphTooltip": 1, "timezone": "browser",
        "time": {"from": time_from, "to": "now"}, "refresh": refresh,
        "templating": {"list": [variable_datasource(), *variables]},
        "annotations": {"list": []}, "links": [], "panels": board.panels,
    }


def supervisor() -> dict:
    b = Board()
    sl5 = f"tenant_queue:switchboard_service_level:ratio5m{{{TQ}}}"
    b.add("stat", "Service level (5 min)", [target(sl5, "{{queue}}", instant=True)], w=6, h=6, unit="percentunit",
          description="Answered within the queue's threshold / (answered + abandoned after it), last 5 minutes.",
          thresholds=PERCENT_RED_GREEN, decimals=1)
    b.add("stat", "Waiting now", [target(f"sum by (queue) (switchboard_queue_waiting_contacts{{{TQ}}})", "{{queue}}",
                                         instant=True)], w=6, h=6)
    b.add("stat", "Longest wait", [target(f"max by (queue) (switchboard_queue_oldest_wait_seconds{{{TQ}}})",
                                          "{{queue}}", instant=True)], w=6, h=6, unit="s",
          thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 20},
                      {"color": "red", "value": 60}])
    b.add("stat", "Abandonment (1 h)", [target(f"tenant_queue:switchboard_abandonment:ratio1h{{{TQ}}}", "{{queue}}",
                                               instant=True)], w=6, h=6, unit="percentunit",
          description="Abandoned (short abandons counted apart, not included) / offered, last hour.",
          thresholds=ABANDON_STEPS, decimals=1)
    b.row("Queues")
    b.add("timeseries", "Service level by queue (5 min)", [target(sl5, "{{queue}}")], w=12, unit="percentunit")
    b.add("timeseries", "Contacts waiting", [target(
        f"sum by (queue) (switchboard_queue_waiting_contacts{{{TQ}}})", "{{queue}}")], w=12)
    b.add("timeseries", "Longest wait", [target(
        f"max by (queue) (switchboard_queue_oldest_wait_seconds{{{TQ}}})", "{{queue}}")], w=12, unit="s")
    b.add("timeseries", "Abandonment rate by queue (5 min)", [target(
        f"tenant_queue:switchboard_abandonment:ratio5m{{{TQ}}}", "{{queue}}")], w=12, unit="percentunit")
    b.add("bargauge", "Offered, answered, abandoned (1 h)", [
        target(f"sum(tenant_queue_channel:switchboard_contacts_offered:increase1h{{{TQ}}})", "offered", instant=True),
        target(f"sum(tenant_queue_channel:switchboard_contacts_answered:increase1h{{{TQ}}})", "answered",
               instant=True),
        target(f"sum(tenant_queue_channel:switchboard_contacts_abandoned:increase1h{{{TQ}}})", "abandoned",
               instant=True),
        target(f"sum(tenant_queue_channel:switchboard_contacts_short_abandoned:increase1h{{{TQ}}})",
               "short abandoned", instant=True),
    ], w=12, decimals=0, options={"orientation": "horizontal", "displayMode": "basic"})
    b.add("timeseries", "ASA by queue (5 min)", [target(
        f"tenant_queue:switchboard_asa_seconds:mean5m{{{TQ}}}", "{{queue}}")], w=12, unit="s",
          description="Mean queue wait of answered contacts (IVR time excluded).")
    b.row("Agents")
    b.add("piechart", "Agents by state (tenant)", [target(
        f'sum by (state) (switchboard_agents{{{T},state!="logged_out"}})', "{{state}}", instant=True)], w=8,
          options={"pieType": "donut", "legend": {"displayMode": "table", "placement": "right",
                                                  "values": ["value"]}})
    b.add("timeseries", "Agents by state over time", [target(
        f'sum by (state) (switchboard_agents{{{T},state!="logged_out"}})', "{{state}}")], w=8,
          options={"tooltip": {"mode": "multi"}})
    b.add("table", "Logged-in agents per queue and state", [target(
        f"sum by (queue, state) (switchboard_queue_agents{{{TQ}}})", instant=True, fmt="table")], w=8,
          options={"showHeader": True})
    return dashboard("switchboard-supervisor", "Switchboard / Supervisor (real time)",
                     "Service level, waiting contacts, longest wait, agents by state and abandonment, now.",
                     b, [TENANT_VAR, QUEUE_VAR], "now-1h", "10s")


def history() -> dict:
    b = Board()
    # A queue where nobody abandoned after the threshold (or nobody was answered within it) has no such
    # series: counted as 0, or the service level showed no data until the first such contact.
    sl = (f"(sum(increase(switchboard_contacts_answered_within_sl_total{{{TQ}}}[$__range])) or vector(0)) / "
          f"(sum({inc('switchboard_contacts_answered_total')}) + "
          f"(sum({inc('switchboard_contacts_abandoned_after_sl_total')}) or vector(0)))")
    b.add("stat", "Offered", [target(f"sum({inc('switchboard_contacts_offered_total')})", instant=True)], w=4, h=5,
          decimals=0)
    b.add("stat", "Service level", [target(sl, instant=True)], w=4, h=5, unit="percentunit",
          thresholds=PERCENT_RED_GREEN, decimals=1)
    b.add("stat", "ASA", [target(
        f"sum({inc('switchboard_contact_wait_seconds_sum', TQ_ANSWERED)}) / "
        f"sum({inc('switchboard_contacts_answered_total')})", instant=True)], w=4, h=5, unit="s", decimals=1)
    b.add("stat", "AHT", [target(
        f"sum({inc('switchboard_contact_handle_seconds_sum')}) / "
        f"sum({inc('switchboard_contact_handle_seconds_count')})",
        instant=True)], w=4, h=5, unit="s", decimals=0)
    answers = "switchboard_survey_answers_total"
    csat = (f"sum({inc(answers, TQ + CSAT_SATISFIED)}) / sum({inc(answers, TQ + CSAT)})")
    nps = (f"100 * (sum({inc(answers, TQ + NPS_PROMOTER)}) - (sum({inc(answers, TQ + NPS_DETRACTOR)}) or vector(0))) "
           f"/ sum({inc(answers, TQ + NPS)})")
    b.add("stat", "CSAT", [target(csat, instant=True)], w=4, h=5, unit="percentunit", decimals=1,
          description="Share of 4-5 answers on the 1-5 scale.")
    b.add("stat", "NPS", [target(nps, instant=True)], w=4, h=5, unit="none", decimals=0,
          description="% promoters (9-10) - % detractors (0-6).")
    b.row("Volume")
    b.add("barchart", "Offered contacts by hour and channel", [target(
        f"sum by (channel) (increase(switchboard_contacts_offered_total{{{TQ}}}[1h]))", "{{channel}}")],
          w=16, interval="1h", decimals=0, options={"stacking": "normal", "xTickLabelSpacing": 100})
    b.add("piechart", "Offered by channel", [target(
        f"sum by (channel) ({inc('switchboard_contacts_offered_total')})", "{{channel}}", instant=True)], w=8)
    b.add("timeseries", "Answered and abandoned per hour", [
        target(f"sum(increase(switchboard_contacts_answered_total{{{TQ}}}[1h]))", "answered"),
        target(f"sum(increase(switchboard_contacts_abandoned_total{{{TQ}}}[1h])) - "
               f"(sum(increase(switchboard_contacts_short_abandoned_total{{{TQ}}}[1h])) or vector(0))", "abandoned"),
        target(f"sum(increase(switchboard_contacts_short_abandoned_total{{{TQ}}}[1h])) or vector(0)",
               "short abandoned"),
    ], w=24, interval="1h", decimals=0)
    b.row("Speed and handling")
    b.add("timeseries", "ASA by channel (1 h)", [target(
        f"sum by (channel) (tenant_queue_channel:switchboard_contact_wait_seconds_answered:increase1h{{{TQ}}}) / "
        f"sum by (channel) (tenant_queue_channel:switchboard_contacts_answered:increase1h{{{TQ}}})", "{{channel}}")],
          w=8, unit="s")
    b.add("timeseries", "AHT by channel (1 h)", [target(
        f"sum by (channel) (tenant_queue_channel:switchboard_contact_handle_seconds:increase1h{{{TQ}}}) / "
        f"sum by (channel) (tenant_queue_channel:switchboard_contacts_handled:increase1h{{{TQ}}})", "{{channel}}")],
          w=8, unit="s")
    b.add("timeseries", "Service level by channel (1 h)", [target(
        f"sum by (channel) (tenant_queue_channel:switchboard_contacts_answered_within_sl:increase1h{{{TQ}}}) / "
        f"(sum by (channel) (tenant_queue_channel:switchboard_contacts_answered:increase1h{{{TQ}}}) + "
        f"sum by (channel) (tenant_queue_channel:switchboard_contacts_abandoned_after_sl:increase1h{{{TQ}}}))",
        "{{channel}}")], w=8, unit="percentunit")
    handled = f"sum({inc('switchboard_contact_handle_seconds_count')})"
    b.add("bargauge", "Handle time per contact: talk, hold, wrap-up", [
        target(f"sum({inc('switchboard_contact_talk_seconds_total')}) / {handled}", "talk", instant=True),
        target(f"sum({inc('switchboard_contact_hold_seconds_total')}) / {handled}", "hold", instant=True),
        target(f"sum({inc('switchboard_contact_wrap_seconds_total')}) / {handled}", "wrap-up", instant=True),
    ], w=8, unit="s", options={"orientation": "horizontal", "displayMode": "basic"})
    b.add("timeseries", "IVR time per voice contact (1 h)", [target(
        f"sum by (queue) (tenant_queue_channel:switchboard_contact_ivr_seconds:increase1h{{{TQ}}}) / "
        f"sum by (queue) (tenant_queue_channel:switchboard_contacts_ivr:increase1h{{{TQ}}})", "{{queue}}")],
          w=8, unit="s", description="Time in the IVR before queueing (not part of the queue wait).")
    b.add("histogram", "Queue wait of answered contacts", [target(
        f'sum by (le) ({inc("switchboard_contact_wait_seconds_bucket", TQ_ANSWERED)})',
        "{{le}}", instant=True, fmt="heatmap")], w=8, unit="s")
    b.row("Agents (with ROUTING_METRICS_PER_AGENT / SURVEY_METRICS_PER_AGENT)")
    b.add("bargauge", "Contacts handled per agent (top 20)", [target(
        f"topk(20, sum by (agent) ({inc('switchboard_agent_contacts_handled_total', T)}))", "{{agent}}",
        instant=True)], w=8, h=10, decimals=0, options={"orientation": "horizontal", "displayMode": "basic"},
          description="Per-agent series exist only with ROUTING_METRICS_PER_AGENT=true (one series per agent).")
    b.add("bargauge", "AHT per agent (top 20 by volume)", [target(
        f"sum by (agent) ({inc('switchboard_agent_handle_seconds_total', T)}) / "
        f"sum by (agent) ({inc('switchboard_agent_contacts_handled_total', T)})", "{{agent}}", instant=True)],
          w=8, h=10, unit="s", options={"orientation": "horizontal", "displayMode": "basic"})
    b.add("bargauge", "CSAT per agent", [target(
        f"sum by (agent) ({inc('switchboard_survey_agent_answers_total', T + CSAT_SATISFIED)}) / "
        f"sum by (agent) ({inc('switchboard_survey_agent_answers_total', T + CSAT)})",
        "{{agent}}", instant=True)], w=8, h=10, unit="percentunit",
          options={"orientation": "horizontal", "displayMode": "basic"},
          description="Per-agent survey series exist only with SURVEY_METRICS_PER_AGENT=true.")
    b.row("Surveys")
    b.add("timeseries", "CSAT by queue (1 d)", [target(
        f'sum by (queue) (increase(switchboard_survey_answers_total{{{TQ},question="csat",band="satisfied"}}[1d])) / '
        f'sum by (queue) (increase(switchboard_survey_answers_total{{{TQ},question="csat"}}[1d]))', "{{queue}}")],
          w=12, unit="percentunit")
    b.add("timeseries", "NPS by queue (1 d)", [target(
        f'100 * (sum by (queue) (increase(switchboard_survey_answers_total{{{TQ}{NPS_PROMOTER}}}[1d])) '
        f'- (sum by (queue) (increase(switchboard_survey_answers_total{{{TQ},question="nps",band="detractor"}}[1d])) '
        f'or sum by (queue) (increase(switchboard_survey_answers_total{{{TQ},question="nps"}}[1d])) * 0)) '
        f'/ sum by (queue) (increase(switchboard_survey_answers_total{{{TQ},question="nps"}}[1d]))', "{{queue}}")],
          w=12, unit="none")
    b.add("timeseries", "Survey requests and responses per hour", [
        target(f"sum by (channel) (increase(switchboard_survey_requests_total{{{TQ}}}[1h]))", "requests {{channel}}"),
        target(f"sum(increase(switchboard_survey_responses_total{{{TQ}}}[1h]))", "responses"),
    ], w=24, interval="1h", decimals=0)
    return dashboard("switchboard-history", "Switchboard / Daily and historical",
                     "Volume by hour and channel, ASA, AHT, per-agent volume, IVR time, CSAT and NPS over the "
                     "chosen range.", b, [TENANT_VAR, QUEUE_VAR], "now-24h", "1m")


def platform() -> dict:
    b = Board()
    S = 'service=~"$service"'
    b.add("timeseries", "Events consumed per second", [target(
        f"sum by (service, topic) (rate(switchboard_events_consumed_total{{{S}}}[$__rate_interval]))",
        "{{service}} ← {{topic}}")], w=12, unit="ops")
    b.add("timeseries", "Events produced per second", [target(
        f"sum by (service, topic) (rate(switchboard_events_produced_total{{{S}}}[$__rate_interval]))",
        "{{service}} → {{topic}}")], w=12, unit="ops")
    b.add("timeseries", "Consumer lag (messages)", [target(
        f"sum by (service, topic) (switchboard_kafka_consumer_lag_messages{{{S}}})", "{{service}} {{topic}}")],
          w=12, description="End offset minus the group's committed offset, summed over partitions.")
    b.add("table", "Consumer lag by partition", [target(
        f"max by (service, topic, partition) (switchboard_kafka_consumer_lag_messages{{{S}}})", instant=True,
        fmt="table")], w=12)
    b.add("timeseries", "Dead letters per minute by reason", [target(
        f"sum by (service, reason) (rate(switchboard_dead_letters_total{{{S}}}[$__rate_interval])) * 60",
        "{{service}} {{reason}}")], w=12, unit="short")
    b.add("timeseries", "Processing errors per minute", [target(
        f"sum by (service) (rate(switchboard_processing_errors_total{{{S}}}[$__rate_interval])) * 60",
        "{{service}}")], w=12)
    b.add("timeseries", "Event latency p50 / p99 (Kafka timestamp to processed)", [
        target(f"histogram_quantile(0.5, sum by (service, le) "
               f"(rate(switchboard_event_latency_seconds_bucket{{{S}}}[$__rate_interval])))", "p50 {{service}}"),
        target(f"histogram_quantile(0.99, sum by (service, le) "
               f"(rate(switchboard_event_latency_seconds_bucket{{{S}}}[$__rate_interval])))", "p99 {{service}}"),
    ], w=12, unit="s")
    b.add("timeseries", "Batch processing time p99", [target(
        f"histogram_quantile(0.99, sum by (service, le) "
        f"(rate(switchboard_batch_processing_seconds_bucket{{{S}}}[$__rate_interval])))", "{{service}}")],
          w=12, unit="s")
    b.add("timeseries", "Kafka transactions per second by outcome", [target(
        f"sum by (service, outcome) (rate(switchboard_kafka_transactions_total{{{S}}}[$__rate_interval]))",
        "{{service}} {{outcome}}")], w=12, unit="ops")
    b.add("stat", "Ready", [target(f"sum by (service) (switchboard_ready{{{S}}})", "{{service}}", instant=True)],
          w=6, thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}])
    b.add("stat", "Lag poll errors (1 h)", [target(
        f"sum by (service) (increase(switchboard_kafka_consumer_lag_poll_errors_total{{{S}}}[1h]))", "{{service}}",
        instant=True)], w=6, decimals=0)
    b.add("timeseries", "Stream loop stall (s)", [target(
        f"max by (service) (switchboard_loop_stall_seconds{{{S}}})", "{{service}}")], w=12, unit="s",
          description="Seconds since the loop last went round, Kafka calls with a deadline and state loads "
                      "aside: what /healthz judges (unready at 30 s, restarted at 180 s by default).")
    return dashboard("switchboard-platform", "Switchboard / Platform",
                     "Throughput, consumer lag, dead letters, errors and latency of the four services.",
                     b, [SERVICE_VAR], "now-3h", "30s")


BUILDERS = {"switchboard-supervisor.json": supervisor, "switchboard-history.json": history,
            "switchboard-platform.json": platform}


def rendered() -> dict[Path, str]:
    """Every file this script writes, path -> content."""
    return {DASHBOARDS / name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
            for name, build in BUILDERS.items()}


def chart_links() -> dict[Path, str]:
    """The chart's entries for the dashboards and the rules: link path -> its relative target."""
    sources = [*(DASHBOARDS / name for name in BUILDERS), RULES]
    kinds = {DASHBOARDS: "dashboards", RULES.parent: "prometheus"}
    links = {CHART_FILES / kinds[src.parent] / src.name: src for src in sources}
    return {link: os.path.relpath(src, link.parent) for link, src in links.items()}


def main() -> int:
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    for link, target in chart_links().items():
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()  # a copy (or a wrong link) in the chart: the source is deploy/
        link.symlink_to(target)
        print(f"linked {link.relative_to(ROOT)} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
