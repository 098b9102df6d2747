"""Kafka ingestion: exporters publish signed shipment messages, the ledger consumes them.

``envelope`` is the wire format and the decoder (bytes in, a shipment command or a
``Rejected`` reason out); ``signing`` holds the Ed25519 keys and keyrings;
``producer`` is the small library exporters' Python systems use; ``consumer`` is the
exactly-once consumer-group member behind ``ledger consume``; ``deadletter`` is the
dead-letter record format; ``schemas`` writes the JSON Schema files of ``schemas/``.
This package depends on ``ledger``'s public commands and errors; ``ledger`` never
imports it (the CLI commands import it lazily).
"""
