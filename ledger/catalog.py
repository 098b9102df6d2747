"""The product catalog: chips, their TPP per unit and performance density, their origin.

Most TPP figures are derived (dense TFLOPS x bit length); the catalog says so and
shows the arithmetic, as ``shared/domain/rules-facts.md`` requires. A chip is
controlled because of its figures under the 3A090 thresholds (``ledger.classification``),
so the catalog also gives the performance density where it is sourced: from a die
area with its source, or from a sourced density statement when the die area itself
is secondary (the H20). A product with neither is treated as controlled when its TPP
alone cannot settle it. Non-US products (Huawei Ascend) are never counted against a
US country cap. A shipment of a product not in the catalog must carry its own
``tpp_per_unit`` (and may carry a die area).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ledger.classification import performance_density
from ledger.errors import UnknownProduct


class DensityStatement(BaseModel):
    """A sourced performance density when no sourced die area is available."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: TPP / die area in mm²
    performance_density: Decimal = Field(gt=0)
    #: True when the source says "about"
    approximate: bool = True
    kind: Literal["official", "derived", "secondary"]
    source: str


class Product(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    #: TPP per unit used for counting (for a range, the upper bound: never under-count)
    tpp_per_unit: int = Field(gt=0)
    #: the lower bound when sources disagree (e.g. Ascend 910B)
    tpp_per_unit_low: int | None = Field(default=None, gt=0)
    basis: str
    kind: Literal["official", "derived", "secondary"]
    die_area_mm2: Decimal | None = Field(default=None, gt=0)
    die_area_source: str | None = None
    density: DensityStatement | None = None
    #: ``non-us``: not US-origin, never counted against a US country cap
    origin: Literal["us", "non-us"] = "us"
    origin_source: str | None = None
    note: str | None = None

    @property
    def performance_density(self) -> Decimal | None:
        """TPP / die area, else the sourced density statement, else None (unknown)."""
        if self.die_area_mm2 is not None:
            return performance_density(self.tpp_per_unit, self.die_area_mm2)
        return None if self.density is None else self.density.performance_density


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    products: list[Product]
    _by_id: dict[str, Product] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: object) -> None:
        self._by_id.update({p.id: p for p in self.products})

    def get(self, product_id: str) -> Product | None:
        # through the private-attribute slot: ``self._by_id`` goes through pydantic's
        # __getattr__, which cost more than deciding the shipment in a bulk import
        by_id: dict[str, Product] = self.__pydantic_private__["_by_id"]  # type: ignore[index]
        return by_id.get(product_id)

    def require(self, product_id: str) -> Product:
        product = self.get(product_id)
        if product is None:
            raise UnknownProduct(
                f"product_id {product_id!r} is not in the catalog; give tpp_per_unit",
                field="product_id",
                value=product_id,
            )
        return product


@cache
def bundled_catalog() -> Catalog:
    """The chips of rules-facts.md, from ``ledger/data/products.toml``.

    TOML, read with the standard library: counting consults the catalog (density,
    origin), and a quota answer should not have to import a YAML parser."""
    import tomllib

    text = (resources.files("ledger.data") / "products.toml").read_text(encoding="utf-8")
    return Catalog.model_validate(tomllib.loads(text))
