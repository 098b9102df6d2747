"""Composing instruments into the rule book a date is judged by.

A bundled revision (``ledger/data/rules/*.yaml``) names the instruments it is made
of; ``compose`` layers them into one complete ``RuleBook`` that the counting and the
quota fold read. ``on_the_books_book`` does the same for every instrument on the
books on a date (``--on-the-books``).

The order and the conflict rule:

1. Instruments are applied in order of their effective date (ties: in the order
   listed). For each part (thresholds, license requirement, tiers, caps, exceptions,
   VEU limits) the later-effective instrument that sets it wins; product rules
   accumulate (each keeps the instrument it comes from). Clauses: the later-effective
   instrument's text wins, and every clause names its instrument.
2. Enforced compositions only (a named revision): an instrument's ``suspends``
   entries then remove the named parts of the suspended instrument (the 2025-05-13
   announcement removes the Diffusion rule's caps, LPP and VEU limits) and replace
   the clauses it lists, unless an instrument of the composition ``reinstates`` it
   (a draft that enforces the Diffusion rule after all). On the books, suspensions
   do not apply: the text stays.

Pure, except for the ``bundled_*`` loaders, which read the package's data files.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel

from ledger.errors import UnknownRule
from ledger.groups import CountryGroup, bundled_groups
from ledger.rulebook import (
    PART_NAMES,
    _strict_loader,
    Caps,
    Clause,
    Control,
    Exceptions,
    Instrument,
    ProductRule,
    RuleBook,
    Source,
)


M = TypeVar("M", bound=BaseModel)

#: the part a suspension clause speaks of (default: caps)
CLAUSE_PART = {"tier2-lpp": "exceptions", "tier2-veu": "veu"}


def load_instrument(text: str) -> Instrument:
    """An instrument document (YAML or JSON), validated strictly like a rule book."""
    import yaml  # here, not at the top: a query parses no YAML

    data = yaml.load(text, Loader=_strict_loader())  # a SafeLoader
    if not isinstance(data, dict):
        raise ValueError(f"an instrument must be a mapping, got {type(data).__name__}")
    return strict_model(Instrument, {k: v for k, v in data.items()})


def ordered(instruments: Iterable[Instrument]) -> list[Instrument]:
    """Instruments in composition order: effective date, ties in the order given."""
    return sorted(instruments, key=lambda i: i.lifecycle.effective)


def compose_parts(instruments: Iterable[Instrument], *, enforced: bool
                  ) -> tuple[dict[str, Any], list[ProductRule], dict[str, Clause]]:
    """(parts by name, product rules, clauses) of ``instruments`` layered in order."""
    layers = ordered(instruments)
    parts: dict[str, Any] = {}
    owner: dict[str, str] = {}
    product_rules: list[ProductRule] = []
    clauses: dict[str, Clause] = {}
    for inst in layers:
        for name in PART_NAMES:
            if name == "product_rules":
                continue
            value = getattr(inst.parts, name)
            if value is not None:
                parts[name], owner[name] = value, inst.id
                if name == "thresholds":
                    parts["thresholds_source"] = inst.parts.thresholds_source
        product_rules += [r.model_copy(update={"instrument": inst.id})
                          for r in inst.parts.product_rules]
        for cid, clause in inst.clauses.items():
            clauses[cid] = clause.model_copy(update={"instrument": inst.id})
    if enforced:
        ids = {i.id for i in layers}
        lifted = {r for i in layers for r in i.reinstates}
        for inst in layers:
            for suspension in inst.suspends:
                if suspension.instrument not in ids or suspension.instrument in lifted:
                    continue
                removed = set()
                for name in suspension.parts:
                    if owner.get(name) == suspension.instrument:
                        del parts[name]
                        removed.add(name)
                for cid, clause in suspension.clauses.items():
                    # only where the part the clause speaks of was removed: a later
                    # instrument (a draft) that sets its own caps keeps the cap clauses
                    if CLAUSE_PART.get(cid, "caps") in removed:
                        clauses[cid] = clause.model_copy(update={"instrument": inst.id})
    return parts, product_rules, clauses


def _groups_named(parts: Mapping[str, Any], product_rules: list[ProductRule]) -> set[str]:
    names: set[str] = set()
    if parts.get("tiers") is not None:
        names |= set(parts["tiers"].groups)
    if parts.get("license_required") is not None:
        names |= set(parts["license_required"].groups)
    for r in product_rules:
        names |= set(r.destination_groups)
    return names


def _sources(instruments: list[Instrument]) -> list[Source]:
    seen: set[tuple[str, str | None]] = set()
    out: list[Source] = []
    for inst in instruments:
        for s in inst.sources:
            if (s.title, s.citation) not in seen:
                seen.add((s.title, s.citation))
                out.append(s)
    return out


def compose(header: Mapping[str, Any], instruments: list[Instrument],
            groups: Mapping[str, CountryGroup], *, enforced: bool = True) -> RuleBook:
    """The complete rule book of ``instruments`` layered, under ``header`` (id, title,
    citation, dates, enforcement, supersedes, notes of the revision)."""
    parts, product_rules, clauses = compose_parts(instruments, enforced=enforced)
    if "thresholds" not in parts:
        ids = ", ".join(i.id for i in instruments) or "none"
        raise ValueError(f"no instrument sets the control thresholds (instruments: {ids})")
    missing = sorted(_groups_named(parts, product_rules) - set(groups))
    if missing:
        raise ValueError(f"unknown country groups: {', '.join(missing)}")
    lr = parts.get("license_required")
    control_sources = [parts.get("thresholds_source"), lr and lr.source]
    control = Control(
        thresholds=parts["thresholds"],
        license_required=lr.countries if lr else [],
        license_required_groups=lr.groups if lr else [],
        product_rules=product_rules,
        source="; ".join(s for s in control_sources if s) or "see the instruments",
    )
    layers = ordered(instruments)
    notes = list(header.get("notes", []))
    notes += [f"[{i.id}] {n}" for i in layers for n in i.notes]
    data = {k: v for k, v in header.items() if k not in ("instruments", "notes")}
    data.setdefault("sources", _sources(layers))
    return strict_model(RuleBook, {
        **data,
        "tiers": parts.get("tiers"),
        "caps": parts.get("caps") or Caps(),
        "exceptions": parts.get("exceptions") or Exceptions(),
        "veu": parts.get("veu"),
        "control": control,
        "clauses": clauses,
        "notes": notes,
        "instruments": layers,
        "groups": {g: groups[g] for g in sorted(_groups_named(parts, product_rules))},
    })


def _json_value(value: object) -> object:
    """JSON of what a composed document holds beyond JSON: models, dates, decimals."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (dt.date, dt.datetime, Decimal)):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    raise TypeError(f"{type(value).__name__} is not a rule-book value")


def strict_model(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` validated strictly through JSON, as ``rules load`` validates every
    document: dates must be YYYY-MM-DD strings, integers integers."""
    return model.model_validate_json(json.dumps(data, default=_json_value), strict=True)


# --- on the books ---------------------------------------------------------------------


def instruments_of(books: Iterable[RuleBook]) -> dict[str, Instrument]:
    """Every instrument the books carry, by id (a later book's copy wins)."""
    out: dict[str, Instrument] = {}
    for book in books:
        for inst in book.instruments:
            out[inst.id] = inst
    return out


def groups_of(books: Iterable[RuleBook]) -> dict[str, CountryGroup]:
    out: dict[str, CountryGroup] = {}
    for book in books:
        out.update(book.groups)
    return out


def on_the_books_on(instruments: Mapping[str, Instrument], day: dt.date) -> list[Instrument]:
    """The instruments on the books on ``day``, in composition order."""
    return ordered(i for i in instruments.values() if i.lifecycle.on_the_books(day))


#: compositions on the books, keyed by the identity of their inputs; the value keeps
#: the inputs alive so an id is never reused while its key is cached
_ON_THE_BOOKS: dict[tuple[int, ...], tuple[RuleBook, tuple[object, ...]]] = {}


def _compose_on_the_books(ids: tuple[str, ...], layers: list[Instrument],
                          groups: dict[str, CountryGroup]) -> RuleBook:
    key = tuple(map(id, [*layers, *groups.values()]))
    hit = _ON_THE_BOOKS.get(key)
    if hit is None:
        book = _compose_layers(ids, layers, groups)
        hit = _ON_THE_BOOKS[key] = (book, (*layers, *groups.values()))
    return hit[0]


def _compose_layers(ids: tuple[str, ...], layers: list[Instrument],
                    groups: dict[str, CountryGroup]) -> RuleBook:
    last = max(i.lifecycle.effective for i in layers)
    first = min(i.lifecycle.effective for i in layers)
    header = {
        "id": f"on-the-books-{last}",
        "title": "On the books from " + str(last) + ": " + ", ".join(ids),
        "citation": "; ".join(i.citation for i in layers),
        "published": last, "effective": last,
        "enforcement": {"begins": first},
        "notes": ["Every instrument on the books, enforced or not (suspensions do not "
                  "apply): " + ", ".join(ids)],
    }
    return compose(header, layers, groups, enforced=False)


def on_the_books_book(books: Iterable[RuleBook], day: dt.date) -> RuleBook | None:
    """The composition of every instrument on the books on ``day`` (None: none)."""
    books = list(books)
    layers = on_the_books_on(instruments_of(books), day)
    if not layers or not any(i.parts.thresholds for i in layers):
        return None
    return _compose_on_the_books(tuple(i.id for i in layers), layers, groups_of(books))


# --- bundled instruments and compositions ----------------------------------------------


@cache
def bundled_instruments() -> dict[str, Instrument]:
    """The instruments shipped with the ledger (``ledger/data/instruments/``), by id."""
    folder = resources.files("ledger.data") / "instruments"
    out: dict[str, Instrument] = {}
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if p.name.endswith((".yaml", ".yml")):
            inst = load_instrument(p.read_text(encoding="utf-8"))
            out[inst.id] = inst
    return out


def compose_named(data: Mapping[str, Any]) -> RuleBook:
    """A revision document naming bundled instruments (``instruments: [id, ...]``)
    composed into its complete rule book. Raises UnknownRule for an unknown id."""
    known = bundled_instruments()
    names = list(data.get("instruments", []))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownRule(f"instruments {', '.join(map(repr, unknown))} are not bundled "
                          f"(bundled: {', '.join(sorted(known))})")
    return compose(data, [known[n] for n in names], bundled_groups())
