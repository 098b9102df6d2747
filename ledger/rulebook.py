"""Rule books: one complete, validated document per rule revision.

A rule revision is data, not code: tiers, caps, exceptions, VEU limits, control
thresholds and the clauses that decide how a shipment counts, each with its legal
citation and sources. A later revision restates what still applies from earlier ones
(a rule book is never a patch), so any revision can be applied to any date.

The bundled rule books live in ``ledger/data/rules/*.yaml``; their figures come from
``shared/domain/rules-facts.md`` and carry the ``secondary`` mark where the source is
a summary rather than the rule text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledger.countries import is_country_code
from ledger.errors import UnknownRule, ValidationError
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
    """Country tiers: explicit countries, everything else in ``default``."""

    default: Tier
    countries: dict[str, Tier]
    note: str | None = None

    @field_validator("countries")
    @classmethod
    def _codes(cls, v: dict[str, Tier]) -> dict[str, Tier]:
        bad = [c for c in v if not is_country_code(c)]
        if bad:
            raise ValueError(f"unknown country codes in tiers: {', '.join(sorted(bad))}")
        return v

    def tier_of(self, country: str) -> Tier:
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
    """A product controlled by name for some destinations (e.g. the H20 in 2025)."""

    products: list[str]
    destinations: list[str]
    note: str | None = None
    source: str


class Control(_Doc):
    """What is controlled, and where a license is required without caps."""

    thresholds: list[Threshold]
    #: destinations that need a license for controlled items (no caps involved)
    license_required: list[str] = Field(default_factory=list)
    product_rules: list[ProductRule] = Field(default_factory=list)
    source: str

    @field_validator("license_required")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not is_country_code(c)]
        if bad:
            raise ValueError(f"unknown country codes in license_required: {', '.join(bad)}")
        return v


class Clause(_Doc):
    """A rule text clause that decides how a shipment counts, with its citation."""

    text: str
    citation: str


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
)


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
    """A complete rule revision."""

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

    @model_validator(mode="after")
    def _consistent(self) -> RuleBook:
        if self.caps.tier2 is not None and self.tiers is None:
            raise ValueError("caps.tier2 is set but the revision defines no tiers")
        unknown = sorted(set(self.clauses) - set(CLAUSE_IDS))
        if unknown:
            raise ValueError(f"unknown clause ids: {', '.join(unknown)}")
        return self

    # --- rule evaluation (pure) -------------------------------------------------

    def tier_of(self, country: str) -> Tier | None:
        """The country's tier, or None when this revision has no tiers."""
        return None if self.tiers is None else self.tiers.tier_of(country)

    def cap_for(self, country: str) -> int | None:
        """The revision's own cap for the country in TPP, None when uncapped."""
        tier = self.tier_of(country)
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

    def product_rule_for(self, product_id: str, destination: str) -> ProductRule | None:
        for rule in self.control.product_rules:
            if product_id in rule.products and destination in rule.destinations:
                return rule
        return None

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
        # strict, as every wire input: through JSON so that dates are YYYY-MM-DD
        # strings (a YAML timestamp is refused) and integers are integers
        return RuleBook.model_validate_json(json.dumps(data, default=_yaml_scalar),
                                            strict=True)
    except PydanticError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValidationError(
            f"{origin}: field {field!r}: {first['msg']} (value: {first.get('input')!r})",
            field=field,
            value=first.get("input"),
        ) from e


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
    effective revision governs (ties: the later in ``books``)."""
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
