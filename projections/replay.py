"""Replaying a rule revision against past shipments: the pure engine behind ``ledger replay``.

Two lanes are evaluated over the same ledger state: ``--rule`` (one named revision
applied to every date) and ``--against`` (another named revision, ``in-force``: the
revision in force on each shipment's own date, or ``on-the-books``: the one whose
legal text governs that date). Each lane is ONE pass: every live shipment shipped by
``to`` is classified once, the LPP excesses are settled once for every consignee, and
each country is folded once with ``projections.positions.fold_country``, the same
fold ``ledger quota`` uses, so a lane with a named revision gives, for every country,
exactly what ``ledger quota --rule R --as-of TO`` says.

Timeline lanes (``in-force``, ``on-the-books``): each shipment and allocation is
treated under the revision governing its own date; the cap and the tier come from
the revision governing ``to``. That is the answer to "what did the rules of the day
say about these shipments, and where does each country stand now".

Positions are as of ``to`` and include every shipment up to it (caps are cumulative);
the window ``from..to`` chooses the shipments that are compared one by one.

Pure: no I/O, no clock. The result holds no time of "now", only the recorded position
it was computed at, so the same replay of the same ledger is byte-identical.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ledger.counting import AuthorizationCheck, Bucket, Treatment, classify, lpp_excess
from ledger.errors import UnknownRule, ValidationError
from ledger.rulebook import RuleBook, in_force, on_the_books
from projections.positions import (
    BreachRef,
    FlagTotal,
    Position,
    RuleAt,
    ShipmentOutcome,
    Status,
    authorization_checks,
    fold_country,
    no_rule_treatment,
)
from projections.state import LedgerState, ShipmentRow

#: the --against values that name a timeline rather than one revision
TIMELINES = ("in-force", "on-the-books")


@dataclass(frozen=True)
class Lane:
    """One side of a replay: which revision applies to each date, and the caps."""

    label: str
    rule_at: RuleAt
    cap_rule: RuleBook | None
    timeline: bool


def make_lane(state: LedgerState, spec: str, to: dt.date,
              drafts: Mapping[str, RuleBook] | None = None) -> Lane:
    """The lane for ``spec``: a rule id in the ledger (or in ``drafts``: rule books not
    in the ledger, e.g. ``--rule-file``), ``in-force`` or ``on-the-books``.

    Raises UnknownRule naming the id and the revisions the ledger knows."""
    books = state.rule_books()
    if drafts and spec in drafts:
        draft = drafts[spec]
        return Lane(draft.id, lambda _day: draft, draft, False)
    if spec in TIMELINES:
        pick = in_force if spec == "in-force" else on_the_books
        cache: dict[dt.date, RuleBook | None] = {}

        def rule_at(day: dt.date) -> RuleBook | None:
            # a ledger has far fewer ship dates than shipments: pick once per date
            if day not in cache:
                cache[day] = pick(books, day)
            return cache[day]

        return Lane(spec, rule_at, rule_at(to), True)
    book = state.rule(spec)
    if book is None:
        known = ", ".join(b.id for b in books) or "none loaded"
        raise UnknownRule(f"rule {spec!r} is not a rule revision in this ledger (known: "
                          f"{known}, or in-force / on-the-books); load it with "
                          "'ledger rules load'")
    return Lane(book.id, lambda _day: book, book, False)


# --- the result ---------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LaneCountry(_Out):
    """A country's position under one lane."""

    tier: int | None
    cap_tpp: int | None
    committed_tpp: int
    remaining_tpp: int | None
    status: Status
    first_breach: BreachRef | None
    flagged: dict[str, FlagTotal]


class CountryComparison(_Out):
    country: str
    rule: LaneCountry
    against: LaneCountry
    #: committed under --rule minus committed under --against
    committed_difference_tpp: int
    #: remaining under --rule minus remaining under --against (None if either uncapped)
    remaining_difference_tpp: int | None
    status_changed: bool


# The two per-shipment rows below are plain frozen dataclasses, not pydantic models: a
# replay of 100,000 shipments can build 60,000 of each, and pydantic's construction
# cost dominated the replay. Pydantic still serializes them inside ReplayResult.


@dataclass(frozen=True, slots=True)
class LaneTreatment:
    """How one shipment counted under one lane, and the clause that decided it."""

    rule: str | None
    treatment: str
    bucket: str
    flag: str | None
    flag_tpp: int
    counted_tpp: int
    breach: bool
    clause: str
    citation: str
    detail: str


@dataclass(frozen=True, slots=True)
class ShipmentChange:
    """A shipment whose treatment differs between the lanes."""

    exporter_id: str
    shipment_ref: str
    ship_date: dt.date
    destination: str
    consignee_id: str
    position: int
    tpp: int
    rule: LaneTreatment
    against: LaneTreatment


class Totals(_Out):
    shipments_in_window: int
    tpp_in_window: int
    shipments_changed: int
    tpp_changed: int
    countries: int
    countries_status_changed: list[str]
    over_cap_under_rule: list[str]
    over_cap_under_against: list[str]
    committed_under_rule_tpp: int
    committed_under_against_tpp: int


class ReplayResult(_Out):
    """The whole replay (the ``--json`` shape of ``ledger replay``)."""

    rule: str
    against: str
    #: for a timeline lane, the revision whose caps and tiers apply (the one on ``to``)
    against_caps_from: str | None
    window_from: dt.date | None
    window_to: dt.date | None
    known_at: int | None
    computed_at_position: int
    #: shipments of the window per revision they were treated under, per lane
    revisions_used: dict[str, dict[str, int]]
    countries: list[CountryComparison]
    changes: list[ShipmentChange]
    totals: Totals


# --- the engine ---------------------------------------------------------------------


@dataclass
class LaneRun:
    """What one lane's pass produced."""

    positions: dict[str, Position]
    outcomes: dict[tuple[str, str], ShipmentOutcome]


Checks = dict[tuple[str, str], tuple[AuthorizationCheck | None, AuthorizationCheck | None]]


_NO_CHECKS: tuple[None, None] = (None, None)


def all_checks(state: LedgerState, rows: list[ShipmentRow]) -> Checks:
    """``authorization_checks`` of every row. Most shipments name no license or VEU
    (about three in four), and their checks are (None, None) without a call."""
    out: Checks = {}
    for row in rows:
        kind = row.fields.authorization.kind
        out[row.key] = (authorization_checks(state, row) if kind == "license" or kind == "veu"
                        else _NO_CHECKS)
    return out


def classify_all(rows: list[ShipmentRow], rule_at: RuleAt, checks: Checks
                 ) -> dict[tuple[str, str], Treatment]:
    """Every shipment's treatment under ``rule_at`` of its date: the same as
    ``positions.treat``, with the classification memoized.

    ``classify`` reads only the destination, the product, its TPP per unit and declared
    die area, the authorization kind, the license/VEU checks and the rule's dated period of the ship
    date (group changes, product-rule start dates), so shipments alike in these get the
    same Treatment; a large ledger has far fewer such combinations than shipments."""
    memo: dict[tuple[object, ...], Treatment] = {}
    out: dict[tuple[str, str], Treatment] = {}
    for row in rows:
        f = row.fields
        key = row.key
        rule = rule_at(f.ship_date)
        if rule is None:
            out[key] = no_rule_treatment(f.ship_date)
            continue
        lic, veu = checks[key]
        memo_key = (id(rule), rule.dated_period(f.ship_date), f.destination,
                    f.authorization.kind, f.product_id, f.tpp_per_unit, f.die_area_mm2,
                    lic, veu)
        t = memo.get(memo_key)
        if t is None:
            t = memo[memo_key] = classify(f, rule, license=lic, veu=veu)
        out[key] = t
    return out


def run_lane(state: LedgerState, lane: Lane, to: dt.date, countries: list[str],
             rows: list[ShipmentRow], *, known_at: int | None = None,
             checks: Checks | None = None,
             advance: Callable[[int], None] | None = None) -> LaneRun:
    """Fold every country once under ``lane``; ``rows`` are the live shipments shipped
    by ``to``; ``checks`` their authorization checks (computed here when None).
    ``advance(n)`` is called after each country with its shipment count."""
    if checks is None:
        checks = all_checks(state, rows)
    treatments = classify_all(rows, lane.rule_at, checks)
    excess = lane_lpp_excesses(rows, treatments, lane.rule_at)
    positions: dict[str, Position] = {}
    outcomes: dict[tuple[str, str], ShipmentOutcome] = {}
    per_country: dict[str, int] = defaultdict(int)
    for row in rows:
        per_country[row.fields.destination] += 1
    for country in countries:
        found: list[ShipmentOutcome] = []
        positions[country] = fold_country(
            state, country, to, rule_at=lane.rule_at, cap_rule=lane.cap_rule,
            treatments=treatments, lpp_excess_by_key=excess, known_at=known_at,
            rule_label=lane.label, outcomes=found)
        for o in found:
            outcomes[o.row.key] = o
        if advance is not None:
            advance(per_country.get(country, 0))
    return LaneRun(positions, outcomes)


def lane_lpp_excesses(rows: list[ShipmentRow], treatments: dict[tuple[str, str], Treatment],
                      rule_at: RuleAt) -> dict[tuple[str, str], int]:
    """Every LPP shipment's part over its consignee's calendar-year limit, in one pass.

    Same arithmetic as ``positions.lpp_excesses`` (earlier-dated LPP shipments of the
    same consignee and year first, ties in recorded order), for all consignees at
    once and with each shipment's limit taken from the revision it is treated under."""
    per_year: dict[tuple[str, int], list[ShipmentRow]] = defaultdict(list)
    for row in rows:
        if treatments[row.key].bucket is Bucket.LPP:
            per_year[(row.fields.consignee_id, row.fields.ship_date.year)].append(row)
    out: dict[tuple[str, str], int] = {}
    for group in per_year.values():
        total = 0
        for row in sorted(group, key=lambda r: (r.fields.ship_date, r.position)):
            rule = rule_at(row.fields.ship_date)
            limit = None if rule is None else rule.lpp_limit()
            if limit is None:  # cannot happen: the LPP bucket needs a limit
                continue
            out[row.key] = lpp_excess(total, row.tpp, limit)
            total += row.tpp
    return out


_BUCKET_WORDS = {"none": "not counted", "cap": "country cap", "license": "license",
                 "lpp": "LPP", "veu": "VEU"}


def treatment_label(o: ShipmentOutcome) -> str:
    """A short human label: 'country cap (unlicensed), first breach'."""
    label = _BUCKET_WORDS[o.treatment.bucket.value]
    if o.flag is not None:
        label += f" ({o.flag.value})"
    if o.breach:
        label += ", first breach"
    return label


def lane_treatment(o: ShipmentOutcome) -> LaneTreatment:
    rule = o.rule
    return LaneTreatment(
        rule=None if rule is None else rule.id, treatment=treatment_label(o),
        bucket=o.treatment.bucket.value, flag=None if o.flag is None else o.flag.value,
        flag_tpp=o.flag_tpp, counted_tpp=o.committed_delta, breach=o.breach,
        clause=o.treatment.clause,
        citation=("no rule revision in force" if rule is None
                  else rule.clause(o.treatment.clause).citation),
        detail=o.treatment.detail,
    )


def _outcome_key(o: ShipmentOutcome) -> tuple[object, ...]:
    # what makes a treatment different: not the revision's name or wording
    return (o.treatment.bucket, o.flag, o.flag_tpp, o.committed_delta, o.breach)


def _lane_country(p: Position) -> LaneCountry:
    return LaneCountry(tier=p.tier, cap_tpp=p.cap_tpp, committed_tpp=p.committed_tpp,
                       remaining_tpp=p.remaining_tpp, status=p.status,
                       first_breach=p.first_breach, flagged=p.flagged)


def replay(
    state: LedgerState,
    rule_id: str,
    against: str = "in-force",
    *,
    window_from: dt.date | None = None,
    window_to: dt.date | None = None,
    known_at: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    drafts: Mapping[str, RuleBook] | None = None,
) -> ReplayResult:
    """Replay ``rule_id`` against ``against`` over the shipments of ``state``.

    ``window_from``/``window_to`` default to the first and last ship dates in the
    ledger. ``progress(total, advanced)`` is called as shipments are processed.
    ``drafts``: rule books that are not in the ledger, by id (``--rule-file``); they
    never join the in-force or on-the-books timelines.
    Raises UnknownRule for an unknown revision, ValidationError for a bad window."""
    if window_from is not None and window_to is not None and window_from > window_to:
        raise ValidationError(f"--from {window_from} is after --to {window_to}",
                              field="from", value=window_from.isoformat())
    live = [r for r in state.shipments.values() if not r.voided]
    if window_to is None and live:
        window_to = max(r.fields.ship_date for r in live)
    if window_from is None and live:
        window_from = min(r.fields.ship_date for r in live)
    to = window_to or dt.date.min
    lane_a = make_lane(state, rule_id, to, drafts)
    lane_b = make_lane(state, against, to, drafts)
    rows = sorted((r for r in live if r.fields.ship_date <= to),
                  key=lambda r: (r.fields.ship_date, r.position))
    # no shipments and no --to: there is no date to take positions on
    countries = state.countries_with_activity() if window_to is not None else []
    total = 2 * len(rows)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(total, done)

    # the license/VEU checks do not depend on the revision: once for both lanes
    checks = all_checks(state, rows)
    run_a = run_lane(state, lane_a, to, countries, rows, known_at=known_at, checks=checks,
                     advance=advance)
    run_b = run_lane(state, lane_b, to, countries, rows, known_at=known_at, checks=checks,
                     advance=advance)

    comparisons: list[CountryComparison] = []
    for c in countries:
        pa, pb = run_a.positions[c], run_b.positions[c]
        remaining_diff = (None if pa.remaining_tpp is None or pb.remaining_tpp is None
                          else pa.remaining_tpp - pb.remaining_tpp)
        comparisons.append(CountryComparison(
            country=c, rule=_lane_country(pa), against=_lane_country(pb),
            committed_difference_tpp=pa.committed_tpp - pb.committed_tpp,
            remaining_difference_tpp=remaining_diff, status_changed=pa.status != pb.status))

    in_window = [r for r in rows
                 if window_from is not None and r.fields.ship_date >= window_from]
    changes: list[ShipmentChange] = []
    used: dict[str, dict[str, int]] = {"rule": defaultdict(int), "against": defaultdict(int)}
    tpp_changed = 0
    for row in in_window:
        oa, ob = run_a.outcomes[row.key], run_b.outcomes[row.key]
        used["rule"][oa.rule.id if oa.rule else "none"] += 1
        used["against"][ob.rule.id if ob.rule else "none"] += 1
        if _outcome_key(oa) == _outcome_key(ob):
            continue
        tpp_changed += row.tpp
        f = row.fields
        changes.append(ShipmentChange(
            exporter_id=row.exporter_id, shipment_ref=row.shipment_ref, ship_date=f.ship_date,
            destination=f.destination, consignee_id=f.consignee_id, position=row.position,
            tpp=row.tpp, rule=lane_treatment(oa), against=lane_treatment(ob)))
    changes.sort(key=lambda ch: (ch.ship_date, ch.exporter_id, ch.shipment_ref))

    totals = Totals(
        shipments_in_window=len(in_window), tpp_in_window=sum(r.tpp for r in in_window),
        shipments_changed=len(changes), tpp_changed=tpp_changed, countries=len(countries),
        countries_status_changed=[c.country for c in comparisons if c.status_changed],
        over_cap_under_rule=[c.country for c in comparisons if c.rule.status == "over-cap"],
        over_cap_under_against=[c.country for c in comparisons
                                if c.against.status == "over-cap"],
        committed_under_rule_tpp=sum(c.rule.committed_tpp for c in comparisons),
        committed_under_against_tpp=sum(c.against.committed_tpp for c in comparisons),
    )
    position = state.position if known_at is None else min(known_at, state.position)
    # model_construct: every part was built from validated data just above, and
    # validating tens of thousands of change rows again would double the replay's time
    return ReplayResult.model_construct(
        rule=lane_a.label, against=lane_b.label,
        against_caps_from=(lane_b.cap_rule.id if lane_b.timeline and lane_b.cap_rule
                           else None),
        window_from=window_from, window_to=window_to, known_at=known_at,
        computed_at_position=position,
        revisions_used={k: dict(sorted(v.items())) for k, v in used.items()},
        countries=comparisons, changes=changes, totals=totals,
    )
