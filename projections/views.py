"""Read-side queries: the answers the CLI prints, computed from the event log.

``load_state`` folds the log up to a ``known_at`` position; ``select_rule`` picks the
rule revision (the one in force on the as-of date, or a named one for a
counterfactual); ``quota`` and ``quota_all`` compute positions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ledger.application import Ledger
from ledger.errors import UnknownRule
from ledger.rulebook import RuleBook, in_force
from ledger.rulebook import on_the_books as books_on
from projections.positions import Position, country_position
from projections.state import LedgerState, fold_all


def load_state(ledger: Ledger, known_at: int | None = None) -> LedgerState:
    """The ledger state as known at ``known_at`` (None: everything recorded)."""
    return fold_all(ledger.read(known_at=known_at), known_at=known_at)


def select_rule(state: LedgerState, as_of: dt.date, rule_id: str | None, *,
                on_the_books: bool = False) -> RuleBook | None:
    """The named revision (counterfactual), or the one in force on ``as_of`` (with
    ``on_the_books``: the one whose legal text governs ``as_of``, enforced or not).

    Raises UnknownRule if ``rule_id`` was not published in the ledger (as known)."""
    if rule_id is not None:
        book = state.rule(rule_id)
        if book is None:
            known = ", ".join(b.id for b in state.rule_books()) or "none loaded"
            raise UnknownRule(
                f"--rule {rule_id!r} is not a rule revision in this ledger (known: {known}); "
                "load it with 'ledger rules load'"
            )
        return book
    if on_the_books:
        return books_on(state.rule_books(), as_of)
    return in_force(state.rule_books(), as_of)


#: builds a rule book that is not in the ledger (a draft) from the state's revisions
DraftRule = Callable[[LedgerState], RuleBook]


def quota(state: LedgerState, country: str, as_of: dt.date, *, rule_id: str | None = None,
          known_at: int | None = None, explain: bool = False,
          on_the_books: bool = False, draft: DraftRule | None = None) -> Position:
    """``draft``: apply the rule book it builds (``--rule-file``) instead."""
    rule = (draft(state) if draft is not None
            else select_rule(state, as_of, rule_id, on_the_books=on_the_books))
    return country_position(state, country, as_of, rule, known_at=known_at, explain=explain)


def quota_all(state: LedgerState, as_of: dt.date, *, rule_id: str | None = None,
              known_at: int | None = None, tier: int | None = None,
              on_the_books: bool = False, draft: DraftRule | None = None) -> list[Position]:
    """Positions of every country with activity (optionally only one tier)."""
    rule = (draft(state) if draft is not None
            else select_rule(state, as_of, rule_id, on_the_books=on_the_books))
    positions = [country_position(state, c, as_of, rule, known_at=known_at)
                 for c in state.countries_with_activity()]
    if tier is not None:
        positions = [p for p in positions if p.tier == tier]
    return positions


# --- answers from the read model (projections.readmodel) ------------------------------
#
# The same functions as above, fed a LedgerState that holds only the rows the answer
# reads, loaded from the read-model tables instead of replaying the log. The read
# model is caught up first, so the answer covers everything recorded so far.


def readmodel_quota(ledger: Ledger, country: str, as_of: dt.date, *,
                    rule_id: str | None = None, known_at: int | None = None,
                    explain: bool = False, on_the_books: bool = False,
                    catch_up: bool = True, draft: DraftRule | None = None) -> Position:
    """``quota`` for one country, from the read model: an indexed lookup
    (``projections.position_index``) unless only the fold answers (``--explain``,
    ``--known-at`` before the read model's position, a ``draft`` rule book). Raises
    UnknownRule."""
    from projections.position_index import PositionIndex
    from projections.readmodel import ReadModel

    rm = ReadModel(ledger)
    if not explain and draft is None:  # the index catches up itself, checking the head
        indexed = PositionIndex(rm).position(country, as_of, rule_id=rule_id,
                                             known_at=known_at, on_the_books=on_the_books,
                                             catch_up=catch_up)
        if indexed is not None:
            return indexed
    if catch_up:
        rm.catch_up()
    state = rm.country_state(country, known_at, as_of)
    return quota(state, country, as_of, rule_id=rule_id, known_at=known_at, explain=explain,
                 on_the_books=on_the_books, draft=draft)


def readmodel_quota_all(ledger: Ledger, as_of: dt.date, *, rule_id: str | None = None,
                        known_at: int | None = None, tier: int | None = None,
                        on_the_books: bool = False, catch_up: bool = True,
                        draft: DraftRule | None = None) -> list[Position]:
    """``quota_all`` from the read model: indexed lookups, or, where only the fold
    answers, every row as known (no event decoding)."""
    from projections.position_index import PositionIndex
    from projections.readmodel import ReadModel

    rm = ReadModel(ledger)
    indexed = None if draft is not None else PositionIndex(rm).positions_all(
        as_of, rule_id=rule_id, known_at=known_at, on_the_books=on_the_books,
        catch_up=catch_up)
    if indexed is not None:
        return [p for p in indexed if tier is None or p.tier == tier]
    if catch_up:
        rm.catch_up()
    state = rm.full_state(known_at)
    return quota_all(state, as_of, rule_id=rule_id, known_at=known_at, tier=tier,
                     on_the_books=on_the_books, draft=draft)


def read_model_differences(ledger: Ledger) -> list[str]:
    """Compare the read model behind ``ledger quota`` with a full replay of the log.

    The read-model tables are derived data outside the hash chain: anyone with write
    access to the database could edit them without breaking a link. This recomputes
    every country's position from the chained log, under every rule revision and the
    one in force, on the last date anything happens, and lists each answer the read
    model gets differently (empty: the read model tells the truth)."""
    from projections.readmodel import ReadModel

    rm = ReadModel(ledger)
    rm.catch_up()
    fast = rm.full_state(None)
    slow = load_state(ledger)
    days = [r.fields.ship_date for r in slow.shipments.values()]
    days += [a.valid_from for a in slow.allocations.values()]
    as_of = max(days, default=dt.date.today())
    countries = sorted(set(slow.countries_with_activity()) | set(fast.countries_with_activity()))
    differences: list[str] = []
    for rule_id in [b.id for b in slow.rule_books()]:  # the one in force is among them
        for country in countries:
            want = quota(slow, country, as_of, rule_id=rule_id)
            got = quota(fast, country, as_of, rule_id=rule_id)
            skip = {"computed_at_position", "known_at"}
            w, g = want.model_dump(exclude=skip), got.model_dump(exclude=skip)
            if w != g:
                fields = ", ".join(sorted(k for k in w if w[k] != g.get(k)))
                differences.append(
                    f"{country} as of {as_of} under {want.rule or 'no rule'} ({fields} "
                    f"differ): the read model says committed {got.committed_tpp:,} TPP "
                    f"({got.status}), the log says {want.committed_tpp:,} TPP ({want.status})")
    return differences
