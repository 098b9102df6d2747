"""projections.libpq's pure parts: psycopg's placeholders numbered for libpq, parameters
typed as psycopg types them, result values loaded by type OID (no connection)."""

from __future__ import annotations

import pytest

from projections import libpq


def test_placeholders_are_numbered_in_order() -> None:
    assert libpq.numbered("SELECT 1") == ("SELECT 1", 0)
    assert libpq.numbered("a = %s AND b <= %s OR c = %t") == ("a = $1 AND b <= $2 OR c = $3", 3)
    assert libpq.numbered("%s%s") == ("$1$2", 2)


def test_double_percent_is_a_percent_never_a_placeholder() -> None:
    assert libpq.numbered("x LIKE '50%%' AND y = %s") == ("x LIKE '50%' AND y = $1", 1)
    assert libpq.numbered("'%%s' || %s") == ("'%s' || $1", 1)
    assert libpq.numbered("a %% %s") == ("a % $1", 1)


@pytest.mark.parametrize("query", ["a = %(name)s", "a = %b"])
def test_placeholders_psycopg_has_and_the_lean_one_not(query: str) -> None:
    with pytest.raises(libpq.Unsupported):
        libpq.numbered(query)


@pytest.mark.parametrize("query", ["a = %d", "a % b", "a = %"])
def test_bad_placeholders_raise(query: str) -> None:
    with pytest.raises(libpq.Error):
        libpq.numbered(query)


@pytest.mark.parametrize(("value", "oid"), [
    (0, 21), (-(2**15), 21), (2**15 - 1, 21), (2**15, 23), (-(2**15) - 1, 23),
    (2**31 - 1, 23), (2**31, 20), (-(2**63), 20), (2**63 - 1, 20), (2**63, 1700),
    (-(2**63) - 1, 1700)])
def test_integers_take_the_smallest_type_that_holds_them(value: int, oid: int) -> None:
    assert libpq._param(value) == (oid, str(value).encode())


def test_other_parameters() -> None:
    assert libpq._param("MX") == (0, b"MX")  # unknown: the server infers it
    assert libpq._param("é") == (0, "é".encode())
    assert libpq._param(None) == (0, None)
    assert libpq._param(True) == (16, b"t") and libpq._param(False) == (16, b"f")
    with pytest.raises(libpq.Error, match="NUL"):
        libpq._param("a\x00b")
    for value in (1.5, b"x", object()):
        with pytest.raises(libpq.Unsupported):
            libpq._param(value)


def test_values_load_by_type_oid() -> None:
    for oid in (20, 21, 23, 26):
        assert libpq._loader(oid)(b"-42") == -42
    for oid in (25, 1043, 1042, 19, 18):
        assert libpq._loader(oid)("é~".encode()) == "é~"
    assert libpq._loader(16)(b"t") is True and libpq._loader(16)(b"f") is False
    for oid in (1700, 701, 1082, 114, 3802, 705):  # numeric, float8, date, json(b), unknown
        with pytest.raises(libpq.Unsupported):
            libpq._loader(oid)
