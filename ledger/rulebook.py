"""Rule books: one complete, validated document per rule revision, and its instruments.

A rule revision is data, not code: tiers, caps, exceptions, VEU limits, control
thresholds and the clauses that decide how a shipment counts, each with its legal
citation and sources. The law layers *instruments* (the October 2023 rules, the
Diffusion rule, the H20 notice, the non-enforcement announcement, the H200 rule),
each with its own lifecycle dates and parts; a bundled revision is a named
composition of instruments (``ledger.composition``), and the composed book carries
the instruments it was built from (``RuleBook.instruments``), every clause and
product rule naming its instrument, and the dated country groups it refers to
(``ledger.groups``). So a published revision is self-contained: it means forever
what it meant when it was published.

Group membership, product rules and so the tier of a country are dated: the tier of
Cambodia under the Diffusion rule is 3 until 2026-02-03 and 2 from then on.

The bundled instruments live in ``ledger/data/instruments/``, the compositions in
``ledger/data/rules/``, the groups in ``ledger/data/groups/``; their figures come from
``shared/domain/rules-facts.md`` and carry the ``secondary`` mark where the source is
a summary rather than the rule text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from bisect import bisect_right
from decimal import Decimal
from functools import cache, cached_property
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledger.countries import check_country_codes
from ledger.errors import UnknownRule, ValidationError
from ledger.groups import CountryGroup
from ledger.units import H100_TPP as H100_TPP  # re-exported: its old home


Tier = Literal[1, 2, 3]
#: the characters no rule-book text may hold (as ``ledger.events``; not imported from
#: there, which imports this module)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Doc):
    """Where a figure or clause comes from."""

    title: str
    citation: str | None = None
    date: dt.date | None = None
    note: str | None = None


class Enforcement(_Doc):
    """When a revision governs: a revision can be on the books but not enforced."""

    #: first day the revision is enforced (its compliance date); None: never enforced
    begins: dt.date | None
    #: enforcement suspended from this day on (the rule stays on the books)
    suspended: dt.date | None = None
    #: removed from the regulations from this day on
    rescinded: dt.date | None = None

    def enforced_on(self, day: dt.date) -> bool:
        """True if the revision is enforced on ``day``."""
        if self.begins is None or day < self.begins:
            return False
        if self.suspended is not None and day >= self.suspended:
            return False
        return not (self.rescinded is not None and day >= self.rescinded)


class Tiers(_Doc):
    """Country tiers: explicit countries first, then the dated groups (by name, defined
    in the book's ``groups``), everything else in ``default``."""

    default: Tier
    countries: dict[str, Tier] = Field(default_factory=dict)
    #: group id -> tier (e.g. tier-1: 1, d5: 3, macau: 3); membership is dated
    groups: dict[str, Tier] = Field(default_factory=dict)
    note: str | None = None

    @field_validator("countries")
    @classmethod
    def _codes(cls, v: dict[str, Tier]) -> dict[str, Tier]:
        check_country_codes(v, " in tiers")
        return v

    def tier_of(self, country: str) -> Tier:
        """The tier from the explicit countries only (groups need the book)."""
        return self.countries.get(country, self.default)


class Period(_Doc):
    start: dt.date
    end: dt.date

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class CountryCap(_Doc):
    """The cumulative cap of one tier over a period, in TPP."""

    tpp: int = Field(ge=0)
    period: Period
    cumulative: bool = True
    source: str
    secondary: bool = False
    note: str | None = None


class Caps(_Doc):
    #: the tier-2 country cap; None: tier-2 countries have no cap
    tier2: CountryCap | None = None
    #: the tier-3 cap (0 under the Diffusion rule); None: no cap
    tier3_tpp: int | None = Field(default=None, ge=0)
    tier3_source: str | None = None


class LppException(_Doc):
    """Low Processing Performance exception (15 CFR 740.29)."""

    limit_tpp_per_consignee_year: int = Field(gt=0)
    source: str
    secondary: bool = False


class Exceptions(_Doc):
    lpp: LppException | None = None


class UniversalVeuLimits(_Doc):
    """Shares of the entity's whole deployed compute (Decimal fractions, 0..1)."""

    max_share_single_non_tier1: Decimal
    max_share_outside_tier1: Decimal
    min_share_us_for_us_headquartered: Decimal
    source: str
    secondary: bool = False


class NationalVeuCap(_Doc):
    """A cumulative cap through a date, in H100-equivalents (TPP derived)."""

    through: dt.date
    h100_equivalents: int = Field(gt=0)
    secondary: bool = True
    note: str | None = None

    @property
    def tpp(self) -> int:
        """Derived: H100-equivalents x 15,832 TPP (no TPP figure in the sources)."""
        return self.h100_equivalents * H100_TPP


class VeuRules(_Doc):
    universal: UniversalVeuLimits | None = None
    national: list[NationalVeuCap] = Field(default_factory=list)
    source: str | None = None


class Threshold(_Doc):
    """One alternative of a control threshold: TPP at least, and optionally density."""

    eccn: str
    min_tpp: int = Field(gt=0)
    min_performance_density: Decimal | None = None


class ProductRule(_Doc):
    """A product named by an instrument for some destinations, from a date.

    ``license-required``: a license is needed whatever the product's figures (the H20
    from 2025-04-09). ``gp10``: the product is flagged as a General Prohibition 10
    risk and never counted against a cap (Huawei Ascend from 2025-05-13)."""

    products: list[str]
    destinations: list[str] = Field(default_factory=list)
    #: group ids whose members (on the ship date) are destinations too
    destination_groups: list[str] = Field(default_factory=list)
    #: every destination
    anywhere: bool = False
    #: first ship date the rule applies to (None: every date the book applies to)
    applies_from: dt.date | None = None
    treatment: Literal["license-required", "gp10"] = "license-required"
    #: the instrument the rule comes from
    instrument: str | None = None
    note: str | None = None
    source: str


class Control(_Doc):
    """What is controlled, and where a license is required without caps."""

    thresholds: list[Threshold]
    #: destinations that need a license for controlled items (no caps involved)
    license_required: list[str] = Field(default_factory=list)
    #: groups whose members (on the ship date) need a license too
    license_required_groups: list[str] = Field(default_factory=list)
    product_rules: list[ProductRule] = Field(default_factory=list)
    source: str

    @field_validator("license_required")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        check_country_codes(v, " in license_required")
        return v


class Clause(_Doc):
    """A rule text clause that decides how a shipment counts, with its citation."""

    text: str
    citation: str
    #: the instrument the clause comes from (None: the revision itself)
    instrument: str | None = None


#: Clause ids the counting rules use; every bundled rule book must cite each it uses.
CLAUSE_IDS = (
    "uncontrolled",
    "tier1",
    "tier2-unlicensed",
    "tier2-license",
    "tier2-lpp",
    "tier2-veu",
    "tier3",
    "no-cap",
    "license-required",
    "not-us-origin",
    "gp10-ascend",
)


# --- instruments -----------------------------------------------------------------------


class Lifecycle(_Doc):
    """An instrument's own dates. On the books from ``effective`` until ``rescinded``;
    enforced from ``compliance`` (or ``effective``) until ``suspended`` or ``rescinded``."""

    published: dt.date | None = None
    effective: dt.date
    #: first day enforced when it differs from ``effective`` (a compliance date)
    compliance: dt.date | None = None
    suspended: dt.date | None = None
    #: the instrument that suspended it
    suspended_by: str | None = None
    rescinded: dt.date | None = None
    #: the dates above that the facts do not confirm (e.g. ``published``)
    unverified: list[Literal["published", "effective", "compliance", "suspended",
                             "rescinded"]] = Field(default_factory=list)

    @property
    def enforcement_begins(self) -> dt.date | None:
        """First day enforced, None when suspended before it ever began."""
        begins = self.compliance or self.effective
        if self.suspended is not None and self.suspended <= begins:
            return None
        return begins

    def on_the_books(self, day: dt.date) -> bool:
        return self.effective <= day and not (self.rescinded is not None
                                              and day >= self.rescinded)

    def enforced_on(self, day: dt.date) -> bool:
        begins = self.enforcement_begins
        if begins is None or day < begins:
            return False
        if self.suspended is not None and day >= self.suspended:
            return False
        return not (self.rescinded is not None and day >= self.rescinded)


class LicenseRequirement(_Doc):
    """Destinations where a controlled item needs a license (no caps involved)."""

    countries: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    source: str

    @field_validator("countries")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        check_country_codes(v, " in license_required")
        return v


#: the parts an instrument can set; a later-effective instrument wins for the same
#: part, except product_rules, which accumulate
PART_NAMES = ("thresholds", "license_required", "product_rules", "tiers", "caps",
              "exceptions", "veu")


class Parts(_Doc):
    """What an instrument sets; an absent part is left to the instruments below it."""

    thresholds: list[Threshold] | None = None
    thresholds_source: str | None = None
    license_required: LicenseRequirement | None = None
    product_rules: list[ProductRule] = Field(default_factory=list)
    tiers: Tiers | None = None
    caps: Caps | None = None
    exceptions: Exceptions | None = None
    veu: VeuRules | None = None

    def present(self) -> list[str]:
        """The names of the parts this instrument sets."""
        return [n for n in PART_NAMES
                if (getattr(self, n) not in (None, []))]


class Suspension(_Doc):
    """While the suspending instrument is enforced, these parts of another instrument
    are not (they stay on the books), and these clauses say so."""

    instrument: str
    parts: list[Literal["thresholds", "license_required", "tiers", "caps", "exceptions",
                        "veu"]]
    clauses: dict[str, Clause] = Field(default_factory=dict)


class Instrument(_Doc):
    """One legal instrument: a rule, a notice, an announcement, guidance, or a draft."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: Literal["final-rule", "interim-final-rule", "rule", "notice", "announcement",
                  "guidance", "draft"]
    title: str
    citation: str
    sources: list[Source] = Field(min_length=1)
    lifecycle: Lifecycle
    parts: Parts = Field(default_factory=Parts)
    suspends: list[Suspension] = Field(default_factory=list)
    #: instruments whose suspension this one lifts (a draft that enforces the
    #: Diffusion rule from its compliance date after all)
    reinstates: list[str] = Field(default_factory=list)
    clauses: dict[str, Clause] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_clauses(self) -> Instrument:
        names = set(self.clauses) | {c for s in self.suspends for c in s.clauses}
        unknown = sorted(names - set(CLAUSE_IDS))
        if unknown:
            raise ValueError(f"instrument {self.id}: unknown clause ids: {', '.join(unknown)}")
        return self


def _control_character(value: object, path: str) -> tuple[str, str] | None:
    """(path, text) of the first string in a rule book's data holding a control
    character, keys included."""
    if isinstance(value, str):
        return (path, value) if _CONTROL.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = (_control_character(k, path) or
                     _control_character(v, f"{path}.{k}" if path else str(k)))
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _control_character(v, f"{path}.{i}")
            if found:
                return found
    return None


class RuleBook(_Doc):
    """A complete rule revision (a named composition of instruments, or written whole)."""

    @model_validator(mode="after")
    def _no_control_characters(self) -> RuleBook:
        # after, not before: a before-validator would turn strict JSON validation
        # into Python validation, where a date string is refused
        found = _control_character(self.model_dump(), "")
        if found is not None:
            raise ValueError(f"{found[0] or 'a key'}: control characters are not allowed "
                             f"(value: {found[1][:200]!r})")
        return self

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    citation: str
    sources: list[Source] = Field(min_length=1)
    published: dt.date
    effective: dt.date
    enforcement: Enforcement
    supersedes: list[str] = Field(default_factory=list)
    tiers: Tiers | None = None
    caps: Caps = Field(default_factory=Caps)
    exceptions: Exceptions = Field(default_factory=Exceptions)
    veu: VeuRules | None = None
    control: Control
    clauses: dict[str, Clause]
    notes: list[str] = Field(default_factory=list)
    #: the dates above that the facts do not confirm (e.g. ``published``)
    unverified: list[Literal["published", "effective", "enforcement"]] = Field(
        default_factory=list)
    #: the instruments the revision is composed of, in composition order
    instruments: list[Instrument] = Field(default_factory=list)
    #: the dated country groups the revision refers to, by id
    groups: dict[str, CountryGroup] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> RuleBook:
        if self.caps.tier2 is not None and self.tiers is None:
            raise ValueError("caps.tier2 is set but the revision defines no tiers")
        unknown = sorted(set(self.clauses) - set(CLAUSE_IDS))
        if unknown:
            raise ValueError(f"unknown clause ids: {', '.join(unknown)}")
        named = set(self.control.license_required_groups)
        named |= {g for r in self.control.product_rules for g in r.destination_groups}
        if self.tiers is not None:
            named |= set(self.tiers.groups)
        missing = sorted(named - set(self.groups))
        if missing:
            raise ValueError(f"groups named but not defined in the book: {', '.join(missing)}")
        return self

    # --- rule evaluation (pure) -------------------------------------------------

    def in_group(self, country: str, group: str, day: dt.date | None) -> bool:
        """Is ``country`` a member of the book's group on ``day`` (None: after every
        dated change)?"""
        return country in self.groups[group].members_on(day)

    def tier_of(self, country: str, day: dt.date | None = None) -> Tier | None:
        """The country's tier on ``day``, or None when this revision has no tiers.

        Explicit countries first, then the groups (membership on ``day``; None: after
        every dated change), then the default."""
        tiers = self.tiers
        if tiers is None:
            return None
        tier = tiers.countries.get(country)
        if tier is not None:
            return tier
        for group, group_tier in tiers.groups.items():
            if self.in_group(country, group, day):
                return group_tier
        return tiers.default

    def license_required_on(self, country: str, day: dt.date | None = None) -> bool:
        """Does a controlled item to ``country`` need a license on ``day``?"""
        control = self.control
        if country in control.license_required:
            return True
        return any(self.in_group(country, g, day) for g in control.license_required_groups)

    def cap_for(self, country: str, day: dt.date | None = None) -> int | None:
        """The revision's own cap for the country in TPP on ``day``, None when uncapped."""
        tier = self.tier_of(country, day)
        if tier == 2 and self.caps.tier2 is not None:
            return self.caps.tier2.tpp
        if tier == 3 and self.caps.tier3_tpp is not None:
            return self.caps.tier3_tpp
        return None

    def cap_period(self) -> Period | None:
        return None if self.caps.tier2 is None else self.caps.tier2.period

    def lpp_limit(self) -> int | None:
        lpp = self.exceptions.lpp
        return None if lpp is None else lpp.limit_tpp_per_consignee_year

    def is_controlled(
        self, tpp_per_unit: int, performance_density: Decimal | None = None
    ) -> bool:
        """True if a chip of this TPP (and density, if known) meets a threshold.

        When a threshold needs the performance density and it is unknown, the chip
        is treated as controlled: a compliance ledger must not under-count.
        """
        for t in self.control.thresholds:
            if tpp_per_unit < t.min_tpp:
                continue
            if t.min_performance_density is None:
                return True
            if performance_density is None or performance_density >= t.min_performance_density:
                return True
        return False

    def product_rule_for(self, product_id: str, destination: str,
                         day: dt.date | None = None) -> ProductRule | None:
        """The first product rule naming the product for this destination on ``day``
        (a rule with ``applies_from`` applies from that ship date on)."""
        for rule in self.control.product_rules:
            if product_id not in rule.products:
                continue
            if rule.applies_from is not None and day is not None and day < rule.applies_from:
                continue
            if (rule.anywhere or destination in rule.destinations
                    or any(self.in_group(destination, g, day) for g in rule.destination_groups)):
                return rule
        return None

    def group_change_dates(self) -> list[dt.date]:
        """Every date on which a group this book refers to changes."""
        return sorted({d for g in self.groups.values() for d in g.change_dates()})

    def dated_period(self, day: dt.date) -> int:
        """Which of the book's dated periods ``day`` falls in: shipments of one period
        (between group changes and product-rule start dates) are treated alike, so a
        replay can memoise treatments per period instead of per ship date."""
        return bisect_right(self.dated_cuts, day)

    @cached_property
    def dated_cuts(self) -> list[dt.date]:
        """The dates the book's dated periods start on (cached; not a field)."""
        found = set(self.group_change_dates())
        found |= {r.applies_from for r in self.control.product_rules if r.applies_from}
        return sorted(found)

    def clause(self, clause_id: str) -> Clause:
        try:
            return self.clauses[clause_id]
        except KeyError:
            return Clause(text=clause_id, citation=self.citation)


# --- loading ------------------------------------------------------------------------


def parse_rulebook(text: str, *, origin: str = "<text>") -> RuleBook:
    """Parse a YAML or JSON rule book; raise ValidationError naming field and value."""
    import yaml  # here, not at the top: a query parses no YAML
    from pydantic import ValidationError as PydanticError

    try:
        data = yaml.load(text, Loader=_strict_loader())  # a SafeLoader
    except yaml.YAMLError as e:
        raise ValidationError(f"{origin}: not valid YAML/JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValidationError(f"{origin}: a rule book must be a mapping, got {type(data).__name__}")
    try:
        if _names_instruments(data):
            from ledger.composition import compose_named

            return compose_named(data)
        # strict, as every wire input: through JSON so that dates are YYYY-MM-DD
        # strings (a YAML timestamp is refused) and integers are integers
        return RuleBook.model_validate_json(json.dumps(data, default=_yaml_scalar),
                                            strict=True)
    except UnknownRule:
        raise
    except ValueError as e:
        if not isinstance(e, PydanticError):
            raise ValidationError(f"{origin}: {e}", field="instruments",
                                  value=data.get("instruments")) from e
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValidationError(
            f"{origin}: field {field!r}: {first['msg']} (value: {first.get('input')!r})",
            field=field,
            value=first.get("input"),
        ) from e


def _names_instruments(data: dict[str, object]) -> bool:
    """A revision document that names bundled instruments instead of restating them."""
    names = data.get("instruments")
    return isinstance(names, list) and bool(names) and all(isinstance(n, str) for n in names)


def _yaml_scalar(value: object) -> str:
    """JSON text of the scalars YAML gives beyond JSON's: dates as YYYY-MM-DD; a
    timestamp keeps its time, which a date field then refuses."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a rule-book value")


@cache
def _strict_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """A SafeLoader that refuses a key given twice in one mapping (PyYAML keeps
        the last, silently)."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False
                              ) -> dict[object, object]:
            seen: set[object] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


@cache
def bundled_rulebooks() -> tuple[RuleBook, ...]:
    """The rule books shipped with the ledger, in order of effective date."""
    folder = resources.files("ledger.data") / "rules"
    books = [
        parse_rulebook(p.read_text(encoding="utf-8"), origin=p.name)
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith((".yaml", ".yml", ".json"))
    ]
    return tuple(sorted(books, key=lambda b: (b.effective, b.id)))


def bundled_rulebook(rule_id: str) -> RuleBook:
    for book in bundled_rulebooks():
        if book.id == rule_id:
            return book
    raise UnknownRule(f"rule {rule_id!r} is not a bundled rule book")


def _superseded(books: list[RuleBook]) -> set[str]:
    """Ids of the ``books`` superseded, directly or through a chain, by another of them."""
    ids = {b.id for b in books}
    direct = {b.id: {s for s in b.supersedes if s in ids and s != b.id} for b in books}
    out: set[str] = set()
    for book in books:
        stack, seen = list(direct[book.id]), set()
        while stack:
            rid = stack.pop()
            if rid in seen or rid == book.id:
                continue
            seen.add(rid)
            stack.extend(direct.get(rid, ()))
        out |= seen
    return out


def in_force(books: list[RuleBook] | tuple[RuleBook, ...], day: dt.date) -> RuleBook | None:
    """The revision in force on ``day``: among those enforced on it, the latest whose
    enforcement began on or before it. Ties: the later in ``books`` wins (callers pass
    books in recorded order).

    A revision that names another in ``supersedes`` wins over it whenever both are
    enforced, whatever their begin dates: a retroactive revision recorded later, whose
    enforcement begins before the one it replaces, must govern the days they share
    (the latest-begin rule alone would keep the replaced one from its begin date on).
    """
    enforced = [b for b in books if b.enforcement.enforced_on(day)]
    if not enforced:
        return None
    superseded = _superseded(enforced)
    candidates = [b for b in enforced if b.id not in superseded] or enforced
    best: RuleBook | None = None
    for book in candidates:
        assert book.enforcement.begins is not None
        if best is None or book.enforcement.begins >= best.enforcement.begins:  # type: ignore[operator]
            best = book
    return best


def on_the_books(books: list[RuleBook] | tuple[RuleBook, ...], day: dt.date) -> RuleBook | None:
    """The revision whose legal text governs ``day``, whether or not it is enforced.

    A revision is on the books from its effective date until it is rescinded. A
    revision whose enforcement was suspended but which was never rescinded stays on
    the books: the revisions that suspend it (e.g. the 2025-05-13 non-enforcement of
    ``ai-diffusion-2025``) change enforcement, not the text, so on a day when such a
    suspended revision exists the latest of them governs. Otherwise the latest
    effective revision governs (ties: the later in ``books``).

    Books composed of instruments (every bundled revision) are answered by layering
    every instrument on the books on ``day`` (``ledger.composition``): the Diffusion
    rule stays on the books with the H20 notice and the H200 rule beside it."""
    if any(b.instruments for b in books):
        from ledger.composition import on_the_books_book

        return on_the_books_book(books, day)
    live = [b for b in books
            if b.effective <= day
            and not (b.enforcement.rescinded is not None and day >= b.enforcement.rescinded)]
    suspended = [b for b in live
                 if b.enforcement.suspended is not None and b.enforcement.suspended <= day]
    best: RuleBook | None = None
    for book in suspended or live:
        if best is None or book.effective >= best.effective:
            best = book
    return best
