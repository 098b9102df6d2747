"""Kafka connection settings shared by the producer and the consumer: TLS and SASL.

They pass straight through to kafka-python (``security_protocol``, ``sasl_mechanism``,
``sasl_plain_username``, ``sasl_plain_password``, ``ssl_cafile``, ``ssl_certfile``,
``ssl_keyfile``); the CLI fills them from options or the ``KAFKA_*`` environment
variables. Only the settings given are passed, so kafka-python's defaults hold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ledger.errors import ConfigurationError

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")


@dataclass(frozen=True)
class Connection:
    """Where the brokers are and how to reach them."""

    bootstrap_servers: str
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ConfigurationError("--bootstrap must name at least one HOST:PORT")
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ConfigurationError(
                    f"--bootstrap {server.strip()!r} must be HOST:PORT (comma-separated)")
        if self.security_protocol and self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigurationError(f"security protocol {self.security_protocol!r} must be one "
                                     f"of {', '.join(SECURITY_PROTOCOLS)}")
        if self.sasl_mechanism and self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigurationError(f"SASL mechanism {self.sasl_mechanism!r} must be one of "
                                     f"{', '.join(SASL_MECHANISMS)}")

    def kafka_config(self) -> dict[str, Any]:
        """Keyword arguments for KafkaProducer / KafkaConsumer / KafkaAdminClient."""
        config = {k: v for k, v in asdict(self).items() if v is not None}
        config["bootstrap_servers"] = [s.strip() for s in self.bootstrap_servers.split(",")]
        return config
