"""The producer library for exporters' Python systems: sign, send, confirm delivery.

.. code-block:: python

    from consumers.producer import ShipmentProducer
    with ShipmentProducer("kafka:9092", topic="shipments", exporter_id="acme",
                          key_file="acme.pem") as producer:
        producer.publish([{"type": "shipment.recorded", "shipment_ref": "A-1", ...}])

Every message is keyed by the exporter id (one exporter's messages stay in order on
one partition), signed with the exporter's Ed25519 key, and sent with ``acks=all``,
idempotence on, unlimited retries and one request in flight, so a retry can neither
duplicate nor reorder. ``publish`` returns only when the brokers confirmed every
message, and raises ``DeliveryError`` otherwise.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError as PydanticError

from consumers.envelope import (
    ADMIN_TYPES,
    SHIPMENT_TYPES,
    Auth,
    Envelope,
    encode_envelope,
    signature_header,
)
from consumers.settings import Connection
from consumers.signing import ALGORITHM, load_private_key, sign
from ledger.commands import CorrectShipment, RecordShipment, VoidShipment, describe_pydantic_error
from ledger.errors import LedgerError, ValidationError

ShipmentCommand = RecordShipment | CorrectShipment | VoidShipment
#: how long publish waits for the brokers to confirm one message
DELIVERY_TIMEOUT_S = 60.0


class DeliveryError(LedgerError):
    """The brokers did not confirm a message (it may or may not have been written)."""

    code = "delivery"


def shipment_command(data: Mapping[str, Any], exporter_id: str) -> ShipmentCommand:
    """Validate a shipment object (the ``ledger import`` shape); ``exporter_id`` is
    filled in when absent and must match when present. Raises ValidationError."""
    from ledger.commands import parse_command

    kind = data.get("type", "shipment.recorded")
    if kind in ADMIN_TYPES:
        raise ValidationError(f"type {kind!r} cannot be published by an exporter (only "
                              f"{', '.join(SHIPMENT_TYPES)})", field="type", value=kind)
    given = data.get("exporter_id")
    if given is not None and given != exporter_id:
        raise ValidationError(f"exporter_id {given!r} is not the publishing exporter "
                              f"{exporter_id!r}", field="exporter_id", value=given)
    command = parse_command({**data, "type": kind, "exporter_id": exporter_id})
    assert isinstance(command, (RecordShipment, CorrectShipment, VoidShipment))
    return command


#: namespace of the message ids derived from a message's content
MESSAGE_NAMESPACE = uuid.UUID("0d5f7a52-3b8e-4c61-9a57-2f1e6c3b9d84")


def content_message_id(exporter_id: str, command: ShipmentCommand) -> uuid.UUID:
    """The message id of a command: derived from the exporter and the payload, so
    publishing the same line again sends the same id and the ledger applies it once.
    Publishing a deliberate repeat (back to an earlier value) takes a ``command_id``
    in the line, which changes the id."""
    payload = command.model_dump_json(exclude_none=True)
    return uuid.uuid5(MESSAGE_NAMESPACE, f"{exporter_id}\x1f{payload}")


class MessageSigner:
    """Builds the signed (key, value, headers) of one exporter's messages."""

    def __init__(self, exporter_id: str, private_key: Ed25519PrivateKey,
                 key_id: str | None = None) -> None:
        self.exporter_id = exporter_id
        self.key_id = key_id or exporter_id
        self._key = private_key

    def envelope(self, command: ShipmentCommand, *, message_id: uuid.UUID | None = None,
                 sent_at: dt.datetime | None = None) -> Envelope:
        return Envelope(schema_version=1, exporter_id=self.exporter_id,
                        message_id=message_id or uuid.uuid4(),
                        sent_at=sent_at or dt.datetime.now(dt.UTC),
                        auth=Auth(alg=ALGORITHM, key_id=self.key_id), payload=command)

    def message(self, command: ShipmentCommand | Mapping[str, Any]
                ) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """(key, value, headers) ready to send. Raises ValidationError for a bad command."""
        if not isinstance(command, (RecordShipment, CorrectShipment, VoidShipment)):
            command = shipment_command(command, self.exporter_id)
        try:
            envelope = self.envelope(
                command, message_id=content_message_id(self.exporter_id, command))
        except PydanticError as e:
            msg, field, value = describe_pydantic_error(e)
            raise ValidationError(msg, field=field, value=value) from e
        value = encode_envelope(envelope)
        return (self.exporter_id.encode("utf-8"), value,
                [signature_header(sign(self._key, value))])


class ShipmentProducer:
    """Publishes one exporter's shipments to a Kafka topic, with delivery confirmation."""

    def __init__(self, bootstrap: str | Connection, *, topic: str, exporter_id: str,
                 key_file: str | Path | None = None,
                 private_key: Ed25519PrivateKey | None = None, key_id: str | None = None,
                 **kafka_options: Any) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        if private_key is None:
            if key_file is None:
                raise ValidationError("give key_file or private_key to sign messages",
                                      field="key_file", value=None)
            private_key = load_private_key(Path(key_file))
        self.topic = topic
        self.signer = MessageSigner(exporter_id, private_key, key_id)
        connection = (bootstrap if isinstance(bootstrap, Connection)
                      else Connection(bootstrap_servers=bootstrap))
        config: dict[str, Any] = {
            **connection.kafka_config(),
            # a message counts as sent once every in-sync replica has it
            "acks": "all",
            # the broker drops a retried batch it already has (no duplicates) ...
            "enable_idempotence": True,
            # ... and one request in flight keeps order even across a retry
            "max_in_flight_requests_per_connection": 1,
            "linger_ms": 5,
            **kafka_options,
        }
        try:
            self._producer = KafkaProducer(**config)
        except KafkaError as e:
            raise DeliveryError(f"cannot connect to Kafka at {connection.bootstrap_servers}: "
                                f"{e}") from e

    def send(self, command: ShipmentCommand | Mapping[str, Any]) -> Any:
        """Queue one message; returns kafka-python's future of its RecordMetadata."""
        key, value, headers = self.signer.message(command)
        return self._producer.send(self.topic, key=key, value=value, headers=headers)

    def publish(self, commands: Iterable[ShipmentCommand | Mapping[str, Any]],
                *, on_delivered: Any = None) -> list[Any]:
        """Send every command and wait until the brokers confirmed each; returns the
        RecordMetadata (topic, partition, offset) in order. Raises DeliveryError."""
        from kafka.errors import KafkaError

        futures = []
        for command in commands:
            futures.append(self.send(command))
        self._producer.flush()
        confirmed = []
        for i, future in enumerate(futures):
            try:
                confirmed.append(future.get(timeout=DELIVERY_TIMEOUT_S))
            except KafkaError as e:
                raise DeliveryError(f"message {i + 1} of {len(futures)} was not confirmed by "
                                    f"the brokers: {e}; {i} were confirmed") from e
            if on_delivered is not None:
                on_delivered(1)
        return confirmed

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
