"""Writes the bad-input corpus: one JSON Lines file per defect, and ``expected.json``.

Each file is a good line (a shipment that would be recorded) followed by one bad
line, so "nothing appended" is tested: the file is one transaction. ``expected.json``
names, per file, the bad line's number and the field the refusal must name. Run
``python -m tests.data.bad.generate`` after changing a case; the files are checked in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
GOOD: dict[str, Any] = {
    "type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "BAD-0",
    "ship_date": "2025-02-03", "destination": "MX", "consignee_id": "mx-c-01",
    "product_id": "nvidia-h100-sxm", "quantity": 64, "authorization": {"kind": "none"}}
REC = {**GOOD, "shipment_ref": "BAD-1"}
COR = {"type": "shipment.corrected", "exporter_id": "acme", "shipment_ref": "BAD-0",
       "quantity": 72, "reason": "invoice reconciliation"}
VOID = {"type": "shipment.voided", "exporter_id": "acme", "shipment_ref": "BAD-0",
        "reason": "order cancelled"}
AGR = {"type": "allocation.granted", "allocation_id": "LIC-MX-9", "country": "MX",
       "tpp_amount": 100000000, "valid_from": "2025-01-15", "valid_to": "2025-12-31",
       "holder": "acme", "reference": "BIS license D1"}
AADJ = {"type": "allocation.adjusted", "allocation_id": "LIC-MX-9", "tpp_amount": 120000000,
        "effective_date": "2025-04-01", "reason": "license amended"}
AREV = {"type": "allocation.revoked", "allocation_id": "LIC-MX-9",
        "effective_date": "2025-09-01", "reason": "license revoked"}
VGR = {"type": "veu.granted", "veu_id": "UVEU-X", "entity": "Atlas Cloud Inc.",
       "kind": "universal", "headquarters_country": "US", "covered_countries": ["AE", "MX"],
       "valid_from": "2025-01-20", "limits": {"total_compute_tpp": 40000000000}}
VAM = {"type": "veu.amended", "veu_id": "UVEU-X", "effective_date": "2025-03-01",
       "covered_countries": ["AE", "MX", "BR"], "reason": "Brazil added"}
VREV = {"type": "veu.revoked", "veu_id": "UVEU-X", "effective_date": "2025-10-01",
        "reason": "VEU withdrawn"}
NUL, ESC, LS = "\u0000", "\u001b", "\u2028"
SCRIPT = "<script>alert(1)</script>"


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


_DROP: Any = object()


def _rule(**changes: Any) -> dict[str, Any]:
    from ledger.rulebook import bundled_rulebooks

    document = bundled_rulebooks()[1].model_dump(mode="json")
    document.update(id="bad-rule-2025")
    document.update(changes)
    return {"type": "rule.published", "document": document}


#: name -> (bad line as an object, or raw text, and the field the refusal names)
CASES: dict[str, tuple[Any, str]] = {
    # shipment.recorded
    "recorded-exporter-id-nul": (_with(REC, exporter_id=f"acme{NUL}"), "exporter_id"),
    "recorded-exporter-id-script": (_with(REC, exporter_id=SCRIPT), "exporter_id"),
    "recorded-shipment-ref-empty": (_with(REC, shipment_ref=""), "shipment_ref"),
    "recorded-shipment-ref-too-long": (_with(REC, shipment_ref="R" * 129), "shipment_ref"),
    "recorded-ship-date-datetime": (_with(REC, ship_date="2025-02-03T00:00:00"), "ship_date"),
    "recorded-ship-date-epoch": (_with(REC, ship_date=1738540800), "ship_date"),
    "recorded-ship-date-year-1": (_with(REC, ship_date="0001-01-01"), "ship_date"),
    "recorded-ship-date-year-9999": (_with(REC, ship_date="9999-12-31"), "ship_date"),
    "recorded-ship-date-feb-30": (_with(REC, ship_date="2025-02-30"), "ship_date"),
    "recorded-destination-unknown": (_with(REC, destination="XX"), "destination"),
    "recorded-destination-lowercase": (_with(REC, destination="mx"), "destination"),
    "recorded-consignee-nul": (_with(REC, consignee_id=f"mx{NUL}c"), "consignee_id"),
    "recorded-product-newline": (_with(REC, product_id="nvidia-h100\n"), "product_id"),
    "recorded-quantity-true": (_with(REC, quantity=True), "quantity"),
    "recorded-quantity-string": (_with(REC, quantity="64"), "quantity"),
    "recorded-quantity-float": (_with(REC, quantity=64.0), "quantity"),
    "recorded-quantity-zero": (_with(REC, quantity=0), "quantity"),
    "recorded-quantity-negative": (_with(REC, quantity=-5), "quantity"),
    "recorded-quantity-too-large": (_with(REC, quantity=10**9), "quantity"),
    "recorded-tpp-per-unit-exponent": (_with(REC, tpp_per_unit=1e8), "tpp_per_unit"),
    "recorded-tpp-per-unit-too-large": (_with(REC, tpp_per_unit=10**13), "tpp_per_unit"),
    "recorded-authorization-kind-unknown": (
        _with(REC, authorization={"kind": "waiver"}), "authorization.kind"),
    "recorded-authorization-ref-nul": (
        _with(REC, authorization={"kind": "license", "ref": f"L{NUL}X"}), "authorization.ref"),
    "recorded-authorization-ref-script": (
        _with(REC, authorization={"kind": "veu", "ref": SCRIPT}), "authorization.ref"),
    "recorded-authorization-license-without-ref": (
        _with(REC, authorization={"kind": "license"}), "authorization"),
    "recorded-authorization-string": (_with(REC, authorization="none"), "authorization"),
    "recorded-end-use-escape": (_with(REC, end_use=f"training{ESC}[31m"), "end_use"),
    "recorded-command-id-nul": (_with(REC, command_id=f"c{NUL}1"), "command_id"),
    "recorded-unknown-field": (_with(REC, colour="red"), "colour"),
    "recorded-missing-quantity": (_with(REC, quantity=_DROP), "quantity"),
    "recorded-type-unknown": (_with(REC, type="shipment.teleported"), "type"),
    "recorded-duplicate-key": (
        '{"type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "BAD-1", '
        '"ship_date": "2025-02-03", "destination": "MX", "consignee_id": "mx-c-01", '
        '"product_id": "nvidia-h100-sxm", "quantity": 64, "quantity": 640, '
        '"authorization": {"kind": "none"}}', "quantity"),
    "recorded-quantity-5000-digits": (
        json.dumps(_with(REC, quantity=0)).replace('"quantity": 0', '"quantity": ' + "9" * 5000),
        "(line)"),
    # shipment.corrected
    "corrected-consignee-script": (_with(COR, consignee_id=SCRIPT), "consignee_id"),
    "corrected-product-nul": (_with(COR, product_id=f"nvidia{NUL}"), "product_id"),
    "corrected-quantity-string": (_with(COR, quantity="72"), "quantity"),
    "corrected-reason-nul": (_with(COR, reason=f"invoice{NUL}"), "reason"),
    "corrected-reason-empty": (_with(COR, reason=""), "reason"),
    "corrected-ship-date-datetime": (_with(COR, ship_date="2025-02-03T00:00:00"), "ship_date"),
    "corrected-destination-unknown": (_with(COR, destination="ZZ"), "destination"),
    "corrected-authorization-ref-separator": (
        _with(COR, authorization={"kind": "license", "ref": f"L{LS}1"}), "authorization.ref"),
    "corrected-tpp-per-unit-bool": (_with(COR, tpp_per_unit=True), "tpp_per_unit"),
    "corrected-nothing-to-change": (_with(COR, quantity=_DROP), "(fields)"),
    # shipment.voided
    "voided-reason-nul": (_with(VOID, reason=f"cancelled{NUL}"), "reason"),
    "voided-reason-missing": (_with(VOID, reason=_DROP), "reason"),
    "voided-shipment-ref-space": (_with(VOID, shipment_ref="BAD 0"), "shipment_ref"),
    "voided-exporter-id-number": (_with(VOID, exporter_id=7), "exporter_id"),
    # allocation.granted
    "granted-allocation-id-nul": (_with(AGR, allocation_id=f"LIC{NUL}"), "allocation_id"),
    "granted-country-unknown": (_with(AGR, country="XX"), "country"),
    "granted-tpp-amount-exponent": (_with(AGR, tpp_amount=1e8), "tpp_amount"),
    "granted-tpp-amount-string": (_with(AGR, tpp_amount="100000000"), "tpp_amount"),
    "granted-valid-from-month-13": (_with(AGR, valid_from="2025-13-01"), "valid_from"),
    "granted-valid-to-before-from": (_with(AGR, valid_to="2024-12-31"), "valid_to"),
    "granted-holder-script": (_with(AGR, holder=SCRIPT), "holder"),
    "granted-reference-nul": (_with(AGR, reference=f"BIS{NUL}"), "reference"),
    # allocation.adjusted
    "adjusted-tpp-amount-true": (_with(AADJ, tpp_amount=True), "tpp_amount"),
    "adjusted-effective-date-number": (_with(AADJ, effective_date=20250401), "effective_date"),
    "adjusted-reason-escape": (_with(AADJ, reason=f"amended{ESC}"), "reason"),
    "adjusted-allocation-id-slash-start": (_with(AADJ, allocation_id="/LIC"), "allocation_id"),
    # allocation.revoked
    "revoked-effective-date-9999": (_with(AREV, effective_date="9999-12-31"), "effective_date"),
    "revoked-reason-missing": (_with(AREV, reason=_DROP), "reason"),
    # veu.granted
    "veu-granted-veu-id-nul": (_with(VGR, veu_id=f"UVEU{NUL}"), "veu_id"),
    "veu-granted-entity-nul": (_with(VGR, entity=f"Atlas{NUL}"), "entity"),
    "veu-granted-kind-unknown": (_with(VGR, kind="regional"), "kind"),
    "veu-granted-headquarters-unknown": (_with(VGR, headquarters_country="U$"),
                                         "headquarters_country"),
    "veu-granted-covered-empty": (_with(VGR, covered_countries=[]), "covered_countries"),
    "veu-granted-covered-unknown": (_with(VGR, covered_countries=["MX", "XX"]),
                                    "covered_countries"),
    "veu-granted-valid-from-year-1": (_with(VGR, valid_from="0001-01-01"), "valid_from"),
    "veu-granted-limits-float": (_with(VGR, limits={"total_compute_tpp": 4.0e10}),
                                 "limits.total_compute_tpp"),
    "veu-granted-limits-cap-string": (_with(VGR, limits={"cap_tpp": "5"}), "limits.cap_tpp"),
    # veu.amended
    "veu-amended-entity-bell": (_with(VAM, entity="Atlas\u0007"), "entity"),
    "veu-amended-covered-string": (_with(VAM, covered_countries="MX"), "covered_countries"),
    "veu-amended-valid-to-datetime": (_with(VAM, valid_to="2025-12-31T23:59:59"), "valid_to"),
    "veu-amended-reason-nul": (_with(VAM, reason=f"Brazil{NUL}"), "reason"),
    # veu.revoked
    "veu-revoked-effective-date-missing": (_with(VREV, effective_date=_DROP), "effective_date"),
    "veu-revoked-reason-unit-separator": (_with(VREV, reason="withdrawn\u001f"), "reason"),
    # rule.published
    "rule-document-missing": ({"type": "rule.published"}, "document"),
    "rule-title-nul": (_rule(title=f"AI diffusion{NUL}"), "document"),
    "rule-tier3-cap-float": (_rule(caps={"tier3_tpp": 0.0}), "document.caps.tier3_tpp"),
    "rule-effective-datetime": (_rule(effective="2025-01-13T00:00:00"), "document.effective"),
    "rule-id-uppercase": (_rule(id="Bad-Rule"), "document.id"),
    # the line itself
    "line-deeply-nested": ("[" * 100_000 + "]" * 100_000, "(line)"),
    "line-array": ('["shipment.recorded"]', "(line)"),
    "line-malformed": ('{"type": "shipment.recorded", ', "(line)"),
    "line-invalid-utf8": (b'{"type": "shipment.voided", "reason": "\xff\xfe"}', "(line)"),
    "line-string": ('"shipment.recorded"', "(line)"),
}


def main() -> None:
    expected: dict[str, dict[str, Any]] = {}
    for old in HERE.glob("*.jsonl"):
        old.unlink()
    for name, (bad, field) in CASES.items():
        if isinstance(bad, bytes):
            raw = bad
        elif isinstance(bad, str):
            raw = bad.encode("utf-8")
        else:
            raw = json.dumps(bad).encode("utf-8")
        (HERE / f"{name}.jsonl").write_bytes(json.dumps(GOOD).encode() + b"\n" + raw + b"\n")
        expected[f"{name}.jsonl"] = {"line": 2, "field": field}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"{len(CASES)} files")


if __name__ == "__main__":
    main()
