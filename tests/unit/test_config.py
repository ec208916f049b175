from __future__ import annotations

import pytest

from services.common.config import ConfigError, KafkaSettings, ServiceSettings


def test_required_and_defaults() -> None:
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS is required"):
        KafkaSettings.from_env({})
    env = {"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "SWITCHBOARD_TOPIC_PREFIX": "x."}
    s = ServiceSettings.from_env("routing", 9103, env)
    assert s.http_port == 9103 and s.kafka.exactly_once and s.group_id == "x.switchboard-routing"
    assert s.kafka.topic("contacts.inbound.v1") == "x.contacts.inbound.v1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SWITCHBOARD_HTTP_PORT": "http"}, "SWITCHBOARD_HTTP_PORT='http' is not an integer"),
        ({"SWITCHBOARD_HTTP_PORT": "70000"}, "above the maximum"),
        ({"SWITCHBOARD_EXACTLY_ONCE": "maybe"}, "is not a boolean"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_MECHANISM"),
        ({"SWITCHBOARD_LOG_LEVEL": "chatty"}, "SWITCHBOARD_LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServiceSettings.from_env("x", 1, {"KAFKA_BOOTSTRAP_SERVERS": "k:9092", **env})


def test_sasl_settings_map_to_librdkafka() -> None:
    k = KafkaSettings.from_env({
        "KAFKA_BOOTSTRAP_SERVERS": "k:9093", "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p",
        "KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
    })
    assert k.client_config() == {
        "bootstrap.servers": "k:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": "/etc/ca.pem",
        "reconnect.backoff.max.ms": "1000",
    }


def test_a_renamed_variable_reads_the_new_name_then_the_old_one_and_records_it() -> None:
    from services.common import config

    config.DEPRECATED_NAMES.clear()
    assert config.renamed("ROUTING_GRPC_PORT", "SWITCHBOARD_GRPC_PORT", env={}) == "ROUTING_GRPC_PORT"
    both = {"ROUTING_GRPC_PORT": "1", "SWITCHBOARD_GRPC_PORT": "2"}
    assert config.renamed("ROUTING_GRPC_PORT", "SWITCHBOARD_GRPC_PORT", env=both) == "ROUTING_GRPC_PORT"
    assert config.DEPRECATED_NAMES == []
    old = {"SWITCHBOARD_GRPC_PORT": "2"}
    name = config.renamed("ROUTING_GRPC_PORT", "SWITCHBOARD_GRPC_PORT", env=old)
    assert name == "SWITCHBOARD_GRPC_PORT" and config.env_int(name, 1, env=old) == 2
    assert config.DEPRECATED_NAMES == [("SWITCHBOARD_GRPC_PORT", "ROUTING_GRPC_PORT")]
    config.DEPRECATED_NAMES.clear()


def test_each_service_reads_its_settings_in_one_place() -> None:
    from services.enrichment.settings import EnrichmentSettings
    from services.routing.settings import RoutingSettings
    from services.survey.settings import SurveySettings

    assert RoutingSettings.from_env({}) == RoutingSettings()
    assert SurveySettings.from_env({}) == SurveySettings()
    assert EnrichmentSettings.from_env({}) == EnrichmentSettings()
    r = RoutingSettings.from_env({"ROUTING_GRPC_PORT": "6000", "ROUTING_FINISHED_MEMORY": "10",
                                  "ROUTING_METRICS_PER_AGENT": "true", "SWITCHBOARD_QUEUES_FILE": "/q.yaml"})
    assert (r.grpc_port, r.finished_memory, r.metrics_per_agent, r.queues_file) == (6000, 10, True, "/q.yaml")
    s = SurveySettings.from_env({"SURVEY_EXPIRY_SECONDS": "120", "SURVEY_CLOCK_OFFSET_SECONDS": "-5"})
    assert (s.expiry_seconds, s.clock_offset_seconds) == (120.0, -5.0)
    with pytest.raises(ConfigError, match="ROUTING_FINISHED_MEMORY=0 is below the minimum 1"):
        RoutingSettings.from_env({"ROUTING_FINISHED_MEMORY": "0"})
    with pytest.raises(ConfigError, match="SURVEY_EXPIRY_SECONDS=10.0 is below the minimum 60"):
        SurveySettings.from_env({"SURVEY_EXPIRY_SECONDS": "10"})
    with pytest.raises(ConfigError, match="ENRICHMENT_RULES_RELOAD_SECONDS='soon' is not a number"):
        EnrichmentSettings.from_env({"ENRICHMENT_RULES_RELOAD_SECONDS": "soon"})
