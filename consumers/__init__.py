"""Kafka side: turns exporters' messages into ledger commands (and publishes them).
Depends on ``ledger``'s public commands; ``ledger`` never imports it."""
