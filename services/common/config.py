"""Configuration from environment variables: read once at start, fail fast with a clear message."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(Exception):
    """A setting is missing or invalid. The message names the variable and the reason."""


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    value = _raw(os.environ if env is None else env, name)
    if value is None:
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default
    return value


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    value = _raw(os.environ if env is None else env, name)
    if value is None:
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    if minimum is not None and parsed < minimum:
        raise ConfigError(f"{name}={parsed} is below the minimum {minimum}")
    if maximum is not None and parsed > maximum:
        raise ConfigError(f"{name}={parsed} is above the maximum {maximum}")
    return parsed


def env_float(
    name: str, default: float, *, minimum: float | None = None, env: Mapping[str, str] | None = None
) -> float:
    value = _raw(os.environ if env is None else env, name)
    if value is None:
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if minimum is not None and parsed < minimum:
        raise ConfigError(f"{name}={parsed} is below the minimum {minimum}")
    return parsed


# Old names still read, for one release, when the new one is not set: (old, new) as found.
DEPRECATED_NAMES: list[tuple[str, str]] = []


def renamed(new: str, old: str, *, env: Mapping[str, str] | None = None) -> str:
    """The variable to read for a setting renamed from `old` to `new`: `new` when set, else `old`
    when set (recorded in DEPRECATED_NAMES, which the service logs at start), else `new`."""
    env = os.environ if env is None else env
    if _raw(env, new) is None and _raw(env, old) is not None:
        if (old, new) not in DEPRECATED_NAMES:
            DEPRECATED_NAMES.append((old, new))
        return old
    return new


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool, *, env: Mapping[str, str] | None = None) -> bool:
    value = _raw(os.environ if env is None else env, name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true/false)")


_SECURITY_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
_SASL_MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
# Offered until 0.2.0, but only a user name and password ever reached the client: librdkafka's
# OAUTHBEARER then sends an unsecured test token no real broker accepts. Refused with the reason
# until OIDC settings (token endpoint, client id and secret) exist and are tested end to end.
_NOT_SUPPORTED = {"OAUTHBEARER": "KAFKA_SASL_MECHANISM=OAUTHBEARER is not supported: Switchboard has no OIDC "
                                 "settings (token endpoint, client id and secret) yet; use SCRAM-SHA-512, "
                                 "SCRAM-SHA-256 or PLAIN"}


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the broker. Security settings map 1:1 onto librdkafka properties."""

    bootstrap_servers: str
    topic_prefix: str = ""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    # Consume, produce and commit in one Kafka transaction (exactly-once). Off only for
    # brokers without working transactions (tansu).
    exactly_once: bool = True

    def client_config(self) -> dict[str, str]:
        conf = {
            "bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol,
            # A broker that was away (a restart, a roll) is tried again at most 1 s apart, as the Java
            # client does; librdkafka's default backs off up to 10 s, so clients could take that long
            # to use a broker that was back (and the leaders it takes over).
            "reconnect.backoff.max.ms": "1000",
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        conf.update({k: v for k, v in optional.items() if v})
        return conf

    def topic(self, base: str) -> str:
        return f"{self.topic_prefix}{base}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSettings:
        protocol = env_str("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", env=env).upper()
        if protocol not in _SECURITY_PROTOCOLS:
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL={protocol!r} must be one of {sorted(_SECURITY_PROTOCOLS)}"
            )
        mechanism = _raw(os.environ if env is None else env, "KAFKA_SASL_MECHANISM")
        if mechanism is not None and mechanism.upper() in _NOT_SUPPORTED:
            raise ConfigError(_NOT_SUPPORTED[mechanism.upper()])
        if mechanism is not None and mechanism.upper() not in _SASL_MECHANISMS:
            raise ConfigError(f"KAFKA_SASL_MECHANISM={mechanism!r} must be one of {sorted(_SASL_MECHANISMS)}")
        settings = cls(
            bootstrap_servers=env_str("KAFKA_BOOTSTRAP_SERVERS", env=env),
            topic_prefix=env_str("SWITCHBOARD_TOPIC_PREFIX", "", env=env),
            security_protocol=protocol,
            sasl_mechanism=mechanism.upper() if mechanism else None,
            sasl_username=_raw(os.environ if env is None else env, "KAFKA_SASL_USERNAME"),
            sasl_password=_raw(os.environ if env is None else env, "KAFKA_SASL_PASSWORD"),
            ssl_ca_location=_raw(os.environ if env is None else env, "KAFKA_SSL_CA_LOCATION"),
            ssl_certificate_location=_raw(os.environ if env is None else env, "KAFKA_SSL_CERTIFICATE_LOCATION"),
            ssl_key_location=_raw(os.environ if env is None else env, "KAFKA_SSL_KEY_LOCATION"),
            exactly_once=env_bool("SWITCHBOARD_EXACTLY_ONCE", True, env=env),
        )
        if protocol.startswith("SASL") and not (settings.sasl_mechanism and settings.sasl_username):
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM and KAFKA_SASL_USERNAME"
            )
        if bool(settings.ssl_certificate_location) != bool(settings.ssl_key_location):
            raise ConfigError("KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together "
                              "(mTLS needs the client certificate and its key)")
        uses_tls = settings.ssl_ca_location or settings.ssl_certificate_location
        if uses_tls and protocol not in ("SSL", "SASL_SSL"):
            raise ConfigError(f"KAFKA_SSL_* is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS "
                              "(use SSL or SASL_SSL)")
        return settings


@dataclass(frozen=True)
class ServiceSettings:
    """What every service reads: its identity, the broker, and where it serves HTTP."""

    service: str
    kafka: KafkaSettings
    http_port: int
    instance_id: str
    log_level: str = "INFO"
    batch_size: int = 500
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def group_id(self) -> str:
        return f"{self.kafka.topic_prefix}switchboard-{self.service}"

    @classmethod
    def from_env(cls, service: str, default_http_port: int, env: Mapping[str, str] | None = None) -> ServiceSettings:
        level = env_str("SWITCHBOARD_LOG_LEVEL", "INFO", env=env).upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"SWITCHBOARD_LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
        return cls(
            service=service,
            kafka=KafkaSettings.from_env(env),
            http_port=env_int("SWITCHBOARD_HTTP_PORT", default_http_port, minimum=0, maximum=65535, env=env),
            instance_id=env_str("SWITCHBOARD_INSTANCE_ID", socket.gethostname(), env=env),
            log_level=level,
            batch_size=env_int("SWITCHBOARD_BATCH_SIZE", 500, minimum=1, maximum=100_000, env=env),
        )
