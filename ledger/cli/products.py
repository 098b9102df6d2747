"""``ledger products``: the catalog, and how each chip classifies under 3A090."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click

from ledger.cli.output import console, print_json


@click.group()
def products() -> None:
    """The product catalog: TPP, performance density, 3A090 paragraph, origin."""


def _describe(product_id: str, tpp: int, density: Decimal | None,
              product: Any | None) -> dict[str, Any]:
    """Everything ``products show`` prints, JSON-ready."""
    from ledger.classification import THRESHOLDS_SOURCE, classify_3a090, shown_density
    from ledger.composition import bundled_instruments

    c = classify_3a090(tpp, density)
    rules = []
    for inst in bundled_instruments().values():
        for r in inst.parts.product_rules:
            if product_id in r.products:
                where = ("anywhere" if r.anywhere
                         else ", ".join([*r.destinations, *r.destination_groups]))
                rules.append({"instrument": inst.id, "treatment": r.treatment,
                              "applies_from": r.applies_from, "destinations": where,
                              "source": r.source})
    out: dict[str, Any] = {
        "id": product_id, "in_catalog": product is not None,
        "name": product.name if product else None,
        "tpp_per_unit": tpp,
        "tpp_per_unit_low": product.tpp_per_unit_low if product else None,
        "tpp_basis": product.basis if product else "declared",
        "tpp_kind": product.kind if product else "declared",
        "die_area_mm2": product.die_area_mm2 if product else None,
        "die_area_source": product.die_area_source if product else None,
        "performance_density": None if density is None else shown_density(density),
        "density_source": None,
        "density_kind": None,
        "paragraph": c.paragraph, "controlled": c.controlled, "decided_by": c.decided_by,
        "reason": c.reason, "thresholds_source": THRESHOLDS_SOURCE,
        "origin": product.origin if product else "us",
        "origin_source": product.origin_source if product else None,
        "product_rules": rules,
        "note": product.note if product else None,
    }
    if product is not None and product.die_area_mm2 is None and product.density is not None:
        out["density_source"] = product.density.source
        out["density_kind"] = product.density.kind + (
            ", approximate" if product.density.approximate else "")
    elif density is not None:
        out["density_source"] = (product.die_area_source if product and product.die_area_mm2
                                 else "declared die area")
        out["density_kind"] = "derived: TPP / die area"
    return out


@products.command("show")
@click.argument("product_id")
@click.option("--tpp", type=click.IntRange(1), help="TPP per unit of a product not in the "
              "catalog (as a shipment would declare it).")
@click.option("--die-area", type=click.FloatRange(min=0, min_open=True),
              help="Die area in mm² of a product not in the catalog.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(product_id: str, tpp: int | None, die_area: float | None, as_json: bool) -> None:
    """One chip: TPP, performance density, its 3A090 paragraph and why, with sources.

    \b
    ledger products show nvidia-h20
    ledger products show custom-asic --tpp 3000 --die-area 800
    """
    from ledger.catalog import bundled_catalog
    from ledger.classification import performance_density
    from ledger.errors import UnknownProduct, ValidationError

    product = bundled_catalog().get(product_id)
    if product is None and tpp is None:
        known = ", ".join(p.id for p in bundled_catalog().products)
        raise UnknownProduct(f"product {product_id!r} is not in the catalog (known: {known}); "
                             "give --tpp (and --die-area) to classify declared figures",
                             field="product_id", value=product_id)
    if product is not None and (tpp is not None or die_area is not None):
        raise ValidationError(f"{product_id!r} is in the catalog: --tpp and --die-area are "
                              "for products that are not", field="tpp", value=tpp)
    if product is not None:
        value = product.tpp_per_unit
        density = product.performance_density
    else:
        assert tpp is not None
        value = tpp
        density = (None if die_area is None
                   else performance_density(tpp, Decimal(str(die_area))))
    data = _describe(product_id, value, density, product)
    if as_json:
        print_json(data)
        return
    _print(data)


def _print(d: dict[str, Any]) -> None:
    from rich.markup import escape

    out = console()
    out.print(f"[bold]{d['id']}[/bold]" + (f": {d['name']}" if d["name"] else
                                          " (not in the catalog: declared figures)"))
    low = f" (range {d['tpp_per_unit_low']:,}–{d['tpp_per_unit']:,})" if d[
        "tpp_per_unit_low"] else ""
    out.print(escape(f"  TPP per unit   {d['tpp_per_unit']:,}{low}  ({d['tpp_kind']}) "
                     f"{d['tpp_basis']}"), soft_wrap=True)
    if d["die_area_mm2"] is not None:
        out.print(f"  die area       {d['die_area_mm2']} mm²  {d['die_area_source'] or ''}")
    if d["performance_density"] is None:
        out.print("  perf. density  unknown (no sourced die area or density statement)")
    else:
        out.print(escape(f"  perf. density  {d['performance_density']}  ({d['density_kind']}) "
                         f"{d['density_source']}"), soft_wrap=True)
    paragraph = d["paragraph"] or ("none (treated as controlled)" if d["controlled"]
                                   else "none: not controlled by the thresholds")
    out.print(f"  3A090          {paragraph}")
    out.print(f"  why            {d['reason']}", soft_wrap=True)
    out.print(f"  thresholds     {d['thresholds_source']}", soft_wrap=True)
    origin = "US" if d["origin"] == "us" else "not US-origin: never counted against a US cap"
    out.print(f"  origin         {origin}" + (f" ({d['origin_source']})"
                                              if d["origin_source"] else ""), soft_wrap=True)
    for r in d["product_rules"]:
        since = f" from {r['applies_from']}" if r["applies_from"] else ""
        out.print(f"  named by       {r['instrument']}: {r['treatment']}{since}, "
                  f"destinations {r['destinations']} ({r['source']})", soft_wrap=True)
    if d["note"]:
        out.print(f"  note           {d['note']}", soft_wrap=True)


@products.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """Every catalog product with its TPP, density, 3A090 paragraph and origin."""
    from rich.table import Table

    from ledger.catalog import bundled_catalog

    rows = [_describe(p.id, p.tpp_per_unit, p.performance_density, p)
            for p in bundled_catalog().products]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Product catalog", title_justify="left")
    for col, justify in [("id", "left"), ("TPP", "right"), ("PD", "right"),
                         ("3A090", "left"), ("origin", "left")]:
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for d in rows:
        para = d["paragraph"] or ("assumed" if d["controlled"] else "none")
        pd = "—" if d["performance_density"] is None else str(d["performance_density"])
        table.add_row(d["id"], f"{d['tpp_per_unit']:,}", pd, para,
                      "US" if d["origin"] == "us" else "non-US")
    console().print(table)
