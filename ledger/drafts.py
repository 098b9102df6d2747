"""Draft rules: evaluate a rule that is not in the ledger, without writing anything.

A draft file (``--rule-file FILE`` of ``ledger quota``, ``ledger replay`` and
``ledger rules check``) is one of:

- a **draft instrument** (``kind: draft``): an instrument with its own id, lifecycle
  and the parts it changes, layered on the instruments of a revision
  (``layers_on``, default: the revision in force on the draft's effective date).
  "The Diffusion rule's tier-2 cap doubled from 2026-01-01, everything else as in
  force" is a few lines, not a copy of a whole book;
- a **complete rule book** or a **named composition** (``instruments: [ids]``), the
  same documents ``ledger rules load`` takes.

Either way it is validated exactly like ``rules load`` (the same parser and models,
errors naming the field and the value), and against the ledger: every revision it
names in ``supersedes`` (and ``layers_on``) must be in the ledger, and its id may not
be a published revision with a different document (``rules load`` would refuse it).
The answer names the file and the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import UnknownRule, ValidationError
from ledger.rulebook import Instrument, RuleBook, in_force, parse_rulebook


@dataclass(frozen=True)
class Draft:
    """A validated draft: the rule book it composes to, and where it came from."""

    path: str
    sha256: str
    book: RuleBook
    #: "instrument" (layered on ``layers_on``) or "rule-book"
    kind: str
    layers_on: str | None

    def describe(self) -> dict[str, Any]:
        """The JSON every answer computed with the draft carries."""
        return {"file": self.path, "sha256": self.sha256, "id": self.book.id,
                "kind": self.kind, "layers_on": self.layers_on}

    def line(self) -> str:
        base = f", layered on {self.layers_on}" if self.layers_on else ""
        return (f"draft rule {self.book.id} from {self.path} (sha256 {self.sha256}{base}); "
                "not in the ledger, nothing written")


def load_draft(data: bytes, path: str, books: Sequence[RuleBook]) -> Draft:
    """The draft in ``data`` (the file's bytes), validated against ``books`` (the
    ledger's revisions, in recorded order). Raises ValidationError or UnknownRule."""
    import yaml

    from ledger.rulebook import _strict_loader

    sha = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError(f"{path}: not UTF-8 text ({e})", field="file", value=path) from e
    try:
        doc = yaml.load(text, Loader=_strict_loader())  # a SafeLoader
    except yaml.YAMLError as e:
        raise ValidationError(f"{path}: not valid YAML/JSON: {e}", field="file",
                              value=path) from e
    base: str | None = None
    if isinstance(doc, dict) and doc.get("kind") == "draft":
        book = _layered(doc, path, books)
        base = doc.get("layers_on") or _base_id(book, books)
        kind = "instrument"
    else:
        book, kind = parse_rulebook(text, origin=path), "rule-book"
    _check_against_ledger(book, path, books)
    return Draft(path, sha, book, kind, base)


def _base_id(book: RuleBook, books: Sequence[RuleBook]) -> str | None:
    found = in_force(list(books), book.effective)
    return None if found is None else found.id


def _layered(doc: dict[str, Any], path: str, books: Sequence[RuleBook]) -> RuleBook:
    """A draft instrument composed on the instruments of the revision it layers on."""
    from pydantic import ValidationError as PydanticError

    from ledger.composition import compose, strict_model

    header_keys = ("layers_on", "supersedes")
    body = {k: v for k, v in doc.items() if k not in header_keys}
    try:
        draft = strict_model(Instrument, body)
    except PydanticError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValidationError(
            f"{path}: field {field!r}: {first['msg']} (value: {first.get('input')!r})",
            field=field, value=first.get("input")) from e
    effective = draft.lifecycle.effective
    base_id = doc.get("layers_on")
    if base_id is None:
        base = in_force(list(books), effective)
        if base is None:
            raise UnknownRule(f"{path}: no revision is in force on {effective} to layer the "
                              "draft on; name one with layers_on")
    else:
        base = _known(str(base_id), "layers_on", path, books)
    if not base.instruments:
        raise ValidationError(f"{path}: layers_on {base.id!r} is a revision published before "
                              "instruments existed; a draft instrument needs one composed of "
                              "instruments", field="layers_on", value=base.id)
    groups = dict(base.groups)
    layers = [i for i in base.instruments if i.id != draft.id] + [draft]
    header = {
        "id": draft.id, "title": draft.title, "citation": draft.citation,
        "published": draft.lifecycle.published or effective, "effective": effective,
        "enforcement": {"begins": draft.lifecycle.compliance or effective},
        "supersedes": list(doc.get("supersedes") or [base.id]),
        "notes": [f"Draft instrument {draft.id} layered on {base.id}."],
    }
    try:
        from ledger.groups import bundled_groups

        return compose(header, layers, {**bundled_groups(), **groups})
    except PydanticError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValidationError(f"{path}: field {field!r}: {first['msg']}", field=field,
                              value=first.get("input")) from e
    except ValueError as e:
        raise ValidationError(f"{path}: {e}", field="parts", value=None) from e


def _known(rule_id: str, field: str, path: str, books: Sequence[RuleBook]) -> RuleBook:
    for book in books:
        if book.id == rule_id:
            return book
    known = ", ".join(b.id for b in books) or "none loaded"
    raise UnknownRule(f"{path}: {field} names {rule_id!r}, which is not a rule revision in "
                      f"this ledger (known: {known})")


def _check_against_ledger(book: RuleBook, path: str, books: Sequence[RuleBook]) -> None:
    for rule_id in book.supersedes:
        _known(rule_id, "supersedes", path, books)
    for published in books:
        if published.id == book.id and published != book:
            raise ValidationError(
                f"{path}: id {book.id!r} is already a published revision with a different "
                "document ('rules load' would refuse it); give the draft its own id",
                field="id", value=book.id)

