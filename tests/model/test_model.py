"""Model-based tests: the reference fold (``tests/model/reference.py``) against the
project on generated ledgers (``tests/model/strategies.py``).

On every generated ledger, for every country and a few as-of dates:

- ``country_position`` on the full state (under ai-diffusion-2025);
- ``country_position`` as known at a random recorded position (``--known-at``);
- ``ledger replay --rule ai-diffusion-2025 --against in-force`` per country, both
  lanes (the capped rule, and the in-force timeline, which has no caps on these
  dates), as the CLI computes it;
- in ``test_read_model_matches_the_reference``: the same ledger appended to a real
  SQLite file, answered by the read model behind ``ledger quota`` (now and known at a
  random position) and by the replay from the read model's state, as the CLI does.

A failure prints the (shrunk) ledger as JSON Lines ready for ``ledger import``.

Profiles (environment variable ``LEDGER_MODEL_PROFILE``): ``ci`` (default, a few
hundred ledgers in all), ``slow`` (10,000 ledgers per test).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.events import LedgerEvent
from projections.position_index import PositionIndex
from projections.positions import Position, country_position
from projections.readmodel import ReadModel
from projections.replay import LaneCountry, replay
from projections.state import LedgerState, fold_all
from projections.views import readmodel_quota
from tests.builders import Scenario
from tests.model import reference as ref
from tests.model.strategies import COUNTRIES, END, START, ledgers

RULE = "ai-diffusion-2025"
#: where the SQLite files go: a memory-backed file system when there is one (the
#: file is a real SQLite file either way; a disk's fsync would make a 10,000-ledger
#: run take hours)
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None

settings.register_profile(
    "model-ci", max_examples=250, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "model-slow", max_examples=10_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("LEDGER_MODEL_PROFILE", "ci")
MODEL = settings.get_profile(f"model-{PROFILE}")
if "MUTANT_UNDER_TEST" in os.environ:
    # mutation testing: the same examples for every mutant, and a failing one ends the
    # run (shrinking a SQLite ledger per step would cost minutes per killed mutant)
    MODEL = settings(MODEL, derandomize=True, database=None,
                     phases=[Phase.explicit, Phase.reuse, Phase.generate])
#: the SQLite test costs a database per ledger: a fifth of the pure test's examples
MODEL_SQLITE = settings(MODEL, max_examples=max(1, MODEL.max_examples // 5)
                        if PROFILE != "slow" else MODEL.max_examples)


# --- the ledger, decided ---------------------------------------------------------------------


class Decided:
    """A generated ledger decided like ``ledger import`` would: the bundled rule
    books, then each line. ``lines`` are the lines that appended an event (an
    identical repeat appends nothing and is dropped), line i at ``first + i``."""

    def __init__(self, lines: list[dict[str, Any]]):
        self.scenario = Scenario()
        self.first = len(self.scenario.events) + 1
        self.lines: list[dict[str, Any]] = []
        for line in lines:
            if self.scenario.do(**line):
                self.lines.append(line)
        assert len(self.scenario.events) == self.first - 1 + len(self.lines)

    @property
    def events(self) -> list[tuple[int, LedgerEvent]]:
        return self.scenario.events

    @property
    def state(self) -> LedgerState:
        return self.scenario.state

    @property
    def last(self) -> int:
        return len(self.scenario.events)

    def jsonl(self) -> str:
        return "\n".join(json.dumps(line) for line in self.lines)

    def expected(self, country: str, as_of: dt.date, revision: str = ref.CAPPED,
                 known_at: int | None = None) -> dict[str, Any]:
        return ref.position(self.lines, self.first, country, as_of, revision, known_at)


def _answer(p: Position | LaneCountry, *, counted: bool = True) -> dict[str, Any]:
    """The parts of a position the reference gives, in its shape."""
    out = {
        "cap_tpp": p.cap_tpp, "committed_tpp": p.committed_tpp,
        "remaining_tpp": p.remaining_tpp, "status": p.status,
        "first_breach": None if p.first_breach is None else {
            k: v for k, v in p.first_breach.model_dump().items()},
        "flagged": {k: {"count": v.count, "tpp": v.tpp} for k, v in p.flagged.items()},
    }
    if counted and isinstance(p, Position):
        out["shipments_counted"] = p.shipments_counted
    return out


def _check(d: Decided, what: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    if "shipments_counted" not in got:
        want = {k: v for k, v in want.items() if k != "shipments_counted"}
    if got != want:
        diff = {k: (got.get(k), want.get(k)) for k in want if got.get(k) != want.get(k)}
        raise AssertionError(
            f"{what}: the project and the reference disagree on "
            f"{json.dumps(diff, default=str, indent=1)}\n"
            "Reproduce: ledger rules load --bundled; then ledger import this file "
            "(the bundled rules take positions 1.."
            f"{d.first - 1}):\n{d.jsonl()}\n")


# --- draws -------------------------------------------------------------------------------------


as_of_dates = st.lists(
    st.one_of(st.dates(START, END + dt.timedelta(days=200)),
              st.sampled_from([dt.date(2024, 12, 31), dt.date(2025, 1, 1),
                               dt.date(2025, 6, 30), dt.date(2025, 7, 1),
                               dt.date(2025, 12, 31), dt.date(2026, 1, 1)])),
    min_size=1, max_size=3, unique=True)


def _known_at(d: Decided, fraction: float) -> int:
    """A recorded position from the last rule book to the head."""
    return d.first - 1 + round(fraction * (d.last - d.first + 1))


# --- the pure lanes ------------------------------------------------------------------------------


@MODEL
@given(ledgers(), as_of_dates, st.floats(0, 1))
def test_fold_replay_and_known_at_match_the_reference(lines: list[dict[str, Any]],
                                                      days: list[dt.date],
                                                      fraction: float) -> None:
    d = Decided(lines)
    rule = d.state.rule(RULE)
    k = _known_at(d, fraction)
    state_k = fold_all(d.events, known_at=k)
    for as_of in days:
        for c in COUNTRIES:
            _check(d, f"country_position {c} as of {as_of}",
                   _answer(country_position(d.state, c, as_of, rule)), d.expected(c, as_of))
            _check(d, f"country_position {c} as of {as_of} known at {k}",
                   _answer(country_position(state_k, c, as_of, rule, known_at=k)),
                   d.expected(c, as_of, known_at=k))
        _check_replay(d, d.state, as_of, None)
    _check_replay(d, state_k, days[0], k)


def _check_replay(d: Decided, state: LedgerState, to: dt.date, known_at: int | None) -> None:
    result = replay(state, RULE, "in-force", window_from=START, window_to=to,
                    known_at=known_at)
    for comparison in result.countries:
        c = comparison.country
        where = f"replay to {to}" + (f" known at {known_at}" if known_at else "")
        _check(d, f"{where}, {c}, lane --rule {RULE}", _answer(comparison.rule),
               d.expected(c, to, ref.CAPPED, known_at))
        _check(d, f"{where}, {c}, lane --against in-force", _answer(comparison.against),
               d.expected(c, to, ref.UNCAPPED, known_at))


# --- the read model on a real SQLite file ----------------------------------------------------------


@MODEL_SQLITE
@given(ledgers(), as_of_dates, st.floats(0, 1))
def test_read_model_matches_the_reference(lines: list[dict[str, Any]], days: list[dt.date],
                                          fraction: float) -> None:
    d = Decided(lines)
    k = _known_at(d, fraction)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        ledger = Ledger(db=str(Path(tmp) / "model.db"))
        try:
            assert ledger.append([e for _pos, e in d.events]) == list(range(1, d.last + 1))
            for as_of in days:
                for c in COUNTRIES:
                    _check(d, f"read model {c} as of {as_of}",
                           _answer(readmodel_quota(ledger, c, as_of, rule_id=RULE)),
                           d.expected(c, as_of))
                    _check(d, f"read model {c} as of {as_of} known at {k}",
                           _answer(readmodel_quota(ledger, c, as_of, rule_id=RULE,
                                                   known_at=k)),
                           d.expected(c, as_of, known_at=k))
            rm = ReadModel(ledger)
            _check_replay(d, rm.full_state(None), days[0], None)
            _check_replay(d, rm.full_state(k), days[-1], k)
        finally:
            ledger.close()


def _restarted(ledger: Ledger, country: str, known_at: int) -> bool:
    """Whether the country's index history now starts after ``known_at``: a pair whose
    past outgrew ``HISTORY_FACTOR`` times its live rows restarts it (e.g. a country whose
    allocations were revoked, its live rows shrinking), and the fold answers before."""
    with ReadModel(ledger)._tx(commit=False) as c:
        first = c.execute("SELECT MIN(known_from) FROM rm_quota_refreshes WHERE country = ?",
                          (country,)).fetchall()[0][0]
    return first is not None and int(first) > known_at


@MODEL_SQLITE
@given(ledgers(), as_of_dates, st.lists(st.floats(0, 1), min_size=1, max_size=3),
       st.floats(0, 1))
def test_index_known_at_matches_the_reference(lines: list[dict[str, Any]],
                                              days: list[dt.date], cuts: list[float],
                                              fraction: float) -> None:
    """The ledger appended in slices, each slice followed by the questions at the head
    (which catch the read model up and refresh the position index's pairs); then every
    country known at each slice's end, where the index answers from the rows valid
    then, and at a random position (the index or, between refreshes, the fold): all
    equal the reference as known at that position."""
    d = Decided(lines)
    ends = sorted({_known_at(d, f) for f in cuts} | {d.last})
    k = _known_at(d, fraction)
    events = [e for _pos, e in d.events]
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        ledger = Ledger(db=str(Path(tmp) / "model.db"))
        try:
            done = 0
            for end in ends:
                if end > done:
                    assert ledger.append(events[done:end]) == list(range(done + 1, end + 1))
                    done = end
                for as_of in days:
                    for c in COUNTRIES:
                        readmodel_quota(ledger, c, as_of, rule_id=RULE)
            index = PositionIndex(ReadModel(ledger))
            for known_at in sorted({*ends[:-1], k}):
                for as_of in days:
                    for c in COUNTRIES:
                        where = f"index {c} as of {as_of} known at {known_at}"
                        if known_at in ends[:-1] and not _restarted(ledger, c, known_at):
                            assert index.position(c, as_of, rule_id=RULE, known_at=known_at,
                                                  catch_up=False) is not None, where
                        _check(d, where, _answer(readmodel_quota(
                            ledger, c, as_of, rule_id=RULE, known_at=known_at)),
                            d.expected(c, as_of, known_at=known_at))
        finally:
            ledger.close()
