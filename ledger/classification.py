"""Which 3A090 paragraph a chip falls under, from its TPP and performance density.

The thresholds of the October 2023 rules, reused by the Diffusion rule (rules-facts.md
R0 and "Classification"; CSET, "A Bigger Yard, A Higher Fence", 2023-12-04, notes 6-7):

- 3A090.a: TPP >= 4,800; or TPP >= 1,600 and performance density >= 5.92.
- 3A090.b: 2,400 <= TPP < 4,800 and 1.6 <= PD < 5.92; or TPP >= 1,600 and
  3.2 <= PD < 5.92.

PD = TPP / die area in mm². When the density is unknown and the TPP alone cannot
settle the paragraph (1,600 <= TPP < 4,800), the chip is treated as controlled: a
compliance ledger must not under-count, and the answer says so.

This is what ``ledger products show`` prints. Counting uses the thresholds of the
rule book in force (``RuleBook.is_controlled``), with the density from here: the
catalog's, or ``performance_density`` of a shipment's declared TPP and die area (the
same function ``products show --tpp N --die-area MM2`` uses), and names the paragraph
from ``classify_3a090`` when the density was declared.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Literal

THRESHOLDS_SOURCE = ('CSET, "A Bigger Yard, A Higher Fence" (2023-12-04), notes 6-7 '
                     '(rules-facts.md R0 and "Classification")')

A_TPP = 4_800
MIN_TPP = 1_600
A_PD = Decimal("5.92")
B_TPP = 2_400
B_PD_LOW = Decimal("1.6")
B_PD_ALT = Decimal("3.2")


#: exact enough for any comparison with a threshold: TPP < 10^13 and a die area of at
#: most 3 decimal places give a quotient whose first 28 digits decide every comparison
_DIVISION = Context(prec=28)
_SHOWN = Decimal("0.001")


def performance_density(tpp: int, die_area_mm2: Decimal) -> Decimal:
    """PD = TPP / die area in mm², computed exactly (28 significant digits), never
    rounded before it is compared with a threshold."""
    return _DIVISION.divide(Decimal(tpp), die_area_mm2)


def shown_density(density: Decimal) -> Decimal:
    """The density as printed: rounded down to 3 decimal places, trailing zeros
    dropped (3.750 as 3.75). Rounding down keeps every comparison with a threshold of
    at most 3 decimals true as printed: a PD just under 5.92 never shows as 5.92."""
    text = format(density.quantize(_SHOWN, rounding=ROUND_FLOOR), "f")
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)


@dataclass(frozen=True)
class Classification:
    #: "3A090.a", "3A090.b", or None (below both)
    paragraph: str | None
    #: controlled for counting (a paragraph applies, or the density is unknown and
    #: the TPP alone cannot rule it out)
    controlled: bool
    #: what decided it: the TPP alone, the density, or an unknown density
    decided_by: Literal["tpp", "density", "unknown-density"]
    reason: str


def classify_3a090(tpp: int, density: Decimal | None) -> Classification:
    """The 3A090 paragraph of a chip of ``tpp`` TPP and ``density`` (None: unknown)."""
    if tpp >= A_TPP:
        return Classification("3A090.a", True, "tpp", f"TPP {tpp:,} >= {A_TPP:,}")
    if tpp < MIN_TPP:
        return Classification(None, False, "tpp",
                              f"TPP {tpp:,} < {MIN_TPP:,}: below every 3A090 threshold")
    if density is None:
        return Classification(
            None, True, "unknown-density",
            f"TPP {tpp:,} is between {MIN_TPP:,} and {A_TPP:,} and the performance "
            "density is unknown (no sourced die area): treated as controlled")
    pd = f"PD {shown_density(density)}"
    if density >= A_PD:
        return Classification("3A090.a", True, "density",
                              f"TPP {tpp:,} >= {MIN_TPP:,} and {pd} >= {A_PD}")
    if tpp >= B_TPP and B_PD_LOW <= density:
        return Classification("3A090.b", True, "density",
                              f"{B_TPP:,} <= TPP {tpp:,} < {A_TPP:,} and "
                              f"{B_PD_LOW} <= {pd} < {A_PD}")
    if B_PD_ALT <= density:
        return Classification("3A090.b", True, "density",
                              f"TPP {tpp:,} >= {MIN_TPP:,} and {B_PD_ALT} <= {pd} < {A_PD}")
    return Classification(
        None, False, "density",
        f"TPP {tpp:,} < {A_TPP:,} and {pd} < {A_PD} (not 3A090.a); "
        + (f"TPP < {B_TPP:,} and " if tpp < B_TPP else f"{pd} < {B_PD_LOW} and ")
        + f"{pd} < {B_PD_ALT} (not 3A090.b)")
