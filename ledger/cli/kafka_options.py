"""Kafka connection options shared by ``ledger produce`` and ``ledger consume``.

TLS and SASL settings pass through to kafka-python; each option also reads an
environment variable (``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_SECURITY_PROTOCOL``,
``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``,
``KAFKA_SSL_CAFILE``, ``KAFKA_SSL_CERTFILE``, ``KAFKA_SSL_KEYFILE``) so secrets need
not appear on a command line. Importing this module does not import Kafka.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

_OPTIONS = [
    click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", required=True,
                 metavar="HOST:PORT[,HOST:PORT]",
                 help="Kafka brokers (also KAFKA_BOOTSTRAP_SERVERS)."),
    click.option("--security-protocol", envvar="KAFKA_SECURITY_PROTOCOL",
                 type=click.Choice(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
                 help="Kafka security protocol (also KAFKA_SECURITY_PROTOCOL)."),
    click.option("--sasl-mechanism", envvar="KAFKA_SASL_MECHANISM",
                 type=click.Choice(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER",
                                    "GSSAPI"]),
                 help="SASL mechanism (also KAFKA_SASL_MECHANISM)."),
    click.option("--sasl-username", envvar="KAFKA_SASL_USERNAME",
                 help="SASL user name (also KAFKA_SASL_USERNAME)."),
    click.option("--sasl-password", envvar="KAFKA_SASL_PASSWORD",
                 help="SASL password (prefer the KAFKA_SASL_PASSWORD variable)."),
    click.option("--ssl-cafile", envvar="KAFKA_SSL_CAFILE",
                 type=click.Path(exists=True, dir_okay=False),
                 help="CA bundle to verify the brokers (also KAFKA_SSL_CAFILE)."),
    click.option("--ssl-certfile", envvar="KAFKA_SSL_CERTFILE",
                 type=click.Path(exists=True, dir_okay=False),
                 help="Client certificate for mutual TLS (also KAFKA_SSL_CERTFILE)."),
    click.option("--ssl-keyfile", envvar="KAFKA_SSL_KEYFILE",
                 type=click.Path(exists=True, dir_okay=False),
                 help="Client certificate's key (also KAFKA_SSL_KEYFILE)."),
]

CONNECTION_PARAMS = ("bootstrap", "security_protocol", "sasl_mechanism", "sasl_username",
                     "sasl_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile")


def kafka_connection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the connection options to a click command."""
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def pop_connection(kwargs: dict[str, Any]) -> Any:
    """Remove the connection options from ``kwargs`` and build a ``Connection``."""
    from consumers.settings import Connection

    values = {k: kwargs.pop(k) for k in CONNECTION_PARAMS}
    return Connection(
        bootstrap_servers=values["bootstrap"],
        security_protocol=values["security_protocol"],
        sasl_mechanism=values["sasl_mechanism"],
        sasl_plain_username=values["sasl_username"],
        sasl_plain_password=values["sasl_password"],
        ssl_cafile=values["ssl_cafile"],
        ssl_certfile=values["ssl_certfile"],
        ssl_keyfile=values["ssl_keyfile"],
    )
