"""What ``decide`` returns, not only what it appends: an identical repeat of every command
type is a duplicate with its own note (the CLI and the consumer report it), and each
refusal says which aggregate and why (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.commands import parse_command
from ledger.decide import Decision, _differences, aggregate_id_of, decide
from ledger.errors import ConflictingDuplicate, InvalidTransition, NotFound
from tests.builders import Scenario

SHIP = dict(type="shipment.recorded", exporter_id="acme", shipment_ref="S1",
            ship_date="2025-03-01", destination="MX", consignee_id="c1",
            product_id="nvidia-h100-sxm", quantity=10, authorization={"kind": "none"})
GRANT = dict(type="allocation.granted", allocation_id="L1", country="MX", tpp_amount=1_000,
             valid_from="2025-01-01", holder="acme")
VEU = dict(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
           headquarters_country="US", covered_countries=["MX"], valid_from="2025-01-01")
CORRECT = dict(type="shipment.corrected", exporter_id="acme", shipment_ref="S1", quantity=5,
               reason="typo")
VOID = dict(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
ADJUST = dict(type="allocation.adjusted", allocation_id="L1", tpp_amount=2_000,
              effective_date="2025-02-01", reason="amended")
REVOKE = dict(type="allocation.revoked", allocation_id="L1", effective_date="2025-03-01",
              reason="revoked")
AMEND = dict(type="veu.amended", veu_id="V1", effective_date="2025-02-01",
             covered_countries=["MX", "BR"])
REVOKE_VEU = dict(type="veu.revoked", veu_id="V1", effective_date="2025-03-01",
                  reason="withdrawn")


def decision(s: Scenario, fields: dict[str, Any]) -> Decision:
    command = parse_command(fields)
    return decide(command, s.histories.get(aggregate_id_of(command), []), s.ctx)


@pytest.mark.parametrize(("setup", "repeat", "note"), [
    ([SHIP], SHIP, "already recorded, identical: nothing appended"),
    ([SHIP, CORRECT], CORRECT, "identical correction already applied"),
    ([SHIP, VOID], VOID, "already voided"),
    ([GRANT], GRANT, "already granted, identical"),
    ([GRANT, ADJUST], ADJUST, "identical adjustment already applied"),
    ([GRANT, REVOKE], REVOKE, "already revoked"),
    ([VEU], VEU, "already granted, identical"),
    ([VEU, AMEND], AMEND, "identical amendment already applied"),
    ([VEU, REVOKE_VEU], REVOKE_VEU, "already revoked"),
], ids=lambda v: v["type"] if isinstance(v, dict) else None)
def test_an_identical_repeat_is_a_duplicate_with_its_note(setup: list[dict[str, Any]],
                                                          repeat: dict[str, Any],
                                                          note: str) -> None:
    s = Scenario(rules=False)
    for fields in setup:
        s.do(**fields)
    d = decision(s, repeat)
    assert (d.events, d.duplicate, d.note) == ([], True, note)


def test_a_first_command_is_not_a_duplicate() -> None:
    s = Scenario(rules=False)
    d = decision(s, SHIP)
    assert (len(d.events), d.duplicate, d.note) == (1, False, "")


def test_a_rule_revision_published_again_is_a_duplicate() -> None:
    from ledger.commands import PublishRuleRevision
    from ledger.rulebook import bundled_rulebook

    s = Scenario(rules=False)
    command = PublishRuleRevision(document=bundled_rulebook("baseline-2023"))
    s.publish(command.document)
    d = decide(command, s.histories[aggregate_id_of(command)], s.ctx)
    assert (d.events, d.duplicate, d.note) == ([], True, "already published, identical")


def test_an_explicit_key_already_applied_is_a_duplicate_naming_the_key() -> None:
    s = Scenario(rules=False)
    d = decide(parse_command(SHIP), [], s.ctx, key="message:m-1", applied={"message:m-1"})
    assert (d.events, d.duplicate) == ([], True)
    assert d.note == "message:m-1 was already applied: nothing appended"


@pytest.mark.parametrize(("setup", "command", "error", "message"), [
    ([], ADJUST, NotFound, "allocation 'L1' was never granted"),
    ([], REVOKE, NotFound, "allocation 'L1' was never granted"),
    ([], AMEND, NotFound, "VEU 'V1' was never granted"),
    ([], REVOKE_VEU, NotFound, "VEU 'V1' was never granted"),
    ([], VOID, NotFound, "shipment acme/S1 was never recorded"),
    ([GRANT, REVOKE], ADJUST, InvalidTransition, "allocation 'L1' is revoked; it cannot be "
                                                 "adjusted"),
    ([GRANT, REVOKE], {**REVOKE, "reason": "again"}, InvalidTransition,
     "allocation 'L1' is already revoked"),
    ([GRANT, REVOKE], {**REVOKE, "effective_date": "2025-04-01"}, InvalidTransition,
     "allocation 'L1' is already revoked"),
    ([VEU, REVOKE_VEU], {**REVOKE_VEU, "reason": "again"}, InvalidTransition,
     "VEU 'V1' is already revoked"),
    ([VEU, REVOKE_VEU], {**REVOKE_VEU, "effective_date": "2025-04-01"}, InvalidTransition,
     "VEU 'V1' is already revoked"),
    ([VEU, REVOKE_VEU], AMEND, InvalidTransition, "VEU 'V1' is revoked; it cannot be amended"),
    ([SHIP, VOID], {**VOID, "reason": "other"}, InvalidTransition,
     "shipment acme/S1 is already voided"),
    ([SHIP, VOID], CORRECT, InvalidTransition,
     "shipment acme/S1 is voided; it cannot be corrected"),
])
def test_each_refusal_names_the_aggregate_and_why(setup: list[dict[str, Any]],
                                                   command: dict[str, Any],
                                                   error: type[Exception], message: str) -> None:
    s = Scenario(rules=False)
    for fields in setup:
        s.do(**fields)
    with pytest.raises(error) as info:
        decision(s, command)
    assert str(info.value) == message


def test_a_revocation_before_the_grant_names_the_grant_and_its_start() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    s.do(**VEU)
    with pytest.raises(ValidationError) as info:
        decision(s, {**REVOKE_VEU, "effective_date": "2024-12-31"})
    assert str(info.value) == ("effective_date 2024-12-31 is before VEU 'V1' starts "
                               "(2025-01-01); revoke it on or after its start")
    assert (info.value.field, info.value.value) == ("effective_date", "2024-12-31")


def test_an_amendment_carries_every_changed_field() -> None:
    s = Scenario(rules=False)
    s.do(**VEU)
    (event,) = decision(s, {**AMEND, "entity": "Atlas Cloud", "valid_to": "2026-12-31",
                            "limits": {"total_compute_tpp": 5_000_000_000},
                            "reason": "renewed"}).events
    changes = event.changes  # type: ignore[attr-defined]
    assert changes.model_dump(mode="json", exclude_none=True) == {
        "entity": "Atlas Cloud", "covered_countries": ["MX", "BR"], "valid_to": "2026-12-31",
        "limits": {"total_compute_tpp": 5_000_000_000}}
    assert event.reason == "renewed"  # type: ignore[attr-defined]


@pytest.mark.parametrize("change", [{"tpp_amount": 3_000}, {"effective_date": "2025-02-02"},
                                    {"reason": "amended again"}])
def test_an_adjustment_differing_in_one_field_is_a_new_adjustment(change: dict[str, Any]
                                                                  ) -> None:
    s = Scenario(rules=False)
    s.do(**GRANT)
    s.do(**ADJUST)
    d = decision(s, {**ADJUST, **change})
    assert len(d.events) == 1 and not d.duplicate


def test_a_conflicting_recording_lists_each_difference_once_in_order() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    with pytest.raises(ConflictingDuplicate) as info:
        decision(s, {**SHIP, "quantity": 11, "destination": "BR"})
    assert str(info.value) == (
        "shipment acme/S1 was already recorded with different values (destination: 'MX' "
        "then 'BR', quantity: 10 then 11); send a shipment.corrected instead")


def test_differences_name_a_field_present_on_one_side_only() -> None:
    assert _differences({"a": 1, "same": 0}, {"b": 2, "same": 0}) \
        == "a: 1 then None, b: None then 2"
    assert _differences({"a": None}, {"a": None, "b": None}) == ""


@pytest.mark.parametrize("change", [
    {"product_id": "nvidia-h20"},  # the catalog's TPP per unit is added to the event
    {"product_id": "nvidia-h20", "tpp_per_unit": 2_400},  # the given one is kept
    {"tpp_per_unit": 16_000},
], ids=["catalog-tpp", "given-tpp", "tpp-only"])
def test_a_repeated_correction_of_the_product_or_tpp_is_a_duplicate(change: dict[str, Any]
                                                                   ) -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    correction = {**CORRECT, **change}
    correction.pop("quantity")
    (event,) = s.do(**correction)
    tpp = change.get("tpp_per_unit", 2_368)
    assert event.changes.tpp_per_unit == tpp  # type: ignore[attr-defined]
    d = decision(s, correction)
    assert (d.events, d.duplicate, d.note) == ([], True, "identical correction already applied")


def test_a_correction_to_another_tpp_after_a_catalog_filled_one_is_new() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    s.do(**{**CORRECT, "product_id": "nvidia-h20"})
    d = decision(s, {**CORRECT, "product_id": "nvidia-h20", "tpp_per_unit": 2_400})
    assert len(d.events) == 1 and not d.duplicate


def test_an_amendment_that_changes_nothing_is_refused_naming_the_fields() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    s.do(**VEU)
    with pytest.raises(ValidationError) as info:
        decision(s, {"type": "veu.amended", "veu_id": "V1", "effective_date": "2025-02-01",
                     "reason": "nothing"})
    assert (str(info.value), info.value.field, info.value.value) == (
        "a VEU amendment must change at least one field", "(fields)", None)


def test_an_amendment_on_the_same_day_for_the_same_reason_but_other_changes_is_new() -> None:
    s = Scenario(rules=False)
    s.do(**VEU)
    s.do(**{**AMEND, "reason": "enlarged"})
    d = decision(s, {**AMEND, "covered_countries": ["MX"], "reason": "enlarged"})
    assert len(d.events) == 1 and not d.duplicate


def test_an_adjustment_reviving_an_allocation_names_the_day_it_ended() -> None:
    from ledger.errors import RevivesAllocation

    s = Scenario(rules=False)
    s.do(**{**GRANT, "valid_to": "2025-06-30"})
    with pytest.raises(RevivesAllocation) as info:
        decision(s, {**ADJUST, "effective_date": "2025-07-01"})
    assert (str(info.value), info.value.field, info.value.value) == (
        "effective_date 2025-07-01 is after allocation 'L1' ended (valid_to 2025-06-30); "
        "an adjustment never revives an allocation", "effective_date", "2025-07-01")
    s.do(**REVOKE)
    with pytest.raises(RevivesAllocation) as info:
        decision(s, {**ADJUST, "effective_date": "2025-03-01"})
    assert (str(info.value), info.value.field, info.value.value) == (
        "effective_date 2025-03-01 is on or after allocation 'L1' was revoked (2025-03-01); "
        "an adjustment never revives an allocation", "effective_date", "2025-03-01")


def test_an_allocation_revoked_before_its_grant_names_the_allocation() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    s.do(**GRANT)
    with pytest.raises(ValidationError) as info:
        decision(s, {**REVOKE, "effective_date": "2024-12-31"})
    assert str(info.value) == ("effective_date 2024-12-31 is before allocation 'L1' starts "
                               "(2025-01-01); revoke it on or after its start")


@pytest.mark.parametrize(("setup", "command", "field", "message"), [
    ([SHIP], {"type": "shipment.corrected", "exporter_id": "acme", "shipment_ref": "S1",
              "reason": "none"},
     "(fields)", "a correction must change at least one field"),
    ([SHIP], {**CORRECT, "quantity": 10},
     "(fields)", "correction of acme/S1 changes nothing (values already {'quantity': 10})"),
    ([], {**SHIP, "product_id": "acme-chip-9"},
     "tpp_per_unit", "product_id 'acme-chip-9' is not in the catalog, so tpp_per_unit is "
                     "required"),
    ([SHIP], {**CORRECT, "tpp_per_unit": 15_000},
     "tpp_per_unit", "tpp_per_unit 15000 is below the catalog's 15832 for 'nvidia-h100-sxm'"),
], ids=["empty-correction", "no-op-correction", "unknown-product", "tpp-below-catalog"])
def test_each_invalid_shipment_command_names_its_field(setup: list[dict[str, Any]],
                                                       command: dict[str, Any], field: str,
                                                       message: str) -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    for fields in setup:
        s.do(**fields)
    with pytest.raises(ValidationError) as info:
        decision(s, command)
    assert (str(info.value), info.value.field) == (message, field)


def test_a_rule_revision_published_again_with_another_document_says_what_to_do() -> None:
    from ledger.commands import PublishRuleRevision
    from ledger.rulebook import bundled_rulebook

    s = Scenario(rules=False)
    book = bundled_rulebook("baseline-2023")
    s.publish(book)
    changed = PublishRuleRevision(document=book.model_copy(update={"title": "edited"}))
    with pytest.raises(ConflictingDuplicate) as info:
        decide(changed, s.histories[aggregate_id_of(changed)], s.ctx)
    assert str(info.value) == ("rule revision 'baseline-2023' was already published with a "
                               "different document; publish a new revision with its own id")


def test_a_shipment_over_the_largest_tpp_names_its_quantity() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    big = {**SHIP, "product_id": "acme-chip-9", "tpp_per_unit": 10**12}
    with pytest.raises(ValidationError) as info:
        decision(s, {**big, "quantity": 1_001})
    assert (str(info.value), info.value.field, info.value.value) == (
        "quantity 1001 x tpp_per_unit 1000000000000 exceeds 1,000,000,000,000,000 TPP for "
        "one shipment", "quantity", 1_001)
    assert len(decision(s, {**big, "quantity": 1_000}).events) == 1  # exactly 10**15


def test_a_ship_date_one_day_ahead_is_recorded_and_two_days_ahead_is_refused() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)  # its clock: 2026-06-01T00:00Z
    assert len(decision(s, {**SHIP, "ship_date": "2026-06-02"}).events) == 1
    with pytest.raises(ValidationError) as info:
        decision(s, {**SHIP, "ship_date": "2026-06-03"})
    assert (str(info.value), info.value.field, info.value.value) == (
        "ship_date 2026-06-03 is in the future (today is 2026-06-01)", "ship_date",
        "2026-06-03")


@pytest.mark.parametrize("command", [
    {**SHIP, "tpp_per_unit": 15_000},
    {**CORRECT, "tpp_per_unit": 15_000},
], ids=["recorded", "corrected"])
def test_a_tpp_per_unit_below_the_catalog_is_refused_with_its_value(command: dict[str, Any]
                                                                    ) -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    if command["type"] == "shipment.corrected":
        s.do(**SHIP)
    with pytest.raises(ValidationError) as info:
        decision(s, command)
    assert (str(info.value), info.value.field, info.value.value) == (
        "tpp_per_unit 15000 is below the catalog's 15832 for 'nvidia-h100-sxm'",
        "tpp_per_unit", 15_000)


def test_a_correction_to_a_future_ship_date_is_refused() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    s.do(**SHIP)
    with pytest.raises(ValidationError) as info:
        decision(s, {**CORRECT, "ship_date": "2026-06-03"})
    assert (info.value.field, info.value.value) == ("ship_date", "2026-06-03")


def test_a_correction_to_the_same_date_says_so_in_json_terms() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    s.do(**SHIP)
    with pytest.raises(ValidationError) as info:
        decision(s, {**CORRECT, "quantity": None, "ship_date": "2025-03-01"})
    assert str(info.value) == ("correction of acme/S1 changes nothing (values already "
                               "{'ship_date': '2025-03-01'})")


def test_a_die_area_for_a_catalog_product_is_refused_saying_why() -> None:
    from ledger.errors import ValidationError

    s = Scenario(rules=False)
    with pytest.raises(ValidationError) as info:
        decision(s, {**SHIP, "die_area_mm2": 814})
    assert (str(info.value), info.value.field, info.value.value) == (
        "die_area_mm2 814 is given for 'nvidia-h100-sxm', which is in the catalog (its "
        "density comes from there); a die area is declared only with the tpp_per_unit of a "
        "product not in the catalog", "die_area_mm2", "814")
