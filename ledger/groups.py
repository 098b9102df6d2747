"""Dated country groups: Tier 1, Country Group D:5, Macau.

A group is a list of changes, each with its date and source (``ledger/data/groups/``):
Cambodia's removal from D:5 on 2026-02-03 is one entry. Instruments refer to groups
by name; a rule book embeds the groups it names, so a published revision keeps
meaning what it meant when it was published.

An entry with ``date: null`` is undated: rules-facts.md names the members but not
when each joined, so they are members on every date before the first dated change.

Pure: no I/O except ``bundled_groups``, which reads the bundled files.
"""

from __future__ import annotations

import datetime as dt
from functools import cache, cached_property
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledger.countries import check_country_codes


class GroupChange(BaseModel):
    """Countries added to and removed from a group on one date, with the source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the first day the change applies; None: undated (applies on every date)
    date: dt.date | None
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    source: str = Field(min_length=1)
    note: str | None = None

    @field_validator("add", "remove")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        check_country_codes(v)
        return v


class CountryGroup(BaseModel):
    """A named, dated list of countries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    #: True when the list holds only the members the facts name (e.g. D:5)
    partial: bool = False
    note: str | None = None
    changes: list[GroupChange] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> CountryGroup:
        last: dt.date | None = None
        for change in self.changes:
            if change.date is None and last is not None:
                raise ValueError(f"group {self.id!r}: undated changes must come first")
            if change.date is not None and last is not None and change.date < last:
                raise ValueError(f"group {self.id!r}: changes must be in date order "
                                 f"({change.date} after {last})")
            last = change.date or last
        return self

    def members_on(self, day: dt.date | None) -> frozenset[str]:
        """The members on ``day`` (None: after every change). Memoised per day: the
        fold asks once per shipment."""
        cache = self.members_cache
        found = cache.get(day)
        if found is None:
            found = cache[day] = self._members_on(day)
        return found

    @cached_property
    def members_cache(self) -> dict[dt.date | None, frozenset[str]]:
        """Members by day, filled as asked (cached; not a field)."""
        return {}

    def _members_on(self, day: dt.date | None) -> frozenset[str]:
        members: set[str] = set()
        for change in self.changes:
            if day is not None and change.date is not None and change.date > day:
                break
            members |= set(change.add)
            members -= set(change.remove)
        return frozenset(members)

    def change_dates(self) -> list[dt.date]:
        return [c.date for c in self.changes if c.date is not None]


@cache
def bundled_groups() -> dict[str, CountryGroup]:
    """The groups shipped with the ledger (``ledger/data/groups/*.yaml``), by id."""
    import json

    import yaml  # here, not at the top: a query parses no YAML

    def strict(text: str) -> CountryGroup:
        data = yaml.safe_load(text)
        return CountryGroup.model_validate_json(
            json.dumps(data, default=lambda d: d.isoformat()), strict=True)

    folder = resources.files("ledger.data") / "groups"
    groups = [strict(p.read_text(encoding="utf-8"))
              for p in sorted(folder.iterdir(), key=lambda p: p.name)
              if p.name.endswith((".yaml", ".yml"))]
    return {g.id: g for g in groups}
