"""quota-ledger: an event-sourced ledger of US export-control quotas for AI chips.

`ledger` is the write side and the domain: events, commands, rule books, the pure
counting rules, and the application that appends events to the store. Read models
live in `projections`, Kafka ingestion in `consumers`; neither is imported here.
"""

__version__ = "0.1.0"
