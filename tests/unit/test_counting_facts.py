"""The product facts counting reads from the TOML catalog, read afresh: ``product_facts``
caches them once per process, so a test of the cached answer alone would never see a
mistake in the reading itself."""

from __future__ import annotations

from ledger.catalog import bundled_catalog
from ledger.counting import _facts_from_toml


def test_reading_the_product_facts_afresh_agrees_with_the_catalog() -> None:
    facts = _facts_from_toml()
    products = bundled_catalog().products
    assert set(facts) == {p.id for p in products}
    for p in products:
        f = facts[p.id]
        assert f is not None
        assert (f.density, f.us_origin) == (p.performance_density, p.origin == "us"), p.id
    assert any(f is not None and f.density is not None for f in facts.values())
    assert any(f is not None and not f.us_origin for f in facts.values())
