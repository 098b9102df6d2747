"""cap_standing: the one place a position's status, cap and remaining come from (the
fold's answer and the columnar replay's lanes both use it)."""

import datetime as dt

from ledger.rulebook import Period
from projections.positions import cap_standing

PERIOD = Period(start=dt.date(2025, 1, 1), end=dt.date(2027, 12, 31))


def test_no_cap_has_no_remaining() -> None:
    assert cap_standing(None, None, dt.date(2025, 6, 1), 5) == ("no-cap", None, None)


def test_exactly_on_the_cap_is_within_it_and_one_over_is_over() -> None:
    day = dt.date(2025, 6, 1)
    assert cap_standing(100, PERIOD, day, 100) == ("within-cap", 100, 0)
    assert cap_standing(100, PERIOD, day, 101) == ("over-cap", 100, -1)
    assert cap_standing(100, None, day, 99) == ("within-cap", 100, 1)


def test_the_cap_applies_on_the_first_and_last_day_of_its_period_only() -> None:
    assert cap_standing(100, PERIOD, dt.date(2025, 1, 1), 7) == ("within-cap", 100, 93)
    assert cap_standing(100, PERIOD, dt.date(2027, 12, 31), 7) == ("within-cap", 100, 93)
    assert cap_standing(100, PERIOD, dt.date(2024, 12, 31), 7) == (
        "outside-cap-period", None, None)
    assert cap_standing(100, PERIOD, dt.date(2028, 1, 1), 7) == (
        "outside-cap-period", None, None)
