"""Kafka client security from env: every client the services build (producers, consumers, admin)
carries the same librdkafka security properties, and librdkafka itself accepts them."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from services.common.config import ConfigError, KafkaSettings
from services.common.kafka import consumer_config, producer_config

SECURITY_KEYS = {"security.protocol", "sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location",
                 "ssl.certificate.location", "ssl.key.location"}


def settings(**env: str) -> KafkaSettings:
    return KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "b-1.example:9096", **env})


def test_scram_over_tls_reaches_producers_and_consumers() -> None:
    k = settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
                 KAFKA_SASL_USERNAME="switchboard", KAFKA_SASL_PASSWORD="pw", KAFKA_SSL_CA_LOCATION="/etc/ca.crt")
    expected = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "switchboard",
                "sasl.password": "pw", "ssl.ca.location": "/etc/ca.crt"}
    for conf in (producer_config(k, "p", "tx-1"), consumer_config(k, "g", "c"), k.client_config()):
        assert {key: conf[key] for key in SECURITY_KEYS if key in conf} == expected
        assert conf["bootstrap.servers"] == "b-1.example:9096"


def test_mutual_tls_without_sasl() -> None:
    k = settings(KAFKA_SECURITY_PROTOCOL="ssl", KAFKA_SSL_CA_LOCATION="/s/ca.crt",
                 KAFKA_SSL_CERTIFICATE_LOCATION="/s/tls.crt", KAFKA_SSL_KEY_LOCATION="/s/tls.key")
    conf = consumer_config(k, "g", "c")
    assert {key: conf[key] for key in SECURITY_KEYS if key in conf} == {
        "security.protocol": "SSL", "ssl.ca.location": "/s/ca.crt", "ssl.certificate.location": "/s/tls.crt",
        "ssl.key.location": "/s/tls.key"}
    assert producer_config(k, "p")["acks"] == "all"


@pytest.mark.parametrize(("env", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"}, "needs KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u"},
     "KAFKA_SASL_MECHANISM='GSSAPI' must be one of"),
    # Offered once, but only user and password reached the client: an unsecured test token.
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "oauthbearer", "KAFKA_SASL_USERNAME": "u"},
     "KAFKA_SASL_MECHANISM=OAUTHBEARER is not supported: Switchboard has no OIDC settings"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTIFICATE_LOCATION": "/s/tls.crt"}, "go together"),
    ({"KAFKA_SSL_CA_LOCATION": "/s/ca.crt"}, "KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS"),
])
def test_inconsistent_security_settings_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(**env)


def test_librdkafka_accepts_the_sasl_config() -> None:
    # Property names and values are checked by librdkafka when the client is built (no connection yet).
    k = settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                 KAFKA_SASL_USERNAME="u", KAFKA_SASL_PASSWORD="p")
    Producer({**producer_config(k, "p"), "log_level": 0}).flush(0)
    with pytest.raises(Exception, match="sasl.mechanisms|Unsupported"):
        Producer({**producer_config(k, "p"), "sasl.mechanism": "NOPE", "log_level": 0})
