"""``ledger consume``: the exactly-once consumer of exporters' shipment messages.

A thin shell over ``consumers.consumer.IngestConsumer`` (imported inside the command,
so other commands never load Kafka): it opens the ledger and the keyring, runs until
SIGTERM/SIGINT (or idle, with ``--idle-exit``), and with ``--stats`` prints the
counts as JSON on stdout at the end. Logs are JSON lines on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ledger.cli.common import open_ledger
from ledger.cli.kafka_options import kafka_connection_options, pop_connection
from ledger.cli.output import print_json


def _require_rule_revision(ledger: Any) -> None:
    """Refuse to consume into a ledger that has no rule revision: every shipment would
    be stored, but no position could be answered until rules are loaded."""
    from ledger.errors import ConfigurationError

    has_rules = getattr(ledger, "has_rules", None)
    if has_rules is not None:
        found = bool(has_rules())
    else:
        from ledger.events import RuleRevisionPublished

        found = any(isinstance(e, RuleRevisionPublished) for _, e in ledger.read())
    if not found:
        ledger.close()
        raise ConfigurationError(
            "the ledger has no rule revision: load them first with 'ledger rules load "
            "--bundled' (or your rule books), then start the consumer")


def _health_log(path: Path) -> Any:
    """The consumer's JSON log, also touching ``path`` at every line: the loop logs at
    least every --stats-interval, so the file's age says whether it is alive."""
    from consumers.consumer import JsonLog

    class HealthLog(JsonLog):
        def __call__(self, event: str, level: str = "info", **fields: Any) -> None:
            super().__call__(event, level, **fields)
            try:
                path.touch()
            except OSError:
                pass  # a health file that cannot be touched must not stop ingestion

    path.touch()
    return HealthLog()


@click.command("consume")
@kafka_connection_options
@click.option("--topic", required=True, help="Topic exporters publish shipments to.")
@click.option("--group", required=True, help="Consumer group; members share the partitions.")
@click.option("--dead-letter-topic", help="Where refused messages go [default: TOPIC.dead-letter].")
@click.option("--keyring", required=True, envvar="LEDGER_KEYRING",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON file of exporters' public keys (also LEDGER_KEYRING).")
@click.option("--batch", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Most messages per poll; each partition's share is one transaction.")
@click.option("--stats", "print_stats", is_flag=True,
              help="Print counts and lag as JSON on stdout when stopping.")
@click.option("--stats-interval", type=click.FloatRange(min=0.1), default=30.0,
              show_default=True, help="Seconds between 'stats' log lines.")
@click.option("--idle-exit", type=click.FloatRange(min=0.1),
              help="Stop after this many seconds without messages once caught up.")
@click.option("--max-poll-interval-ms", type=click.IntRange(min=1000), default=300_000,
              show_default=True, help="kafka-python max_poll_interval_ms (also the "
                                      "group's rebalance timeout).")
@click.option("--max-message-age", type=click.FloatRange(min=0.001), default=7 * 24.0,
              show_default=True,
              help="Hours: a message whose sent_at is older is refused (dead letter "
                   "'stale-message'), so an old signed message cannot be replayed.")
@click.option("--session-timeout-ms", type=click.IntRange(min=1000), default=45_000,
              show_default=True, help="kafka-python session_timeout_ms.")
@click.option("--health-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Touch this file at every log line (at least every --stats-interval): "
                   "a health check tests its age.")
@click.pass_context
def consume(ctx: click.Context, /, topic: str, group: str, dead_letter_topic: str | None,
            keyring: Path, batch: int, print_stats: bool, stats_interval: float,
            idle_exit: float | None, max_poll_interval_ms: int, max_message_age: float,
            session_timeout_ms: int, health_file: Path | None, **kwargs: Any) -> None:
    """Append exporters' shipments from Kafka to the ledger, exactly once.

    Each message is checked (signature, exporter, shipment only, shape, product,
    date) and the good ones are appended with the Kafka position in the same
    transaction; a restarted or rebalanced consumer resumes from that position.
    Refused messages go to the dead-letter topic with the reason; the stream goes on.
    A message whose message_id was already applied is a no-op (counted as a
    duplicate), so a replayed message can never undo a later one.
    """
    import datetime as dt

    from consumers.consumer import ConsumerSettings, IngestConsumer
    from consumers.signing import Keyring

    connection = pop_connection(kwargs)
    ring = Keyring.load(keyring)
    settings = ConsumerSettings(
        connection=connection, topic=topic, group=group, dead_letter_topic=dead_letter_topic,
        batch=batch, idle_exit_s=idle_exit, stats_interval_s=stats_interval,
        max_poll_interval_ms=max_poll_interval_ms, session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(300, min(3000, session_timeout_ms // 3)),
        max_message_age=dt.timedelta(hours=max_message_age),
    )
    ledger = open_ledger(ctx, create=True)
    _require_rule_revision(ledger)
    log = _health_log(health_file) if health_file is not None else None
    try:
        stats = IngestConsumer(ledger, ring, settings, log=log).run()
    finally:
        ledger.close()
    if print_stats:
        print_json(stats.as_dict())
