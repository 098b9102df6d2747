"""The exactly-once consumer behind ``ledger consume``.

A consumer-group member reads exporters' messages, checks each one
(``consumers.envelope.decode_message``), decides the good ones against the ledger
and appends their events in ONE transaction per partition batch together with the
tracking position ``kafka:<topic>:<partition>`` = the batch's last offset. The
ledger's position, not Kafka's committed offset, is the truth:

- on partition assignment the consumer seeks to the stored position + 1;
- a redelivered message at or below the stored position writes nothing;
- refused messages are dead-lettered (confirmed by the brokers) *before* the batch
  is stored, so a crash cannot lose a dead letter (it may repeat one);
- Kafka offsets are committed after the ledger stored the batch, as a courtesy to
  lag monitors; losing that commit costs nothing but a re-read.

Transient failures (the database locked or unreachable, the brokers gone) are
retried with backoff and never dead-lettered; nothing is stored for unwritten work.
SIGTERM and SIGINT finish the batch in hand. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from eventsourcing.persistence import IntegrityError, PersistenceError, Tracking
from kafka import ConsumerRebalanceListener

from consumers.deadletter import dead_letter_record
from consumers.envelope import Rejected, decode_message, reason_of
from consumers.settings import Connection
from consumers.signing import Keyring
from ledger.application import Ledger
from ledger.commands import Command
from ledger.decide import message_key
from ledger.errors import LedgerError, StorageError
from ledger.events import LedgerEvent

#: backoff between retries of a transient failure: doubles from FIRST up to MAX
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 10.0
#: after a stop request, how many more attempts a failing batch gets before giving up
ATTEMPTS_AFTER_STOP = 3
#: bytes of a refused value kept when the brokers refuse even the capped copy
MIN_COPY_BYTES = 1024
#: default of ``--max-message-age``
DEFAULT_MAX_MESSAGE_AGE = dt.timedelta(days=7)


def tracking_name(topic: str, partition: int) -> str:
    """The ledger's tracking name of one Kafka partition."""
    return f"kafka:{topic}:{partition}"


def actor_of(topic: str, partition: int, offset: int) -> str:
    """The actor recorded on events appended from one message."""
    return f"kafka:{topic}/{partition}/{offset}"


class JsonLog:
    """One JSON object per line: ``{"ts", "level", "event", ...fields}``."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, event: str, level: str = "info", **fields: Any) -> None:
        line = json.dumps({"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                           "level": level, "event": event, **fields}, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


@dataclass
class ConsumerSettings:
    """What ``ledger consume`` was told."""

    connection: Connection
    topic: str
    group: str
    dead_letter_topic: str | None = None
    #: most messages per poll, i.e. per transaction of one partition
    batch: int = 500
    poll_timeout_ms: int = 500
    #: exit after this many seconds without messages once caught up (None: run forever)
    idle_exit_s: float | None = None
    stats_interval_s: float = 30.0
    #: kafka-python's group timeouts; lower them for tests (Tansu joins take about
    #: the rebalance timeout, which kafka-python sets to max_poll_interval_ms)
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 3_000
    #: a message sent longer ago than this is refused (dead letter ``stale-message``):
    #: a replayed old message is refused even where its message id is not remembered
    max_message_age: dt.timedelta | None = DEFAULT_MAX_MESSAGE_AGE

    @property
    def dlq_topic(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dead-letter"


@dataclass
class Stats:
    """Counts since start, and lag per partition at the last report."""

    received: int = 0
    appended_messages: int = 0
    appended_events: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    redelivered_skipped: int = 0
    batches: int = 0
    transient_retries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    lag: dict[str, int | None] = field(default_factory=dict)
    partitions: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BrokerUnavailable(LedgerError):
    """The Kafka brokers could not be reached at start (the CLI prints the reason)."""

    code = "broker-unavailable"


class DeadLetterRefused(LedgerError):
    """The brokers refuse the consumer's writes to the dead-letter topic (an ACL)."""

    code = "dead-letter-refused"


def _is_authorization_error(e: Exception) -> bool:
    return "AuthorizationFailed" in type(e).__name__


class _Transient(Exception):
    """A failure worth retrying: storage or broker unavailable."""


class IngestConsumer:
    """One consumer-group member appending exporters' shipments to the ledger."""

    def __init__(self, ledger: Ledger, keyring: Keyring, settings: ConsumerSettings, *,
                 log: JsonLog | None = None, kafka_options: dict[str, Any] | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.ledger = ledger
        self.keyring = keyring
        self.settings = settings
        self.log = log or JsonLog()
        self.stats = Stats()
        self._kafka_options = kafka_options or {}
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._stop = False
        self._consumer: Any = None
        self._producer: Any = None
        #: next offset to commit to Kafka per partition, once the ledger stored it
        self._to_commit: dict[Any, int] = {}
        self._last_activity = time.monotonic()
        self._joined = False
        #: partitions with a batch given up after a stop: not committed past it
        self._abandoned: set[Any] = set()
        #: the loop ended normally (stopped or idle): every polled record was handled
        self._clean_exit = False

    # --- lifecycle -----------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        """Ask the loop to stop after the batch in hand (safe from a signal handler)."""
        self._stop = True

    def run(self) -> Stats:
        """Consume until stopped (or idle, with ``idle_exit_s``); returns the counts.
        Raises BrokerUnavailable when the brokers cannot be reached at start; other
        failures are retried."""
        previous = self._install_signals()
        try:
            self._connect()
            self._loop()
            self._clean_exit = True
        finally:
            self._close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.log("stopped", **self._stats_fields())
        return self.stats

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _connect(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer
        from kafka.errors import KafkaError

        s = self.settings
        base = s.connection.kafka_config()
        try:
            self._consumer = KafkaConsumer(
                **base,
                group_id=s.group,
                # the ledger's tracking is the position; Kafka's commit is informative
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=s.batch,
                max_poll_interval_ms=s.max_poll_interval_ms,
                session_timeout_ms=s.session_timeout_ms,
                heartbeat_interval_ms=s.heartbeat_interval_ms,
                # exporters' transactional producers: never read aborted messages
                isolation_level="read_committed",
                **self._kafka_options,
            )
            self._producer = KafkaProducer(**base, acks="all", enable_idempotence=True,
                                           max_in_flight_requests_per_connection=1,
                                           linger_ms=5)
        except KafkaError as e:
            raise BrokerUnavailable(
                f"cannot connect to Kafka at {s.connection.bootstrap_servers}: {e}") from e
        self._consumer.subscribe([s.topic], listener=_Rebalance(self))
        self.log("started", topic=s.topic, group=s.group, dead_letter_topic=s.dlq_topic,
                 batch=s.batch)

    def _close(self) -> None:
        if self._consumer is not None:
            self._commit_on_exit()
            try:
                self._consumer.close()  # leaves the group: partitions move at once
            except Exception as e:  # noqa: BLE001 - closing is best effort
                self.log("close-failed", level="warning", error=str(e))
        if self._producer is not None:
            try:
                self._producer.close()
            except Exception as e:  # noqa: BLE001
                self.log("close-failed", level="warning", error=str(e))

    # --- the loop ------------------------------------------------------------------

    def _loop(self) -> None:
        from kafka.errors import KafkaError

        s = self.settings
        last_report = time.monotonic()
        backoff = BACKOFF_FIRST_S
        while not self._stop:
            try:
                polled = self._consumer.poll(timeout_ms=s.poll_timeout_ms, max_records=s.batch)
                backoff = BACKOFF_FIRST_S
            except KafkaError as e:
                self.log("poll-failed", level="warning", error=str(e), retry_in_s=backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            for tp, records in polled.items():
                if records:
                    self._process_with_retry(tp, records)
            if polled:
                self._last_activity = time.monotonic()
                self._commit_kafka()
            now = time.monotonic()
            if now - last_report >= s.stats_interval_s:
                last_report = now
                self._report()
            # idle only counts once the group assigned partitions (a join takes seconds)
            if (s.idle_exit_s is not None and self._joined
                    and now - self._last_activity >= s.idle_exit_s):
                self._update_lag()
                if all(v in (0, None) for v in self.stats.lag.values()):
                    self.log("idle-exit", idle_s=round(now - self._last_activity, 1))
                    return

    def _process_with_retry(self, tp: Any, records: list[Any]) -> None:
        backoff = BACKOFF_FIRST_S
        attempts_after_stop = 0
        while True:
            try:
                self._process(tp, records)
                return
            except _Transient as e:
                self.stats.transient_retries += 1
                if self._stop:
                    attempts_after_stop += 1
                    if attempts_after_stop > ATTEMPTS_AFTER_STOP:
                        # nothing of this batch is stored: the next owner reads it again
                        self.log("batch-abandoned", level="warning", partition=tp.partition,
                                 first_offset=records[0].offset, error=str(e))
                        self._abandoned.add(tp)
                        return
                self.log("transient-failure", level="warning", partition=tp.partition,
                         first_offset=records[0].offset, last_offset=records[-1].offset,
                         error=str(e), retry_in_s=backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def stored_position(self, topic: str, partition: int) -> int | None:
        """The last offset of this partition the ledger stored (None: none yet)."""
        try:
            last = self.ledger.recorder.max_tracking_id(tracking_name(topic, partition))
        except PersistenceError as e:
            raise _Transient(f"cannot read the stored position: {e}") from e
        return None if last is None else int(last)

    def _process(self, tp: Any, records: list[Any]) -> None:
        """Decide, dead-letter and store one partition batch (one transaction)."""
        stored = self.stored_position(tp.topic, tp.partition)
        fresh = [r for r in records if stored is None or r.offset > stored]
        skipped = len(records) - len(fresh)
        if skipped:
            # redelivered after a crash or a rebalance: already in the ledger
            self.stats.redelivered_skipped += skipped
            self.log("redelivered-skipped", partition=tp.partition, count=skipped,
                     stored_offset=stored)
        if not fresh:
            self._to_commit[tp] = records[-1].offset + 1
            return
        now = self._clock()
        items: list[Command | LedgerError] = []
        keys: list[str | None] = []
        for r in fresh:
            try:
                envelope = decode_message(r.value, r.headers or [], self.keyring, key=r.key,
                                          catalog=self.ledger.catalog, now=now,
                                          max_age=self.settings.max_message_age)
                items.append(envelope.payload)
                keys.append(message_key(envelope.message_id))
            except Rejected as e:
                items.append(e)
                keys.append(None)
        last = fresh[-1].offset
        tracking = Tracking(tracking_name(tp.topic, tp.partition), last)
        try:
            outcomes = self.ledger.plan(items, actor="kafka:pending", now=now, keys=keys)
        except PersistenceError as e:
            raise _Transient(f"cannot read the ledger: {e}") from e
        refused = [(fresh[o.index], o.error) for o in outcomes if o.error is not None]
        self._dead_letter(refused)
        events: list[LedgerEvent] = []
        for o in outcomes:
            if o.error is None:
                r = fresh[o.index]
                # each event names the exact message it came from
                actor = actor_of(r.topic, r.partition, r.offset)
                events.extend(e.model_copy(update={"actor": actor}) for e in o.events)
        # the applied message ids are stored in the transaction of their events
        applied = [k for o in outcomes for k in o.applied_keys()]
        try:
            self.ledger.append(events, tracking=tracking, keys=applied)
        except IntegrityError as e:
            again = self.stored_position(tp.topic, tp.partition)
            if again is not None and again >= last:
                # another member stored this batch (a zombie after a rebalance)
                self.log("batch-already-stored", level="warning", partition=tp.partition,
                         last_offset=last, stored_offset=again)
                self._to_commit[tp] = last + 1
                return
            # another writer appended to one of these shipments: decide again
            raise _Transient(f"write conflict, deciding the batch again: {e}") from e
        except StorageError as e:
            raise _Transient(str(e)) from e
        self._to_commit[tp] = last + 1
        ok = [o for o in outcomes if o.error is None]
        self.stats.batches += 1
        self.stats.received += len(fresh)
        self.stats.appended_messages += sum(1 for o in ok if o.events)
        self.stats.appended_events += len(events)
        self.stats.duplicates += sum(1 for o in ok if o.duplicate)
        self.stats.dead_lettered += len(refused)
        for _, err in refused:
            code = reason_of(err)
            self.stats.reasons[code] = self.stats.reasons.get(code, 0) + 1
        self.log("batch-stored", partition=tp.partition, first_offset=fresh[0].offset,
                 last_offset=last, appended=len(events), dead_lettered=len(refused),
                 duplicates=sum(1 for o in ok if o.duplicate))

    def _dead_letter(self, refused: list[tuple[Any, LedgerError]]) -> None:
        """Send every refused message to the dead-letter topic and wait for the
        brokers' confirmation. A broker failure is transient (the batch is retried);
        a copy the brokers find too large is sent again cut to 1 KiB (its hash and
        size are in the headers); a dead-letter topic this consumer may not write to
        stops the consumer (``DeadLetterRefused``): retrying cannot help, and going
        on would lose the dead letters."""
        from kafka.errors import KafkaError, MessageSizeTooLargeError

        if not refused:
            return
        try:
            self._send_dead_letters(refused, max_copy=None)
        except MessageSizeTooLargeError as e:
            self.log("dead-letter-too-large", level="warning", error=str(e))
            try:
                self._send_dead_letters(refused, max_copy=MIN_COPY_BYTES)
            except KafkaError as again:
                self._dead_letter_failed(again)
        except KafkaError as e:
            self._dead_letter_failed(e)
        for record, error in refused:
            self.log("dead-lettered", level="warning", partition=record.partition,
                     offset=record.offset, reason=reason_of(error), error=str(error))

    def _send_dead_letters(self, refused: list[tuple[Any, LedgerError]],
                           max_copy: int | None) -> None:
        futures = []
        for record, error in refused:
            key, value, headers = (dead_letter_record(record, error, self.settings.group)
                                   if max_copy is None else
                                   dead_letter_record(record, error, self.settings.group,
                                                      max_copy))
            futures.append(self._producer.send(self.settings.dlq_topic, key=key, value=value,
                                               headers=headers))
        self._producer.flush()
        for f in futures:
            f.get(timeout=30)

    def _dead_letter_failed(self, e: Exception) -> None:
        topic = self.settings.dlq_topic
        if _is_authorization_error(e):
            raise DeadLetterRefused(
                f"the brokers refuse writes to dead-letter topic {topic!r}: {e}; grant this "
                "consumer write access to it (nothing of the batch was stored)") from e
        raise _Transient(f"cannot write to dead-letter topic {topic!r}: {e}") from e

    def _commit_kafka(self) -> None:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        if not self._to_commit:
            return
        assigned = self._consumer.assignment()
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in self._to_commit.items()
                   if tp in assigned}
        if not offsets:
            self._to_commit.clear()
            return
        try:
            self._consumer.commit(offsets)
        except (KafkaError, AssertionError) as e:
            # harmless: the ledger's tracking is the position we resume from; the
            # offsets stay to be committed with the next batch or at exit
            self.log("kafka-commit-failed", level="warning", error=str(e))
            return
        for tp in offsets:
            self._to_commit.pop(tp, None)

    def _commit_on_exit(self) -> None:
        """On a clean exit, commit every assigned partition's stored position to the
        group (past any record the ledger stored or that holds nothing to store), so
        a lag monitor shows what is really left. Best effort, a few attempts."""
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        offsets: dict[Any, Any] = {}
        for tp in self._consumer.assignment():
            try:
                stored = self.stored_position(tp.topic, tp.partition)
            except _Transient:
                continue
            target = None if stored is None else stored + 1
            if self._clean_exit and tp not in self._abandoned:
                try:
                    # every record polled was stored or dead-lettered: the position
                    # may be past the stored one only by records that hold nothing
                    position = self._consumer.position(tp, timeout_ms=1000)
                except Exception:  # noqa: BLE001 - the stored position still counts
                    position = None
                if position is not None and (target is None or position > target):
                    target = position
            if target is not None:
                offsets[tp] = OffsetAndMetadata(target, "", -1)
        for attempt in range(3):
            if not offsets:
                return
            try:
                self._consumer.commit(offsets)
                self._to_commit.clear()
                return
            except (KafkaError, AssertionError) as e:
                self.log("kafka-commit-failed", level="warning", error=str(e),
                         attempt=attempt + 1)
                time.sleep(0.2)

    # --- reporting -----------------------------------------------------------------

    def _update_lag(self) -> None:
        lag: dict[str, int | None] = {}
        for tp in sorted(self._consumer.assignment(), key=lambda t: t.partition):
            high = self._consumer.highwater(tp)
            try:
                pos = self._consumer.position(tp, timeout_ms=1000)
            except Exception:  # noqa: BLE001 - lag is informative only
                pos = None
            lag[str(tp.partition)] = None if high is None or pos is None else max(high - pos, 0)
        self.stats.lag = lag
        self.stats.partitions = sorted(int(p) for p in lag)

    def _stats_fields(self) -> dict[str, Any]:
        return self.stats.as_dict()

    def _report(self) -> None:
        self._update_lag()
        self.log("stats", **self._stats_fields())

    # --- rebalance -----------------------------------------------------------------

    def on_assigned(self, assigned: list[Any]) -> None:
        """Resume every assigned partition from the ledger's stored position."""
        for tp in sorted(assigned, key=lambda t: t.partition):
            backoff = BACKOFF_FIRST_S
            while True:
                try:
                    stored = self.stored_position(tp.topic, tp.partition)
                    break
                except _Transient as e:
                    self.log("transient-failure", level="warning", partition=tp.partition,
                             error=str(e), retry_in_s=backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
            if stored is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, stored + 1)
            self.log("partition-assigned", partition=tp.partition,
                     resume_offset=0 if stored is None else stored + 1)
        self.stats.partitions = sorted({*self.stats.partitions, *(t.partition for t in assigned)})
        self._last_activity = time.monotonic()
        self._joined = True

    def on_revoked(self, revoked: list[Any]) -> None:
        self._commit_kafka()
        for tp in revoked:
            self._to_commit.pop(tp, None)
        gone = {t.partition for t in revoked}
        self.stats.partitions = [p for p in self.stats.partitions if p not in gone]
        if revoked:
            self.log("partitions-revoked", partitions=sorted(gone))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: IngestConsumer) -> None:
        self.owner = owner

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner.on_assigned(list(assigned))

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner.on_revoked(list(revoked))
