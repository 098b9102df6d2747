"""Whether a named license or VEU was usable on the ship date (``ledger.counting``,
pure): every reason it fails, in its exact words, and the first and last good day."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ledger.counting import AuthorizationCheck, license_check, veu_check

D = dt.date
LICENSE: dict[str, Any] = dict(exists=True, country="MX", holder="acme",
                               valid_from=D(2025, 2, 1), valid_to=D(2025, 6, 30),
                               revoked_on=None, exporter_id="acme", destination="MX")
VEU: dict[str, Any] = dict(exists=True, covered_countries=["MX", "BR"],
                           valid_from=D(2025, 2, 1), valid_to=D(2025, 6, 30),
                           revoked_on=None, destination="MX")


@pytest.mark.parametrize(("changes", "day", "reason"), [
    ({}, D(2025, 2, 1), ""),  # its first day
    ({}, D(2025, 6, 30), ""),  # its last day
    ({"exists": False}, D(2025, 3, 1), "allocation 'L1' is not known to the ledger"),
    ({"holder": None}, D(2025, 3, 1),
     "allocation 'L1' is a country-level allocation, not a license"),
    ({"holder": "globex"}, D(2025, 3, 1), "license 'L1' is held by 'globex', not 'acme'"),
    ({"country": "BR"}, D(2025, 3, 1), "license 'L1' is for BR, not MX"),
    ({}, D(2025, 1, 31), "license 'L1' starts 2025-02-01, after the ship date 2025-01-31"),
    ({}, D(2025, 7, 1), "license 'L1' expired 2025-06-30, before the ship date 2025-07-01"),
    ({"valid_to": None}, D(2030, 1, 1), ""),
    ({"revoked_on": D(2025, 4, 1)}, D(2025, 3, 31), ""),  # the day before it was revoked
    ({"revoked_on": D(2025, 4, 1)}, D(2025, 4, 1), "license 'L1' was revoked from 2025-04-01"),
])
def test_license_check(changes: dict[str, Any], day: dt.date, reason: str) -> None:
    check = license_check("L1", **{**LICENSE, **changes, "ship_date": day})
    assert check == AuthorizationCheck("L1", not reason, reason)


@pytest.mark.parametrize(("changes", "day", "reason"), [
    ({}, D(2025, 2, 1), ""),
    ({}, D(2025, 6, 30), ""),
    ({"exists": False}, D(2025, 3, 1), "VEU 'V1' is not known to the ledger"),
    ({"destination": "AR"}, D(2025, 3, 1), "VEU 'V1' does not cover AR"),
    ({}, D(2025, 1, 31), "VEU 'V1' starts 2025-02-01, after the ship date 2025-01-31"),
    ({}, D(2025, 7, 1), "VEU 'V1' ended 2025-06-30, before the ship date 2025-07-01"),
    ({"valid_to": None}, D(2030, 1, 1), ""),
    ({"revoked_on": D(2025, 4, 1)}, D(2025, 3, 31), ""),
    ({"revoked_on": D(2025, 4, 1)}, D(2025, 4, 1), "VEU 'V1' was revoked from 2025-04-01"),
])
def test_veu_check(changes: dict[str, Any], day: dt.date, reason: str) -> None:
    check = veu_check("V1", **{**VEU, **changes, "ship_date": day})
    assert check == AuthorizationCheck("V1", not reason, reason)


@pytest.mark.parametrize(("before", "amount", "limit", "excess"), [
    (0, 100, 100, 0),  # up to the limit exactly: nothing over
    (0, 101, 100, 1),
    (50, 100, 100, 50),  # the part beyond the limit
    (200, 10, 100, 10),  # already over: all of it
    (0, 0, 100, 0),
])
def test_the_part_over_a_limit(before: int, amount: int, limit: int, excess: int) -> None:
    from ledger.counting import license_excess, lpp_excess

    assert lpp_excess(before, amount, limit) == excess
    assert license_excess(before, amount, limit) == excess
